"""AppTest checks of defects found by trying the explorer in a real browser: controls that
must match what is drawn, words that must name what was used.

All tests share one temporary cache folder (later tests reuse what earlier ones computed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 240

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    old = {k: os.environ.get(k) for k in ("SEMRSM_CACHE_DIR", "SEMRSM_DATA_ROOT")}
    os.environ["SEMRSM_CACHE_DIR"] = str(tmp_path_factory.mktemp("app-cache"))
    os.environ.pop("SEMRSM_DATA_ROOT", None)
    torch.set_num_threads(2)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _heatmap_figure(at: AppTest) -> dict:
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        if sum(t["type"] == "heatmap" for t in fig["data"]) == 2:
            return fig
    raise AssertionError("no figure of both RSMs on the page")


def browser_shows(box) -> str:
    """The option a browser shows for a select box that it (re)mounts from this run's
    message: the value the server sends (``set_value``), else the box's default index.
    (A box that was not on the previous screen, e.g. after a *Compute* prompt, is mounted
    again; the browser then knows nothing but the message.)"""
    p = box.proto
    return p.raw_value if p.set_value else p.options[p.default]


def test_order_box_matches_the_heatmaps_after_a_compute_prompt(monkeypatch):
    """After a *Compute* prompt the box showed *as loaded* while the heatmaps were drawn
    by label: the box was missing from the prompt's screen, and when it came back the
    browser fell back to its default."""
    from pages._heatmap_nav import ORDER_LABELS
    from semrsm.analysis.ordering import image_order
    from semrsm.explorer import estimate

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.run()
    assert_clean(at)
    assert at.selectbox(key="nav_order").value == "label"
    monkeypatch.setattr(estimate, "LONG_RUN_SECONDS", -1.0)  # every new run asks first
    at.number_input(key="sb_seed").set_value(7).run()
    assert any("This run matches" in i.value for i in at.info)
    assert not at.get("selectbox") or all(b.key != "nav_order" for b in at.selectbox)
    at.button(key="semrsm_compute_long").click().run()
    assert_clean(at)
    box = at.selectbox(key="nav_order")
    drawn = _heatmap_figure(at)["layout"]["meta"]["order"]
    shown = {v: k for k, v in ORDER_LABELS.items()}[browser_shows(box)]
    result = list(at.session_state["semrsm_results"].values())[-1]  # the newest
    labels = [str(x) for x in result.labels]
    assert drawn == image_order(shown, len(drawn), labels=labels).tolist(), (shown, drawn)
    assert shown == box.value == "label"


def test_a_chosen_order_survives_a_screen_without_the_box():
    """The box comes back with the order the user chose (and that is what is drawn)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.run()
    at.selectbox(key="nav_order").set_value("cluster_semantic").run()
    drawn = _heatmap_figure(at)["layout"]["meta"]["order"]
    at.selectbox(key="sb_source").set_value("uploads").run()  # no result: no box
    assert any("Upload a few images" in i.value for i in at.info)
    at.selectbox(key="sb_source").set_value("shapes").run()
    assert_clean(at)
    box = at.selectbox(key="nav_order")
    assert browser_shows(box) == "cluster the semantic RSM" and box.value == "cluster_semantic"
    assert _heatmap_figure(at)["layout"]["meta"]["order"] == drawn
