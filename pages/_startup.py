"""Process set-up the app needs before anything imports numba (standard library only).

numba reads ``NUMBA_CACHE_DIR`` once, when it is first imported (``import semrsm`` does
that), so :func:`own_numba_cache` must run first: ``app.py`` calls it before its other
imports, and ``pages/_sidebar.py`` too, for the rare run that starts on a page script.
"""

from __future__ import annotations

import os
from pathlib import Path

#: sub-folder of the app's cache folder that holds numba's compiled functions
NUMBA_SUBDIR = "numba"


def app_cache_dir() -> Path:
    """The app's cache folder: ``$SEMRSM_CACHE_DIR`` or ``~/.cache/semrsm`` (the same rule
    as ``semrsm.cache.default_cache_dir``, repeated here so that no semrsm import, and so
    no numba import, happens before the numba cache folder is set)."""
    env = os.environ.get("SEMRSM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semrsm"


def own_numba_cache() -> Path:
    """Point numba's on-disk cache at ``<app cache>/numba`` unless the user chose a folder.

    Compiled matchers and UMAP are then kept between server starts in a folder the app
    owns and can write (the virtual environment may be read-only), and a fresh cache
    folder means a fresh compile, which is what the app benchmark measures.

    Returns
    -------
    pathlib.Path
        The folder numba uses.
    """
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return Path(chosen)
    folder = app_cache_dir() / NUMBA_SUBDIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return folder  # numba falls back to its own locations
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    return folder
