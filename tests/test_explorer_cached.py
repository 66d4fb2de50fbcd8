"""Tests for semrsm.explorer.cached: a finished result served from the cache without the
model (no torch, timm or numba import), identical to what ``compute`` returns, and every
way the facts can be stale or missing giving a miss (never a wrong result).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import semrsm._platform as platform_mod
import semrsm.explorer.warmup as warmup
from semrsm.cache import Cache
from semrsm.cache_schema import RSM_ARRAYS, rsm_key
from semrsm.catalog import ASSETS_DIR, DEMO_MODELS
from semrsm.explorer import ExplorerConfig, compute, load_images
from semrsm.explorer.cached import (
    cached_layers,
    cached_result,
    model_facts,
)

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]

CFG = ExplorerConfig(model="demo-resnet", layer="layer3", images="shapes:10", device="cpu")


@pytest.fixture()
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and a.dtype == b.dtype and np.array_equal(a, b)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "tobytes") and hasattr(a, "mode"):  # PIL images
        return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()
    return a == b


def test_a_hit_is_exactly_what_compute_returns(cache):
    computed = compute(CFG, cache)
    images = load_images(CFG, cache)
    hit = cached_result(CFG, cache, images)
    again = compute(CFG, cache)  # everything from the cache, through the model
    assert hit is not None
    for name in hit.__dataclass_fields__:
        if name in ("timings", "_transform", "cache_hits"):
            continue
        assert _same(getattr(hit, name), getattr(again, name)), name
        assert _same(getattr(hit, name), getattr(computed, name)), name
    assert hit.cache_hits == again.cache_hits == {"tokens": True, "rsm": True, "proba": True}
    assert hit.params == computed.params == CFG.params
    # the preprocessing is rebuilt from the stored data config: same model view
    for i in (0, 3):
        assert _same(hit.model_view(i), computed.model_view(i))
    # and the matchings on demand are the same
    perm_hit, v_hit = hit.matching(2, 5)
    perm, v = computed.matching(2, 5)
    assert np.array_equal(perm_hit, perm) and v_hit == v


def test_default_layer_and_layer_list_come_from_the_cache(cache):
    cfg = CFG.replace(layer=None)
    computed = compute(cfg, cache)
    hit = cached_result(cfg, cache, load_images(cfg, cache))
    assert hit is not None and hit.layer == computed.layer
    assert cached_layers(cache, cfg) == computed.layers
    # the layer choice is not part of the model facts
    assert cached_layers(cache, cfg.replace(layer="act1")) == computed.layers


def test_misses_never_wrong_results(cache):
    images = load_images(CFG, cache)
    assert cached_result(CFG, cache, images) is None  # empty cache
    compute(CFG, cache)
    assert cached_result(CFG, cache, images) is not None
    # another matcher, other parameters, another layer, other images: not computed yet
    assert cached_result(CFG.replace(matcher="greedy"), cache, images) is None
    bo = CFG.replace(matcher="batch_optimal", matcher_params=(("window", 8),))
    compute(bo, cache)
    assert cached_result(bo, cache, images) is not None
    assert cached_result(bo.replace(matcher_params=(("window", 4),)), cache, images) is None
    assert cached_result(CFG.replace(layer="layer2"), cache, images) is None
    assert cached_result(CFG.replace(layer="no-such-layer"), cache, images) is None
    other = load_images(CFG.replace(images="shapes:12"), cache)
    assert cached_result(CFG.replace(images="shapes:12"), cache, other) is None
    # what compute would reject: an unknown kernel or device, a GPU where there is none
    assert cached_result(CFG.replace(kernel="nope"), cache, images) is None
    assert cached_result(CFG.replace(device="tpu"), cache, images) is None
    if not torch.cuda.is_available():
        assert cached_result(CFG.replace(device="cuda"), cache, images) is None
    assert cached_result(CFG.replace(device="auto"), cache, images) is not None


def test_a_damaged_entry_is_a_miss(cache):
    result = compute(CFG, cache)
    images = load_images(CFG, cache)
    path = cache.path(result.key)
    path.write_bytes(path.read_bytes()[:100])
    assert cached_result(CFG, cache, images) is None
    assert compute(CFG, cache).cache_hits["rsm"] is False  # recomputed, stored again
    assert cached_result(CFG, cache, images) is not None


def test_changed_weights_file_is_a_miss(cache, tmp_path):
    ckpt = tmp_path / "weights.safetensors"
    shutil.copyfile(ASSETS_DIR / DEMO_MODELS["demo-resnet"]["file"], ckpt)
    cfg = CFG.replace(weights="file", checkpoint=str(ckpt))
    compute(cfg, cache)
    images = load_images(cfg, cache)
    assert cached_result(cfg, cache, images) is not None
    # same path, other content: the facts (and so the weights identity) are not reused
    data = bytearray(ckpt.read_bytes())
    ckpt.write_bytes(bytes(data) + b" ")
    assert model_facts(cache, cfg) is None
    assert cached_result(cfg, cache, images) is None
    ckpt.unlink()
    assert cached_result(cfg, cache, images) is None


def test_facts_follow_the_code(cache, monkeypatch):
    compute(CFG, cache)
    images = load_images(CFG, cache)
    import semrsm.cache_schema as schema_mod

    monkeypatch.setattr(schema_mod, "environment", lambda: ("another version",))
    assert model_facts(cache, CFG) is None
    assert cached_result(CFG, cache, images) is None


def test_rsm_key_of_a_hit_is_the_compute_key(cache):
    from semrsm.cache_schema import images_digest, tokens_key
    from semrsm.models import create_model

    result = compute(CFG, cache)
    hit = cached_result(CFG, cache, load_images(CFG, cache))
    tk = tokens_key(create_model("demo-resnet"), "layer3", images_digest(load_images(CFG, cache)))
    assert hit.key == result.key == rsm_key(tk, CFG.matcher, CFG.params)
    assert set(RSM_ARRAYS) <= set(cache.load(hit.key))


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (nothing imported yet) and check it succeeded."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    return out


def test_a_hit_imports_no_torch_timm_or_numba(cache, tmp_path):
    compute(CFG, cache)
    code = (
        "import sys\n"
        "from semrsm.cache import Cache\n"
        "from semrsm.explorer.cached import cached_result\n"
        "from semrsm.explorer.config import ExplorerConfig\n"
        "from semrsm.explorer.sources import load_images\n"
        "cfg = ExplorerConfig(model='demo-resnet', layer='layer3', images='shapes:10')\n"
        f"c = Cache({str(cache.root)!r})\n"
        "r = cached_result(cfg, c, load_images(cfg, c))\n"
        "assert r is not None\n"
        "from semrsm.explorer.summary import summarize\n"
        "summarize(r)\n"
        "import semrsm.figures.rsm as f\n"
        "f.rsm_heatmaps(r.spatial_rsm, r.semantic_rsm, r.names, r.labels, selectable=True)\n"
        "print(sorted(m for m in ('torch', 'timm', 'numba', 'scipy.stats') if m in sys.modules))\n"
    )
    out = _fresh_python(code)
    assert out.stdout.strip() == "[]"


def test_package_imports_are_lazy():
    code = (
        "import sys, semrsm, semrsm.explorer, semrsm.cache, semrsm.images, semrsm.catalog\n"
        "import semrsm.analysis, semrsm.layer_info\n"
        "assert 'torch' not in sys.modules and 'numba' not in sys.modules, 'eager'\n"
        "assert 'scipy.stats' not in sys.modules, 'scipy.stats'\n"
        "from semrsm import semantic_rsm, Cancelled\n"
        "from semrsm.explorer import compute, ExplorerResult, cached_result\n"
        "from semrsm.analysis import kendall_tau_a\n"
        "import semrsm.layers, semrsm.models\n"
        "assert semrsm.layers.LayerInfo is semrsm.layer_info.LayerInfo\n"
        "assert semrsm.models.DEMO_MODELS is semrsm.catalog.DEMO_MODELS\n"
        "print('ok')\n"
    )
    out = _fresh_python(code)
    assert out.stdout.strip() == "ok"
    with pytest.raises(AttributeError):
        import semrsm

        semrsm.no_such_name  # noqa: B018


def test_cuda_available_without_a_driver_asks_no_torch():
    # in a fresh process: this one has torch imported already
    code = (
        "import sys\n"
        "import semrsm._platform as p\n"
        "p._GPU_DEVICE_FILES = ('/no/such/driver',)\n"
        "print(p.cuda_available(), 'torch' in sys.modules)\n"
    )
    out = _fresh_python(code)
    assert out.stdout.split() == ["False", "False"]
    assert platform_mod.cuda_available() == torch.cuda.is_available()


def test_precompile_is_skipped_when_numba_cache_holds_the_matcher(tmp_path, monkeypatch):
    monkeypatch.setattr(warmup, "_precompile", None)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert warmup.start_precompile() is None  # no folder of the app's: nothing to fill
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not warmup.exact_compiled()
    (tmp_path / warmup.MARKER).write_text(warmup._marker_text())
    assert warmup.exact_compiled()
    assert warmup.start_precompile() is None
    assert warmup.wait_precompile(0.1) is True
    (tmp_path / warmup.MARKER).write_text("compiled by other code")
    assert not warmup.exact_compiled()


@pytest.fixture
def warm_up_steps(monkeypatch) -> list[str]:
    """The warm-up's steps, in the order it starts them (each step does nothing)."""
    started: list[str] = []
    monkeypatch.setattr(warmup, "_thread", None)
    monkeypatch.setattr(warmup, "_precompile", None)

    def fake_warm_up(steps, device="auto", before=None):
        for step in steps:
            before(step)
            started.append(step)
        return {step: 0.0 for step in steps}

    monkeypatch.setattr(warmup, "warm_up", fake_warm_up)
    return started


def test_warm_up_waits_for_the_page_even_when_it_computes(warm_up_steps):
    started = warm_up_steps
    drawn, compute_now = threading.Event(), threading.Event()
    thread = warmup.start_warm_up("cpu", wait_for=drawn, wait_s=30.0, start_on=compute_now)
    thread.join(0.3)
    assert started == []  # waits: the first page may be drawn from the cache
    compute_now.set()
    thread.join(0.5)
    # the page computes (with the matcher of the precompile process): the warm-up must
    # not take the cores or the GIL from it
    assert started == []
    drawn.set()
    thread.join(5)
    assert started == ["exact", "umap", "approximate"]  # after a computation: exact first


def test_precompile_fills_the_cache_without_torch_for_the_apps_first_matching(tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": root}
    precompile = (
        "import runpy, sys\n"
        "sys.argv = ['warmup', '--precompile']\n"
        "try:\n"
        "    runpy.run_module('semrsm.explorer.warmup', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", precompile], env=env, capture_output=True,
                         text=True, timeout=600, cwd=root)
    assert out.stdout.split() == ["0", "False"], out.stderr[-2000:]
    assert (tmp_path / warmup.MARKER).read_text() == warmup._marker_text()
    # another process (the app's) runs the pipeline's exact matching: the kernel comes
    # from that cache, with the signature the precompile compiled (no compile here)
    app = (
        "from semrsm.explorer.warmup import warm_up\n"
        "warm_up(['exact'])\n"
        "from semrsm.matching import exact\n"
        "f = exact._solve_range\n"
        "print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))\n"
    )
    out = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True,
                         timeout=600, cwd=root)
    assert out.stdout.split() == ["1", "0"], out.stderr[-2000:]


def test_after_a_restart_umap_is_warmed_first(warm_up_steps):
    started = warm_up_steps
    drawn, compute_now = threading.Event(), threading.Event()
    drawn.set()  # the first page was drawn from the cache: nothing computes
    thread = warmup.start_warm_up("cpu", wait_for=drawn, wait_s=30.0, start_on=compute_now)
    thread.join(5)
    assert started == ["umap", "exact", "approximate"]
