"""A picture of what the two RSMs compare, for the top of the RSM page.

Two images of a 3 × 3 token grid hold the same object (two tokens) at different places.
The classic (spatio-semantic) similarity pairs token ``k`` of one image with token ``k``
of the other; the semantic similarity pairs each token with the most similar unpaired
token. With one-hot token features the numbers are exact: the classic cosine is the
share of positions where both images show the same thing, the semantic one is 1.

Pure numpy and plotly (no torch, no scipy): the page draws it before anything is
computed.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from semrsm.figures.drawing import fix_margins
from semrsm.figures.projector import scale_figure

__all__ = ["SCHEMATIC_TOKENS", "schematic_matchings", "two_rsms_schematic"]

#: token features of the two images, row by row (0 background, 1 and 2 the object's parts)
SCHEMATIC_TOKENS = (
    np.array([1, 2, 0, 0, 0, 0, 0, 0, 0]),  # the object at the top left
    np.array([0, 0, 0, 0, 0, 0, 0, 1, 2]),  # the same object at the bottom right
)
_COLOURS = {0: "#c6dbef", 1: "#d62728", 2: "#ff7f0e"}
_NAMES = {0: "background", 1: "object, left part", 2: "object, right part"}


def schematic_matchings(a: np.ndarray, b: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """The two pairings of token labels ``a`` and ``b`` (one-hot features) and their cosine.

    Returns
    -------
    dict
        ``{"classic": (perm, cosine), "semantic": (perm, cosine)}``; ``perm[k]`` is the
        token of ``b`` paired with token ``k`` of ``a``. The semantic pairing makes as many
        pairs of equal tokens as there are (per label, the smaller of its two counts),
        which is optimal for one-hot features (every inner product is 0 or 1).

    Raises
    ------
    ValueError
        ``a`` and ``b`` of different lengths.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"token label arrays differ in shape: {a.shape} vs {b.shape}")
    n = a.size
    identity = np.arange(n)
    free = list(range(n))
    semantic = np.full(n, -1, dtype=np.int64)
    # first every token that can get an equal partner (in place if possible), then the
    # rest: min(count in a, count in b) equal pairs per label, the most there can be
    for k in np.argsort(a != b, kind="stable"):
        same = [t for t in free if b[t] == a[k]]
        if same:
            semantic[k] = k if k in same else same[0]
            free.remove(semantic[k])
    for k in np.flatnonzero(semantic < 0):
        semantic[k] = free.pop(0)
    return {
        "classic": (identity, float(np.mean(a == b))),
        "semantic": (semantic, float(np.mean(a == b[semantic]))),
    }


def _grid(fig: go.Figure, labels: np.ndarray, x0: float, col: int) -> None:
    for k, lab in enumerate(labels):
        r, c = divmod(k, 3)
        fig.add_shape(type="rect", x0=x0 + c, x1=x0 + c + 0.9, y0=-r, y1=-r - 0.9,
                      fillcolor=_COLOURS[int(lab)], line={"width": 0}, layer="below",
                      row=1, col=col)


def two_rsms_schematic(height: int = 240, *, scale: float = 1.0) -> go.Figure:
    """Two panels, classic and semantic: the two token grids of :data:`SCHEMATIC_TOKENS`,
    with a line between every pair of tokens that is compared (red where the pair differs),
    and the resulting cosine similarity in the panel's title.

    Returns
    -------
    plotly.graph_objects.Figure; ``layout.meta = {"classic": c, "semantic": s}`` (cosines).
    """
    a, b = SCHEMATIC_TOKENS
    pairings = schematic_matchings(a, b)
    titles = [
        f"classic: position by position · cosine {pairings['classic'][1]:.2f}",
        f"semantic: best pairing · cosine {pairings['semantic'][1]:.2f}",
    ]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.06)
    for col, key in ((1, "classic"), (2, "semantic")):
        _grid(fig, a, 0.0, col)
        _grid(fig, b, 5.0, col)
        perm = pairings[key][0]
        for agree in (True, False):
            xs: list = []
            ys: list = []
            for k, t in enumerate(perm):
                if (a[k] == b[t]) != agree:
                    continue
                (ra, ca), (rb, cb) = divmod(k, 3), divmod(int(t), 3)
                # lines of one row would lie on top of each other: shift each by its column
                dy = (ca - 1) * 0.2
                xs += [ca + 0.45, 5 + cb + 0.45, None]
                ys += [-ra - 0.45 + dy, -rb - 0.45 + dy, None]
            if xs:
                fig.add_trace(
                    go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                               line={"color": "#555" if agree else "#d62728",
                                     "width": 1.2 if agree else 2.2,
                                     "dash": "solid" if agree else "dot"}),
                    row=1, col=col,
                )
        for x, text in ((1.45, "image A"), (6.45, "image B")):
            fig.add_annotation(x=x, y=0.35, text=text, showarrow=False, font={"size": 11},
                               row=1, col=col)
    for lab, colour in _COLOURS.items():  # a legend for the token colours
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_NAMES[lab],
                                 marker={"color": colour, "size": 10, "symbol": "square"}))
    fig.update_xaxes(visible=False, range=[-0.3, 8.2])
    for col, x in ((1, "x"), (2, "x2")):
        fig.update_yaxes(visible=False, range=[-3.1, 0.7], scaleanchor=x, row=1, col=col)
    fix_margins(fig, left=10, right=10, top=40, bottom=30)
    fig.update_layout(
        height=height,
        plot_bgcolor="white",
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom",
                "x": 0.5, "xanchor": "center"},
        meta={k: v[1] for k, v in pairings.items()},
    )
    return scale_figure(fig, scale)
