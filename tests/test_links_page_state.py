"""Links carry what the pages show, beyond the sidebar (semrsm/explorer/links.py, page
state): heatmap order, neighbours query, focus token, embedding settings, Compare's B,
the Analyses tab and the Tour's step; invalid values are ignored with a note; a link of
a full state stays short."""

from __future__ import annotations

from pathlib import Path

from semrsm.explorer.links import (
    OTHER_MODEL,
    PAGE_LINK_PARAMS,
    PAGE_STATE_KEYS,
    link_to_state,
    page_params_to_state,
    page_state_to_params,
    state_to_params,
    view_url,
)
from semrsm.images import PHOTO_FILES

CHOICES = ["demo-resnet", "demo-vit", "resnet50.a1_in1k"]
FULL = {
    "nav_order": "cluster_semantic", "nn_query": 17, "nn_k": 8, "tm_focus": 123,
    "emb_method": "tsne", "emb_neighbours": 30, "emb_seed": 9999, "emb_3d": True,
    "emb_thumbs": False, "emb_knn": 0, "cmp_model_b": OTHER_MODEL,
    "cmp_model_b_custom": "vit_large_patch14_reg4_dinov2.lvd142m", "cmp_weights_b": "pretrained",
    "cmp_layer_b": "blocks.23", "an_tab": "Output agreement", "tour_step": "agreement",
}


def test_page_state_round_trip():
    params = page_state_to_params(FULL)
    assert list(params) == list(PAGE_LINK_PARAMS)  # every parameter, in order
    assert all(isinstance(v, str) for v in params.values())
    assert params["tab"] == "agreement" and params["emb_3d"] == "1" and params["emb_lines"] == "0"
    back, problems = page_params_to_state(params, model_choices=CHOICES)
    assert problems == []
    assert back == FULL
    assert set(back) <= set(PAGE_STATE_KEYS)
    # a listed model for B is chosen from the list
    back, _ = page_params_to_state({"b_model": "demo-vit"}, model_choices=CHOICES)
    assert back == {"cmp_model_b": "demo-vit"}


def test_invalid_page_values_are_ignored_with_a_note():
    state, problems = page_params_to_state(
        {"order": "random", "query": "-1", "nn_k": "99", "focus": "x", "emb": "lle",
         "emb_nb": "1", "emb_3d": "maybe", "b_weights": "file", "b_layer": " ", "tab": "Matchers",
         "step": "5", "emb_seed": "12", "kernel": "poly"},  # kernel: not page state
        model_choices=CHOICES,
    )
    assert state == {"emb_seed": 12}
    assert len(problems) == 11
    for word in ("order", "query", "nn_k", "focus", "emb=", "emb_nb", "emb_3d", "b_weights",
                 "b_layer", "tab", "step"):
        assert any(p.startswith(word) for p in problems), word
    # names follow the sidebar's rules: no path, no source prefix
    state, problems = page_params_to_state({"b_model": "../../etc/passwd", "b_layer": "a/b"})
    assert state == {} and problems[0].startswith("b_model=") and problems[1].startswith("b_layer=")
    # nothing a page could not show goes into a link either
    assert page_state_to_params({"nav_order": "random", "nn_query": -2, "emb_3d": "yes",
                                 "an_tab": "Nope", "tour_step": "x", "tm_focus": True}) == {}


def test_link_to_state_reads_sidebar_and_pages_and_reports_unknown_parameters_once():
    state, problems = link_to_state(
        {"model": "demo-vit", "order": "label", "tab": "layers", "colour": "red",
         "step": "nine"},
        model_choices=CHOICES, pages=["", "tour", "analyses"],
    )
    assert state == {"sb_model_choice": "demo-vit", "nav_order": "label",
                     "an_tab": "Layers (CKA)"}
    assert len(problems) == 2
    assert problems[0].startswith("'colour': not a parameter of links")
    assert problems[1].startswith("step='nine' is not one of")


def test_a_full_link_stays_short():
    sidebar = {"page": "token_matching", "sb_model_choice": OTHER_MODEL,
               "sb_model_custom": "convnextv2_base.fcmae_ft_in22k_in1k_384", "sb_weights": "pretrained",
               "sb_layer": "stages.2.blocks.26", "sb_source": "crops",
               "sb_crops_photos": list(PHOTO_FILES), "sb_crops_n": 25, "sb_kernel": "cosine",
               "sb_matcher": "batch_optimal", "sb_window": 4096, "pair": (255, 254)}
    params, _ = state_to_params(sidebar)
    params.update(page_state_to_params(FULL))
    url = view_url("http://localhost:8501", params)
    assert "b_model=vit_large" in url and "order=cluster_semantic" in url
    assert len(url) < 2000, len(url)
    # names are cut to 200 characters, so even a hostile state gives a bounded link
    huge = {**FULL, "cmp_model_b_custom": "m" * 5000, "cmp_layer_b": "l" * 5000}
    assert len(view_url("http://h", page_state_to_params(huge))) < 600


def test_app_restores_page_state_from_the_link(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=300)
    for k, v in {"order": "cluster_semantic", "query": "5", "focus": "3", "pair": "2,5",
                 "emb": "pca", "b_model": "demo-resnet", "b_layer": "layer4", "tab": "layers",
                 "step": "retrieval", "emb_nb": "999"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="nav_order").value == "cluster_semantic"
    # written back with the rest of the view, and offered to copy
    link = next(t.value for t in at.text_input if "order=" in (t.value or ""))
    for part in ("order=cluster_semantic", "emb=pca", "b_model=demo-resnet", "b_layer=layer4",
                 "tab=layers", "step=retrieval", "pair=2,5"):
        assert part in link, part
    assert any("Ignored from the link" in c.value and "emb_nb" in c.value for c in at.caption)
    # each page shows what the link asked for
    at.switch_page("pages/neighbours.py").run()
    assert not at.exception and at.selectbox(key="nn_query").value == 5
    at.switch_page("pages/token_matching.py").run()
    assert not at.exception
    assert (at.selectbox(key="tm_i").value, at.selectbox(key="tm_j").value) == (2, 5)
    assert at.selectbox(key="tm_focus").value == 3  # not moved to the strongest match
    at.switch_page("pages/analyses.py").run()
    assert not at.exception and at.session_state["an_tab"] == "Layers (CKA)"
