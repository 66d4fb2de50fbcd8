"""Token-matching figures: which positions of two images the matching pairs up.

* :func:`matching_overlay` -- both images with the layer's token grid, lines between
  matched token centres coloured by each pair's contribution ``<a_s, b_perm[s]>``
  (strongest first), and optionally one token with its partner and top alternatives.
* :func:`contribution_maps_figure` -- per-position contributions on both images, for
  the identity alignment (spatio-semantic) and the matching (semantic), with totals.
* :func:`inner_product_figure` -- the ``S x S`` matrix of token inner products with
  the identity (its diagonal) and the optimal assignment marked.
* :func:`alternatives_figure` -- one token's inner products with its best candidates.

Images are drawn with ``go.Image`` traces from PNG data URIs at ``display`` pixels a
side, so token ``s`` of an ``(H, W)`` grid covers row ``s // W``, column ``s % W`` of an
even grid over the image. Pure functions: data in, figure out. Every figure takes
``scale`` (projector mode, :func:`semrsm.figures.projector.scale_figure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from semrsm.figures.neighbours import image_to_data_uri
from semrsm.figures.projector import scale_figure

__all__ = [
    "CONTRIBUTION_COLORSCALE",
    "CONTRIBUTION_DIVERGING",
    "FOCUS_COLOR",
    "contribution_range",
    "model_view",
    "matching_overlay",
    "contribution_maps_figure",
    "inner_product_figure",
    "alternatives_figure",
]

#: contributions of matched pairs (inner products); sequential when all are >= 0
CONTRIBUTION_COLORSCALE = "Plasma"
#: used instead when some contributions are negative (ViT tokens): centred on 0
CONTRIBUTION_DIVERGING = "RdBu_r"
FOCUS_COLOR = "#00e5ff"
#: drawn under every match line so that dark lines stay visible on dark images
OUTLINE_COLOR = "#ffffff"
IDENTITY_COLOR = "#2ecc40"
OPTIMAL_COLOR = "#00e5ff"
CHOSEN_COLOR = "#ff4fd8"
_GAP = 0.12  # gap between the two images, as a fraction of the display size
_BINS = 12  # colour bins for match lines (one trace per bin keeps the figure light)


def contribution_range(*values: np.ndarray) -> tuple[str, float, float]:
    """Colour scale and range shared by every contribution figure of one pair.

    Returns ``(colorscale, cmin, cmax)``: the sequential scale from 0 to the maximum when
    no value is negative, else the diverging scale symmetric around 0.
    """
    allv = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in values])
    allv = allv[np.isfinite(allv)]
    if allv.size == 0:
        return CONTRIBUTION_COLORSCALE, 0.0, 1.0
    lo, hi = float(allv.min()), float(allv.max())
    if lo >= 0:
        return CONTRIBUTION_COLORSCALE, 0.0, hi if hi > 0 else 1.0
    m = max(abs(lo), abs(hi))
    return CONTRIBUTION_DIVERGING, -m, m


def model_view(
    image: Image.Image, size: int = 224, crop_pct: float = 1.0, display: int | None = None
) -> Image.Image:
    """The part of ``image`` a timm model sees after its eval preprocessing.

    timm's eval transform resizes the shorter side to ``size / crop_pct`` and takes the
    centre ``size x size`` crop; the token grid covers that crop evenly.

    Parameters
    ----------
    image : PIL.Image.Image
    size : int, the model's input side (``data_config["input_size"][-1]``).
    crop_pct : float in (0, 1], ``data_config["crop_pct"]``.
    display : int or None, side of the returned image (default ``size``).

    Returns
    -------
    PIL.Image.Image, RGB, ``display x display``.
    """
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    img = image.convert("RGB")
    scale_to = int(round(size / crop_pct))
    w, h = img.size
    s = scale_to / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    left = (img.width - size) // 2
    top = (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    d = display or size
    return img if d == size else img.resize((d, d), Image.Resampling.BICUBIC)


def _square(image: Image.Image, display: int) -> Image.Image:
    img = image.convert("RGB")
    return img if img.size == (display, display) else img.resize((display, display))


def _check_grid(grid: Sequence[int], s: int | None = None) -> tuple[int, int]:
    if len(grid) != 2 or int(grid[0]) < 1 or int(grid[1]) < 1:
        raise ValueError(f"grid must be (H, W) with positive sides, got {grid}")
    h, w = int(grid[0]), int(grid[1])
    if s is not None and h * w != s:
        raise ValueError(f"grid {grid} has {h * w} cells but there are {s} tokens")
    return h, w


def _centres(grid: tuple[int, int], display: int, x_off: float = 0.0) -> np.ndarray:
    """(S, 2) pixel centres (x, y) of the grid cells, row-major."""
    h, w = grid
    s = np.arange(h * w)
    return np.stack([x_off + (s % w + 0.5) * display / w, (s // w + 0.5) * display / h], axis=1)


def _image_trace(image: Image.Image, x0: float, name: str, **kw) -> go.Image:
    return go.Image(
        source=image_to_data_uri(image), x0=x0, y0=0, dx=1, dy=1, name=name, hoverinfo="skip", **kw
    )


def _grid_trace(grid: tuple[int, int], display: int, x_off: float, name: str) -> go.Scatter:
    h, w = grid
    xs: list[float | None] = []
    ys: list[float | None] = []
    for r in range(1, h):
        y = r * display / h
        xs += [x_off, x_off + display, None]
        ys += [y, y, None]
    for c in range(1, w):
        x = x_off + c * display / w
        xs += [x, x, None]
        ys += [0, display, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": "rgba(255,255,255,0.55)", "width": 1},
        hoverinfo="skip",
        showlegend=False,
        name=name,
    )


def _cell_rect(s: int, grid: tuple[int, int], display: int, x_off: float, **line) -> dict:
    h, w = grid
    r, c = divmod(int(s), w)
    ch, cw = display / h, display / w
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y",
        "x0": x_off + c * cw,
        "x1": x_off + (c + 1) * cw,
        "y0": r * ch,
        "y1": (r + 1) * ch,
        "line": line,
    }


def _segments(
    pa: np.ndarray, pb: np.ndarray, rows: Iterable[int], color: str, width: float,
    opacity: float, name: str,
) -> go.Scatter:
    """One trace of the line segments ``pa[i] → pb[i]`` (rows of (K, 2) points), i in ``rows``.

    The segments are separated by ``None`` so plotly draws them as one light trace.
    """
    xs: list[float | None] = []
    ys: list[float | None] = []
    for i in rows:
        xs += [pa[i, 0], pb[i, 0], None]
        ys += [pa[i, 1], pb[i, 1], None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": color, "width": width},
        opacity=opacity,
        hoverinfo="skip",
        showlegend=False,
        name=name,
    )


def _assignment_trace(cols: np.ndarray, marker: dict, name: str) -> go.Scatter:
    """Markers at ``(cols[s], s)`` for every row ``s``: an assignment over the S x S matrix."""
    return go.Scatter(
        x=cols,
        y=np.arange(len(cols)),
        mode="markers",
        marker=marker,
        name=name,
        hoverinfo="skip",
    )


def _rc(s: int, w: int) -> str:
    r, c = divmod(int(s), w)
    return f"({r},{c})"


def matching_overlay(
    image_a: Image.Image,
    image_b: Image.Image,
    grid: Sequence[int],
    perm: np.ndarray,
    contributions: np.ndarray,
    *,
    top_n: int = 30,
    names: tuple[str, str] = ("image a", "image b"),
    display: int = 256,
    focus: int | None = None,
    alternatives: Sequence[int] = (),
    crange: tuple[str, float, float] | None = None,
    height: int | None = None,
    scale: float = 1.0,
    value_label: str = "contribution<br>⟨a_s, b_π(s)⟩",
) -> go.Figure:
    """Both images with the token grid and lines between matched token centres.

    Parameters
    ----------
    image_a, image_b : PIL images (shown resized to ``display x display``; pass
        :func:`model_view` images to show exactly what the model saw).
    grid : (H, W), the layer's token grid; ``H * W == S``.
    perm : ndarray (S,) int, ``b[perm[s]]`` matched to ``a[s]``.
    contributions : ndarray (S,), ``<a_s, b_perm[s]>``.
    top_n : int >= 0, how many of the strongest matches to draw (largest contribution first).
    names : titles of the two images.
    display : int, side of each image in pixels (data units).
    focus : int or None, a token of image a to highlight with its partner in image b.
    alternatives : positions of image b to outline as the focus token's next-best partners.
    crange : ``(colorscale, cmin, cmax)`` shared with other figures of the pair
        (default :func:`contribution_range` of ``contributions``).
    value_label : what ``contributions`` are, for the colour bar and the hover (plotly
        text; ``<br>`` breaks a line): the inner products by default, or e.g. each pair's
        share of the cosine similarity.
    height : figure height in pixels (default: fits ``display``); the width fits the
        two images and the colour bar.

    Returns
    -------
    plotly.graph_objects.Figure with traces named "image a", "image b", "grid a", "grid b",
    "match outline" (a light line under every match), "matches" (one per colour bin; the lines), "match centres" (hover and colour bar), and
    ``layout.meta = {"lines": drawn, "grid": [H, W]}``.

    Raises
    ------
    ValueError
        Grid that does not fit S, ``perm``/``contributions`` of the wrong length,
        ``top_n < 0``, or ``focus`` out of range.
    """
    perm = np.asarray(perm, dtype=np.int64).ravel()
    c = np.asarray(contributions, dtype=np.float64).ravel()
    h, w = _check_grid(grid, perm.size)
    if c.size != perm.size:
        raise ValueError(f"contributions has {c.size} entries, perm has {perm.size}")
    if top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    if focus is not None and not 0 <= focus < perm.size:
        raise ValueError(f"focus token {focus} is out of range for {perm.size} tokens")
    d = int(display)
    x_b = d * (1 + _GAP)
    cscale, cmin, cmax = crange or contribution_range(c)
    fig = go.Figure()
    fig.add_trace(_image_trace(_square(image_a, d), 0, "image a"))
    fig.add_trace(_image_trace(_square(image_b, d), x_b, "image b"))
    fig.add_trace(_grid_trace((h, w), d, 0, "grid a"))
    fig.add_trace(_grid_trace((h, w), d, x_b, "grid b"))

    order = np.argsort(-c, kind="stable")[: min(int(top_n), c.size)]
    pa = _centres((h, w), d)[order]
    pb = _centres((h, w), d, x_b)[perm[order]]
    vals = c[order]
    if order.size:
        span = cmax - cmin if cmax > cmin else 1.0
        bins = np.clip(((vals - cmin) / span * _BINS).astype(int), 0, _BINS - 1)
        # a light outline under every line keeps dark lines visible on dark images
        fig.add_trace(
            _segments(pa, pb, range(order.size), OUTLINE_COLOR, 4.6, 0.85, "match outline")
        )
        # weakest bins first so the strongest lines are drawn on top
        for k in range(_BINS):
            sel = np.nonzero(bins == k)[0]
            if not sel.size:
                continue
            color = sample_colorscale(cscale, [(k + 0.5) / _BINS])[0]
            fig.add_trace(_segments(pa, pb, sel, color, 2.2, 0.9, "matches"))
        hover = [
            f"a {_rc(s, w)} ↔ b {_rc(perm[s], w)}<br>{value_label.replace('<br>', ' ')}"
            f" = {c[s]:.4g}"
            for s in order
        ]
        fig.add_trace(
            go.Scatter(
                x=pa[:, 0],
                y=pa[:, 1],
                mode="markers",
                marker={
                    "size": 7,
                    "color": vals,
                    "colorscale": cscale,
                    "cmin": cmin,
                    "cmax": cmax,
                    "line": {"color": "black", "width": 0.5},
                    "colorbar": {
                        "title": {"text": value_label},
                        "thickness": 14,
                    },
                    "showscale": True,
                },
                hovertext=hover,
                hoverinfo="text",
                customdata=order,
                showlegend=False,
                name="match centres",
            )
        )

    shapes = []
    if focus is not None:
        shapes.append(_cell_rect(focus, (h, w), d, 0, color=FOCUS_COLOR, width=3))
        shapes.append(_cell_rect(perm[focus], (h, w), d, x_b, color=FOCUS_COLOR, width=3))
        fa = _centres((h, w), d)[focus]
        fb = _centres((h, w), d, x_b)[perm[focus]]
        fig.add_trace(
            go.Scatter(
                x=[fa[0], fb[0]],
                y=[fa[1], fb[1]],
                mode="lines",
                line={"color": FOCUS_COLOR, "width": 3, "dash": "dot"},
                hoverinfo="skip",
                showlegend=False,
                name="focus",
            )
        )
        annotations = []
        for rank, t in enumerate([t for t in alternatives if int(t) != int(perm[focus])], start=1):
            rect = _cell_rect(int(t), (h, w), d, x_b, color="#ffd400", width=2, dash="dash")
            shapes.append(rect)
            annotations.append(
                {
                    "x": rect["x0"],
                    "y": rect["y0"],
                    "text": str(rank),
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "top",
                    "font": {"color": "#ffd400", "size": 12},
                }
            )
        fig.update_layout(annotations=annotations)
    fig.update_layout(
        shapes=shapes,
        height=height or d + 60,
        width=int(x_b + d + 170),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False, "range": [-2, x_b + d + 2], "constrain": "domain"},
        yaxis={"visible": False, "range": [d + 2, -2], "scaleanchor": "x", "constrain": "domain"},
        plot_bgcolor="white",
        hovermode="closest",
        title={
            "text": f"{names[0]}  ↔  {names[1]}: {order.size} strongest of {perm.size} matches "
            f"(grid {h}×{w})",
            "font": {"size": 13},
        },
        meta={"lines": int(order.size), "grid": [h, w]},
    )
    return scale_figure(fig, scale)


def contribution_maps_figure(
    image_a: Image.Image,
    image_b: Image.Image,
    identity_maps: tuple[np.ndarray, np.ndarray],
    matched_maps: tuple[np.ndarray, np.ndarray],
    *,
    matched_label: str = "optimal matching (semantic)",
    display: int = 192,
    opacity: float = 0.6,
    crange: tuple[str, float, float] | None = None,
    scale: float = 1.0,
) -> go.Figure:
    """Per-position contributions on both images, identity alignment vs matching.

    Parameters
    ----------
    image_a, image_b : PIL images.
    identity_maps : ``(map_a, map_b)``, each (H, W), for the identity alignment
        (:func:`semrsm.analysis.contribution_maps` with ``perm=None``).
    matched_maps : ``(map_a, map_b)`` for the matching.
    matched_label : row title of the matching.
    display : side of each image in pixels (sets the figure's size); ``opacity`` of the
        heat overlay.
    crange : shared ``(colorscale, cmin, cmax)``; default from all four maps.

    Returns
    -------
    plotly.graph_objects.Figure, 2 x 2 panels (rows: identity, matching; columns: image
    a, image b) sharing one colour axis; panel titles give each map's total
    (``Σ`` = the linear similarity under that alignment).
    """
    maps = [np.asarray(m, dtype=np.float64) for m in (*identity_maps, *matched_maps)]
    shape = maps[0].shape
    if any(m.shape != shape or m.ndim != 2 for m in maps):
        raise ValueError(f"all four maps must share one (H, W) grid, got {[m.shape for m in maps]}")
    h, w = shape
    d = int(display)
    cscale, cmin, cmax = crange or contribution_range(*maps)
    titles = [
        f"a · identity (spatio-semantic), Σ = {maps[0].sum():.4g}",
        f"b · identity, Σ = {maps[1].sum():.4g}",
        f"a · {matched_label}, Σ = {maps[2].sum():.4g}",
        f"b · matched partners, Σ = {maps[3].sum():.4g}",
    ]
    fig = make_subplots(
        rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.1
    )
    imgs = [_square(image_a, d), _square(image_b, d)]
    for k, m in enumerate(maps):
        row, col = k // 2 + 1, k % 2 + 1
        fig.add_trace(_image_trace(imgs[col - 1], 0, f"image {'ab'[col - 1]}"), row=row, col=col)
        fig.add_trace(
            go.Heatmap(
                z=m,
                x0=d / w / 2,
                dx=d / w,
                y0=d / h / 2,
                dy=d / h,
                coloraxis="coloraxis",
                opacity=opacity,
                name="contribution",
                hovertemplate="row %{y:.0f}px, col %{x:.0f}px<br>contribution %{z:.4g}<extra></extra>",
            ),
            row=row,
            col=col,
        )
    fig.update_xaxes(visible=False, range=[0, d], constrain="domain")
    fig.update_yaxes(visible=False, range=[d, 0], constrain="domain")
    for k in range(1, 5):
        fig.update_yaxes(
            scaleanchor=f"x{'' if k == 1 else k}", row=(k - 1) // 2 + 1, col=(k - 1) % 2 + 1
        )
    fig.update_layout(
        height=int(2 * d / 0.9 + 60),
        width=int(2 * d / 0.92 + 150),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        coloraxis={
            "colorscale": cscale,
            "cmin": cmin,
            "cmax": cmax,
            "colorbar": {"title": {"text": "contribution"}, "thickness": 14},
        },
        plot_bgcolor="white",
    )
    fig.update_annotations(font_size=12)
    return scale_figure(fig, scale)


def inner_product_figure(
    inner: np.ndarray,
    exact_perm: np.ndarray,
    perm: np.ndarray | None = None,
    *,
    matcher: str = "exact",
    grid_w: int | None = None,
    crange: tuple[str, float, float] | None = None,
    height: int = 520,
    scale: float = 1.0,
) -> go.Figure:
    """The ``S x S`` matrix of token inner products with both alignments marked.

    The spatio-semantic linear similarity is the sum along the diagonal (identity
    alignment); the semantic one is the largest sum that takes exactly one entry from
    every row and every column: the optimal assignment.

    Parameters
    ----------
    inner : ndarray (S, S), ``inner[s, t] = <a_s, b_t>``.
    exact_perm : ndarray (S,), the optimal assignment (column ``exact_perm[s]`` in row ``s``).
    perm : ndarray (S,) or None, another matcher's assignment to mark as well.
    matcher : the name of ``perm``'s matcher (legend).
    grid_w : the grid width, for ``(row, col)`` hover labels.
    crange : shared ``(colorscale, cmin, cmax)``.

    Returns
    -------
    plotly.graph_objects.Figure with a heatmap "inner products" and marker traces
    "identity (diagonal)", "optimal assignment" and, if given, the matcher's assignment.
    """
    m = np.asarray(inner, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"inner must be an (S, S) matrix, got {m.shape}")
    s = m.shape[0]
    exact_perm = np.asarray(exact_perm, dtype=np.int64).ravel()
    if exact_perm.size != s:
        raise ValueError(f"exact_perm has {exact_perm.size} entries for S = {s}")
    cscale, cmin, cmax = crange or contribution_range(m)
    idx = np.arange(s)
    size = max(3, min(10, int(400 / s)))
    lab = [_rc(t, grid_w) if grid_w else str(t) for t in idx]
    # go.Heatmap keywords in the order the CKA heatmaps of figures/analyses.py use; only
    # the shape is shared (other data, scale and hover), so nothing to factor out
    fig = go.Figure(
        go.Heatmap(
            z=m,
            colorscale=cscale,
            zmin=cmin,
            zmax=cmax,
            name="inner products",
            customdata=np.array(lab, dtype=object)[None, :].repeat(s, 0),
            text=np.array(lab, dtype=object)[:, None].repeat(s, 1),
            hovertemplate="a %{text} · b %{customdata}<br>⟨a_s, b_t⟩ = %{z:.4g}<extra></extra>",
            colorbar={"title": {"text": "⟨a_s, b_t⟩"}, "thickness": 14},
        )
    )
    fig.add_trace(_assignment_trace(
        idx, {"symbol": "square-open", "size": size, "color": IDENTITY_COLOR,
              "line": {"width": 1.5}},
        f"identity (diagonal): Σ = {np.trace(m):.4g}",
    ))
    fig.add_trace(_assignment_trace(
        exact_perm, {"symbol": "circle-open", "size": size + 2, "color": OPTIMAL_COLOR,
                     "line": {"width": 2}},
        f"optimal assignment: Σ = {m[idx, exact_perm].sum():.4g}",
    ))
    if perm is not None:
        p = np.asarray(perm, dtype=np.int64).ravel()
        if p.size != s:
            raise ValueError(f"perm has {p.size} entries for S = {s}")
        fig.add_trace(_assignment_trace(
            p, {"symbol": "x-thin-open", "size": size + 2, "color": CHOSEN_COLOR,
                "line": {"width": 2, "color": CHOSEN_COLOR}},
            f"{matcher}: Σ = {m[idx, p].sum():.4g}",
        ))
    fig.update_layout(
        height=height,
        width=height + 160,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={
            "title": {"text": "token t of image b (row-major position)"},
            "range": [-0.5, s - 0.5],
            "constrain": "domain",
            "showgrid": False,
        },
        yaxis={
            "title": {"text": "token s of image a"},
            "range": [s - 0.5, -0.5],
            "scaleanchor": "x",
            "constrain": "domain",
            "showgrid": False,
        },
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.01,
            "x": 0,
            "bgcolor": "rgba(0,0,0,0)",
        },
        plot_bgcolor="white",
    )
    return scale_figure(fig, scale)


def alternatives_figure(
    positions: np.ndarray,
    values: np.ndarray,
    partner: int,
    *,
    grid_w: int | None = None,
    height: int = 260,
    partner_value: float | None = None,
    scale: float = 1.0,
) -> go.Figure:
    """Bar chart of one token's inner products with its best candidate partners.

    Parameters
    ----------
    positions : ndarray (k,), candidate positions of image b, best first
        (:func:`semrsm.analysis.token_alternatives`).
    values : ndarray (k,), their inner products with the token.
    partner : the position the matching chose (highlighted; it need not be the
        single best candidate, since each position of b can be used once).
    grid_w : grid width for ``(row, col)`` labels.
    partner_value : the token's inner product with ``partner``; when the partner is not
        among ``positions`` (the matching gave it a weaker candidate), it is added as a
        last bar so the matched partner is always shown.
    """
    pos = np.asarray(positions, dtype=np.int64).ravel()
    vals = np.asarray(values, dtype=np.float64).ravel()
    if pos.size != vals.size:
        raise ValueError("positions and values must have the same length")
    if partner_value is not None and int(partner) not in set(pos.tolist()):
        pos = np.append(pos, int(partner))
        vals = np.append(vals, float(partner_value))
    labels = [f"b {_rc(t, grid_w)}" if grid_w else f"b {t}" for t in pos]
    colors = [FOCUS_COLOR if int(t) == int(partner) else "#ffd400" for t in pos]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=vals,
            marker={"color": colors, "line": {"color": "#333", "width": 1}},
            hovertemplate="%{x}<br>⟨a_s, b_t⟩ = %{y:.4g}<extra></extra>",
            name="candidates",
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": {"text": "candidate partner in image b (best first)"}},
        yaxis={"title": {"text": "inner product ⟨a_s, b_t⟩"}},
        title={
            "text": "cyan: the matched partner; yellow: other candidates",
            "font": {"size": 12},
        },
        showlegend=False,
    )
    return scale_figure(fig, scale)
