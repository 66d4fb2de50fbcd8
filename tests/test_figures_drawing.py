"""Fixed margins of the RSM page's figures (semrsm/figures/drawing.py): estimated from the
text they hold, with plotly's margin growth and tick-overflow measuring switched off (the
browser test checks in chromium that no label is cut)."""

from __future__ import annotations

import numpy as np
import pytest
from plotly.subplots import make_subplots

from semrsm.figures.drawing import CHAR_EM, colorbar_room, fix_margins, tick_label_room
from semrsm.figures.navigation import MAX_TICK_NAMES, TICK_ANGLE, TICK_SIZE, heatmap_panels
from semrsm.figures.rsm import difference_heatmap, rsm_heatmaps, similarity_histograms


def test_tick_label_room_follows_the_longest_label_and_the_angle():
    assert tick_label_room([], 10) == (0, 0)
    short_w, short_h = tick_label_room(["ab"], 10)
    long_w, long_h = tick_label_room(["ab", "abcdefghij"], 10)
    assert long_w - short_w == pytest.approx(8 * CHAR_EM * 10, abs=1)  # 8 more characters
    assert long_h == short_h  # horizontal text: one line high, whatever its length
    vert_w, vert_h = tick_label_room(["abcdefghij"], 10, -90)
    assert (vert_w, vert_h) == (long_h, long_w)  # upright text: width and height swap
    w60, h60 = tick_label_room(["abcdefghij"], 10, -60)
    assert long_h < h60 < vert_h and vert_w < w60 < long_w


def test_colorbar_room_holds_the_bar_its_labels_and_its_title():
    plain = colorbar_room(["a"])
    assert plain >= 14 + 5 * CHAR_EM * 12  # bar and five-character tick labels
    assert colorbar_room(["semantic −", "spatio-semantic"]) > plain  # a long title line


def test_fix_margins_switches_off_growth_and_overflow_measuring():
    fig = make_subplots(rows=1, cols=2)
    fix_margins(fig, left=11, right=12, top=13, bottom=14)
    m = fig.layout.margin
    assert (m.l, m.r, m.t, m.b, m.autoexpand) == (11, 12, 13, 14, False)
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.automargin is False and axis.ticklabeloverflow == "allow"


def _rsms(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.random((n, n))
    return a, a + 0.1


@pytest.mark.parametrize("n", [6, MAX_TICK_NAMES + 1])
def test_heatmap_panels_margins_hold_the_names_they_show(n):
    a, b = _rsms(n)
    names = [f"a_rather_long_image_name_{k}" for k in range(n)]
    fig = heatmap_panels({"classic": a, "semantic": b}, names, order=list(range(n))[::-1])
    m = fig.layout.margin
    assert m.autoexpand is False
    shown = list(fig.layout.xaxis.ticktext) if fig.layout.xaxis.showticklabels else []
    assert bool(shown) == (n <= MAX_TICK_NAMES)
    if shown:
        assert all(len(t) <= 14 for t in shown) and shown[0].endswith("…")
        assert m.l >= tick_label_room(shown, TICK_SIZE)[0]
        assert m.b >= tick_label_room(shown, TICK_SIZE, TICK_ANGLE)[1]
    else:
        assert m.l <= 10 and m.b <= 10  # no names: no room kept for them
    assert m.r >= colorbar_room(["cosine", "similarity"])


def test_rsm_figures_keep_fixed_margins():
    a, b = _rsms(8)
    names = [f"img{k}" for k in range(8)]
    labels = ["cat"] * 4 + ["dog"] * 4
    for fig in (rsm_heatmaps(a, b, names, labels), difference_heatmap(a, b, names, labels),
                similarity_histograms(a, b, labels)):
        assert fig.layout.margin.autoexpand is False
        assert fig.layout.xaxis.automargin is False
    hist = similarity_histograms(a, b, labels)
    # the legend sits at the figure's bottom edge, inside the fixed bottom margin
    assert hist.layout.legend.yref == "container" and hist.layout.legend.y == 0


@pytest.mark.parametrize("n", [5, 90])
def test_selection_layers_keep_every_cell_but_draw_one_marker(n):
    a, b = _rsms(n)
    names = [f"img{k}" for k in range(n)]
    figs = (heatmap_panels({"classic": a, "semantic": b}, names),
            rsm_heatmaps(a, b, names, None, selectable=True))
    for fig in figs:
        layers = [t for t in fig.data if t.type != "heatmap"]
        assert len(layers) == 2
        for layer in layers:
            # SVG markers (no WebGL needed) at any size; plotly draws at most one of them,
            # hover and selection read every cell's data
            assert layer.type == "scatter" and layer.marker.maxdisplayed == 1
            assert layer.marker.opacity == 0
            assert len(layer.customdata) == len(layer.hovertext) == n * n
            assert {tuple(c) for c in layer.customdata} == {(i, j) for i in range(n)
                                                             for j in range(n)}
