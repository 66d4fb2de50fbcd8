"""Nearest-neighbour figures: a clickable thumbnail gallery, the top-k neighbours of a query
under both RSMs, and retrieval metrics side by side.

Thumbnails are embedded as PNG data URIs (``layout.images``), so a figure saved with
``write_html`` is self-contained. Galleries carry one invisible marker per thumbnail
with ``customdata = image index``, so a click selects an image. Every figure takes
``scale`` (projector mode, :func:`semrsm.figures.projector.scale_figure`).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from semrsm.figures.projector import scale_figure
from semrsm.figures.rsm import DIFF_COLOR, SAME_COLOR

__all__ = [
    "image_to_data_uri",
    "make_thumbnails",
    "gallery_figure",
    "neighbours_figure",
    "retrieval_figure",
    "MAX_GALLERY",
]

#: a gallery shows at most this many thumbnails (the rest stay reachable by index)
MAX_GALLERY = 240
QUERY_COLOR = "#1f77b4"
#: caption marks of a neighbour with the query's label / another label
SAME_MARK = "✓"
DIFF_MARK = "✗"


def image_to_data_uri(image: Image.Image, size: int | None = None) -> str:
    """Encode an image as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode; converted to RGB.
    size : int, optional
        Longest side in pixels after downscaling (aspect ratio kept); None keeps the size.

    Returns
    -------
    str
    """
    img = image.convert("RGB")
    if size is not None and max(img.size) > size:
        img = img.copy()
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    # fast zlib level: ``optimize=True`` took ~1 s per 320 px image and made revisits slow
    img.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def make_thumbnails(images: Sequence[Image.Image], size: int = 96) -> list[Image.Image]:
    """Square RGB thumbnails (centre-padded) with the longest side ``size``.

    Parameters
    ----------
    images : sequence of PIL.Image.Image
    size : int, >= 8

    Returns
    -------
    list of PIL.Image.Image, each ``size`` × ``size`` RGB.

    Raises
    ------
    ValueError
        If ``size`` < 8.
    """
    if size < 8:
        raise ValueError(f"thumbnail size must be at least 8 pixels, got {size}")
    out = []
    for im in images:
        img = im.convert("RGB").copy()
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (size, size), (255, 255, 255))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        out.append(canvas)
    return out


def _uris(images: Sequence[Image.Image], size: int) -> list[str]:
    return [image_to_data_uri(im, size) for im in images]


def gallery_figure(
    thumbnails: Sequence[Image.Image],
    names: Sequence[str],
    labels: Sequence | None = None,
    *,
    selected: int | None = None,
    columns: int = 12,
    cell_px: int = 72,
    scale: float = 1.0,
) -> go.Figure:
    """A grid of thumbnails; clicking one selects it (``customdata`` = image index).

    Parameters
    ----------
    thumbnails : sequence of PIL.Image.Image
        One per image (see :func:`make_thumbnails`); only the first
        :data:`MAX_GALLERY` are drawn.
    names : sequence of str, same length
    labels : sequence, optional, shown on hover
    selected : int, optional
        Index of the image to frame (the current query).
    columns : int, >= 1
        Thumbnails per row.
    cell_px : int
        Approximate height of a row in pixels (sets the figure height).
    scale : float
        Projector mode (:func:`semrsm.figures.projector.scale_figure`): rows this much
        taller and ``columns / scale`` thumbnails per row, so each thumbnail grows.

    Returns
    -------
    plotly.graph_objects.Figure
        One scatter trace ``name="gallery"`` with a point per thumbnail at
        ``(column, row)``; images in ``layout.images``.

    Raises
    ------
    ValueError
        Length mismatch, ``columns`` < 1, or ``selected`` out of range.
    """
    n = len(thumbnails)
    if len(names) != n or (labels is not None and len(labels) != n):
        raise ValueError("thumbnails, names and labels must have one entry per image")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    if selected is not None and not 0 <= selected < n:
        raise ValueError(f"selected index {selected} is out of range for {n} images")
    shown = min(n, MAX_GALLERY)
    columns = min(max(1, round(columns / scale)), max(shown, 1))
    rows = max(1, math.ceil(shown / columns))
    xs = [k % columns for k in range(shown)]
    ys = [k // columns for k in range(shown)]
    hover = [
        f"#{k} {names[k]}" + (f"<br>label: {labels[k]}" if labels is not None else "")
        for k in range(shown)
    ]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={"size": 40, "opacity": 0, "symbol": "square"},
            customdata=list(range(shown)),
            hovertext=hover,
            hoverinfo="text",
            name="gallery",
            showlegend=False,
        )
    )
    images = []
    for k, uri in enumerate(_uris(thumbnails[:shown], 96)):
        images.append(
            {
                "source": uri,
                "xref": "x",
                "yref": "y",
                "x": xs[k],
                "y": ys[k],
                "sizex": 0.92,
                "sizey": 0.92,
                "xanchor": "center",
                "yanchor": "middle",
                "layer": "below",
            }
        )
    shapes = []
    if selected is not None and selected < shown:
        sx, sy = selected % columns, selected // columns
        shapes.append(
            {
                "type": "rect",
                "x0": sx - 0.5,
                "x1": sx + 0.5,
                "y0": sy - 0.5,
                "y1": sy + 0.5,
                "line": {"color": QUERY_COLOR, "width": 4},
            }
        )
    fig.update_layout(
        images=images,
        shapes=shapes,
        height=int(rows * cell_px + 20),
        margin={"l": 0, "r": 0, "t": 10, "b": 10},
        xaxis={"visible": False, "range": [-0.5, columns - 0.5], "fixedrange": True},
        yaxis={
            "visible": False,
            "range": [rows - 0.5, -0.5],
            "fixedrange": True,
            "scaleanchor": "x",
            "constrain": "domain",
        },
        plot_bgcolor="white",
        clickmode="event+select",
        hovermode="closest",
        hoverdistance=60,
        dragmode=False,
        meta={"shown": shown, "total": n},
    )
    return scale_figure(fig, scale)


def neighbours_figure(
    thumbnails: Sequence[Image.Image],
    names: Sequence[str],
    labels: Sequence | None,
    query: int,
    neighbours: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    kernel: str = "cosine",
    scale: float = 1.0,
) -> go.Figure:
    """The query and its top-k neighbours under each RSM, one row per RSM.

    Parameters
    ----------
    thumbnails : sequence of PIL.Image.Image
    names : sequence of str
    labels : sequence, optional
        With labels, a neighbour with the query's label gets a solid green frame and a ✓
        in its caption, another label a dotted orange frame and a ✗ (not colour alone).
    query : int
        Index of the query image.
    neighbours : mapping of row title to (indices (k,) int, similarities (k,) float)
        For example ``{"spatio-semantic": nearest_neighbours(B, q, k),
        "semantic": nearest_neighbours(R, q, k)}``.
    kernel : str, for the captions

    Returns
    -------
    plotly.graph_objects.Figure
        Images in ``layout.images``; captions (name, similarity) as annotations;
        one invisible scatter trace per row named after the row, ``customdata`` = index.

    Raises
    ------
    ValueError
        ``query`` or a neighbour index out of range, or an empty ``neighbours``.
    """
    n = len(thumbnails)
    if not 0 <= query < n:
        raise ValueError(f"query index {query} is out of range for {n} images")
    if not neighbours:
        raise ValueError("give at least one row of neighbours")
    k = max(len(idx) for idx, _ in neighbours.values())
    n_rows = len(neighbours)
    step = 1.6  # vertical distance between rows (one image is 1 unit high)
    images, annotations, shapes = [], [], []
    fig = go.Figure()

    def short(name: str, width: int = 16) -> str:
        return name if len(name) <= width else name[: width - 1] + "…"

    def place(
        col: float, row: float, idx: int, caption: str, color: str | None, dash: str = "solid"
    ) -> None:
        images.append(
            {
                "source": image_to_data_uri(thumbnails[idx], 128),
                "xref": "x",
                "yref": "y",
                "x": col,
                "y": row,
                "sizex": 0.9,
                "sizey": 0.9,
                "xanchor": "center",
                "yanchor": "middle",
                "layer": "below",
            }
        )
        annotations.append(
            {
                "x": col,
                "y": row + 0.48,
                "xref": "x",
                "yref": "y",
                "text": caption,
                "showarrow": False,
                "yanchor": "top",
                "font": {"size": 11},
            }
        )
        if color:
            shapes.append(
                {
                    "type": "rect",
                    "x0": col - 0.46,
                    "x1": col + 0.46,
                    "y0": row - 0.46,
                    "y1": row + 0.46,
                    "line": {"color": color, "width": 4, "dash": dash},
                }
            )

    qlabel = labels[query] if labels is not None else None
    for row, (title, (idx, sims)) in enumerate(neighbours.items()):
        idx = np.asarray(idx, dtype=np.int64)
        sims = np.asarray(sims, dtype=np.float64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"neighbour indices of {title!r} are out of range for {n} images")
        y = row * step
        place(0, y, query, f"<b>query</b><br>{short(names[query])}", QUERY_COLOR)
        annotations.append(
            {
                "x": 0.75,
                "y": y - 0.5,
                "xref": "x",
                "yref": "y",
                "text": f"<b>{title}</b>",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": 14},
            }
        )
        hover = []
        for r, (j, s) in enumerate(zip(idx.tolist(), sims.tolist(), strict=True), start=1):
            color, dash, mark = None, "solid", ""
            if labels is not None:
                # colour and a symbol and a line style: the frame does not rely on colour alone
                same = labels[j] == qlabel
                color = SAME_COLOR if same else DIFF_COLOR
                dash = "solid" if same else "dot"
                mark = SAME_MARK if same else DIFF_MARK
            place(
                r + 0.3,
                y,
                j,
                f"<b>#{r}</b> {mark} · {kernel} {s:.3f}<br>{short(names[j])}",
                color,
                dash,
            )
            hover.append(
                f"rank {r}: {names[j]}"
                + (f" ({labels[j]})" if labels is not None else "")
                + f"<br>{title} similarity {s:.4f}"
            )
        fig.add_trace(
            go.Scatter(
                x=[r + 0.3 for r in range(1, len(idx) + 1)],
                y=[y] * len(idx),
                mode="markers",
                marker={"size": 30, "opacity": 0},
                customdata=idx.tolist(),
                hovertext=hover,
                hoverinfo="text",
                name=title,
                showlegend=False,
            )
        )
    top, bottom = -0.62, (n_rows - 1) * step + 0.85
    fig.update_layout(
        images=images,
        annotations=annotations,
        shapes=shapes,
        height=int((bottom - top) * 120 + 20),
        margin={"l": 0, "r": 0, "t": 10, "b": 10},
        xaxis={"visible": False, "range": [-0.5, k + 0.8], "fixedrange": True},
        yaxis={
            "visible": False,
            "range": [bottom, top],
            "fixedrange": True,
            "scaleanchor": "x",
            "constrain": "domain",
        },
        plot_bgcolor="white",
        meta={"query": int(query)},
    )
    return scale_figure(fig, scale)


_METRIC_NAMES = {
    "precision_at_k": "precision@k",
    "f1_at_1": "F1@1",
    "mean_average_precision": "mAP",
}


def retrieval_figure(
    metrics: Mapping[str, Mapping[str, float]], *, height: int = 320, scale: float = 1.0
) -> go.Figure:
    """Grouped bars of retrieval metrics, one group per metric, one bar per RSM.

    Parameters
    ----------
    metrics : mapping of RSM name to the dict from
        :func:`semrsm.analysis.retrieval_metrics` (keys ``precision_at_k``, ``f1_at_1``,
        ``mean_average_precision``, ``k``).
    height : int

    Returns
    -------
    plotly.graph_objects.Figure with one bar trace per RSM, values in [0, 1].

    Raises
    ------
    ValueError
        If ``metrics`` is empty.
    """
    if not metrics:
        raise ValueError("give the metrics of at least one RSM")
    colors = ["#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd"]
    fig = go.Figure()
    for c, (name, m) in enumerate(metrics.items()):
        k = m.get("k", "k")
        cats = [_METRIC_NAMES[key].replace("@k", f"@{k}") for key in _METRIC_NAMES]
        vals = [float(m[key]) for key in _METRIC_NAMES]
        fig.add_trace(
            go.Bar(
                x=cats,
                y=vals,
                name=name,
                marker_color=colors[c % len(colors)],
                text=[f"{v:.3f}" for v in vals],
                textposition="outside",
                hovertemplate=name + "<br>%{x}: %{y:.4f}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        height=height,
        yaxis={"title": "score (higher is better)", "range": [0, 1.1]},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.12, "x": 0.5, "xanchor": "center"},
    )
    return scale_figure(fig, scale)
