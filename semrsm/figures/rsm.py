"""RSM figures: the two heatmaps side by side, their difference, and value histograms.

Images are shown ordered by label (stable within a label) so that classes form blocks
along the diagonal; thin lines separate the label blocks. Both heatmaps share one
colour axis, so equal colours mean equal similarity in both panels. Hovering a cell
shows both image names (with labels) and the value.

A transparent marker layer over the cells (``selectable=True``) carries the original
image indices ``(i, j)`` in ``customdata``, so that a click can select a pair in
interfaces whose heatmap traces do not report selections (Streamlit's
``st.plotly_chart(on_select=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from semrsm.analysis.matchers import matcher_text
from semrsm.analysis.ordering import label_order
from semrsm.figures.drawing import (
    INVISIBLE_MARKER,
    colorbar_room,
    fix_margins,
    tick_label_room,
)

__all__ = [
    "axis_ticks",
    "breakable_name",
    "label_order",
    "rsm_heatmaps",
    "short_name",
    "difference_heatmap",
    "similarity_histograms",
    "SIMILARITY_COLORSCALE",
    "DIFFERENCE_COLORSCALE",
    "SPATIAL_TITLE",
    "SEMANTIC_TITLE",
    "semantic_title",
    "panel_title",
]

SIMILARITY_COLORSCALE = "Viridis"
DIFFERENCE_COLORSCALE = "RdBu_r"
GAIN_COLORSCALE = "OrRd"
SPATIAL_TITLE = "spatio-semantic (classic)"
SEMANTIC_TITLE = "semantic (optimal matching)"
#: pairs (or neighbours) with the same label / another label, on every page
SAME_COLOR = "#1b9e77"
DIFF_COLOR = "#d95f02"
#: above this many images the per-cell selection layer is left out (too many points)
MAX_SELECTABLE = 150
#: without labels, image names label the axes up to this many images (with labels, up
#: to this many blocks of a class are named)
MAX_TICK_NAMES = 40
TICK_SIZE = 10
X_TICK_ANGLE = -45


def semantic_title(matcher: str = "exact", params: Mapping[str, Any] | None = None) -> str:
    """The semantic RSM's title naming the matcher that made it: ``semantic (optimal
    matching)`` for the exact matcher, else e.g. ``semantic (batch-optimal, window 128)``
    or ``semantic (identity: no matching)``."""
    if matcher == "exact":
        return SEMANTIC_TITLE
    if matcher == "identity":
        return "semantic (identity: no matching)"
    return f"semantic ({matcher_text(matcher, params)})"


#: a panel title longer than this many characters is put on two lines (before its first
#: parenthesis): two 27-character titles at 16 px overlap when the panels' centres are
#: less than about 260 px apart, as in a projector's 1024 px window with the sidebar open
PANEL_TITLE_CHARS = 16
#: room above the panels for titles, px: a gap plus this much per line (16 px font)
TITLE_LINE_PX = 19


def panel_title(title: str) -> str:
    """``title`` as a side-by-side panel shows it. Longer than :data:`PANEL_TITLE_CHARS`:
    broken before its first parenthesis or ``·`` (``semantic<br>(optimal matching)``),
    and a long second line once more after its first comma (``semantic<br>(batch-optimal,
    <br>window 128)``); unchanged when it has neither."""
    title = str(title)
    if len(title) <= PANEL_TITLE_CHARS:
        return title
    head, found, tail = title.partition(" (")
    if found:
        second = "(" + tail
    else:
        head, found, second = title.partition(" · ")
        if not found:
            return title
    if len(second) > PANEL_TITLE_CHARS + 4:
        second = second.replace(", ", ",<br>", 1)
    return f"{head}<br>{second}"


def panels_side_by_side(fig: go.Figure, titles: Sequence[str], cols: int,
                        top: int = 50) -> int:
    """Make the panels of a ``make_subplots`` figure with ``cols`` columns readable in a
    narrow window: long titles on two lines (:func:`panel_title`), and row names only left
    of the first column (every panel of a row shows its rows in the same order, and the
    names of a right panel fell onto the heatmap left of it when the gap was narrow; as
    matplotlib's ``sharey``). Returns the top margin the titles need, px, at least ``top``."""
    shown = [panel_title(t) for t in titles]
    for note, text in zip(fig.layout.annotations, shown, strict=False):
        note.text = text
    for k in range(1, len(titles)):
        if k % cols:  # panel k (axis y{k+1}) is not in the first column
            fig.layout[f"yaxis{k + 1}"].showticklabels = False
    return max(top, title_room(shown))


def title_room(shown: Sequence[str]) -> int:
    """Pixels that panel titles as shown (:func:`panel_title`) take above their panel."""
    lines = 1 + max((str(t).count("<br>") for t in shown), default=0)
    return 26 + TITLE_LINE_PX * lines


def _check_square(m: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (N, N) matrix, got shape {arr.shape}")
    return arr


def _check_inputs(
    spatial: np.ndarray, semantic: np.ndarray, names: Sequence[str], labels: Sequence | None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str] | None]:
    a = _check_square(spatial, "spatial")
    b = _check_square(semantic, "semantic")
    if a.shape != b.shape:
        raise ValueError(
            f"spatial and semantic RSMs must have the same shape, got {a.shape} and {b.shape}"
        )
    n = a.shape[0]
    names = [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"got {len(names)} names for {n} images; give one name per image")
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images; give one per image")
    return a, b, names, labels


def _block_edges(labels_ordered: list[str]) -> list[tuple[str, int, int]]:
    """(label, start, stop) runs of equal labels in display order."""
    out: list[tuple[str, int, int]] = []
    start = 0
    for p in range(1, len(labels_ordered) + 1):
        if p == len(labels_ordered) or labels_ordered[p] != labels_ordered[start]:
            out.append((labels_ordered[start], start, p))
            start = p
    return out


def _hover_names(names: list[str], labels: list[str] | None) -> list[str]:
    if labels is None:
        return names
    return [f"{nm} ({lab})" for nm, lab in zip(names, labels, strict=True)]


#: tick labels and captions keep at most this many characters (full names are in the hover)
SHORT_NAME = 12
#: a gain above ``-GAIN_RTOL * (largest |similarity|)`` counts as zero (rounding)
GAIN_RTOL = 1e-6


def short_name(name: str, width: int = SHORT_NAME) -> str:
    """``name`` cut to ``width`` characters with an ellipsis (``hubble_deep…``)."""
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


#: characters after which a caption may wrap (a zero-width space is put after them)
_BREAK_AFTER = "_-./"


def breakable_name(name: str) -> str:
    """``name`` with a zero-width space after each ``_ - . /`` inside it, so a narrow
    caption wraps there (``shape_0000_`` / ``cross``) instead of mid-word
    (``shape_000`` / ``0_cross``); it looks the same when it fits on one line."""
    name = str(name)
    out = [c + "\u200b" if c in _BREAK_AFTER and k < len(name) - 1 else c
           for k, c in enumerate(name)]
    return "".join(out)


def axis_ticks(names_o: Sequence[str], labels_o: Sequence[str] | None,
               max_ticks: int = MAX_TICK_NAMES, *, cell_px: float | None = None) -> dict:
    """Tick settings for a heatmap axis whose images are in display order.

    With labels: one tick per contiguous block of a class, at the block's centre, naming
    the class (image names are in the hover); a block whose centre is closer than
    1.4 font sizes to the previous named one is left unnamed when ``cell_px`` (pixels per
    image) is given (in a clustered order single images of different classes follow each
    other, and their names overlapped). Without labels: the shortened names
    (:func:`short_name`). No tick labels when more than ``max_ticks`` would be needed.
    The font size is :data:`TICK_SIZE` (set by the callers).
    """
    n = len(names_o)
    if labels_o is not None:
        blocks = _block_edges([str(x) for x in labels_o])
        if len(blocks) > max_ticks:
            return {"showticklabels": False}
        gap = 1.4 * TICK_SIZE / cell_px if cell_px else 0.0
        vals, texts, last = [], [], -math.inf
        for lab, start, stop in blocks:
            centre = (start + stop - 1) / 2
            if centre - last >= gap:
                vals.append(centre)
                texts.append(lab)
                last = centre
        return {
            "showticklabels": True,
            "tickmode": "array",
            "tickvals": vals,
            "ticktext": texts,
        }
    if n <= max_ticks:
        return {
            "showticklabels": True,
            "tickmode": "array",
            "tickvals": list(range(n)),
            "ticktext": [short_name(x) for x in names_o],
        }
    return {"showticklabels": False}


def _fix_heatmap_margins(fig: go.Figure, ticks: dict, colorbar_title: list[str],
                         top: int = 50) -> None:
    """Margins for the tick labels of :func:`axis_ticks` (size ``TICK_SIZE``, x rotated
    by ``X_TICK_ANGLE``), a title or subplot titles on top and a colour bar on the right."""
    texts = [] if ticks.get("showticklabels") is False else list(ticks.get("ticktext", []))
    fix_margins(
        fig,
        left=10 + tick_label_room(texts, TICK_SIZE)[0],
        right=colorbar_room(colorbar_title),
        top=top,
        bottom=10 + tick_label_room(texts, TICK_SIZE, X_TICK_ANGLE)[1],
    )


def _block_shapes(labels_o: list[str] | None, xref: str, yref: str) -> list[dict]:
    if labels_o is None:
        return []
    shapes = []
    n = len(labels_o)
    for _, _, stop in _block_edges(labels_o)[:-1]:
        pos = stop - 0.5
        line = {"color": "white", "width": 1.5}
        shapes.append(
            {
                "type": "line",
                "xref": xref,
                "yref": yref,
                "x0": pos,
                "x1": pos,
                "y0": -0.5,
                "y1": n - 0.5,
                "line": line,
            }
        )
        shapes.append(
            {
                "type": "line",
                "xref": xref,
                "yref": yref,
                "y0": pos,
                "y1": pos,
                "x0": -0.5,
                "x1": n - 0.5,
                "line": line,
            }
        )
    return shapes


def _selection_layer(order: np.ndarray, hover: list[str], values: np.ndarray, name: str):
    """Invisible markers on every cell carrying ``(i, j)`` for click selection."""
    n = len(order)
    px, py = np.meshgrid(np.arange(n), np.arange(n))  # display positions (col, row)
    i = order[py.ravel()]
    j = order[px.ravel()]
    custom = np.stack([i, j], axis=1)
    text = [f"row: {hover[a]}<br>column: {hover[b]}" for a, b in zip(i, j, strict=True)]
    # SVG markers at any size: only one is drawn (INVISIBLE_MARKER), no WebGL needed
    return go.Scatter(
        x=px.ravel(),
        y=py.ravel(),
        mode="markers",
        marker={"size": max(4, min(18, 600 // max(n, 1))), "symbol": "square",
                **INVISIBLE_MARKER},
        customdata=custom,
        hovertext=[f"{t}<br>{name}: {v:.4f}" for t, v in zip(text, values[i, j], strict=True)],
        hoverinfo="text",
        showlegend=False,
        name=f"select-{name}",
    )


def rsm_heatmaps(
    spatial: np.ndarray,
    semantic: np.ndarray,
    names: Sequence[str],
    labels: Sequence | None = None,
    *,
    kernel: str = "cosine",
    titles: tuple[str, str] = (SPATIAL_TITLE, SEMANTIC_TITLE),
    zrange: tuple[float, float] | None = None,
    selectable: bool = False,
    height: int = 480,
) -> go.Figure:
    """The spatio-semantic and the semantic RSM side by side, on one colour scale.

    Parameters
    ----------
    spatial, semantic : ndarray (N, N) float
        The two RSMs over the same images, in the same order.
    names : sequence of str, length N
        Image names (hover and, for N <= 40, tick labels).
    labels : sequence of length N, optional
        Class labels; images are shown grouped by label with block separators.
    kernel : str
        Kernel name, used in the colour bar title.
    titles : (str, str)
        Panel titles.
    zrange : (float, float), optional
        Colour range; default: min and max over both matrices.
    selectable : bool
        Add a transparent marker layer carrying ``customdata = (i, j)`` (original image
        indices) on every cell, so a click selects the pair. Ignored above 150 images.
    height : int
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        Two heatmap traces (``name`` "spatio-semantic" and "semantic") sharing the
        colour axis ``coloraxis``; ``layout.meta["order"]`` holds the display order.

    Raises
    ------
    ValueError
        Non-square or mismatched matrices, or names/labels of the wrong length.
    """
    a, b, names, labels = _check_inputs(spatial, semantic, names, labels)
    n = a.shape[0]
    order = label_order(labels, n)
    names_o = [names[i] for i in order]
    labels_o = [labels[i] for i in order] if labels is not None else None
    hover = _hover_names(names, labels)
    hover_o = [hover[i] for i in order]
    if zrange is None:
        zrange = (float(min(a.min(), b.min())), float(max(a.max(), b.max())))
        if zrange[0] == zrange[1]:
            zrange = (zrange[0] - 0.5, zrange[1] + 0.5)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.12 if n <= 40 else 0.06
    )
    with_select = selectable and n <= MAX_SELECTABLE
    # customdata per cell: [row image, column image] for the hover text
    custom = None
    if not with_select:
        custom = np.empty((n, n, 2), dtype=object)
        custom[:, :, 0] = np.array(hover_o, dtype=object)[:, None]
        custom[:, :, 1] = np.array(hover_o, dtype=object)[None, :]
    for col, (m, short) in enumerate(((a, "spatio-semantic"), (b, "semantic")), start=1):
        z = m[np.ix_(order, order)]
        # with a selection layer the hover comes from it: the heatmap carries no hover
        # data (half the figure's size, which the browser parses before drawing)
        hover_kw = (
            {"hoverinfo": "skip"}
            if with_select
            else {
                "customdata": custom,
                "hovertemplate": (
                    "row: %{customdata[0]}<br>column: %{customdata[1]}<br>"
                    + short
                    + " similarity: %{z:.4f}<extra></extra>"
                ),
            }
        )
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=list(range(n)),
                y=list(range(n)),
                coloraxis="coloraxis",
                name=short,
                **hover_kw,
            ),
            row=1,
            col=col,
        )
        if with_select:
            fig.add_trace(_selection_layer(order, hover, m, f"{short} similarity"), row=1, col=col)
    ticks = axis_ticks(names_o, labels_o)
    for col in (1, 2):
        axis_common = {
            "range": [-0.5, n - 0.5],
            "showgrid": False,
            "zeroline": False,
            "constrain": "domain",
            "tickfont": {"size": TICK_SIZE},
            **ticks,
        }
        fig.update_xaxes(
            axis_common,
            row=1,
            col=col,
            tickangle=X_TICK_ANGLE,
            scaleanchor=f"y{'' if col == 1 else col}",
        )
        fig.update_yaxes(axis_common, row=1, col=col, autorange=False, range=[n - 0.5, -0.5])
    shapes = _block_shapes(labels_o, "x", "y") + _block_shapes(labels_o, "x2", "y2")
    top = panels_side_by_side(fig, titles, cols=2)
    _fix_heatmap_margins(fig, ticks, [kernel, "similarity"], top=top)
    fig.update_layout(
        height=height,
        coloraxis={
            "colorscale": SIMILARITY_COLORSCALE,
            "cmin": zrange[0],
            "cmax": zrange[1],
            "colorbar": {
                "title": {"text": f"{kernel}<br>similarity", "side": "top"},
                "thickness": 14,
            },
        },
        shapes=shapes,
        clickmode="event+select",
        hovermode="closest",
        meta={"order": order.tolist(), "kernel": kernel},
        plot_bgcolor="white",
    )
    return fig


# the same leading arguments as rsm_heatmaps on purpose: the pages draw both from one result
def difference_heatmap(
    spatial: np.ndarray,
    semantic: np.ndarray,
    names: Sequence[str],
    labels: Sequence | None = None,
    *,
    kernel: str = "cosine",
    height: int = 480,
) -> go.Figure:
    """Heatmap of ``semantic − spatial``.

    With the exact matcher every entry is >= 0 (the optimal matching can only add
    similarity) and the scale runs from 0 (white) to the largest gain; when some entry
    is negative beyond rounding (below ``-GAIN_RTOL`` times the largest absolute
    similarity: an approximate matcher, or RBF with its own bandwidths) a diverging
    scale centred at 0 is used. Large values mark pairs whose shared content sits at
    different places.

    Parameters
    ----------
    spatial, semantic : ndarray (N, N) float
    names : sequence of str, length N
    labels : sequence of length N, optional (ordering and block lines as in
        :func:`rsm_heatmaps`)
    kernel : str, for the colour bar title
    height : int

    Returns
    -------
    plotly.graph_objects.Figure with one heatmap trace named "difference".

    Raises
    ------
    ValueError
        As :func:`rsm_heatmaps`.
    """
    a, b, names, labels = _check_inputs(spatial, semantic, names, labels)
    n = a.shape[0]
    order = label_order(labels, n)
    names_o = [names[i] for i in order]
    labels_o = [labels[i] for i in order] if labels is not None else None
    hover_o = [_hover_names(names, labels)[i] for i in order]
    d = (b - a)[np.ix_(order, order)]
    bound = float(np.abs(d).max()) or 1.0
    # rounding (float32 products, summation order) leaves tiny negative gains even with
    # the exact matcher; judge them against the size of the similarities, not absolutely
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), np.finfo(float).tiny)
    if d.min() >= -GAIN_RTOL * scale:
        # exact matching: never negative, so a sequential scale from 0 uses all colours
        colours = {"colorscale": GAIN_COLORSCALE, "zmin": 0.0, "zmax": bound}
    else:
        colours = {
            "colorscale": DIFFERENCE_COLORSCALE, "zmid": 0.0, "zmin": -bound, "zmax": bound
        }
    custom = np.empty((n, n, 2), dtype=object)
    custom[:, :, 0] = np.array(hover_o, dtype=object)[:, None]
    custom[:, :, 1] = np.array(hover_o, dtype=object)[None, :]
    fig = go.Figure(
        go.Heatmap(
            z=d,
            x=list(range(n)),
            y=list(range(n)),
            customdata=custom,
            **colours,
            name="difference",
            # a short colour bar title (the figure's title says what is subtracted): a
            # long one took half of a narrow column's width from the heatmap
            colorbar={"title": {"text": "gain", "side": "top"}, "thickness": 14},
            hovertemplate=(
                "row: %{customdata[0]}<br>column: %{customdata[1]}<br>"
                "semantic − spatio-semantic: %{z:.4f}<extra></extra>"
            ),
        )
    )
    ticks = axis_ticks(names_o, labels_o)
    common = {"showgrid": False, "zeroline": False, "tickfont": {"size": TICK_SIZE}, **ticks}
    fig.update_xaxes(
        common, range=[-0.5, n - 0.5], tickangle=X_TICK_ANGLE, scaleanchor="y", constrain="domain"
    )
    fig.update_yaxes(common, range=[n - 0.5, -0.5], constrain="domain")
    # two short lines: one long line was cut off in a narrow column
    title = f"Gain from matching ({kernel}):<br>semantic − classic"
    _fix_heatmap_margins(fig, ticks, ["gain"], top=title_room([title]) + 8)
    fig.update_layout(
        title={"text": title, "font": {"size": 15}},
        height=height,
        shapes=_block_shapes(labels_o, "x", "y"),
        plot_bgcolor="white",
        meta={"order": order.tolist(), "kernel": kernel},
    )
    return fig


def off_diagonal_groups(rsm: np.ndarray, labels: Sequence | None) -> dict[str, np.ndarray]:
    """Off-diagonal values of an RSM (each unordered pair once), split by label.

    Parameters
    ----------
    rsm : ndarray (N, N) float
    labels : sequence of length N, or None

    Returns
    -------
    dict
        ``{"same label": values, "different label": values}`` with labels, else
        ``{"all pairs": values}``; each a 1-D float64 array.

    Raises
    ------
    ValueError
        Non-square ``rsm`` or labels of the wrong length.
    """
    m = _check_square(rsm, "rsm")
    n = m.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    vals = m[iu, ju]
    if labels is None:
        return {"all pairs": vals}
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images")
    lab = np.array(labels, dtype=object)
    same = lab[iu] == lab[ju]
    return {"same label": vals[same], "different label": vals[~same]}


def similarity_histograms(
    spatial: np.ndarray,
    semantic: np.ndarray,
    labels: Sequence | None = None,
    *,
    kernel: str = "cosine",
    bins: int = 40,
    height: int = 340,
    titles: tuple[str, str] = (SPATIAL_TITLE, SEMANTIC_TITLE),
) -> go.Figure:
    """Histograms of the off-diagonal similarities, same-label vs different-label pairs.

    One panel per RSM, the classic one above the semantic one, on a shared x-axis and the
    same bins, normalised to probability density so groups of different sizes compare;
    dashed lines mark each group's mean.

    Parameters
    ----------
    spatial, semantic : ndarray (N, N) float
    labels : sequence of length N, optional (without labels one "all pairs" group)
    kernel : str, for the axis title
    bins : int, number of bins over the common range
    height : int
    titles : (str, str), the panel titles (name the matcher: :func:`semantic_title`)

    Returns
    -------
    plotly.graph_objects.Figure with one histogram trace per (panel, group); trace names
    are the group names, ``legendgroup`` ties each group's colour across panels.

    Raises
    ------
    ValueError
        Mismatched shapes, fewer than 2 images, or labels of the wrong length.
    """
    a = _check_square(spatial, "spatial")
    b = _check_square(semantic, "semantic")
    if a.shape != b.shape:
        raise ValueError(f"spatial and semantic shapes differ: {a.shape} vs {b.shape}")
    if a.shape[0] < 2:
        raise ValueError("need at least 2 images for off-diagonal similarities")
    ga = off_diagonal_groups(a, labels)
    gb = off_diagonal_groups(b, labels)
    allv = np.concatenate([v for g in (ga, gb) for v in g.values() if v.size])
    lo, hi = float(allv.min()), float(allv.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    size = (hi - lo) / bins
    colors = {"same label": SAME_COLOR, "different label": DIFF_COLOR, "all pairs": "#7570b3"}
    # one panel above the other on one x axis: the shift of a group from the classic to
    # the semantic RSM reads straight down, and the figure fits a narrow column
    shown = [panel_title(t) for t in titles]
    top, bottom = title_room(shown), 95
    fig = make_subplots(
        rows=2, cols=1, subplot_titles=shown, shared_xaxes=True,
        # the second panel's title between the panels
        vertical_spacing=min(0.4, (top - 10) / max(height - top - bottom, 1)),
    )
    for row, groups in ((1, ga), (2, gb)):
        for name, vals in groups.items():
            if vals.size == 0:
                continue
            fig.add_trace(
                go.Histogram(
                    x=vals,
                    name=f"{name} ({vals.size} pairs)" if row == 1 else name,
                    legendgroup=name,
                    showlegend=row == 1,
                    marker_color=colors[name],
                    opacity=0.6,
                    xbins={"start": lo, "end": hi + 1e-12, "size": size},
                    histnorm="probability density",
                    hovertemplate=name + "<br>similarity %{x}<br>density %{y:.3f}<extra></extra>",
                ),
                row=row,
                col=1,
            )
            fig.add_vline(
                x=float(vals.mean()),
                line={"color": colors[name], "dash": "dash", "width": 2},
                row=row,
                col=1,
            )
    fig.update_xaxes(range=[lo - size, hi + size])
    fig.update_xaxes(title_text=f"{kernel} similarity", row=2, col=1)
    fig.update_yaxes(title_text="density")
    # fixed margins (semrsm/figures/drawing.py): y tick labels and title on the left; the
    # first title above; x tick labels, x title and the legend (at the bottom edge) below
    fix_margins(fig, left=70, right=10, top=top, bottom=bottom)
    fig.update_layout(
        barmode="overlay",
        height=height,
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom",
                "x": 0.5, "xanchor": "center"},
    )
    return fig
