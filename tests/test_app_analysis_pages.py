"""AppTest for the issue-5 pages: token matching, embedding, analyses (offline default:
demo-resnet on ``shapes:32``)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_pages import assert_clean, open_app

SELECTED_PAIR_KEY = "semrsm_selected_pair"  # pages._sidebar.SELECTED_PAIR_KEY

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SEMRSM_CACHE_DIR", str(tmp_path_factory.mktemp("semrsm-cache")))
    yield
    mp.undo()


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_token_matching_default_and_pair_from_rsm_page():
    at = open_app("token_matching.py", **{SELECTED_PAIR_KEY: (2, 5)})
    assert at.title[0].value == "Token matching"
    assert at.selectbox(key="tm_i").value == 2 and at.selectbox(key="tm_j").value == 5
    # overlay, alternatives, contribution maps, S x S matrix
    assert _charts(at) == 4
    labels = [m.label for m in at.metric]
    assert "Σ along the diagonal (identity)" in labels
    metric = {m.label: m.value for m in at.metric}
    classic, semantic = (
        float(v) for k, v in metric.items() if k.startswith(("classic", "semantic"))
    )
    assert semantic >= classic - 1e-6  # exact matcher: never below the classic value
    # the kernel table reproduces the RSM entries
    table = at.dataframe[0].value
    for col in ("classic (identity)", "semantic (matching)"):
        for got, want in zip(table[col], table[f"{col}: in the RSM"], strict=True):
            assert float(got) == pytest.approx(float(want), rel=1e-3, abs=1e-4)

    at.slider(key="tm_lines").set_value(5).run()
    assert_clean(at)
    at.selectbox(key="tm_j").set_value(7).run()
    assert_clean(at)
    assert at.session_state[SELECTED_PAIR_KEY] == (2, 7)


def test_token_matching_never_stands_in_for_a_pair_beyond_the_set():
    # shapes:32 has images 0..31: (40, 3) is not clamped to (31, 3), the page's own pair shows
    at = open_app("token_matching.py", **{SELECTED_PAIR_KEY: (40, 3)})
    i, j = at.selectbox(key="tm_i").value, at.selectbox(key="tm_j").value
    assert (i, j) != (31, 3) and 0 <= i < 32 and 0 <= j < 32
    assert at.session_state[SELECTED_PAIR_KEY] == (i, j)


def test_token_matching_approximate_matcher_reports_distance_to_optimum():
    at = open_app("token_matching.py")
    at.sidebar.selectbox(key="sb_matcher").set_value("greedy").run()
    assert_clean(at)
    info = " ".join(i.value for i in at.info)
    assert "greedy" in info and "of the optimal" in info


def test_token_matching_on_a_vit():
    at = open_app("token_matching.py")
    at.sidebar.selectbox(key="sb_model_choice").set_value("demo-vit").run()
    assert_clean(at)
    assert _charts(at) == 4
    assert "demo-vit" in at.caption[0].value  # the status line names the model


def test_embedding_page_maps_and_fallback():
    at = open_app("embedding.py")
    assert at.title[0].value == "Embedding"
    assert _charts(at) == 1
    assert any("UMAP" in c.value for c in at.caption)
    at.selectbox(key="emb_method").set_value("mds").run()
    assert_clean(at)
    assert any("metric MDS" in c.value for c in at.caption)


def test_analyses_page_runs_each_analysis():
    at = open_app("analyses.py")
    assert at.title[0].value == "Analyses"
    assert _charts(at) == 1  # output agreement is computed at once
    out = at.dataframe[0].value
    assert list(out["RSM"]) == ["classic (spatio-semantic)", "semantic"]

    at.button(key="an_m_run").click().run()
    assert_clean(at)
    assert _charts(at) == 2
    ratios = at.dataframe[1].value
    # headers for people, not snake_case
    assert "pairs per second" in ratios.columns and "pairs_per_second" not in ratios.columns
    mean = ratios["mean ratio to optimal"]
    assert mean.iloc[0] == pytest.approx(1.0)  # the exact reference row
    assert (mean <= 1 + 1e-9).all()

    at.multiselect(key="an_cka_layers").set_value(["layer3", "layer4"]).run()
    at.button(key="an_cka_run").click().run()
    assert_clean(at)
    assert _charts(at) == 4

    at.multiselect(key="an_tr_photos").set_value(["astronaut"]).run()
    at.slider(key="an_tr_per").set_value(4).run()
    at.multiselect(key="an_tr_layers").set_value(["layer3", "layer4"]).run()
    at.button(key="an_tr_run").click().run()
    assert_clean(at)
    assert _charts(at) == 6
    assert any("same-source crops have a mean" in m.value for m in at.markdown)
