"""Process-wide resources of the app, shared by all sessions: the on-disk cache, models,
their layer lists, built-in image sets (``st.cache_resource``), and the background
warm-up of the compiled code."""

from __future__ import annotations

import threading

import streamlit as st

from semrsm.cache import Cache, default_cache_dir
from semrsm.explorer import ExplorerConfig, load_images, load_model

__all__ = [
    "FIRST_RESULT",
    "get_cache",
    "get_images",
    "get_layers",
    "get_model",
    "start_background_warm_up",
]

#: set once a page of this process has drawn its first result; the background warm-up
#: waits for it before the long UMAP compile, so the two do not share the cores
FIRST_RESULT = threading.Event()


@st.cache_resource(show_spinner=False)
def _cache(root: str) -> Cache:
    return Cache(root)


def get_cache() -> Cache:
    """The on-disk cache shared by all sessions of the process (``$SEMRSM_CACHE_DIR``)."""
    return _cache(str(default_cache_dir()))


@st.cache_resource(show_spinner=False, max_entries=3)
def _model(name: str, weights: str, checkpoint: str | None, device: str):
    return load_model(
        ExplorerConfig(model=name, weights=weights, checkpoint=checkpoint, device=device)
    )


def get_model(config: ExplorerConfig):
    """The model of ``config``, loaded once per process (``st.cache_resource``).

    Raises
    ------
    semrsm.models.ModelError, semrsm.explorer.ExplorerError
        As :func:`semrsm.explorer.load_model` (errors are not cached).
    """
    return _model(config.model.strip(), config.weights, config.checkpoint, config.device)


@st.cache_resource(show_spinner=False, max_entries=8)
def _builtin_images(spec: str, seed: int):
    # Built-in sets are pure functions of (spec, seed): generate them once per process.
    return load_images(ExplorerConfig(images=spec, seed=seed), get_cache())


def get_images(config: ExplorerConfig, cache: Cache):
    """The image set of ``config``; built-in sets are shared by all sessions (read only),
    uploads and server folders are read each time (a folder may change)."""
    if config.images.partition(":")[0] in ("shapes", "photos", "crops"):
        return _builtin_images(config.images, config.seed)
    return load_images(config, cache)


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(name: str, weights: str, checkpoint: str | None, device: str):
    from semrsm.layers import list_layers

    return list_layers(_model(name, weights, checkpoint, device))


def get_layers(name: str, weights: str, checkpoint: str | None, device: str):
    """The layers (``semrsm.layers.LayerInfo``) of a model, listed once per process."""
    return _layers(name, weights, checkpoint, device)


@st.cache_resource(show_spinner=False)
def start_background_warm_up() -> threading.Thread:
    """Compile the matchers and UMAP in a daemon thread, once per server process (see
    :mod:`semrsm.explorer.warmup`); the UMAP step waits for :data:`FIRST_RESULT`."""
    # Modules the warm-up imports become visible in sys.modules before they finish
    # importing; plotly peeks at sys.modules["pandas"] without the import lock, so pandas
    # is imported here, in the script thread, before the background thread starts.
    import pandas  # noqa: F401

    from semrsm.explorer.warmup import start_warm_up

    return start_warm_up("auto", wait_for=FIRST_RESULT, wait_s=30.0)
