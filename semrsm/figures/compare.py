"""Figures of the Compare page: A vs B with intervals, the layer × layer tables, and each
layer against a reference (see :mod:`semrsm.analysis.compare`). Every figure takes
``scale`` (projector mode, :func:`semrsm.figures.projector.scale_figure`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from semrsm.analysis.compare import Comparison, LayerComparison, ReferenceComparison
from semrsm.analysis.statistics import METHOD_LABELS
from semrsm.figures.projector import scale_figure

__all__ = ["KIND_COLORS", "comparison_figure", "layer_grid_figure", "reference_figure"]

KIND_COLORS = {"classic": "#1f77b4", "semantic": "#d62728"}


def comparison_figure(res: Comparison, height: int = 300, *, scale: float = 1.0) -> go.Figure:
    """Each statistic for the classic and the semantic RSMs, dots with interval bars.

    Returns
    -------
    Figure with one trace per kind (``name`` "classic"/"semantic"), y = statistic.
    """
    fig = go.Figure()
    methods = list(next(iter(res.estimates.values())))
    for k, kind in enumerate(("classic", "semantic")):
        est = [res.estimates[kind][m] for m in methods]
        v = np.array([e.value for e in est])
        lo = np.array([e.low for e in est])
        hi = np.array([e.high for e in est])
        fig.add_trace(
            go.Scatter(
                x=v,
                # the two kinds sit a little apart on each row so their bars do not overlap
                y=[i + (0.15 if k else -0.15) for i in range(len(methods))],
                mode="markers",
                name=kind,
                marker={"size": 11, "color": KIND_COLORS[kind]},
                error_x={"type": "data", "symmetric": False, "array": np.nan_to_num(hi - v),
                         "arrayminus": np.nan_to_num(v - lo), "thickness": 2},
                hovertemplate=f"{kind}: %{{x:.4f}}<extra></extra>",
                yaxis="y",
            )
        )
    fig.update_yaxes(tickvals=list(range(len(methods))),
                     ticktext=[METHOD_LABELS[m] for m in methods], autorange="reversed")
    fig.update_xaxes(title_text=f"agreement of A and B (1 = identical); {res.ci:.0%} bootstrap "
                     f"interval over {res.n} images", range=[min(0.0, _lowest(res)) - 0.02, 1.02])
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": 1.12}, plot_bgcolor="white")
    fig.update_xaxes(showgrid=True, gridcolor="#eee")
    return scale_figure(fig, scale)


def _lowest(res: Comparison) -> float:
    vals = [e.low for kind in ("classic", "semantic") for e in res.estimates[kind].values()]
    vals = [v for v in vals if np.isfinite(v)] or [0.0]
    return float(min(vals))


def layer_grid_figure(
    res: LayerComparison,
    method: str = "cka",
    height: int = 380,
    *,
    scale: float = 1.0,
) -> go.Figure:
    """Classic, semantic and their difference as three heatmaps (rows: A's layers)."""
    per = res.matrices[method]
    c, s = per["classic"], per["semantic"]
    titles = ["classic", "semantic", "semantic − classic"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.1)
    lo = float(np.nanmin([c.min(), s.min(), 0.0]))
    d = s - c
    dm = float(np.nanmax(np.abs(d))) or 1e-9
    for k, (z, cscale, zmin, zmax) in enumerate(
        ((c, "Viridis", lo, 1.0), (s, "Viridis", lo, 1.0), (d, "RdBu_r", -dm, dm)), start=1
    ):
        fig.add_trace(
            go.Heatmap(
                z=z, x=res.layers_b, y=res.layers_a, colorscale=cscale, zmin=zmin, zmax=zmax,
                text=np.round(z, 3), texttemplate="%{text}", textfont={"size": 10},
                # one colour bar for the two agreement panels (same scale), one for the difference
                showscale=k != 1,
                colorbar={"x": [0.27, 0.655, 1.0][k - 1], "thickness": 10, "len": 0.9},
                hovertemplate=f"{res.names[0]} %{{y}} vs {res.names[1]} %{{x}}<br>"
                f"{titles[k - 1]}: %{{z:.4f}}<extra></extra>",
                name=titles[k - 1],
            ),
            row=1, col=k,
        )
        fig.update_xaxes(title_text=res.names[1], row=1, col=k)
        fig.update_yaxes(title_text=res.names[0] if k == 1 else None, autorange="reversed",
                         row=1, col=k)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      title={"text": METHOD_LABELS.get(method, method), "x": 0.0, "y": 0.99})
    return scale_figure(fig, scale)


# Same signature shape as layer_grid_figure: every figure of the page takes
# (result, method, height, *, scale); the drawing itself differs.
def reference_figure(
    res: ReferenceComparison,
    method: str = "spearman",
    height: int = 340,
    *,
    scale: float = 1.0,
) -> go.Figure:
    """Each layer's agreement with the reference, classic and semantic, with intervals."""
    fig = go.Figure()
    for kind in ("classic", "semantic"):
        est = [res.estimates[layer][kind][method] for layer in res.layers]
        v = np.array([e.value for e in est])
        fig.add_trace(
            go.Scatter(
                x=res.layers, y=v, mode="lines+markers", name=kind,
                line={"color": KIND_COLORS[kind]},
                error_y={"type": "data", "symmetric": False,
                         "array": np.nan_to_num(np.array([e.high for e in est]) - v),
                         "arrayminus": np.nan_to_num(v - np.array([e.low for e in est]))},
            )
        )
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis_title=f"{METHOD_LABELS.get(method, method)} with the reference",
                      xaxis_title="layer", legend={"orientation": "h", "y": 1.1},
                      plot_bgcolor="white")
    return scale_figure(fig, scale)
