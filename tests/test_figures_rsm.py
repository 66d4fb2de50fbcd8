"""Tests for the pure plotly builders of the RSM and neighbours pages."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from semrsm.figures.neighbours import (
    gallery_figure,
    image_to_data_uri,
    make_thumbnails,
    neighbours_figure,
    retrieval_figure,
)
from semrsm.figures.rsm import (
    difference_heatmap,
    label_order,
    off_diagonal_groups,
    rsm_heatmaps,
    similarity_histograms,
)


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    n = 7
    x = rng.normal(size=(n, 5))
    spatial = np.corrcoef(x)
    semantic = np.minimum(1.0, spatial + np.abs(rng.normal(scale=0.1, size=(n, n))))
    semantic = (semantic + semantic.T) / 2
    np.fill_diagonal(semantic, 1.0)
    names = [f"img{k}" for k in range(n)]
    labels = ["dog", "cat", "dog", "bird", "cat", "dog", "bird"]
    return spatial, semantic, names, labels


def test_label_order_groups_labels_stably():
    order = label_order(["b", "a", "b", "a", "c"])
    assert order.tolist() == [1, 3, 0, 2, 4]
    assert label_order(None, 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        label_order(None)
    with pytest.raises(ValueError):
        label_order(["a"], 2)


def test_heatmaps_share_scale_and_follow_label_order(data):
    spatial, semantic, names, labels = data
    fig = rsm_heatmaps(spatial, semantic, names, labels, kernel="cosine")
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert [t.name for t in heat] == ["spatio-semantic", "semantic"]
    assert all(t.coloraxis == "coloraxis" for t in heat)
    ca = fig.layout.coloraxis
    assert ca.cmin == pytest.approx(min(spatial.min(), semantic.min()))
    assert ca.cmax == pytest.approx(max(spatial.max(), semantic.max()))
    order = label_order(labels)
    z = np.asarray(heat[1].z)
    np.testing.assert_allclose(z, semantic[np.ix_(order, order)])
    # hover of cell (row 0, column 2) names both images with their labels
    cd = np.asarray(heat[0].customdata)
    assert cd[0, 2, 0] == f"{names[order[0]]} ({labels[order[0]]})"
    assert cd[0, 2, 1] == f"{names[order[2]]} ({labels[order[2]]})"
    assert "%{z" in heat[0].hovertemplate
    # one separator per label boundary, horizontal and vertical, in both panels
    assert len(fig.layout.shapes) == 2 * 2 * (len(set(labels)) - 1)
    assert list(fig.layout.meta["order"]) == order.tolist()


def test_selection_layer_carries_original_indices(data):
    spatial, semantic, names, labels = data
    fig = rsm_heatmaps(spatial, semantic, names, labels, selectable=True)
    layers = [t for t in fig.data if isinstance(t, (go.Scatter, go.Scattergl))]
    assert len(layers) == 2
    order = label_order(labels)
    sel = layers[1]
    for x, y, (i, j), text in zip(sel.x, sel.y, sel.customdata, sel.hovertext, strict=True):
        assert (i, j) == (order[y], order[x])
        assert f"{semantic[i, j]:.4f}" in text
    assert fig.layout.clickmode == "event+select"


def test_difference_heatmap_is_centred(data):
    spatial, semantic, names, labels = data
    fig = difference_heatmap(spatial, semantic, names, labels)
    (hm,) = fig.data
    order = label_order(labels)
    np.testing.assert_allclose(np.asarray(hm.z), (semantic - spatial)[np.ix_(order, order)])
    assert hm.zmin == 0 and hm.zmax == pytest.approx((semantic - spatial).max())  # all gains
    mixed = difference_heatmap(semantic, spatial, names, labels).data[0]  # negative entries
    assert mixed.zmid == 0 and mixed.zmin == -mixed.zmax


def test_histograms_split_every_pair_once(data):
    spatial, semantic, names, labels = data
    n = len(names)
    groups = off_diagonal_groups(spatial, labels)
    assert groups["same label"].size + groups["different label"].size == n * (n - 1) // 2
    assert groups["same label"].size == 3 + 1 + 1  # dog: 3 pairs, cat: 1, bird: 1
    fig = similarity_histograms(spatial, semantic, labels)
    hists = [t for t in fig.data if isinstance(t, go.Histogram)]
    assert len(hists) == 4
    assert sum(len(t.x) for t in hists) == 2 * n * (n - 1) // 2
    assert {t.legendgroup for t in hists} == {"same label", "different label"}
    no_labels = similarity_histograms(spatial, semantic, None)
    assert [t.legendgroup for t in no_labels.data if isinstance(t, go.Histogram)] == [
        "all pairs",
        "all pairs",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        lambda s, r, n, lab: rsm_heatmaps(s, r[:3, :3], n, lab),
        lambda s, r, n, lab: rsm_heatmaps(s, r, n[:3], lab),
        lambda s, r, n, lab: rsm_heatmaps(s, r, n, lab[:2]),
        lambda s, r, n, lab: difference_heatmap(s[:, :3], r, n, lab),
        lambda s, r, n, lab: similarity_histograms(s[:1, :1], r[:1, :1], None),
    ],
)
def test_bad_inputs_raise_value_error(data, bad):
    with pytest.raises(ValueError):
        bad(*data)


def _images(n):
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)) for _ in range(n)]


def test_thumbnails_and_data_uris():
    thumbs = make_thumbnails(_images(3), size=32)
    assert all(t.size == (32, 32) and t.mode == "RGB" for t in thumbs)
    uri = image_to_data_uri(thumbs[0])
    assert uri.startswith("data:image/png;base64,")
    back = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert back.size == (32, 32)
    with pytest.raises(ValueError):
        make_thumbnails(_images(1), size=4)


def test_gallery_marks_the_query_and_indexes_images():
    thumbs = make_thumbnails(_images(10), size=32)
    names = [f"n{k}" for k in range(10)]
    fig = gallery_figure(thumbs, names, ["a"] * 10, selected=7, columns=4)
    assert len(fig.layout.images) == 10
    (trace,) = fig.data
    assert list(trace.customdata) == list(range(10))
    assert (trace.x[7], trace.y[7]) == (3, 1)
    (rect,) = fig.layout.shapes
    assert rect.x0 < 3 < rect.x1 and rect.y0 < 1 < rect.y1
    with pytest.raises(ValueError):
        gallery_figure(thumbs, names[:3])
    with pytest.raises(ValueError):
        gallery_figure(thumbs, names, selected=10)


def test_neighbours_figure_rows_and_frames():
    thumbs = make_thumbnails(_images(6), size=32)
    names = [f"n{k}" for k in range(6)]
    labels = ["a", "a", "b", "b", "a", "b"]
    rows = {
        "classic": (np.array([2, 1]), np.array([0.9, 0.8])),
        "semantic": (np.array([1, 4]), np.array([0.95, 0.9])),
    }
    fig = neighbours_figure(thumbs, names, labels, 0, rows, kernel="cosine")
    assert len(fig.layout.images) == 2 * (1 + 2)
    assert [t.name for t in fig.data] == ["classic", "semantic"]
    colors = [s.line.color for s in fig.layout.shapes]
    # query frames (2) + classic: different, same + semantic: same, same
    assert colors.count("#1b9e77") == 3 and colors.count("#d95f02") == 1
    captions = " ".join(a.text for a in fig.layout.annotations)
    assert "cosine 0.950" in captions
    with pytest.raises(ValueError):
        neighbours_figure(thumbs, names, labels, 9, rows)
    with pytest.raises(ValueError):
        neighbours_figure(thumbs, names, labels, 0, {"x": (np.array([7]), np.array([1.0]))})


def test_retrieval_figure_groups_metrics():
    m = {"precision_at_k": 0.5, "f1_at_1": 0.25, "mean_average_precision": 0.4, "k": 3}
    fig = retrieval_figure({"classic": m, "semantic": {**m, "f1_at_1": 0.75}})
    assert [t.name for t in fig.data] == ["classic", "semantic"]
    assert list(fig.data[0].x) == ["precision@3", "F1@1", "mAP"]
    assert list(fig.data[1].y) == [0.5, 0.75, 0.4]
    with pytest.raises(ValueError):
        retrieval_figure({})


def test_rounding_below_zero_keeps_the_sequential_gain_scale(data):
    """A -7e-9 rounding error (exact matcher, cosine) is not a loss: the gain map stays on
    its sequential 0-based scale (it flipped to a diverging scale with an absolute 1e-9)."""
    spatial, _, names, labels = data
    semantic = spatial + 0.05
    np.fill_diagonal(semantic, 1.0)
    semantic[0, 1] = semantic[1, 0] = spatial[0, 1] - 7e-9
    tr = difference_heatmap(spatial, semantic, names, labels).data[0]
    assert tr.zmin == 0.0 and tr.zmid is None
    # a real loss (an approximate matcher) still gets the diverging scale
    semantic[0, 1] = semantic[1, 0] = spatial[0, 1] - 0.01
    tr = difference_heatmap(spatial, semantic, names, labels).data[0]
    assert tr.zmid == 0.0 and tr.zmin < 0


def test_tolerance_is_relative_to_the_rsm_scale(data):
    """Linear RSMs of large features: rounding scales with the values."""
    spatial, _, names, labels = data
    big = spatial * 1e6
    sem = big + 1e4
    sem[2, 3] = sem[3, 2] = big[2, 3] - 1e-4  # rounding at 1e6
    assert difference_heatmap(big, sem, names, labels).data[0].zmin == 0.0


def test_long_names_are_shortened_with_an_ellipsis_and_full_in_the_hover():
    from semrsm.figures.rsm import short_name

    n = 4
    names = ["hubble_deep_field", "immunohistochemistry", "coffee", "astronaut"]
    m = np.eye(n) * 0.5 + 0.5
    fig = rsm_heatmaps(m, m, names, None)
    ticks = list(fig.layout.xaxis.ticktext)
    assert ticks[0] == short_name("hubble_deep_field") == "hubble_deep…"
    assert all(len(t) <= 12 for t in ticks)
    # fixed margins hold the longest (shortened) name: 12 characters at 10 px
    assert fig.layout.margin.autoexpand is False
    assert fig.layout.margin.l >= 12 * 10 * 0.5 and fig.layout.margin.b >= 12 * 10 * 0.5 * 0.7
    hover = fig.data[0].customdata
    assert "hubble_deep_field" in {str(v) for v in np.asarray(hover).ravel()}


def test_navigation_heatmaps_name_the_classes_of_blocks_at_a_readable_size():
    """The RSM page's heatmaps showed truncated file names at 8 px (``shape_0012_cr…``:
    crescent and cross looked alike); now, like the difference map, one class name per
    contiguous block of a class, at the block's centre, at 10 px."""
    from semrsm.analysis.ordering import image_order
    from semrsm.figures.navigation import heatmap_panels

    labels = ["cross", "crescent", "cross", "disc", "crescent", "cross", "disc", "ring"]
    names = [f"shape_{k:04d}_{lab}" for k, lab in enumerate(labels)]
    n = len(names)
    m = np.eye(n) * 0.5 + 0.5
    by_label = image_order("label", n, labels=labels)
    fig = heatmap_panels({"classic": m, "semantic": m}, names, labels, order=by_label)
    diff = difference_heatmap(m, m, names, labels)
    for axis in (fig.layout.xaxis, fig.layout.yaxis2, diff.layout.xaxis):
        assert list(axis.ticktext) == ["crescent", "cross", "disc", "ring"]
        assert list(axis.tickvals) == [0.5, 3.0, 5.5, 7.0]  # centres of the blocks
        assert axis.tickfont.size >= 10
    # as loaded, a block may be a single image: every run of a class is named once
    fig = heatmap_panels({"classic": m, "semantic": m}, names, labels)
    assert list(fig.layout.xaxis.ticktext) == labels
    # too many blocks to read: no tick labels (the hover names every cell)
    many = [f"c{k}" for k in range(60)]
    big = np.eye(60)
    fig = heatmap_panels({"a": big}, many, many)
    assert fig.layout.xaxis.showticklabels is False and fig.layout.margin.b <= 10


def test_single_image_blocks_are_not_named_on_top_of_each_other():
    """In a clustered order single images of different classes follow each other; their
    class names overlapped ("disc", "square", "disc" in 11 px rows)."""
    from semrsm.figures.navigation import TICK_SIZE, heatmap_panels

    labels = [["disc", "square", "cross", "star"][k % 4] for k in range(32)]
    names = [f"img{k}" for k in range(32)]
    m = np.eye(32)
    fig = heatmap_panels({"a": m, "b": m}, names, labels, height=460)
    vals = list(fig.layout.yaxis.tickvals)
    cell_px = 0.75 * 460 / 32
    assert len(vals) < 32 and all(b - a >= 1.4 * TICK_SIZE / cell_px
                                  for a, b in zip(vals, vals[1:], strict=False))
    assert list(fig.layout.yaxis.ticktext) == [labels[int(v)] for v in vals]


def test_side_by_side_panels_stay_readable_in_a_narrow_window(data):
    """In a 1024 px window the right panel's row names lay over the left heatmap and the
    two panel titles over each other (the browser test measures it): long titles now
    break before their parenthesis, and only the first column names the rows."""
    from semrsm.figures.navigation import heatmap_panels
    from semrsm.figures.rsm import panel_title, semantic_title

    assert panel_title("semantic (optimal matching)") == "semantic<br>(optimal matching)"
    assert panel_title("classic") == "classic"
    assert panel_title(semantic_title("batch_optimal", {"window": 128})).count("<br>") == 2
    assert panel_title("A semantic · demo-resnet layer3") == "A semantic<br>demo-resnet layer3"
    spatial, semantic, names, labels = data
    fig = rsm_heatmaps(spatial, semantic, names, labels)
    assert [a.text for a in fig.layout.annotations] == [
        "spatio-semantic<br>(classic)", "semantic<br>(optimal matching)"]
    assert fig.layout.yaxis.showticklabels is True and fig.layout.yaxis2.showticklabels is False
    assert fig.layout.margin.t >= 26 + 2 * 19  # room for two lines of title
    four = heatmap_panels({k: spatial for k in "abcd"}, names, labels, cols=2)
    shown = [four.layout[f"yaxis{k}"].showticklabels for k in ("", 2, 3, 4)]
    assert shown == [True, False, True, False]  # rows named in the first column only
    # the histograms: one above the other on one x axis, not side by side
    hist = similarity_histograms(spatial, semantic, labels)
    assert hist.layout.xaxis.domain == hist.layout.xaxis2.domain
    assert hist.layout.yaxis.domain[0] > hist.layout.yaxis2.domain[1]
    assert hist.layout.xaxis.matches == "x2" or hist.layout.xaxis2.matches == "x"
