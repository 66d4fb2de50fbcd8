"""Figures for a projector: one factor that enlarges a figure's text, marks and size.

A class reads a projected screen from metres away. :func:`scale_figure` returns a copy of
a plotly figure with every size that plotly draws in pixels multiplied by one factor:
the height (and width, where set), the fonts (the global one and every explicit one:
titles, ticks, legends, colour bars, annotations), the margins (the RSM page's figures
have fixed margins estimated from their text, ``semrsm/figures/drawing.py``; scaled with
the fonts, the labels still fit), marker sizes, line widths, colour-bar thickness and
pixel offsets of annotations. Sizes in data units (thumbnails placed as layout images,
heatmap cells) grow with the figure. The figure builders take ``scale=`` and end with
this function, so the explorer's *projector mode* is one number passed down.

Heatmaps that name every image on their axes (the RSM page's) keep their tick labels:
their fixed margins and the gap between panels were made for those labels, and names of
dozens of images are small on any screen; ``ticks=False`` leaves the tick labels and the
left and bottom margins that hold them as they are, so the larger figure goes to the
cells. Side-by-side panels of such heatmaps share their rows, and a taller figure makes
them wider: the names of a panel right of the first then run into that panel, so they are
left to the first panel of each row (the hover still names both images).

Pure plotly, no Streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["DEFAULT_FONT_SIZE", "DEFAULT_HEIGHT", "PROJECTOR_SCALE", "scale_figure"]

#: the explorer's projector mode: text, marks and figures this much larger
PROJECTOR_SCALE = 1.5
#: plotly's global font size and figure height when a figure sets none
DEFAULT_FONT_SIZE = 12
DEFAULT_HEIGHT = 450

# keys whose values are data or free-form (never sizes in pixels): not walked
_SKIP = frozenset({"meta", "customdata", "x", "y", "z", "text", "hovertext", "ids",
                   "source", "values", "labels", "lat", "lon", "i", "j", "k"})
_MARGIN_SIDES = ("l", "r", "t", "b", "pad")


def _times(value: Any, factor: float) -> Any:
    """``value`` × ``factor`` for a number, a list or an array of numbers; else unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) * factor
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in value
    ):
        return [float(v) * factor for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value.astype(np.float64) * factor
    return value


def _walk(node: Any, factor: float) -> None:
    """Scale the pixel sizes inside one dict of a figure's JSON, in place."""
    if isinstance(node, list):
        for item in node:
            _walk(item, factor)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _SKIP:
            continue
        if isinstance(value, dict):
            if key.endswith("font") and "size" in value:
                value["size"] = _times(value["size"], factor)
            elif key == "marker" and "size" in value:
                value["size"] = _times(value["size"], factor)
            elif key == "line" and "width" in value:
                value["width"] = _times(value["width"], factor)
            elif key == "colorbar" and "thickness" in value:
                value["thickness"] = _times(value["thickness"], factor)
            _walk(value, factor)
        elif isinstance(value, list):
            _walk(value, factor)
        elif key in ("xshift", "yshift", "borderwidth", "arrowwidth"):
            node[key] = _times(value, factor)


def scale_figure(fig: go.Figure, factor: float, *, ticks: bool = True) -> go.Figure:
    """A copy of ``fig`` with its pixel sizes multiplied by ``factor`` (see the module
    docstring); ``fig`` itself is not changed (pages share their figures between runs).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    factor : float > 0; 1 returns ``fig`` itself.
    ticks : False keeps the axes' tick labels and the left and bottom margins as they are.

    Raises
    ------
    ValueError
        ``factor`` not a positive finite number.
    """
    factor = float(factor)
    if not np.isfinite(factor) or factor <= 0:
        raise ValueError(f"scale factor must be a positive number, got {factor}")
    if factor == 1.0:
        return fig
    spec = fig.to_dict()
    layout: dict = spec.setdefault("layout", {})
    base = float((layout.get("font") or {}).get("size") or DEFAULT_FONT_SIZE)
    axes = [k for k in layout if re.fullmatch(r"[xy]axis\d*", k)]
    tick_sizes = {k: float((layout[k].get("tickfont") or {}).get("size") or base) for k in axes}
    _walk(spec.get("data", []), factor)
    _walk(layout, factor)
    if not ticks:
        for k, size in tick_sizes.items():
            layout[k].setdefault("tickfont", {})["size"] = size
            anchor = layout[k].get("anchor") or ""
            x = layout.get(anchor.replace("x", "xaxis", 1)) if k.startswith("y") else None
            if x and (x.get("domain") or [0])[0] > 0.01:  # a panel right of the first
                layout[k]["showticklabels"] = False
    font = layout.setdefault("font", {})
    if "size" not in font:  # the global size, inherited by every font not set explicitly
        font["size"] = DEFAULT_FONT_SIZE * factor
    layout["height"] = float(layout.get("height") or DEFAULT_HEIGHT) * factor
    if layout.get("width"):
        layout["width"] = float(layout["width"]) * factor
    margin = layout.get("margin")
    if isinstance(margin, Mapping):
        for side in _MARGIN_SIDES:
            if side in margin and (ticks or side not in ("l", "b")):
                margin[side] = _times(margin[side], factor)
    return go.Figure(spec)
