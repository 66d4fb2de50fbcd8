"""AppTest of every page of the explorer: the default state, a changed layer, uploads with a
corrupt file among good ones, an unknown model name; plus the sidebar's behaviour
(values kept across pages, long runs behind a button, no GPU option without a GPU).

All tests share one temporary cache folder, so later tests reuse what earlier ones
computed, as two browser sessions of the real app would.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ["pages/rsm.py", "pages/neighbours.py"]
TIMEOUT = 240

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("app_cache_dir")]


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _is_schematic(fig: dict) -> bool:
    return set(fig.get("layout", {}).get("meta") or ()) == {"classic", "semantic"}


def charts(at: AppTest) -> list[dict]:
    """The figures of results (the RSM page's picture, always there, left out)."""
    figs = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    return [f for f in figs if not _is_schematic(f)]


def array_len(value) -> int:
    """Length of a figure array, plain JSON or plotly's typed-array encoding."""
    if isinstance(value, dict) and "shape" in value:
        return int(str(value["shape"]).split(",")[0])
    if isinstance(value, dict) and "bdata" in value:
        import base64

        import numpy as np

        return len(np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]))
    return len(value)


def caption_text(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.mark.parametrize("page", PAGES)
def test_default_state(page):
    at = open_page(page)
    assert_clean(at)
    layer = at.selectbox(key="sb_layer").value
    assert layer, "a default layer is picked"
    assert f"`{layer}`" in caption_text(at) and "32 images" in caption_text(at)
    assert at.selectbox(key="sb_model_choice").value == "demo-resnet"
    assert at.title[0].value  # every page opens with a title ...
    assert len(at.markdown[0].value.split()) > 40  # ... and a plain-language introduction
    figs = charts(at)
    if page == "pages/rsm.py":
        # the picture shown while the first result was prepared is gone with the result
        every = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
        assert not any(_is_schematic(f) for f in every)
        # one figure of both RSMs (drawn once: pages/_heatmap_nav.py), difference, histograms
        assert len(figs) == 3
        heat = [t for t in figs[0]["data"] if t["type"] == "heatmap"]
        assert len(heat) == 2 and array_len(heat[0]["z"]) == 32
        assert [t["name"] for t in heat] == ["spatio-semantic (classic)",
                                            "semantic (optimal matching)"]
        assert {m.label for m in at.metric} >= {"same label · classic", "same label · semantic"}
        # the default shapes pair shares a label (moved copies are for crops of one photo)
        assert any(s.value.startswith("Why the same kind of content") for s in at.subheader)
        # bundle, 2×npy, 2×csv, 3 figures; navigation: tokens .npz/.npy, all kernels
        assert len(at.get("download_button")) == 11
    else:
        assert len(figs) == 3  # gallery, neighbours, retrieval
        assert len(figs[0]["layout"]["images"]) == 32
        assert [t["name"] for t in figs[1]["data"]] == ["classic (spatio-semantic)", "semantic"]
        bars = figs[2]["data"]
        assert [b["x"] for b in bars][0] == ["precision@5", "F1@1", "mAP"]


@pytest.mark.parametrize("page", PAGES)
def test_changed_layer(page):
    at = open_page(page)
    box = at.selectbox(key="sb_layer")
    other = [o for o in box.options if not o.startswith(box.value + " ")]
    # the deepest other layer with the fewest positions keeps the test fast
    choice = other[-1].split(" — ")[0]
    box.set_value(choice).run()
    assert_clean(at)
    assert at.selectbox(key="sb_layer").value == choice
    assert f"`{choice}`" in caption_text(at)
    assert charts(at)


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_upload_with_a_corrupt_file(page):
    at = open_page(page)
    at.selectbox(key="sb_source").set_value("uploads").run()
    assert_clean(at)
    assert any("Upload a few images" in i.value for i in at.info)
    files = [
        ("red_1.png", _png((220, 30, 30)), "image/png"),
        ("red_2.png", _png((200, 40, 20)), "image/png"),
        ("blue_1.png", _png((20, 30, 220)), "image/png"),
        ("broken.png", b"\x89PNG\r\n\x1a\n this is not an image", "image/png"),
        ("blue_2.png", _png((30, 20, 200)), "image/png"),
    ]
    at.file_uploader(key="sb_uploads").set_value(files).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "4 images" in caption_text(at)
    if page == "pages/rsm.py":
        (warning,) = at.warning
        assert "broken.png" in warning.value and "skipped" in warning.value
        assert len(charts(at)) == 3  # both RSMs in one figure, difference, histograms
    else:
        assert any("need labels" in i.value for i in at.info)  # no labels yet
        at.checkbox(key="sb_upload_labels").check().run()
        assert_clean(at)
        assert len(charts(at)) == 3  # now with retrieval scores for red vs blue


@pytest.mark.parametrize("page", PAGES)
def test_unknown_model_name(page):
    at = open_page(page)
    at.selectbox(key="sb_model_choice").set_value("Other timm model…").run()
    at.text_input(key="sb_model_custom").input("no_such_model_xyz").run()
    assert not at.exception, [e.value for e in at.exception]
    (err,) = at.error
    assert "could not be loaded" in err.value and "no_such_model_xyz" in err.value
    assert not charts(at)
    # the app keeps running: back to a demo model, everything is drawn again
    at.selectbox(key="sb_model_choice").set_value("demo-resnet").run()
    assert_clean(at)
    assert charts(at)


def test_sidebar_values_travel_between_pages():
    at = open_page(PAGES[0])
    at.radio(key="sb_kernel").set_value("linear").run()
    at.selectbox(key="sb_matcher").set_value("greedy").run()
    assert_clean(at)
    at.switch_page(PAGES[1]).run()
    assert_clean(at)
    assert at.radio(key="sb_kernel").value == "linear"
    assert "linear kernel · greedy matcher" in caption_text(at)
    at.switch_page(PAGES[0]).run()
    assert at.selectbox(key="sb_matcher").value == "greedy"


def test_neighbours_query_and_k():
    at = open_page(PAGES[1])
    heading = [s.value for s in at.subheader if s.value.startswith("Top ")][0]
    at.selectbox(key="nn_query").set_value(5).run()
    at.slider(key="nn_k").set_value(3).run()
    assert_clean(at)
    new = [s.value for s in at.subheader if s.value.startswith("Top ")][0]
    assert new != heading and new.startswith("Top 3 neighbours of ")
    fig = charts(at)[1]
    assert all(array_len(t["customdata"]) == 3 for t in fig["data"])


def test_pair_picker_selects_a_pair_for_the_token_view():
    at = open_page(PAGES[0])
    at.selectbox(key="rsm_pair_i").set_value(3).run()
    at.selectbox(key="rsm_pair_j").set_value(9).run()
    assert_clean(at)
    if (ROOT / "pages" / "token_matching.py").is_file():
        at.button(key="rsm_open_pair").click().run()
    assert tuple(at.session_state["semrsm_selected_pair"]) == (3, 9)


def test_long_run_waits_for_a_click():
    at = open_page(PAGES[0])
    box = at.selectbox(key="sb_layer")
    first = box.options[0].split(" — ")[0]  # the stem: most positions
    at.slider(key="sb_shapes_n").set_value(256)
    box.set_value(first).run()
    assert not at.exception
    assert any("pairs" in i.value and "about" in i.value for i in at.info)
    assert at.button(key="semrsm_compute_long").label.startswith("Compute")
    assert not charts(at)  # nothing was computed


def test_device_choices():
    at = open_page(PAGES[0])
    options = at.radio(key="sb_device").options
    if torch.cuda.is_available():
        assert options == ["auto", "CPU", "GPU"]
    else:
        assert options == ["auto", "CPU"]
        assert "GPU: not available" in caption_text(at)


# --------------------------------------------------------------------------- first hour
# every sentence true for the data on screen, and the bugs a new user met


def _result(tmp_path_factory, **config):
    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    cache = Cache(tmp_path_factory.mktemp("text-cache"))
    return compute(ExplorerConfig(**config), cache, with_proba=False)


def test_unrelated_photos_are_not_said_to_share_moved_content(tmp_path_factory):
    from semrsm.explorer import describe_pair
    from semrsm.explorer.summary import pair_explanation

    res = _result(tmp_path_factory, images="photos", layer="layer3")
    ex = describe_pair(res)
    assert ex["relation"] == "unknown"  # the photos have no labels
    heading, text = pair_explanation(res, ex)
    assert "moved copy" not in heading
    assert "shared content" not in text and "same content" not in text.split("nothing says")[0]
    assert "no labels" in text and "no moved copy to find" in text
    # the verb follows the numbers
    verb = "rises" if ex["semantic"] > ex["spatial"] else "stays"
    assert verb in text


def test_crops_of_one_photo_are_explained_as_moved_content(tmp_path_factory):
    from semrsm.explorer import describe_pair
    from semrsm.explorer.summary import pair_explanation

    res = _result(tmp_path_factory, images="crops:astronaut:4", layer="layer3")
    ex = describe_pair(res)
    heading, text = pair_explanation(res, ex)
    assert ex["relation"] == "same_source" and "moved copy" in heading
    assert "the same content sits at different positions" in text


def test_rbf_text_says_when_the_semantic_value_drops_and_why(tmp_path_factory):
    from semrsm.explorer import describe_pair
    from semrsm.explorer.summary import pair_explanation

    res = _result(tmp_path_factory, kernel="rbf")
    gain = res.semantic["rbf"] - res.spatial["rbf"]
    i, j = np.unravel_index(np.argmin(gain), gain.shape)
    assert gain[i, j] < 0, "with per-RSM bandwidths some RBF pair drops"
    ex = describe_pair(res, int(i), int(j))
    _, text = pair_explanation(res, ex)
    assert "drops to" in text and "rises to" not in text
    assert "own bandwidth σ²" in text
    # linear and cosine never drop with the exact matcher
    for k in ("linear", "cosine"):
        assert (res.semantic[k] - res.spatial[k]).min() >= -1e-6 * np.abs(res.spatial[k]).max()


def test_token_page_explains_rbf_and_qualifies_never_below():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/token_matching.py").run()
    assert_clean(at)
    text = "\n".join(m.value for m in at.markdown)
    assert "the semantic RSM is never below the classic one" not in text
    assert "RBF kernel is the exception" in text and "own bandwidth σ²" in text


def test_focus_token_follows_a_layer_change():
    """After a layer change the focus box kept the old cell while the text explained
    another one; now both name the strongest match of the new pair."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/token_matching.py").run()
    options = at.selectbox(key="tm_focus").options
    at.selectbox(key="tm_focus").set_value(len(options) - 1).run()  # some weak token
    layer = at.selectbox(key="sb_layer")
    # a layer with more positions (8x8), so the old index is still a valid token there
    bigger = [o.split(" — ")[0] for o in layer.options if "· 64 tokens" in o]
    layer.set_value(bigger[0]).run()
    assert_clean(at)
    box = at.selectbox(key="tm_focus")
    shown = box.options[box.index]
    assert box.value == at.session_state["tm_focus"]
    explained = [m.value for m in at.markdown if m.value.startswith("Token **")][0]
    assert explained.split("**")[1] == shown
    # the new focus is the strongest match of the new pair (the first match centre drawn)
    fig = charts(at)[0]
    centres = [t for t in fig["data"] if t.get("name") == "match centres"][0]
    assert int(box.value) == int(_values(centres["customdata"])[0])


def _values(value) -> np.ndarray:
    """A figure array, plain JSON or plotly's typed-array encoding."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_compute_prompt_disappears_once_results_show(monkeypatch):
    from semrsm.explorer import estimate

    monkeypatch.setattr(estimate, "LONG_RUN_SECONDS", -1.0)  # every run asks first
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 24  # not computed by the other tests yet
    at.run()
    assert any("This run matches" in i.value for i in at.info)
    assert not charts(at)
    # until the session's first result, the page shows the picture of the two pairings
    every = [json.loads(el.proto.spec) for el in at.get("plotly_chart")]
    assert [f["layout"]["meta"] for f in every] == [{"classic": 5 / 9, "semantic": 1.0}]
    at.button(key="semrsm_compute_long").click().run()
    assert_clean(at)
    assert charts(at)
    assert not any(_is_schematic(json.loads(el.proto.spec)) for el in at.get("plotly_chart"))
    assert not any("This run matches" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "semrsm_compute_long"]


def test_no_named_material_icons_anywhere() -> None:
    """Offline means offline: Streamlit's ``:material/…:`` icons are drawn with an icon font,
    which a page may fetch from the internet; the app uses no named icons at all."""
    root = Path(__file__).resolve().parents[1]
    sources = [root / "app.py", *sorted((root / "pages").glob("*.py"))]
    assert len(sources) > 5
    offenders = [f"{p.name}:{n}" for p in sources
                 for n, line in enumerate(p.read_text().splitlines(), 1) if ":material/" in line]
    assert not offenders, offenders
