"""2-D maps of the images, one panel per RSM (see :mod:`semrsm.embedding`).

Points are coloured by label (one legend entry per label, shared by the panels).
Plotly's hover box cannot show pictures, so the thumbnails are drawn on the map itself
(``layout.images``, their lower-left corner at the point, *below* the dots) for 2-D sets of
up to :data:`MAX_THUMBNAILS` images; the hover names the image, and every point carries its
image index in ``customdata`` so that a click or a lasso can be read back by the page.
Like TensorBoard's projector: search hits are drawn large and the rest faded, classes can
be hidden, the selected image is joined to its nearest neighbours, maps may be 3-D.
``scale`` enlarges the figure for a projector (:func:`semrsm.figures.projector.scale_figure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from semrsm.embedding import METHOD_TITLES
from semrsm.figures.neighbours import image_to_data_uri
from semrsm.figures.projector import scale_figure

__all__ = ["LABEL_COLORS", "MAX_THUMBNAILS", "label_colors", "embedding_figure"]

#: qualitative palette for labels (cycled)
LABEL_COLORS = qualitative.D3 + qualitative.Set2
#: above this many images the thumbnails are left off the map (too crowded, too heavy)
MAX_THUMBNAILS = 150


def label_colors(labels: Sequence | None) -> dict[str, str]:
    """Colour per label, in sorted label order (stable across figures of the same set)."""
    if labels is None:
        return {"images": LABEL_COLORS[0]}
    uniq = sorted({str(x) for x in labels})
    return {lab: LABEL_COLORS[k % len(LABEL_COLORS)] for k, lab in enumerate(uniq)}


def embedding_figure(
    maps: Mapping[str, np.ndarray],
    names: Sequence[str],
    labels: Sequence | None = None,
    *,
    thumbnails: Sequence[Image.Image] | None = None,
    methods: Mapping[str, str] | None = None,
    selected: int | None = None,
    highlight: Sequence[int] | None = None,
    hidden: Iterable[str] = (),
    neighbours: Mapping[str, Sequence[int]] | None = None,
    dragmode: str | None = None,
    thumb_frac: float = 0.07,
    height: int = 520,
    scale: float = 1.0,
) -> go.Figure:
    """Maps of the same images side by side, one panel per entry of ``maps``.

    Dots are drawn *above* the thumbnails (``layout.images`` with ``layer="below"`` on a
    transparent plot area, grid lines off), so no label colour hides under a picture.

    Parameters
    ----------
    maps : mapping title -> ndarray (N, 2) or (N, 3) (all panels the same dimension),
        e.g. ``{"spatio-semantic": ..., "semantic": ...}``.
    names : sequence of N image names; ``labels`` : sequence of N labels or None.
    thumbnails : N PIL images drawn on 2-D maps (left off above :data:`MAX_THUMBNAILS`).
    methods : mapping title -> "umap", "tsne", "pca" or "mds" for the axis titles (default UMAP).
    selected : int or None, an image to ring in every panel.
    highlight : image indices found by a search: drawn large with a black outline, the
        others faded; None or empty: no search.
    hidden : labels whose images are left out (per-class toggles).
    neighbours : mapping title -> indices of the selected image's nearest neighbours under
        that panel's RSM; a line joins the selected image to each.
    dragmode : plotly drag mode ("lasso", "select", "zoom", "pan"), default plotly's.
    thumb_frac : thumbnail side as a fraction of each panel's data range.
    height : figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure with one scatter trace per label and panel (``customdata``
    = image index), and ``layout.meta = {"thumbnails": drawn, "dims": 2 or 3,
    "highlight": n found}``.

    Raises
    ------
    ValueError
        No maps, coordinates that are not (N, 2)/(N, 3), or names/labels/thumbnails of the
        wrong length, or indices out of range.
    """
    if not maps:
        raise ValueError("give at least one map")
    coords = {k: np.asarray(v, dtype=np.float64) for k, v in maps.items()}
    n = len(names)
    dims = {c.shape[1] if c.ndim == 2 else 0 for c in coords.values()}
    for key, c in coords.items():
        if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (2, 3):
            raise ValueError(f"map {key!r} has shape {c.shape}; expected ({n}, 2) for {n} names")
    if len(dims) != 1:
        raise ValueError("all maps must have the same number of dimensions")
    dim = dims.pop()
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images")
    if thumbnails is not None and len(thumbnails) != n:
        raise ValueError(f"got {len(thumbnails)} thumbnails for {n} images")
    if selected is not None and not 0 <= selected < n:
        raise ValueError(f"selected image {selected} is out of range for {n} images")
    found = sorted({int(k) for k in (highlight or [])})
    if any(not 0 <= k < n for k in found):
        raise ValueError(f"highlighted images out of range for {n} images")
    titles = list(coords)
    specs = [[{"type": "scene" if dim == 3 else "xy"} for _ in titles]]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, specs=specs,
                        horizontal_spacing=0.06)
    colors = label_colors(labels)
    lab = [str(x) for x in labels] if labels is not None else ["images"] * n
    hidden = {str(h) for h in hidden}
    shown = [k for k in range(n) if lab[k] not in hidden]
    found_set = set(found)
    draw_thumbs = thumbnails is not None and n <= MAX_THUMBNAILS and dim == 2
    uris = {k: image_to_data_uri(thumbnails[k], 64) for k in shown} if draw_thumbs else {}
    images = []
    for col, title in enumerate(titles, start=1):
        c = coords[title]
        suffix = "" if col == 1 else str(col)
        span = float(max(np.ptp(c[:, 0]), np.ptp(c[:, 1]), 1e-9))
        size = thumb_frac * span
        # neighbour lines first, so the dots sit on top of them
        nb = (neighbours or {}).get(title) if selected is not None else None
        if nb:
            xs, ys, zs = [], [], []
            for t in nb:
                xs += [c[selected, 0], c[t, 0], None]
                ys += [c[selected, 1], c[t, 1], None]
                if dim == 3:
                    zs += [c[selected, 2], c[t, 2], None]
            line = {"color": "rgba(20,20,20,0.75)", "width": 2}
            trace = (go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=line)
                     if dim == 3 else go.Scatter(x=xs, y=ys, mode="lines", line=line))
            trace.update(name="nearest neighbours", showlegend=col == 1, hoverinfo="skip",
                         legendgroup="nearest neighbours")
            fig.add_trace(trace, row=1, col=col)
        for label, color in colors.items():
            idx = [k for k in shown if lab[k] == label]
            if not idx:
                continue
            hit = [k in found_set for k in idx]
            faded = bool(found) and not any(hit)
            marker = {
                "size": [16 if h else 10 for h in hit] if found else 10,
                "color": color,
                "opacity": 0.25 if faded else 1.0,
                "line": {"color": ["black" if h else "white" for h in hit] if found else "white",
                         "width": [3 if h else 1 for h in hit] if found else 1},
            }
            if found and not faded:
                marker["opacity"] = [1.0 if h else 0.3 for h in hit]
            common = {
                "mode": "markers",
                "name": label,
                "legendgroup": label,
                "showlegend": col == 1,
                "customdata": idx,
                "hovertext": [f"#{k} {names[k]}<br>label: {lab[k]}" for k in idx],
                "hoverinfo": "text",
            }
            if dim == 3:
                m3 = dict(marker)
                m3["size"] = [s_ * 0.6 for s_ in m3["size"]] if found else 6
                if isinstance(m3["opacity"], list):  # Scatter3d takes one opacity per trace
                    m3["opacity"] = 1.0
                m3["line"] = {"color": "white", "width": 1}  # and one line width
                fig.add_trace(go.Scatter3d(x=c[idx, 0], y=c[idx, 1], z=c[idx, 2], marker=m3,
                                           **common), row=1, col=col)
            else:
                fig.add_trace(go.Scatter(x=c[idx, 0], y=c[idx, 1], marker=marker, **common),
                              row=1, col=col)
        for k, uri in uris.items():
            images.append(
                {
                    "source": uri,
                    "xref": f"x{suffix}",
                    "yref": f"y{suffix}",
                    "x": float(c[k, 0]),
                    "y": float(c[k, 1]),
                    "sizex": size,
                    "sizey": size,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "layer": "below",
                    "opacity": 0.35 if found and k not in found_set else 0.95,
                }
            )
        if selected is not None:
            ring = {"size": 20, "symbol": "circle-open", "color": "black", "line": {"width": 3}}
            if dim == 3:
                fig.add_trace(go.Scatter3d(x=[c[selected, 0]], y=[c[selected, 1]],
                                           z=[c[selected, 2]], mode="markers",
                                           marker={"size": 10, "color": "black",
                                                   "symbol": "circle-open"},
                                           name="selected", showlegend=col == 1,
                                           hoverinfo="skip"), row=1, col=col)
            else:
                fig.add_trace(go.Scatter(x=[c[selected, 0]], y=[c[selected, 1]], mode="markers",
                                         marker=ring, name="selected", showlegend=col == 1,
                                         hoverinfo="skip"), row=1, col=col)
        method = METHOD_TITLES.get((methods or {}).get(title, "umap"), "UMAP")
        if dim == 3:
            scene = "scene" if col == 1 else f"scene{col}"
            axis = {"showticklabels": False}
            fig.update_layout({scene: {"xaxis": {**axis, "title": f"{method} 1"},
                                       "yaxis": {**axis, "title": f"{method} 2"},
                                       "zaxis": {**axis, "title": f"{method} 3"}}})
            continue
        pad = 0.05 * span
        for k, update in enumerate((fig.update_xaxes, fig.update_yaxes)):
            update(
                title_text=f"{method} {k + 1}",
                range=[c[:, k].min() - pad, c[:, k].max() + size + pad],
                zeroline=False,
                showgrid=False,
                showticklabels=False,
                row=1,
                col=col,
            )
    fig.update_layout(
        images=images,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"title": {"text": "label"}, "itemsizing": "constant"},
        # transparent plot area: thumbnails drawn "below" stay visible under the dots
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="#f7f7f7",
        clickmode="event+select",
        hovermode="closest",
        meta={"thumbnails": len(images), "dims": dim, "highlight": len(found)},
    )
    if dragmode:
        fig.update_layout(dragmode=dragmode)
    return scale_figure(fig, scale)
