"""2-D maps of the images, one panel per RSM (see :mod:`semrsm.embedding`).

Points are coloured by label (one legend entry per label, shared by the panels).
Plotly's hover box cannot show pictures, so the thumbnails are drawn on the map itself
(``layout.images``, their lower-left corner at the point) for sets of up to
:data:`MAX_THUMBNAILS` images; the hover names the image, and every point carries its
image index in ``customdata`` so that a click can open the image in the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from semrsm.figures.neighbours import image_to_data_uri

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
    thumb_frac: float = 0.07,
    height: int = 520,
) -> go.Figure:
    """Maps of the same images side by side, one panel per entry of ``maps``.

    Parameters
    ----------
    maps : mapping title -> ndarray (N, 2), e.g. ``{"spatio-semantic": ..., "semantic": ...}``.
    names : sequence of N image names; ``labels`` : sequence of N labels or None.
    thumbnails : N PIL images drawn on the map (left off above :data:`MAX_THUMBNAILS`).
    methods : mapping title -> "umap" or "mds" for the axis titles (default "UMAP").
    selected : int or None, an image to ring in every panel.
    thumb_frac : thumbnail side as a fraction of each panel's data range.
    height : figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure with one scatter trace per label and panel (``customdata``
    = image index) and ``layout.meta = {"thumbnails": drawn}``.

    Raises
    ------
    ValueError
        No maps, coordinates that are not (N, 2), or names/labels/thumbnails of the wrong length.
    """
    if not maps:
        raise ValueError("give at least one map")
    coords = {k: np.asarray(v, dtype=np.float64) for k, v in maps.items()}
    n = len(names)
    for key, c in coords.items():
        if c.shape != (n, 2):
            raise ValueError(f"map {key!r} has shape {c.shape}; expected ({n}, 2) for {n} names")
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images")
    if thumbnails is not None and len(thumbnails) != n:
        raise ValueError(f"got {len(thumbnails)} thumbnails for {n} images")
    if selected is not None and not 0 <= selected < n:
        raise ValueError(f"selected image {selected} is out of range for {n} images")
    titles = list(coords)
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    colors = label_colors(labels)
    lab = [str(x) for x in labels] if labels is not None else ["images"] * n
    draw_thumbs = thumbnails is not None and n <= MAX_THUMBNAILS
    uris = [image_to_data_uri(im, 64) for im in thumbnails] if draw_thumbs else []
    images = []
    for col, title in enumerate(titles, start=1):
        c = coords[title]
        suffix = "" if col == 1 else str(col)
        for label, color in colors.items():
            idx = [k for k in range(n) if lab[k] == label]
            if not idx:
                continue
            fig.add_trace(
                go.Scatter(
                    x=c[idx, 0],
                    y=c[idx, 1],
                    mode="markers",
                    marker={"size": 10, "color": color, "line": {"color": "white", "width": 1}},
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    customdata=idx,
                    hovertext=[f"#{k} {names[k]}<br>label: {lab[k]}" for k in idx],
                    hoverinfo="text",
                ),
                row=1,
                col=col,
            )
        span = float(max(np.ptp(c[:, 0]), np.ptp(c[:, 1]), 1e-9))
        size = thumb_frac * span
        for k, uri in enumerate(uris):
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
                    "opacity": 0.95,
                }
            )
        if selected is not None:
            fig.add_trace(
                go.Scatter(
                    x=[c[selected, 0]],
                    y=[c[selected, 1]],
                    mode="markers",
                    marker={
                        "size": 20,
                        "symbol": "circle-open",
                        "color": "black",
                        "line": {"width": 3},
                    },
                    name="selected",
                    showlegend=col == 1,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
        method = (methods or {}).get(title, "umap").upper()
        pad = 0.05 * span
        fig.update_xaxes(
            title_text=f"{method} 1",
            range=[c[:, 0].min() - pad, c[:, 0].max() + size + pad],
            zeroline=False,
            showticklabels=False,
            row=1,
            col=col,
        )
        fig.update_yaxes(
            title_text=f"{method} 2",
            range=[c[:, 1].min() - pad, c[:, 1].max() + size + pad],
            zeroline=False,
            showticklabels=False,
            row=1,
            col=col,
        )
    fig.update_layout(
        images=images,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"title": {"text": "label"}, "itemsizing": "constant"},
        plot_bgcolor="#f7f7f7",
        clickmode="event+select",
        hovermode="closest",
        meta={"thumbnails": len(uris) * len(titles)},
    )
    return fig
