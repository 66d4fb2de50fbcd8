"""The explorer's backend: one configuration in, both RSMs (and everything the pages draw) out.

The Streamlit pages only collect an :class:`ExplorerConfig` and draw an
:class:`ExplorerResult`; everything in between lives here and is usable from a script::

    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    result = compute(ExplorerConfig(model="demo-resnet", images="shapes:32"), Cache())
    result.spatial["cosine"], result.semantic["cosine"]      # (N, N) float64
    result.matching(0, 5)                                     # (perm, value) of one pair

Flow of :func:`compute`: load the model (or take the one given) → load the image set →
tokens of the layer (cached by model + weights identity, layer, preprocessing and the
image pixels) → both RSMs for *all* kernels with the matchings (cached by the tokens'
key, the matcher and its parameters; one assignment per pair serves every kernel) →
class probabilities (cached) → an :class:`ExplorerResult`.

Everything that determines a cache entry is part of its key (see :func:`tokens_key`,
:func:`rsm_key`), including :data:`semrsm.__version__`; the device is not, because
it does not change the result beyond rounding.

One job per module, in the order a run needs them:

==============  ==========================================================================
``config``      :class:`ExplorerConfig`, the errors, shared constants, :func:`resolve_device`
``sources``     the model, the image set (built in, uploads, server folders), the layer
``estimate``    time estimates before a run (:func:`estimate_seconds`, :func:`plan`)
``pipeline``    :func:`compute` and :func:`layer_rsms`: tokens → RSMs → probabilities, cached
``result``      :class:`ExplorerResult`: RSMs, matchings on demand, downloads
``summary``     :func:`summarize` and :func:`describe_pair` of a result
``cached``      :func:`cached_result`: a finished result from the cache without the model
==============  ==========================================================================

The cache keys, entries and their checks are :mod:`semrsm.cache_schema` (re-exported
here: :func:`images_digest`, :func:`tokens_key`, :func:`rsm_key`, :func:`proba_key`).

The names below are imported on first use (PEP 562): ``semrsm.explorer.config``,
``result``, ``cached`` and :mod:`semrsm.cache_schema` need neither torch nor timm, so the app can draw a
result from the cache before those are imported (:func:`cached_result`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_LAZY = {
    **dict.fromkeys(
        (
            "BUILTIN_SETS", "DATA_ROOT_ENV", "DEFAULT_IMAGES", "DEFAULT_MODEL", "DEVICES",
            "LONG_RUN_SECONDS", "PERMS_MAX_BYTES", "ComputeError", "ExplorerConfig",
            "ExplorerError", "Progress", "resolve_device",
        ),
        "config",
    ),
    **dict.fromkeys(("RunPlan", "estimate_layers", "estimate_seconds", "plan",
                     "seconds_per_image"), "estimate"),
    **dict.fromkeys(("images_digest", "rsm_key", "tokens_key", "proba_key"), "semrsm.cache_schema"),
    **dict.fromkeys(("compute", "layer_rsms"), "pipeline"),
    "ExplorerResult": "result",
    **dict.fromkeys(
        (
            "data_root", "default_layer", "labels_from_file_names", "list_server_folders",
            "load_images", "load_model",
        ),
        "sources",
    ),
    **dict.fromkeys(("describe_pair", "summarize"), "summary"),
    **dict.fromkeys(("cached_result", "cached_layers"), "cached"),
}

__all__ = [
    "DATA_ROOT_ENV",
    "DEFAULT_IMAGES",
    "DEFAULT_MODEL",
    "LONG_RUN_SECONDS",
    "ComputeError",
    "ExplorerConfig",
    "ExplorerError",
    "ExplorerResult",
    "RunPlan",
    "cached_layers",
    "cached_result",
    "compute",
    "data_root",
    "default_layer",
    "describe_pair",
    "estimate_layers",
    "estimate_seconds",
    "images_digest",
    "labels_from_file_names",
    "layer_rsms",
    "list_server_folders",
    "load_images",
    "load_model",
    "plan",
    "resolve_device",
    "rsm_key",
    "summarize",
    "tokens_key",
]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access.

    ``semantic_rsm`` is :func:`semrsm.rsm.semantic_rsm`: the pipeline calls the solver
    through this name, so a caller (or a test) can replace it.

    Raises
    ------
    AttributeError
        Not a public name.
    """
    if name == "semantic_rsm":
        from semrsm.rsm import semantic_rsm as value
    elif name in _LAZY:
        module = _LAZY[name] if "." in _LAZY[name] else f"semrsm.explorer.{_LAZY[name]}"
        value = getattr(importlib.import_module(module), name)
    else:
        raise AttributeError(f"module 'semrsm.explorer' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"semantic_rsm"})
