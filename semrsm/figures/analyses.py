"""Figures of the paper's analyses (see :mod:`semrsm.analysis`).

* translation: similarity of same-source crops against their overlap, and the
  per-layer summary;
* layers: linear CKA between the semantic and the spatio-semantic RSM per layer, and
  the layer x layer heatmap;
* output agreement: similarity against the Jensen-Shannon divergence of the
  predictions, with the correlations;
* matchers: ratio to the optimal value and time per matcher.

Colours: spatio-semantic :data:`SPATIAL_COLOR`, semantic :data:`SEMANTIC_COLOR`
everywhere; CKA heatmaps on the similarity scale of the RSM page, fixed to [0, 1]. Every
figure takes ``scale`` (projector mode, :func:`semrsm.figures.projector.scale_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from semrsm.figures.projector import scale_figure
from semrsm.figures.rsm import SEMANTIC_TITLE, SIMILARITY_COLORSCALE, SPATIAL_TITLE
from semrsm.matching.registry import DEFAULT_COLOR, REGISTRY

__all__ = [
    "SPATIAL_COLOR",
    "SEMANTIC_COLOR",
    "translation_figure",
    "translation_summary_figure",
    "cka_line_figure",
    "cka_heatmap_figure",
    "agreement_figure",
    "matcher_figure",
]

SPATIAL_COLOR = "#7570b3"
SEMANTIC_COLOR = "#e7298a"


def _chart_layout(fig: go.Figure, title: str, height: int, **layout: Any) -> None:
    """The look the line and scatter charts share: small title, tight margins, white plot
    with a light horizontal grid."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 13}},
        plot_bgcolor="white",
        **layout,
    )
    fig.update_yaxes(showgrid=True, gridcolor="#eee")


def _panels_layout(fig: go.Figure, height: int) -> None:
    """The look the side-by-side panel figures share: panel titles as the only titles, no
    legend (the panels are labelled), white plots."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        showlegend=False,
        plot_bgcolor="white",
    )
    fig.update_annotations(font_size=12)


def _fit_line(x: np.ndarray, y: np.ndarray, color: str, **trace: Any) -> go.Scatter | None:
    """A dashed least-squares line through ``(x, y)``; None when it is undefined."""
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, icept = np.polyfit(x, y, 1)
    xs = np.array([x.min(), x.max()])
    return go.Scatter(x=xs, y=slope * xs + icept, mode="lines",
                      line={"color": color, "dash": "dash"}, hoverinfo="skip", **trace)


def translation_figure(
    pairs: Any,
    layer: str | None = None,
    *,
    names: Sequence[str] | None = None,
    kernel: str = "cosine",
    height: int = 420,
    scale: float = 1.0,
    titles: tuple[str, str] = (SPATIAL_TITLE, SEMANTIC_TITLE),
) -> go.Figure:
    """Similarity of same-source crop pairs against their overlap, both RSMs.

    Parameters
    ----------
    pairs : pandas.DataFrame, :attr:`semrsm.analysis.TranslationResult.pairs`.
    layer : the layer to show (default: the first in ``pairs``).
    names : image names for the hover (optional).
    kernel : kernel name for the axis title.
    titles : names of the two RSMs (the semantic one names its matcher:
        :func:`semrsm.figures.rsm.semantic_title`).

    Returns
    -------
    plotly.graph_objects.Figure: markers and a least-squares line per RSM; x is the
    overlap in percent of the crop area.
    """
    if len(pairs) == 0:
        raise ValueError("no crop pairs to plot")
    layer = layer if layer is not None else str(pairs["layer"].iloc[0])
    df = pairs[pairs["layer"] == layer]
    if len(df) == 0:
        raise ValueError(f"no pairs for layer {layer!r}; layers: {sorted(set(pairs['layer']))}")
    x = 100.0 * df["overlap"].to_numpy()
    if names is not None:
        hover = [f"{names[i]} ↔ {names[j]}" for i, j in zip(df["i"], df["j"], strict=True)]
    else:
        hover = [f"#{i} ↔ #{j}" for i, j in zip(df["i"], df["j"], strict=True)]
    fig = go.Figure()
    for col, title, color, symbol in (
        ("spatial", titles[0], SPATIAL_COLOR, "circle"),
        ("semantic", titles[1], SEMANTIC_COLOR, "diamond"),
    ):
        y = df[col].to_numpy()
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="markers",
                marker={"color": color, "size": 8, "symbol": symbol, "opacity": 0.8},
                name=title,
                legendgroup=col,
                hovertext=hover,
                hovertemplate="%{hovertext}<br>overlap %{x:.0f}%<br>similarity %{y:.4f}<extra>"
                + col
                + "</extra>",
            )
        )
        line = _fit_line(x, y, color, name=f"{col}: least-squares fit", legendgroup=col)
        if line is not None:
            fig.add_trace(line)
    _chart_layout(
        fig,
        f"same-source crops in {layer}",
        height,
        xaxis={"title": {"text": "overlap of the two crops (% of crop area)"}},
        yaxis={"title": {"text": f"{kernel} similarity"}},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    return scale_figure(fig, scale)


def translation_summary_figure(
    summary: Any, *, kernel: str = "cosine", height: int = 380, scale: float = 1.0,
    titles: tuple[str, str] = (SPATIAL_TITLE, SEMANTIC_TITLE),
) -> go.Figure:
    """Mean similarity of same-source crops per layer, both RSMs (and other-source pairs).

    Parameters
    ----------
    summary : pandas.DataFrame, :attr:`semrsm.analysis.TranslationResult.summary`.
    """
    layers = summary["layer"].astype(str).tolist()
    fig = go.Figure()
    for col, title, color in (
        ("spatial", titles[0], SPATIAL_COLOR),
        ("semantic", titles[1], SEMANTIC_COLOR),
    ):
        fig.add_trace(
            go.Scatter(
                x=layers,
                y=summary[f"mean_{col}"],
                mode="lines+markers",
                line={"color": color, "width": 3},
                name=f"{title}: same source",
            )
        )
        if f"mean_{col}_other" in summary:
            fig.add_trace(
                go.Scatter(
                    x=layers,
                    y=summary[f"mean_{col}_other"],
                    mode="lines+markers",
                    line={"color": color, "dash": "dot"},
                    name=f"{title}: different sources",
                )
            )
    _chart_layout(
        fig,
        "mean similarity of crop pairs per layer",
        height,
        xaxis={"title": {"text": "layer (input → output)"}},
        yaxis={"title": {"text": f"mean {kernel} similarity"}},
        legend={"orientation": "h", "y": -0.25},
    )
    return scale_figure(fig, scale)


def cka_line_figure(
    layers: Sequence[str],
    cka: np.ndarray,
    *,
    tokens: Sequence[int] | None = None,
    height: int = 360,
    scale: float = 1.0,
) -> go.Figure:
    """CKA between the semantic and the spatio-semantic RSM of each layer.

    Parameters
    ----------
    layers : layer names in network order; ``cka`` : ndarray (L,).
    tokens : number of positions S per layer (shown on hover and in the tick labels).
    """
    cka = np.asarray(cka, dtype=np.float64).ravel()
    if len(layers) != cka.size:
        raise ValueError(f"{len(layers)} layers but {cka.size} CKA values")
    ticks = (
        [f"{n}<br>S={s}" for n, s in zip(layers, tokens, strict=True)] if tokens else list(layers)
    )
    fig = go.Figure(
        go.Scatter(
            x=ticks,
            y=cka,
            mode="lines+markers",
            line={"color": SEMANTIC_COLOR, "width": 3},
            marker={"size": 9},
            name="CKA(semantic, spatio-semantic)",
            hovertemplate="%{x}<br>CKA %{y:.3f}<extra></extra>",
        )
    )
    _chart_layout(
        fig,
        "linear CKA of the two RSMs of each layer",
        height,
        xaxis={"title": {"text": "layer (input → output), S = positions"}},
        yaxis={"title": {"text": "linear CKA"}, "range": [0, 1.02]},
    )
    return scale_figure(fig, scale)


def cka_heatmap_figure(
    layers: Sequence[str],
    matrix: np.ndarray,
    *,
    row_title: str = "semantic RSM of layer",
    col_title: str = "spatio-semantic RSM of layer",
    height: int = 440,
    scale: float = 1.0,
) -> go.Figure:
    """Layer x layer CKA heatmap (rows and columns in network order), scale fixed to [0, 1]."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(layers), len(layers)):
        raise ValueError(f"matrix shape {m.shape} does not fit {len(layers)} layers")
    labels = [str(x) for x in layers]
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=labels,
            y=labels,
            colorscale=SIMILARITY_COLORSCALE,
            zmin=0,
            zmax=1,
            text=np.round(m, 2),
            texttemplate="%{text}" if len(labels) <= 12 else None,
            hovertemplate="row %{y} · column %{x}<br>CKA %{z:.3f}<extra></extra>",
            colorbar={"title": {"text": "linear CKA"}, "thickness": 14},
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": {"text": col_title}, "constrain": "domain", "automargin": True},
        yaxis={
            "title": {"text": row_title},
            "automargin": True,
            "autorange": "reversed",
            "scaleanchor": "x",
            "constrain": "domain",
        },
        plot_bgcolor="white",
    )
    return scale_figure(fig, scale)


def agreement_figure(
    agreements: Mapping[str, Mapping[str, Any]],
    *,
    kernel: str = "cosine",
    height: int = 420,
    scale: float = 1.0,
) -> go.Figure:
    """Similarity against the JSD of the predictions, one panel per RSM.

    Parameters
    ----------
    agreements : mapping title -> :func:`semrsm.analysis.output_agreement` result, e.g.
        ``{"spatio-semantic": ..., "semantic": ...}``; titles containing "semantic" but not
        "spatio" get the semantic colour.
    """
    if not agreements:
        raise ValueError("give at least one agreement result")
    titles = []
    for title, res in agreements.items():
        titles.append(
            f"{title}: Pearson r = {res['pearson_r']:.3f}, Spearman ρ = {res['spearman_r']:.3f}"
        )
    fig = make_subplots(rows=1, cols=len(agreements), subplot_titles=titles, shared_yaxes=True)
    for col, (title, res) in enumerate(agreements.items(), start=1):
        color = SPATIAL_COLOR if "spatio" in title or "spatial" in title else SEMANTIC_COLOR
        x = np.asarray(res["similarity"])
        y = np.asarray(res["divergence"])
        trace = go.Scattergl if x.size > 3000 else go.Scatter
        fig.add_trace(
            trace(
                x=x,
                y=y,
                mode="markers",
                marker={"color": color, "size": 5, "opacity": 0.5},
                name=title,
                hovertemplate="similarity %{x:.4f}<br>JSD %{y:.4f} bits<extra></extra>",
            ),
            row=1,
            col=col,
        )
        line = _fit_line(x, y, "black", showlegend=False)
        if line is not None:
            fig.add_trace(line, row=1, col=col)
        fig.update_xaxes(title_text=f"{kernel} similarity", row=1, col=col)
    # the divergence is bounded by 1 bit; keep the fitted lines from stretching the axis
    fig.update_yaxes(range=[-0.03, 1.03])
    fig.update_yaxes(title_text="Jensen-Shannon divergence of predictions (bits)", row=1, col=1)
    _panels_layout(fig, height)
    return scale_figure(fig, scale)


def matcher_figure(table: Any, *, height: int = 400, scale: float = 1.0) -> go.Figure:
    """Ratio to the optimum (mean, with the minimum as the lower whisker) and time per matcher.

    Parameters
    ----------
    table : pandas.DataFrame from :func:`semrsm.analysis.compare_matchers`.
    """
    if len(table) == 0:
        raise ValueError("no matchers to plot")
    # the name on one line and its parameters below it, horizontal: rotated labels of
    # "batch-optimal (window 128)" overlapped their neighbours
    labels = [_two_lines(str(m)) for m in table["matcher"]]
    colors = [REGISTRY[n].color if n in REGISTRY else DEFAULT_COLOR for n in map(str, table["name"])]
    mean = table["ratio_mean"].to_numpy(dtype=float)
    low = mean - table["ratio_min"].to_numpy(dtype=float)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=[
            "matched value / optimal value (bar: mean, whisker: worst pair)",
            "time for the assignments",
        ],
        horizontal_spacing=0.12,
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=mean,
            marker_color=colors,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": np.zeros_like(mean),
                "arrayminus": low,
            },
            text=[f"{v:.4f}" for v in mean],
            textposition="outside",
            hovertemplate="%{x}<br>mean ratio %{y:.5f}<extra></extra>",
            cliponaxis=False,
            name="ratio",
        ),
        row=1,
        col=1,
    )
    secs = table["seconds"].to_numpy(dtype=float)
    fig.add_trace(
        go.Bar(
            x=labels,
            y=secs,
            marker_color=colors,
            text=[f"{s:.3g} s" for s in secs],
            textposition="outside",
            customdata=table["pairs_per_second"].to_numpy(dtype=float),
            hovertemplate="%{x}<br>%{y:.4g} s, %{customdata:.4g} pairs/s<extra></extra>",
            name="time",
        ),
        row=1,
        col=2,
    )
    # from 0: bars that start at 0.72 made a 3 % difference look like a factor of two
    lo = float(np.nanmin(table["ratio_min"])) if len(table) else 0.0
    fig.update_yaxes(title_text="ratio to optimum (axis from 0)",
                     range=[min(lo, 0.0) - 0.02, 1.08], row=1, col=1)
    # ticks at 1, 2 and 5 of each power of ten, as seconds (plotly's labels at every digit
    # overlapped)
    fig.update_yaxes(title_text="seconds (log scale)", type="log", tickmode="array",
                     tickvals=_log_ticks(secs), ticktext=[f"{v:g}" for v in _log_ticks(secs)],
                     row=1, col=2)
    fig.update_xaxes(tickangle=0, tickfont={"size": 11})
    _panels_layout(fig, height)
    fig.update_layout(margin={"b": 40})
    return scale_figure(fig, scale)


def _log_ticks(values: np.ndarray) -> list[float]:
    """1, 2 and 5 times the powers of ten from just below the smallest positive value to
    just above the largest (at least one tick each side)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return [1.0]
    lo, hi = float(v.min()), float(v.max())
    cands = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1,
                                           math.ceil(math.log10(hi)) + 2) for m in (1, 2, 5)]
    below = max(c for c in cands if c <= lo)
    above = min(c for c in cands if c >= hi)
    return [float(f"{c:.12g}") for c in cands if below <= c <= above]


def _two_lines(label: str) -> str:
    """``batch-optimal (window 128)`` as ``batch-optimal<br>window 128`` (plotly's line
    break), so that horizontal labels of neighbouring bars do not overlap."""
    name, sep, rest = label.partition(" (")
    return f"{name}<br>{rest.removesuffix(')')}" if sep else label
