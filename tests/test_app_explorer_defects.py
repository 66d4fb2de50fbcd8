"""AppTest checks of defects found by trying the explorer in a real browser: controls that
must match what is drawn, words that must name what was used.

All tests share one temporary cache folder (later tests reuse what earlier ones computed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 240

pytestmark = [pytest.mark.timeout(900), pytest.mark.usefixtures("app_cache_dir")]


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


def test_a_zero_gain_is_neutral_and_the_semantic_panels_name_the_matcher():
    """With the identity matcher the page showed a red "↓ -0.000 from matching"; the
    semantic panels were titled "semantic (optimal matching)" for every matcher."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.run()
    at.selectbox(key="sb_matcher").set_value("identity").run()
    assert_clean(at)
    gains = [m for m in at.metric if m.proto.delta]
    assert len(gains) == 2
    for m in gains:
        assert m.proto.delta == "0.000 from matching"  # not "-0.000": no drop
        assert m.proto.color == m.proto.MetricColor.GRAY
        assert m.proto.direction == m.proto.MetricDirection.NONE
    fig = _heatmap_figure(at)
    assert [t["name"] for t in fig["data"] if t["type"] == "heatmap"] == [
        "spatio-semantic (classic)", "semantic (identity: no matching)"]
    hist = [json.loads(el.proto.spec) for el in at.get("plotly_chart")][-1]
    # the panel titles, on two lines each (a narrow column has no room for one)
    assert [a["text"].replace("<br>", " ") for a in hist["layout"]["annotations"][:2]] == [
        "spatio-semantic (classic)", "semantic (identity: no matching)"]

    at.selectbox(key="sb_matcher").set_value("batch_optimal").run()
    assert_clean(at)
    window = at.number_input(key="sb_window").value
    names = [t["name"] for t in _heatmap_figure(at)["data"] if t["type"] == "heatmap"]
    assert names[1] == f"semantic (batch-optimal, window {window})"
    same = next(m for m in at.metric if m.label == "same label · semantic")
    assert same.proto.color != same.proto.MetricColor.GRAY  # a real gain keeps its colour


def test_signed_changes_have_no_negative_zero():
    from semrsm.explorer.summary import signed

    assert signed(-0.0001) == "0.000" and signed(0.0004) == "0.000"
    assert signed(0.0123) == "+0.012" and signed(-0.0345) == "-0.035"
    assert signed(-0.00004, 4) == "0.0000" and signed(0.00016, 4) == "+0.0002"


def test_matchers_are_named_in_the_sidebars_words():
    from semrsm.analysis import MATCHER_NAMES, matcher_label, matcher_phrase, matcher_text

    assert MATCHER_NAMES["batch_optimal"] == "batch-optimal"
    assert matcher_text("batch_optimal", {"window": 128, "order": "descending"}) == (
        "batch-optimal, window 128")
    assert matcher_text("topk_greedy", {"k": 8}) == "top-k greedy, k 8"
    assert matcher_text("exact", {"rtol": 1e-10}) == "exact"
    assert matcher_phrase("batch_optimal", {"window": 4}) == "batch-optimal matcher (window 4)"
    assert matcher_phrase("greedy", {}) == "greedy matcher"
    assert matcher_label("batch_optimal", {"window": 4, "order": "descending"}) == (
        "batch-optimal (window 4)")
    assert matcher_label("batch_optimal", {"window": 4, "order": "random"}) == (
        "batch-optimal (order random, window 4)")
    assert matcher_label("exact", {"rtol": 1e-10}) == "exact"


def test_kernel_contributions_are_the_parts_of_each_kernel():
    import numpy as np

    from semrsm.analysis import kernel_contributions, kernel_values

    rng = np.random.default_rng(0)
    a, b = rng.random((9, 5)), rng.random((9, 5))
    perm = rng.permutation(9)
    inner = float(np.sum(a * b[perm]))
    na, nb = float(np.sum(a * a)), float(np.sum(b * b))
    ref = kernel_values(inner, na, nb, sigma2=2.0)
    assert kernel_contributions(a, b, perm, "linear").sum() == pytest.approx(ref["linear"])
    assert kernel_contributions(a, b, perm, "cosine").sum() == pytest.approx(ref["cosine"])
    d2 = kernel_contributions(a, b, perm, "rbf")
    assert d2.sum() == pytest.approx(ref["squared_distance"])
    assert np.exp(-d2.sum() / 4.0) == pytest.approx(ref["rbf"])
    with pytest.raises(ValueError, match="kernel"):
        kernel_contributions(a, b, perm, "poly")


def _texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "subheader", "metric"):
        for el in at.get(kind):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
            if kind == "metric":
                parts.append(el.proto.delta)
    return "\n".join(parts)


def test_user_text_uses_the_sidebars_words_and_the_kernel_shown():
    """The status line said "batch_optimal matcher (window=128, order=descending)" beside
    a control reading "batch-optimal"; the pair preview listed inner products beside a
    cosine value."""
    import numpy as np

    from semrsm.analysis import kernel_contributions

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.session_state["nav_pair"] = (0, 3)
    at.run()
    at.selectbox(key="sb_matcher").set_value("batch_optimal").run()
    assert_clean(at)
    text = _texts(at)
    window = at.number_input(key="sb_window").value
    assert f"batch-optimal matcher (window {window})" in text
    assert "(demo weights)" in text
    for internal in ("batch_optimal", "window=", "order=", "(demo)"):
        assert internal not in text, internal
    # the pair preview lists the values of the kernel shown: cosine shares of the value
    result = list(at.session_state["semrsm_results"].values())[-1]
    preview = next(c.value for c in at.caption if "strongest matches" in c.value)
    assert "strongest matches of the batch-optimal pairing" in preview
    assert "share of the cosine similarity" in preview
    perm, _ = result.matching(0, 3)
    parts = kernel_contributions(result.tokens[0], result.tokens[3], perm, "cosine")
    listed = [float(v.split(": ")[-1]) for v in preview.split("Top five: ")[1]
              .split(" (row, column")[0].split("; ")]
    assert np.allclose(sorted(listed, reverse=True), np.sort(parts)[::-1][:5], rtol=2e-3)
    assert max(listed) < 1  # shares of a cosine, not inner products
    assert f"add up to {result.semantic_rsm[0, 3]:.4f}" in preview
    # and the drawing's colours are those shares too
    overlay = next(f for f in (json.loads(el.proto.spec) for el in at.get("plotly_chart"))
                   if any(t.get("name") == "matches" for t in f["data"]))
    bars = [t["marker"]["colorbar"]["title"]["text"] for t in overlay["data"]
            if isinstance(t.get("marker"), dict) and "colorbar" in t["marker"]]
    assert bars == ["share of the<br>cosine similarity"]

    at.switch_page("pages/token_matching.py").run()
    assert_clean(at)
    text = _texts(at)
    assert "batch_optimal" not in text and "batch-optimal" in text


def test_block_means_leave_out_self_similarities():
    """A 5×5 block on the diagonal showed 0.471 / 0.847 with the self-similarities, while
    the page's own numbers leave them out (0.339 / 0.809)."""
    import math

    import numpy as np

    from semrsm.explorer.summary import block_means

    a = np.full((6, 6), 0.25)
    np.fill_diagonal(a, 1.0)
    b = a + 0.5
    mean_a, mean_b, cells = block_means(a, b, range(5), range(5))
    assert (mean_a, mean_b, cells) == (0.25, 0.75, 20)
    assert block_means(a, b, [0, 1], [4, 5]) == (0.25, 0.75, 4)  # off the diagonal: all
    mean_a, _, cells = block_means(a, b, [2], [2])
    assert cells == 0 and math.isnan(mean_a)


def test_the_selected_block_says_which_cells_its_means_cover():
    import numpy as np

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.session_state["nav_block"] = ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    at.run()
    assert_clean(at)
    result = list(at.session_state["semrsm_results"].values())[-1]
    text = next(m.value for m in at.markdown if m.value.startswith("**Selected block:**"))
    off = ~np.eye(5, dtype=bool)
    want = result.semantic_rsm[:5, :5][off].mean()
    assert f"mean semantic **{want:.3f}**" in text
    assert "20 cells" in text and "self-similarities left out" in text


def test_breakable_names_wrap_at_separators():
    from semrsm.figures.rsm import breakable_name

    zw = "\u200b"
    assert breakable_name("shape_0000_cross") == f"shape_{zw}0000_{zw}cross"
    assert breakable_name("cat-01.png") == f"cat-{zw}01.{zw}png"
    assert breakable_name("astronaut") == "astronaut" and breakable_name("a_") == "a_"


#: width of an average caption character in px (Streamlit's 14 px caption font)
CAPTION_CHAR_PX = 7


def test_block_captions_wrap_between_words_not_inside_them():
    """The selected block's captions wrapped mid-word ("shape_000" / "0_cross") under
    72 px thumbnails: no caption offered a place to wrap."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.session_state["nav_block"] = ([0, 1, 2], [0, 1, 2])
    at.run()
    assert_clean(at)
    from pages._heatmap_nav import THUMB_WIDTH

    (block,) = [el.proto for el in at.get("image") if len(el.proto.imgs) == 3]
    for img in block.imgs:
        runs = img.caption.replace("\u200b", " ").split()
        assert max(len(r) for r in runs) * CAPTION_CHAR_PX <= THUMB_WIDTH, img.caption


def test_matcher_chart_starts_at_zero_and_keeps_labels_apart():
    """Bars from 0.72 exaggerated a 3 % difference; rotated labels overlapped."""
    import pandas as pd

    from semrsm.figures.analyses import matcher_figure

    table = pd.DataFrame({
        "matcher": ["exact", "greedy", "top-k greedy (k 32)", "batch-optimal (window 128)"],
        "name": ["exact", "greedy", "topk_greedy", "batch_optimal"],
        "ratio_mean": [1.0, 0.98, 0.97, 0.97], "ratio_min": [1.0, 0.9, 0.72, 0.8],
        "seconds": [0.03, 0.001, 0.001, 0.02], "pairs_per_second": [1.0, 2.0, 3.0, 4.0],
    })
    fig = matcher_figure(table)
    assert fig.layout.yaxis.range[0] <= 0 and fig.layout.yaxis.range[1] > 1
    assert list(fig.data[0].x)[2:] == ["top-k greedy<br>k 32", "batch-optimal<br>window 128"]
    assert fig.layout.xaxis.tickangle == 0
    # the time axis: ticks at 1, 2, 5 per power of ten (labels at every digit overlapped)
    assert list(fig.layout.yaxis2.tickvals) == [0.001, 0.002, 0.005, 0.01, 0.02, 0.05]
    assert list(fig.layout.yaxis2.ticktext) == ["0.001", "0.002", "0.005", "0.01", "0.02", "0.05"]


def test_matcher_comparison_uses_the_sidebars_parameters():
    """The Analyses page compared batch-optimal with window 4 while the sidebar's
    batch-optimal used 128: the same name meant two matchers."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_shapes_n"] = 12
    at.session_state["sb_window"] = 64
    at.run()
    at.switch_page("pages/analyses.py").run()
    assert_clean(at)
    boxes = {b.label: b for b in at.number_input}
    assert boxes["batch-optimal window"].value == 64
    assert boxes["top-k greedy k"].value == at.session_state["sb_topk"]
    at.button(key="an_m_run").click().run()
    assert_clean(at)
    note = next(c.value for c in at.caption if "Parameters:" in c.value)
    assert "batch-optimal with window 64 (≥ the positions: exact), as in the sidebar" in note
    table = at.dataframe[-1].value
    assert "batch-optimal (window 64)" in list(table["matcher"])
