"""Process-wide resources of the app, shared by all sessions: the on-disk cache, models,
their layer lists, built-in image sets (``st.cache_resource``), and the background
warm-up of the compiled code.

Nothing here imports torch, timm or numba until a model is really needed: layer lists
come from the cache when it holds them (``semrsm.explorer.cached``) and the matcher list
from the registry (pure metadata), so a server restart draws a cached result without them.
"""

from __future__ import annotations

import threading

import streamlit as st

from semrsm._platform import cuda_available as _cuda_available
from semrsm.cache import Cache, default_cache_dir
from semrsm.explorer.cached import cached_layers, remember_model
from semrsm.explorer.config import BUILTIN_SETS, ExplorerConfig
from semrsm.explorer.sources import load_images, load_model, needs_confirmation

__all__ = [
    "FIRST_RESULT",
    "PAGE_DRAWN",
    "WARM_UP_NOW",
    "confirm_model",
    "cuda_available",
    "get_cache",
    "get_images",
    "get_layers",
    "get_model",
    "start_background_warm_up",
]

#: set once a page of this process has computed or fetched its first result
FIRST_RESULT = threading.Event()
#: set by ``app.py`` once a page run that showed a result has ended; the background
#: warm-up waits for it, so that the first page (drawn from the cache on a restart,
#: computed on a fresh install) does not share the cores or the GIL with compiling
PAGE_DRAWN = threading.Event()
#: set when a page must compute: the warm-up then loads the exact matcher first
WARM_UP_NOW = threading.Event()


@st.cache_resource(show_spinner=False)
def cuda_available() -> bool:
    """Whether a CUDA GPU is usable (asked once per process; imports torch only where a
    GPU driver is installed, see ``semrsm._platform.cuda_available``)."""
    return _cuda_available()


@st.cache_resource(show_spinner=False)
def _cache(root: str) -> Cache:
    return Cache(root)


def get_cache() -> Cache:
    """The on-disk cache shared by all sessions of the process (``$SEMRSM_CACHE_DIR``)."""
    return _cache(str(default_cache_dir()))


#: session_state key: the model names this session's user clicked *Build* for. Links
#: only set the sidebar's ``sb_*`` keys, so a link can never confirm a build.
CONFIRMED_MODELS_KEY = "semrsm_confirmed_models"


def confirm_model(name: str) -> None:
    """Record the user's click: ``name`` may be built in this session (a button callback)."""
    st.session_state.setdefault(CONFIRMED_MODELS_KEY, set()).add(name.strip())


def _require_confirmation(name: str) -> None:
    """Raise :class:`~semrsm.explorer.sources.ModelNeedsConfirmation` for a large model
    the user has not clicked *Build* for in this session (checked before every build)."""
    if name.strip() in st.session_state.get(CONFIRMED_MODELS_KEY, ()):
        return
    need = needs_confirmation(name)
    if need is not None:
        raise need


@st.cache_resource(show_spinner=False, max_entries=3)
def _model(name: str, weights: str, checkpoint: str | None, device: str):
    return load_model(
        ExplorerConfig(model=name, weights=weights, checkpoint=checkpoint, device=device)
    )


def get_model(config: ExplorerConfig):
    """The model of ``config``, loaded once per process (``st.cache_resource``).

    A model over :func:`semrsm.explorer.sources.confirm_params` parameters is built only
    once this session's user clicked *Build* (:func:`confirm_model`; ``show_error`` draws
    the button), whether it came from the sidebar, the Compare page or a link.

    Raises
    ------
    semrsm.explorer.sources.ModelNeedsConfirmation
        A large model not confirmed yet (nothing is built).
    semrsm.models.ModelError, semrsm.explorer.ExplorerError
        As :func:`semrsm.explorer.load_model` (errors are not cached).
    """
    _require_confirmation(config.model)
    return _model(config.model.strip(), config.weights, config.checkpoint, config.device)


@st.cache_resource(show_spinner=False, max_entries=8)
def _builtin_images(spec: str, seed: int):
    # Built-in sets are pure functions of (spec, seed): generate them once per process.
    return load_images(ExplorerConfig(images=spec, seed=seed), get_cache())


def get_images(config: ExplorerConfig, cache: Cache):
    """The image set of ``config``; built-in sets are shared by all sessions (read only),
    uploads and server folders are read each time (a folder may change)."""
    if config.images.partition(":")[0] in BUILTIN_SETS:
        return _builtin_images(config.images, config.seed)
    return load_images(config, cache)


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(name: str, weights: str, checkpoint: str | None, device: str):
    from semrsm.layers import list_layers

    model = _model(name, weights, checkpoint, device)
    layers = list_layers(model)
    config = ExplorerConfig(model=name, weights=weights, checkpoint=checkpoint, device=device)
    remember_model(get_cache(), config, model, layers)
    return layers


def get_layers(
    name: str, weights: str, checkpoint: str | None, device: str, cache: Cache | None = None
):
    """The layers (``semrsm.layers.LayerInfo``) of a model: from the cache when a run
    stored them (no model load, no torch import), else listed once per process.

    Raises
    ------
    semrsm.explorer.sources.ModelNeedsConfirmation, semrsm.models.ModelError,
    semrsm.explorer.ExplorerError
        As :func:`get_model` (errors are not cached).
    """
    config = ExplorerConfig(model=name, weights=weights, checkpoint=checkpoint, device=device)
    stored = cached_layers(cache if cache is not None else get_cache(), config)
    if stored is not None:
        return stored
    _require_confirmation(name)
    return _layers(name, weights, checkpoint, device)


@st.cache_resource(show_spinner=False)
def start_background_warm_up() -> threading.Thread:
    """Compile the matchers and UMAP in the background, once per server process (see
    :mod:`semrsm.explorer.warmup`).

    When numba's cache lacks the exact matcher (a fresh install), it is compiled at once
    in a separate process, in parallel with this one's model loading. The warm-up thread
    waits for :data:`PAGE_DRAWN` and then 3 s more while the browser draws the page (at
    most 30 s), before it starts.
    """
    from semrsm.explorer.warmup import start_precompile, start_warm_up

    start_precompile()  # app.py starts it earlier; here for a run that starts on a page
    return start_warm_up(
        "auto", wait_for=PAGE_DRAWN, wait_s=30.0, start_on=WARM_UP_NOW, settle_s=3.0
    )
