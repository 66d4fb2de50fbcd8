"""The RSM page's permanent *How it works* expander: the picture of the two pairings
(``semrsm/figures/schematic.py``) with three steps of text.

Before a session's first result the page shows that picture as its waiting screen; after
it, the expander keeps it one click away. The expander is collapsed and tracks its state
(``on_change="rerun"``), so its content is only built and sent while it is open: a
collapsed expander costs the page one line.
"""

from __future__ import annotations

import streamlit as st

from pages._projector import fig_scale
from semrsm.figures.schematic import two_rsms_schematic

__all__ = ["HOW_KEY", "how_it_works"]

#: session_state key of the expander (True while it is open)
HOW_KEY = "rsm_how_it_works"


@st.cache_resource(show_spinner=False)
def _picture(scale: float):
    return two_rsms_schematic(scale=scale)


def how_it_works() -> None:
    """Draw the collapsed expander; its content only while it is open."""
    box = st.expander("How it works: what the two RSMs compare", key=HOW_KEY,
                      on_change="rerun")
    if not box.open:
        return
    with box:
        st.markdown(
            "1. The network turns each image into a grid of **tokens**, one feature vector "
            "per position of the chosen layer.\n"
            "2. The **classic** (spatio-semantic) RSM compares token *k* of one image with "
            "token *k* of the other and adds up the products: content that moved meets "
            "background.\n"
            "3. The **semantic** RSM first pairs every token with a partner in the other "
            "image so that the sum is as large as possible (a linear assignment, solved "
            "exactly by the *exact* matcher), then adds up: the same content counts "
            "wherever it is."
        )
        st.plotly_chart(_picture(fig_scale()), key="rsm_how_schematic",
                        config={"displaylogo": False, "staticPlot": True})
        st.caption(
            "Two images with the same object (red and orange tokens) at different places. "
            "Position by position (left) the moved object meets background (dotted red "
            "lines): cosine 0.56. With the best pairing (right) every token finds its equal: "
            "cosine 1. On real images the partners are similar rather than equal, and for "
            "the linear and cosine kernels the semantic value is never below the classic one."
        )
