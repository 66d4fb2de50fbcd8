"""The one workaround the app needs around Streamlit's multipage modes.

Streamlit's documentation of ``st.navigation`` says that once any session has called it,
the app ignores the ``pages/`` folder, for all sessions. Until then (the first run after
a server start, and every ``AppTest`` run) Streamlit is in its legacy mode for an app
with a ``pages/`` folder: a request for ``/neighbours`` runs ``pages/neighbours.py``
directly, without ``app.py`` (and so without its page list, icons and warm-up).
:func:`leave_legacy_pages_mode` switches that mode off at once and reruns, so ``app.py``
registers the pages and runs the requested one.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

__all__ = ["leave_legacy_pages_mode"]


def leave_legacy_pages_mode(rerun: Callable[[], None] | None = None) -> bool:
    """Leave Streamlit's legacy ``pages/`` mode if this process is in it.

    Parameters
    ----------
    rerun : callable, optional
        What to call after switching (default ``st.rerun``); not called under ``AppTest``,
        which resets the mode before every run and where a rerun would drop button clicks
        (there the page simply runs on; it draws its own sidebar either way).

    Returns
    -------
    bool
        True when the mode was switched in this call.
    """
    try:
        from streamlit import config as st_config
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without these internals: nothing to do
        return False
    if not getattr(PagesManager, "uses_pages_directory", False):
        return False
    PagesManager.uses_pages_directory = False
    if not st_config.get_option("global.appTest"):
        (rerun or st.rerun)()
    return True


if __name__ == "__main__":  # run as a page (legacy mode): hand over to app.py's navigation
    leave_legacy_pages_mode()
