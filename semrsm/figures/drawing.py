"""What a figure costs the browser to draw, and how the RSM page's figures keep it small.

**Fixed margins, estimated from the text they must hold.** By default plotly grows a
figure's margins to fit what would be cut off (tick labels, a colour bar, a legend below
the plot): it draws the figure, measures every label, and draws it again with the new
margins; it then measures every tick label once more to hide those that overflow. With
names on four axes that was most of the time the RSM page's heatmaps took to appear:
0.9–1.1 s per draw in headless chromium on a 2-core machine, 0.25 s with fixed margins
(docs/BENCHMARKS.md). The figures therefore estimate the room their text needs and switch
the growth off with :func:`fix_margins`. The estimates are deliberately generous (an
average character is taken as 0.6 font sizes wide, a little more than in the fonts
plotly and Streamlit use), so a label is never cut (the browser test checks); the cost is
a few pixels of white space.

**Invisible markers that are not drawn.** A heatmap cell cannot be clicked or selected in
a Streamlit chart, so the selectable figures lay a transparent marker on every cell.
Plotly finds the point under the mouse, and the points in a box, from the trace's data,
not from the drawn nodes, so :data:`INVISIBLE_MARKER` also tells plotly to draw at most
one of them (``maxdisplayed``): hover, click and box selection are unchanged, and
2 × 1,024 SVG nodes (0.1–0.2 s per draw) are not made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

__all__ = ["CHAR_EM", "INVISIBLE_MARKER", "colorbar_room", "fix_margins", "tick_label_room"]

#: width of an average character, in font sizes
CHAR_EM = 0.6
#: marker style of a selection layer: transparent, and at most one drawn (see above)
INVISIBLE_MARKER = {"opacity": 0, "maxdisplayed": 1}
#: plotly's gap between the axis line and its tick labels (tick length + standoff), px
_TICK_GAP = 8


def tick_label_room(texts: Sequence[str], size: float, angle: float = 0.0) -> tuple[int, int]:
    """Pixels the tick labels of one axis take, across and along the axis direction.

    Parameters
    ----------
    texts : the tick labels (plain text, no HTML).
    size : font size in px.
    angle : the axis' ``tickangle`` in degrees (0 = horizontal text, -90 = vertical).

    Returns
    -------
    (width, height) : int pixels of the bounding box of the longest rotated label, plus
        the gap to the axis; 0, 0 for no labels. Use ``height`` for the room below an x
        axis and ``width`` for the room left of a y axis.
    """
    if not texts:
        return 0, 0
    w = CHAR_EM * size * max(len(str(t)) for t in texts)
    h = 1.25 * size
    a = math.radians(abs(angle))
    width = w * math.cos(a) + h * math.sin(a)
    height = w * math.sin(a) + h * math.cos(a)
    return math.ceil(width) + _TICK_GAP, math.ceil(height) + _TICK_GAP


def colorbar_room(title_lines: Sequence[str], *, thickness: int = 14, tick_chars: int = 5,
                  size: float = 12, plot_width: int = 1000) -> int:
    """Pixels right of the plot that a vertical colour bar at plotly's default place takes
    (``x = 1.02`` of the plot width, ``xpad`` 10 px), with tick labels of ``tick_chars``
    characters and a title of ``title_lines`` on top (``side="top"``)."""
    bar = thickness + 4 + CHAR_EM * size * tick_chars
    title = CHAR_EM * (size + 2) * max((len(t) for t in title_lines), default=0)
    return math.ceil(0.02 * plot_width + 10 + max(bar, title) + 10)


def fix_margins(fig: go.Figure, *, left: int, right: int, top: int, bottom: int) -> go.Figure:
    """Set the margins of ``fig`` (px) and stop plotly from growing them or from measuring
    tick labels for overflow (see the module docstring). Returns ``fig``."""
    fig.update_layout(
        margin={"l": left, "r": right, "t": top, "b": bottom, "autoexpand": False}
    )
    fig.update_xaxes(automargin=False, ticklabeloverflow="allow")
    fig.update_yaxes(automargin=False, ticklabeloverflow="allow")
    return fig
