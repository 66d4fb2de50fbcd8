"""Heatmaps in any image order, with a selection layer for clicks and box selections.

Used by the heatmap navigation of the RSM page and by the Compare page. Every panel
shows its matrix with rows and columns in one given ``order``; a transparent marker on
every cell carries the original image indices ``(i, j)`` in ``customdata`` so that a click
(one pair) or a box selection (a block of rows and columns) can be read back from
Streamlit's ``st.plotly_chart(on_select=...)`` event. Plotly's hover box holds text only,
so the hover names the two images and gives the value; pictures appear on click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from semrsm.figures.drawing import (
    INVISIBLE_MARKER,
    colorbar_room,
    fix_margins,
    tick_label_room,
)
from semrsm.figures.rsm import (
    MAX_SELECTABLE,
    MAX_TICK_NAMES,
    TICK_SIZE,
    X_TICK_ANGLE,
    axis_ticks,
    panels_side_by_side,
)

__all__ = ["MAX_SELECTABLE", "heatmap_panels", "selected_cells"]
#: ticks as on the RSM page's other heatmaps (semrsm/figures/rsm.py): with labels one
#: class name per contiguous block of a class, else the image names up to
#: ``MAX_TICK_NAMES`` images; ``TICK_SIZE`` px, x labels at ``TICK_ANGLE`` degrees
TICK_ANGLE = X_TICK_ANGLE


def _blocks(labels_o: list[str]) -> list[tuple[str, int, int]]:
    out, start = [], 0
    for p in range(1, len(labels_o) + 1):
        if p == len(labels_o) or labels_o[p] != labels_o[start]:
            out.append((labels_o[start], start, p))
            start = p
    return out


def heatmap_panels(
    mats: Mapping[str, np.ndarray],
    names: Sequence[str],
    labels: Sequence | None = None,
    *,
    order: Sequence[int] | None = None,
    cols: int = 2,
    kernel: str = "cosine",
    selected: tuple[int, int] | None = None,
    selectable: bool = True,
    shared_scale: bool = True,
    height: int = 480,
) -> go.Figure:
    """One heatmap per matrix, all in the same image order.

    Parameters
    ----------
    mats : mapping panel title -> ndarray (N, N) float, the same images.
    names : N image names (hover; the axes name them without labels, up to 40 images).
    labels : N labels or None. With labels the axes name the class of each contiguous
        block of the order (one tick at its centre) and the blocks are outlined.
    order : permutation of ``range(N)``; ``order[p]`` is shown at position ``p``
        (default: as loaded).
    cols : panels per row.
    kernel : for the colour bar title.
    selected : ``(i, j)`` original indices of a pair to mark with a square, or None.
    selectable : add the selection layer (left out above :data:`MAX_SELECTABLE` images).
    shared_scale : one colour scale for all panels (else one per panel).
    height : pixels per row of panels.

    Returns
    -------
    plotly.graph_objects.Figure; ``layout.meta = {"order": [...], "selectable": bool}``.

    Raises
    ------
    ValueError
        No matrices, matrices of different or non-square shapes, names/labels/order of the
        wrong length, a selected pair out of range.
    """
    if not mats:
        raise ValueError("give at least one matrix")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in mats.items()}
    shapes = {a.shape for a in arrays.values()}
    n = len(names)
    if len(shapes) != 1 or next(iter(shapes)) != (n, n):
        raise ValueError(f"every matrix must be ({n}, {n}) for {n} names; got {sorted(shapes)}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images")
    order = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError("order must be a permutation of range(N)")
    if selected is not None and not (0 <= selected[0] < n and 0 <= selected[1] < n):
        raise ValueError(f"selected pair {selected} is out of range for {n} images")
    titles = list(arrays)
    rows = (len(titles) + cols - 1) // cols
    lab = [str(x) for x in labels] if labels is not None else None
    # pixels per image, roughly: a square panel in about three quarters of its row's height
    ticks = axis_ticks([names[t] for t in order],
                       [lab[t] for t in order] if lab is not None else None, MAX_TICK_NAMES,
                       cell_px=0.75 * height / max(n, 1))
    shown = [] if ticks.get("showticklabels") is False else list(ticks["ticktext"])
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.08,
        # room for the rotated tick labels above the next row's titles
        vertical_spacing=0.16 if shown else 0.08,
    )
    hover = [f"#{k} {nm}" + (f" ({lab[k]})" if lab else "") for k, nm in enumerate(names)]
    hover_o = np.array([hover[k] for k in order], dtype=object)
    custom = np.empty((n, n, 2), dtype=object)
    custom[:, :, 0] = hover_o[:, None]
    custom[:, :, 1] = hover_o[None, :]
    lo = min(float(a.min()) for a in arrays.values())
    hi = max(float(a.max()) for a in arrays.values())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    with_select = selectable and n <= MAX_SELECTABLE
    px, py = np.meshgrid(np.arange(n), np.arange(n))
    pos = {int(k): p for p, k in enumerate(order)}
    shapes_: list[dict] = []
    for k, title in enumerate(titles):
        r, c = k // cols + 1, k % cols + 1
        z = arrays[title][np.ix_(order, order)]
        axis = "" if k == 0 else str(k + 1)
        heat = {"z": z, "x": list(range(n)), "y": list(range(n)), "name": title}
        if with_select:
            # the hover comes from the selection layer: no hover data on the heatmap (it
            # would double the figure the browser parses before drawing)
            heat["hoverinfo"] = "skip"
        else:
            heat["customdata"] = custom
            heat["hovertemplate"] = (
                "row: %{customdata[0]}<br>column: %{customdata[1]}<br>"
                + title
                + ": %{z:.4f}<extra></extra>"
            )
        if shared_scale:
            heat["coloraxis"] = "coloraxis"
        else:
            heat.update(colorscale="Viridis", showscale=False)
        fig.add_trace(go.Heatmap(**heat), row=r, col=c)
        if with_select:
            i, j = order[py.ravel()], order[px.ravel()]
            vals = arrays[title][i, j]
            fig.add_trace(
                go.Scatter(
                    x=px.ravel(),
                    y=py.ravel(),
                    mode="markers",
                    marker={"size": max(4, min(18, 600 // max(n, 1))), "symbol": "square",
                            **INVISIBLE_MARKER},
                    customdata=np.stack([i, j], axis=1),
                    hovertext=[
                        f"row: {hover[a]}<br>column: {hover[b]}<br>{title}: {v:.4f}"
                        for a, b, v in zip(i, j, vals, strict=True)
                    ],
                    hoverinfo="text",
                    showlegend=False,
                    name=f"select-{title}",
                ),
                row=r,
                col=c,
            )
        if selected is not None:
            shapes_.append(
                {
                    "type": "rect",
                    "xref": f"x{axis}",
                    "yref": f"y{axis}",
                    "x0": pos[selected[1]] - 0.5,
                    "x1": pos[selected[1]] + 0.5,
                    "y0": pos[selected[0]] - 0.5,
                    "y1": pos[selected[0]] + 0.5,
                    "line": {"color": "red", "width": 2},
                }
            )
        if lab is not None:
            lab_o = [lab[t] for t in order]
            for _, start, stop in _blocks(lab_o):
                if stop - start > 1:
                    shapes_.append(
                        {
                            "type": "rect",
                            "xref": f"x{axis}",
                            "yref": f"y{axis}",
                            "x0": start - 0.5,
                            "x1": stop - 0.5,
                            "y0": start - 0.5,
                            "y1": stop - 0.5,
                            "line": {"color": "white", "width": 1},
                        }
                    )
        fig.update_xaxes(range=[-0.5, n - 0.5], showgrid=False, zeroline=False,
                         scaleanchor=f"y{axis}", constrain="domain", tickangle=TICK_ANGLE,
                         tickfont={"size": TICK_SIZE}, row=r, col=c, **ticks)
        fig.update_yaxes(range=[n - 0.5, -0.5], autorange=False, showgrid=False, zeroline=False,
                         constrain="domain", tickfont={"size": TICK_SIZE}, row=r, col=c,
                         **ticks)
    top = panels_side_by_side(fig, titles, cols, top=40)
    # fixed margins, estimated from the tick labels (plotly would draw the figure twice to
    # grow them; semrsm/figures/drawing.py)
    fix_margins(
        fig,
        left=10 + tick_label_room(shown, TICK_SIZE)[0],
        right=colorbar_room([kernel, "similarity"]) if shared_scale else 10,
        top=top,
        bottom=10 + tick_label_room(shown, TICK_SIZE, TICK_ANGLE)[1],
    )
    fig.update_layout(
        height=height * rows,
        coloraxis={"colorscale": "Viridis", "cmin": lo, "cmax": hi,
                   "colorbar": {"title": {"text": f"{kernel}<br>similarity", "side": "top"},
                                "thickness": 14}},
        shapes=shapes_,
        clickmode="event+select",
        hovermode="closest",
        plot_bgcolor="white",
        meta={"order": order.tolist(), "selectable": with_select},
    )
    return fig


def selected_cells(points: Sequence[Mapping]) -> list[tuple[int, int]]:
    """``(i, j)`` original image indices of the selection layer's points in a plotly
    selection event (``event.selection.points``); other points are ignored. Streamlit may
    deliver a point's ``customdata`` as a list or as a dict ``{"0": i, "1": j}``."""
    out = []
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, Mapping) and set(cd) == {"0", "1"}:
            cd = [cd["0"], cd["1"]]
        if isinstance(cd, (list, tuple)) and len(cd) == 2:
            try:
                out.append((int(cd[0]), int(cd[1])))
            except (TypeError, ValueError):
                continue
    return out
