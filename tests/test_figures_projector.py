"""Projector mode's figure scale (semrsm/figures/projector.py): one factor enlarges the
text, marks, margins and size of a figure, and never changes the figure it is given."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from semrsm.figures.projector import DEFAULT_FONT_SIZE, DEFAULT_HEIGHT, scale_figure


def _figure() -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=["left", "right"])
    fig.add_trace(go.Scatter(x=[0, 1], y=[1, 2], mode="markers+lines",
                             marker={"size": [6, 9], "line": {"width": 1}},
                             line={"width": 2}, textfont={"size": 10}), row=1, col=1)
    fig.add_trace(go.Heatmap(z=np.eye(3), colorbar={"thickness": 14,
                                                      "tickfont": {"size": 9}}), row=1, col=2)
    fig.update_layout(height=300, margin={"l": 40, "r": 10, "t": 30, "b": 20},
                      title={"text": "t", "font": {"size": 13}},
                      meta={"size": 5, "marker": {"size": 3}})
    fig.update_xaxes(tickfont={"size": 11})
    fig.add_annotation(x=0, y=0, text="a", yshift=10, font={"size": 8})
    return fig


def test_scale_figure_enlarges_every_pixel_size_and_leaves_the_original():
    fig = _figure()
    before = fig.to_json()
    big = scale_figure(fig, 1.5)
    assert fig.to_json() == before  # the pages share their figures: never changed
    assert big.layout.height == 450
    assert big.layout.font.size == DEFAULT_FONT_SIZE * 1.5  # inherited by unset fonts
    assert big.layout.title.font.size == pytest.approx(19.5)
    assert (big.layout.margin.l, big.layout.margin.t) == (60, 45)
    assert big.layout.xaxis.tickfont.size == pytest.approx(16.5)
    assert list(big.data[0].marker.size) == [9, 13.5]
    assert big.data[0].marker.line.width == 1.5 and big.data[0].line.width == 3
    assert big.data[0].textfont.size == 15
    assert big.data[1].colorbar.thickness == 21 and big.data[1].colorbar.tickfont.size == 13.5
    texts = {a.text: a for a in big.layout.annotations}
    assert texts["a"].font.size == 12 and texts["a"].yshift == 15
    assert texts["left"].font.size == fig.layout.annotations[0].font.size * 1.5
    # data and free-form values are not sizes
    assert big.layout.meta == {"size": 5, "marker": {"size": 3}}
    assert list(big.data[0].x) == [0, 1]


def test_scale_figure_defaults_and_bad_factors():
    fig = go.Figure(go.Scatter(x=[1], y=[1]))
    assert scale_figure(fig, 1) is fig
    big = scale_figure(fig, 2)
    assert big.layout.height == 2 * DEFAULT_HEIGHT and big.layout.width is None
    assert scale_figure(go.Figure(layout={"width": 300}), 2).layout.width == 600
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            scale_figure(fig, bad)


def test_builders_take_the_projector_scale():
    from PIL import Image

    from semrsm.figures.analyses import cka_line_figure
    from semrsm.figures.neighbours import gallery_figure
    from semrsm.figures.schematic import two_rsms_schematic

    thumbs = [Image.new("RGB", (96, 96))] * 32
    names = [f"im{k}" for k in range(32)]
    small = gallery_figure(thumbs, names, columns=16)
    big = gallery_figure(thumbs, names, columns=16, scale=1.5)
    # fewer, taller columns: every thumbnail is drawn larger
    assert small.layout.xaxis.range[1] == 15.5 and big.layout.xaxis.range[1] == 10.5
    assert big.layout.height > 1.5 * small.layout.height
    line = cka_line_figure(["a", "b"], [0.5, 0.9], scale=2)
    assert line.layout.height == 720 and line.layout.title.font.size == 26
    assert two_rsms_schematic(scale=1.5).layout.height == 360


def test_heatmaps_with_names_keep_their_tick_labels():
    fig = _figure()
    big = scale_figure(fig, 1.5, ticks=False)
    assert big.layout.xaxis.tickfont.size == 11  # explicit: kept
    assert big.layout.yaxis.tickfont.size == 12  # inherited from the unscaled global size
    assert big.layout.font.size == 18 and big.layout.title.font.size == pytest.approx(19.5)
    assert (big.layout.margin.l, big.layout.margin.b) == (40, 20)  # they hold the labels
    assert (big.layout.margin.r, big.layout.margin.t) == (15, 45)
    assert big.layout.height == 450 and big.data[1].colorbar.thickness == 21
    # the right panel's rows are named by the left one's
    assert big.layout.yaxis.showticklabels is not False
    assert big.layout.yaxis2.showticklabels is False
    assert scale_figure(fig, 1.5).layout.yaxis2.showticklabels is None
