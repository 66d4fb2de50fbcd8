"""Projector mode: one sidebar toggle that enlarges text, thumbnails and figures for a class.

``app.py`` draws the toggle (:func:`projector_toggle`) before the page runs, so every page
reads the same setting. When it is on:

* the page's text grows by :data:`semrsm.figures.projector.PROJECTOR_SCALE`: Streamlit
  sizes its text in ``rem``, so one CSS rule on the root font size does it (no web font,
  nothing loaded from elsewhere);
* figures get that factor: pages pass ``scale=fig_scale()`` to the figure builders, or
  wrap a figure built elsewhere with :func:`scaled`;
* pictures drawn with ``st.image`` take ``width=px(…)``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from semrsm.figures.projector import PROJECTOR_SCALE, scale_figure

__all__ = ["PROJECTOR_KEY", "fig_scale", "projector_css", "projector_toggle", "px", "scaled"]

#: session_state key of the toggle
PROJECTOR_KEY = "projector_mode"
_SCALED = "_projector_scaled"
#: Streamlit's root font size (px); its text sizes are rem
_BASE_FONT_PX = 16


def projector_css(factor: float = PROJECTOR_SCALE) -> str:
    """The style sheet of projector mode: the root font size times ``factor`` (all of
    Streamlit's text is sized in rem)."""
    return (
        "<style>"
        f"html {{ font-size: {_BASE_FONT_PX * factor:.0f}px !important; }}"
        "</style>"
    )


def projector_toggle() -> bool:
    """Draw the sidebar's *Projector mode* toggle; when it is on, add the style sheet.
    Returns whether it is on."""
    on = st.sidebar.toggle(
        "Projector mode",
        key=PROJECTOR_KEY,
        help="For a class: larger text, thumbnails and figures on every page.",
    )
    if on:
        st.html(projector_css())
    return bool(on)


def fig_scale() -> float:
    """The figure-scale factor of this session: :data:`PROJECTOR_SCALE` in projector mode,
    else 1."""
    return PROJECTOR_SCALE if st.session_state.get(PROJECTOR_KEY) else 1.0


def px(pixels: int) -> int:
    """``pixels`` times the figure scale, for ``st.image(width=…)``."""
    return int(round(pixels * fig_scale()))


def scaled(fig: Any, *, ticks: bool = True) -> Any:
    """``fig`` enlarged for projector mode (itself when the mode is off); ``ticks=False``
    for heatmaps that name every image on their axes (see ``scale_figure``). The pages
    share their figures between runs (``pages/_memo.derived``), so the enlarged copy is
    kept too, per figure, while that figure lives."""
    factor = fig_scale()
    if factor == 1.0:
        return fig
    memo: dict = st.session_state.setdefault(_SCALED, {})
    entry = memo.get(id(fig))
    if entry is not None and entry[0] is fig and entry[1] == (factor, ticks):
        return entry[2]
    big = scale_figure(fig, factor, ticks=ticks)
    memo[id(fig)] = (fig, (factor, ticks), big)  # holding fig keeps its id from being reused
    while len(memo) > 24:
        memo.pop(next(iter(memo)))
    return big
