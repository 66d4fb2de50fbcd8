"""AppTest: a server that starts on a filled cache draws the default view without loading
the model (the restart path of docs/BENCHMARKS.md, "the explorer's first hour")."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from semrsm.cache import Cache
from semrsm.explorer import ExplorerConfig, compute

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")

pytestmark = pytest.mark.timeout(600)


def _heatmaps(at) -> dict:
    """The RSM page's figure of both RSMs (the first with heatmaps; the picture above it
    has none)."""
    figs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return next(f for f in figs if any(t["type"] == "heatmap" for t in f["data"]))


@pytest.fixture()
def filled_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # the app sets it; undone after
    torch.set_num_threads(2)
    import semrsm.explorer.warmup as warmup

    # no background compiling in these tests: no precompile process, no warm-up thread
    monkeypatch.setattr(warmup, "start_precompile", lambda: None)
    monkeypatch.setattr(warmup, "_thread", threading.Thread(target=lambda: None))
    cache = Cache(tmp_path / "cache")
    # what an earlier server run left: the default view, computed
    result = compute(ExplorerConfig(), cache)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield result
    # a test here may fake a page's function (the embedding): its results, kept by
    # st.cache_data under the same keys, must not reach the tests that run after it
    st.cache_resource.clear()
    st.cache_data.clear()


def test_a_cached_default_view_is_drawn_without_the_model(filled_cache, monkeypatch):
    import pages._resources as resources

    def no_model(config):
        raise AssertionError("the model was loaded for a cached result")

    monkeypatch.setattr(resources, "load_model", no_model)
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("served from the cache" in c.value for c in at.caption)
    heat = _heatmaps(at)
    z = [t["z"] for t in heat["data"] if t["type"] == "heatmap"]
    assert len(z) == 2
    # the layer list in the sidebar came from the cache too
    layer_box = next(s for s in at.sidebar.selectbox if s.label == "Layer")
    assert layer_box.value == filled_cache.layer.name
    assert len(layer_box.options) == len(filled_cache.layers)


def test_a_revisit_does_not_build_the_figures_again(filled_cache, monkeypatch):
    import pages._heatmap_nav as nav

    built = []
    real = nav.heatmap_panels

    def counting(*args, **kwargs):
        built.append(kwargs.get("kernel"))
        return real(*args, **kwargs)

    monkeypatch.setattr(nav, "heatmap_panels", counting)
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/neighbours.py").run()
    at.switch_page("pages/rsm.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert built == ["cosine"]  # drawn on the first visit, kept for the revisit
    # another kernel is another figure (same RSM entry, other matrices shown)
    next(r for r in at.sidebar.radio if r.label == "Kernel").set_value("linear").run()
    assert built == ["cosine", "linear"]
    heat = _heatmaps(at)
    assert heat["layout"]["coloraxis"]["colorbar"]["title"]["text"].startswith("linear")


def test_embedding_switches_numba_cache_on_for_umap_before_its_first_map(
    filled_cache, monkeypatch
):
    import semrsm.embedding as embedding
    import semrsm.explorer.warmup as warmup

    calls = []
    real_embed = embedding.embed_rsm

    def fake_cache_umap():
        calls.append("cache_umap")
        return 0

    def fake_embed(rsm, kernel, method="auto", **kwargs):
        calls.append(f"embed {method}")
        return real_embed(rsm, kernel, method="pca", n_components=kwargs.get("n_components", 2))

    monkeypatch.setattr(warmup, "cache_umap", fake_cache_umap)
    monkeypatch.setattr(embedding, "embed_rsm", fake_embed)
    # earlier tests in this process may have filled the page's caches with this very map
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("pages/embedding.py").run()
    assert not at.exception, [e.value for e in at.exception]
    first_map = next(i for i, c in enumerate(calls) if c.startswith("embed "))
    assert "cache_umap" in calls[:first_map]
