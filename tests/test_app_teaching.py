"""AppTest of the teaching features (offline default: demo-resnet on ``shapes:32``): the
permanent "How it works" expander and the tour, projector mode, page state in links,
CSV downloads, and the Compare page's warning when B is A."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_pages import assert_clean, open_app, plotly_figures

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SEMRSM_CACHE_DIR", str(tmp_path_factory.mktemp("semrsm-cache")))
    mp.delenv("SEMRSM_DATA_ROOT", raising=False)
    yield
    mp.undo()


def test_projector_mode_enlarges_figures_and_pictures():
    at = open_app()
    assert at.sidebar.toggle(key="projector_mode").value is False
    heights = [f["layout"]["height"] for f in plotly_figures(at)]
    # app.py draws the toggle; under AppTest only the first run goes through app.py (later
    # runs run the page itself, docs/APP.md), so the setting is given as the session's
    big = open_app(projector_mode=True)
    assert big.sidebar.toggle(key="projector_mode").value is True
    figs = plotly_figures(big)
    assert [f["layout"]["height"] for f in figs] == [pytest.approx(1.5 * h) for h in heights]
    assert all(f["layout"]["font"]["size"] >= 18 for f in figs)
    # the heatmaps keep the names on their axes as they were (the cells get the room)
    before = plotly_figures(at)[0]["layout"]["xaxis"]["tickfont"]["size"]
    assert figs[0]["layout"]["xaxis"]["tickfont"]["size"] == before
    # every page: the neighbours gallery has fewer, larger thumbnails
    big.session_state["projector_mode"] = True
    big.switch_page("pages/neighbours.py").run()
    assert_clean(big)
    gallery = plotly_figures(big)[0]
    assert gallery["layout"]["xaxis"]["range"][1] == pytest.approx(10.5)  # 11 columns, not 16


def test_projector_css_scales_the_root_font_only():
    from pages._projector import projector_css

    css = projector_css(1.5)
    assert css.startswith("<style>") and "font-size: 24px" in css
    assert "http" not in css and "@import" not in css and "@font-face" not in css  # offline


def _downloads(at: AppTest) -> dict[str, str]:
    """key -> label of the download buttons on the page (the key is the end of the id)."""
    return {el.proto.id.rsplit("-", 1)[-1]: el.proto.label for el in at.get("download_button")}


def test_csv_downloads_on_analyses_token_matching_and_embedding():
    at = open_app("analyses.py")
    assert "dl_an_agreement" in _downloads(at) and "dl_an_agreement_summary" in _downloads(at)
    at.button(key="an_m_run").click().run()
    at.multiselect(key="an_cka_layers").set_value(["layer3", "layer4"]).run()
    at.button(key="an_cka_run").click().run()
    at.multiselect(key="an_tr_photos").set_value(["astronaut"]).run()
    at.slider(key="an_tr_per").set_value(4).run()
    at.multiselect(key="an_tr_layers").set_value(["layer4"]).run()
    at.button(key="an_tr_run").click().run()
    assert_clean(at)
    assert {"dl_an_tr_pairs", "dl_an_tr_summary", "dl_an_cka", "dl_an_matchers"} <= set(
        _downloads(at)
    )
    at.switch_page("pages/token_matching.py").run()
    assert_clean(at)
    assert _downloads(at).get("dl_tm_matching") == "Matching and contributions (.csv)"
    at.session_state["emb_method"] = "pca"  # no UMAP compile in this test
    at.switch_page("pages/embedding.py").run()
    assert_clean(at)
    assert _downloads(at).get("emb_dl_coords") == "Coordinates of all images (.csv)"


def test_compare_warns_when_b_is_a():
    at = open_app("compare.py", cmp_model_b="demo-resnet", cmp_layer_b="layer3", cmp_nboot=0)
    assert any("trivial 1.000" in w.value for w in at.warning)
    at.selectbox(key="cmp_layer_b").set_value("layer4").run()
    assert_clean(at)
    assert not any("trivial 1.000" in w.value for w in at.warning)


def test_tour_steps_through_the_four_findings_with_live_figures():
    at = open_app("tour.py")
    assert at.title[0].value == "Tour: the paper's four findings"
    seen = []
    for n, key in enumerate(("translation", "retrieval", "agreement", "layers")):
        assert_clean(at)
        assert at.radio(key="tour_step").value == key
        assert at.subheader[0].value.startswith(f"Step {n + 1} of 4")
        assert at.info[0].value.startswith("**Look for:**")
        figs = plotly_figures(at)
        assert figs, key  # each step has its live figure
        verdict = [m.value for m in at.markdown if m.value.startswith("Here")]
        assert len(verdict) == 1, key  # and this run's numbers in one sentence
        seen.append(verdict[0])
        if n < 3:
            at.button(key="tour_next").click().run()
    assert at.button(key="tour_next").disabled
    # the offline default shows the four findings (numbers of the shipped demo weights)
    assert "clearest early, as in the paper" in seen[0]
    assert "the semantic RSM retrieves more" in seen[1]
    assert "the semantic RSM agrees more" in seen[2]
    assert "it rises towards 1" in seen[3]
    at.button(key="tour_back").click().run()
    assert_clean(at)
    assert at.radio(key="tour_step").value == "agreement"
    # another page in between (its run drops the step widget's state): the step is kept
    at.switch_page("pages/neighbours.py").run()
    at.switch_page("pages/tour.py").run()
    assert_clean(at)
    assert at.radio(key="tour_step").value == "agreement"


def _has_schematic(at: AppTest) -> bool:
    return any(set(f["layout"].get("meta") or ()) == {"classic", "semantic"} for f in plotly_figures(at))


def test_how_it_works_stays_on_the_rsm_page_and_draws_when_opened():
    at = open_app()
    assert not _has_schematic(at)  # the waiting picture is gone once the result shows
    box = [e for e in at.expander if e.label.startswith("How it works")]
    assert len(box) == 1  # ... but the expander stays, collapsed and empty
    at.session_state["rsm_how_it_works"] = True  # the user opens it
    at.run()
    assert_clean(at)
    assert _has_schematic(at)
    assert any("linear assignment" in m.value for m in at.markdown)
    at.session_state["rsm_how_it_works"] = False
    at.run()
    assert not _has_schematic(at)
