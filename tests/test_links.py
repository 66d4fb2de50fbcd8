"""Links that carry the view: sidebar state <-> query parameters, and the app restoring a
view from a link (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from semrsm.explorer.links import OTHER_MODEL, params_to_state, state_to_params, view_url

CHOICES = ["demo-resnet", "demo-vit", "resnet50.a1_in1k"]
PHOTOS = ["astronaut", "coffee", "chelsea"]


@pytest.mark.parametrize(
    "state",
    [
        {"page": "compare", "sb_model_choice": "demo-vit", "sb_weights": "default",
         "sb_layer": "blocks.2", "sb_source": "shapes", "sb_shapes_n": 48, "sb_shapes_k": 2,
         "sb_seed": 7, "sb_kernel": "rbf", "sb_matcher": "batch_optimal", "sb_window": 64,
         "pair": (3, 17)},
        {"sb_model_choice": OTHER_MODEL, "sb_model_custom": "convnext_tiny",
         "sb_weights": "pretrained", "sb_layer": "stages.1", "sb_source": "crops",
         "sb_crops_photos": ["astronaut", "coffee"], "sb_crops_n": 16, "sb_kernel": "linear",
         "sb_matcher": "topk_greedy", "sb_topk": 8},
        {"sb_model_choice": "demo-resnet", "sb_source": "photos", "sb_matcher": "exact"},
    ],
)
def test_round_trip(state):
    params, notes = state_to_params(state)
    assert notes == [] and all(isinstance(v, str) for v in params.values())
    back, problems = params_to_state(params, model_choices=CHOICES, photos=PHOTOS)
    assert problems == []
    for key, value in state.items():
        if key in ("sb_window", "sb_topk") or key == "sb_seed":
            assert back[key] == value
        else:
            assert back[key] == value, key
    # values of other matchers' parameters do not travel
    assert ("sb_window" in back) == (state.get("sb_matcher") == "batch_optimal")


def test_uploads_are_not_carried_and_bad_values_are_reported():
    params, notes = state_to_params({"sb_source": "uploads", "sb_weights": "file",
                                     "sb_kernel": "cosine"})
    assert "images" not in params and "weights" not in params and len(notes) == 2
    state, problems = params_to_state(
        {"kernel": "poly", "matcher": "magic", "images": "folder:x", "pair": "a,b",
         "seed": "-3", "window": "0", "model": "demo-vit", "layer": "blocks.0"},
        model_choices=CHOICES, photos=PHOTOS,
    )
    assert state == {"sb_model_choice": "demo-vit", "sb_layer": "blocks.0"}
    assert len(problems) == 6 and any("kernel" in p for p in problems)
    state, problems = params_to_state({"images": "crops:mars:9"}, photos=PHOTOS)
    assert not state and "mars" in problems[0]
    state, _ = params_to_state({"images": ["shapes:16", "shapes:30"]})  # last one counts
    assert state["sb_shapes_n"] == 28  # the slider's step is 4


def test_view_url():
    url = view_url("http://h:8501/", {"page": "embedding", "model": "demo-vit", "pair": "1,2"})
    assert url == "http://h:8501/embedding?model=demo-vit&pair=1,2"
    assert view_url("", {"kernel": "rbf"}) == "/?kernel=rbf"


def test_app_restores_a_view_from_the_link(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=300)
    for k, v in {"model": "demo-vit", "layer": "blocks.1", "images": "shapes:12",
                 "kernel": "linear", "pair": "2,5", "matcher": "nonsense"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="sb_model_choice").value == "demo-vit"
    assert at.selectbox(key="sb_layer").value == "blocks.1"
    assert at.slider(key="sb_shapes_n").value == 12
    assert at.radio(key="sb_kernel").value == "linear"
    assert at.session_state["semrsm_selected_pair"] == (2, 5)
    # the view is written back (with the matcher it really uses), and offered to copy
    assert at.query_params["matcher"] == ["exact"] or at.query_params["matcher"] == "exact"
    link = [t.value for t in at.text_input if "model=demo-vit" in (t.value or "")]
    assert link and "layer=blocks.1" in link[0] and "pair=2,5" in link[0]
    assert any("Ignored from the link" in c.value and "matcher" in c.value for c in at.caption)
