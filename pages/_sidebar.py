"""The explorer's shared page interface, gathered in one import.

Every page uses it the same way::

    import streamlit as st
    from pages._sidebar import current_result, SELECTED_PAIR_KEY

    st.title("...")
    st.markdown("two or three plain sentences for a newcomer")
    result = current_result()   # -> semrsm.explorer.ExplorerResult | None
    if result is None:          # an error or a "Compute" prompt was shown instead
        st.stop()

Each part lives in a module of its own, with one job:

=====================  ===================================================================
``_startup``           numba's cache folder, set before numba is imported
``_resources``         cache, models, layer lists, image sets, background warm-up
``_errors``            ``show_error``: backend errors as messages that say what to do
``_controls``          the sidebar's widgets (``render_sidebar``, ``current_config``)
``_navigation``        the one workaround for Streamlit's legacy ``pages/`` mode
``_progress``          progress bars (``streamlit_progress``), durations in words
``_run``               ``current_result``: estimate, *Compute* prompt, *Cancel*, status line
``_memo``              this session's last few results and the figures built from them
=====================  ===================================================================

Widget keys (``sb_*``, see ``SIDEBAR_DEFAULTS``) and ``st.session_state`` keys are part of
the interface: links may set them.
"""

from __future__ import annotations

from pathlib import Path

from pages._startup import own_numba_cache

own_numba_cache()  # a run that starts on a page script imports numba from here

from pages._controls import (  # noqa: E402
    CONFIG_KEY,
    OTHER_MODEL,
    SIDEBAR_DEFAULTS,
    SOURCES,
    WEIGHT_LABELS,
    current_config,
    render_sidebar,
)
from pages._errors import show_error  # noqa: E402
from pages._navigation import leave_legacy_pages_mode  # noqa: E402
from pages._progress import fmt_seconds, streamlit_progress  # noqa: E402
from pages._resources import get_cache, get_images, get_layers, get_model  # noqa: E402
from pages._run import current_result, status_line  # noqa: E402

__all__ = [
    "CONFIG_KEY",
    "OTHER_MODEL",
    "SELECTED_PAIR_KEY",
    "SIDEBAR_DEFAULTS",
    "SOURCES",
    "TOKEN_PAGE",
    "WEIGHT_LABELS",
    "current_config",
    "current_result",
    "fmt_seconds",
    "get_cache",
    "get_images",
    "get_layers",
    "get_model",
    "render_sidebar",
    "show_error",
    "status_line",
    "streamlit_progress",
]

#: session_state key of the (i, j) pair chosen on the RSM page for the token-matching page
SELECTED_PAIR_KEY = "semrsm_selected_pair"
#: the token-matching page, linked when the file exists
TOKEN_PAGE = Path(__file__).resolve().parent / "token_matching.py"

if __name__ == "__main__":  # run as a page (legacy mode): hand over to app.py's navigation
    leave_legacy_pages_mode()
