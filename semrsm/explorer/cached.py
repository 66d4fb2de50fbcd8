"""A finished result straight from the cache, without importing torch, timm or numba.

:func:`semrsm.explorer.compute` needs the loaded model for the cache keys (its weights
identity and preprocessing), the layer list and the matcher's parameters with their
defaults; loading the model imports torch and timm (several seconds). Each run of
``compute`` therefore also stores these *facts* in the cache, as small entries:

* **model facts** (:func:`remember_model`, :func:`model_facts`): name, weights, weights
  identity, data config, class names, the layer list, whether the model has a classifier;
  keyed by the configuration's model, weights and checkpoint *and* the identity of the
  weights' source (the demo or checkpoint file's path, size and modification time) and of
  the code that derives them (:func:`environment`: semrsm, timm and torch versions and a
  digest of the source files of the models, layers and matchers).

The matcher's parameters with their defaults come from the matcher registry, which
imports neither torch nor numba (``ExplorerConfig.params``).

:func:`cached_result` then rebuilds the cache keys exactly as ``compute`` does
(:mod:`semrsm.cache_schema`), loads the tokens, RSMs and probabilities with the same
checks, and builds the :class:`ExplorerResult` with the same function
(:func:`build_result`), so a hit returns what a compute would. Anything missing, stale or
invalid is a miss (``None``): the caller computes, which stores the facts for next time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from semrsm._platform import cuda_available
from semrsm.cache import Cache
from semrsm.cache_schema import (
    ModelFacts,
    environment,
    images_digest,
    load_proba,
    load_rsms,
    load_tokens,
    model_facts_key,
    model_facts_payload,
    proba_key,
    read_model_facts,
    read_rsms,
    read_tokens,
    rsm_key,
    tokens_key,
)
from semrsm.cache_schema import load_fact as _load_fact
from semrsm.cache_schema import save_fact as _save_fact
from semrsm.explorer.config import DEVICES, ExplorerConfig
from semrsm.explorer.result import ExplorerResult
from semrsm.images import ImageSet
from semrsm.kernels import KERNELS
from semrsm.layer_info import LayerInfo

__all__ = [
    "ModelFacts",
    "build_result",
    "cached_layers",
    "cached_result",
    "environment",
    "model_facts",
    "remember_model",
]


# ----------------------------------------------------------------------- facts
def remember_model(
    cache: Cache, config: ExplorerConfig, model: Any, layers: Sequence[LayerInfo],
    has_classifier: bool | None = None,
) -> None:
    """Store the facts of a loaded model (:class:`ModelFacts`) for ``config``.

    Parameters
    ----------
    cache : Cache
    config : ExplorerConfig
        Its model, weights and checkpoint key the facts.
    model : semrsm.models.LoadedModel
    layers : sequence of LayerInfo, ``semrsm.layers.list_layers(model)``
    has_classifier : bool, optional
        Whether class probabilities exist (None: not known yet; a known value replaces it).
    """
    key = model_facts_key(config)
    if key is None:
        return
    old = _load_fact(cache, key)
    if old is not None and (has_classifier is None or old.get("has_classifier") is not None):
        return
    if old is not None:
        _save_fact(cache, key, {**old, "has_classifier": has_classifier}, replace=True)
        return
    _save_fact(cache, key, model_facts_payload(model, layers, has_classifier))


def model_facts(cache: Cache, config: ExplorerConfig) -> ModelFacts | None:
    """The facts stored by :func:`remember_model` for ``config``'s model, or None."""
    key = model_facts_key(config)
    facts = None if key is None else _load_fact(cache, key)
    return None if facts is None else read_model_facts(facts)


def cached_layers(cache: Cache, config: ExplorerConfig) -> list[LayerInfo] | None:
    """The layer list of ``config``'s model from the cache (as
    ``semrsm.layers.list_layers`` gave it), or None when not stored."""
    facts = model_facts(cache, config)
    return None if facts is None else list(facts.layers)


# ----------------------------------------------------------------------- results
def _find(layers: Sequence[LayerInfo], name: str | None) -> LayerInfo | None:
    from semrsm.explorer.sources import default_layer

    if name is None:
        return default_layer(layers)
    return next((li for li in layers if li.name == name), None)


def _mean_std(data_config: Mapping[str, Any]) -> tuple[Any, Any] | None:
    if "mean" in data_config and "std" in data_config:
        return tuple(data_config["mean"]), tuple(data_config["std"])
    return None


def build_result(
    config: ExplorerConfig,
    images: ImageSet,
    tok: Mapping[str, np.ndarray],
    rs: Mapping[str, np.ndarray],
    proba: np.ndarray | None,
    model: Any,
    layer: LayerInfo,
    layers: Sequence[LayerInfo],
    *,
    timings: dict[str, float],
    hits: dict[str, bool],
    key: str,
    transform: Callable[[Any], Any] | None,
    params: Mapping[str, Any],
) -> ExplorerResult:
    """The :class:`ExplorerResult` of a run from its cache entries (shared by
    :func:`semrsm.explorer.compute` and :func:`cached_result`).

    Parameters
    ----------
    config : ExplorerConfig, with ``layer`` resolved
    images : ImageSet
    tok : tokens entry (:func:`semrsm.cache_schema.read_tokens`)
    rs : RSM entry (:func:`semrsm.cache_schema.read_rsms`)
    proba : (N, K) float64 or None
    model : semrsm.models.LoadedModel or :class:`ModelFacts`
    layer, layers : the layer used and all layers of the model
    timings, hits, key : seconds per stage, cache hits per stage, the RSM key
    transform : the model's preprocessing (for ``ExplorerResult.model_view``)
    params : ``config.params`` (the matcher's parameters with defaults)
    """
    from semrsm.figures.neighbours import make_thumbnails

    tokens, grid = read_tokens(tok)
    rsms = read_rsms(rs)
    return ExplorerResult(
        config=config,
        images=list(images.images),
        thumbnails=make_thumbnails(images.images, 96),
        names=list(images.names),
        labels=list(images.labels) if images.labels is not None else None,
        skipped=list(images.skipped),
        description=images.description,
        meta=dict(images.meta),
        tokens=tokens,
        grid=grid,
        layer=layer,
        layers=list(layers),
        spatial=rsms.spatial,
        semantic=rsms.semantic,
        inner=rsms.inner,
        pairs=rsms.pairs,
        perms=rsms.perms,
        proba=proba,
        class_names=list(model.class_names) if getattr(model, "class_names", None) else None,
        model_name=model.name,
        weights=model.weights,
        weights_id=model.weights_id,
        sigma2=rsms.sigma2,
        timings=timings,
        cache_hits=hits,
        key=key,
        matcher_params=dict(params),
        _transform=transform,
        _mean_std=_mean_std(getattr(model, "data_config", None) or {}),
    )


def cached_result(
    config: ExplorerConfig, cache: Cache, images: ImageSet
) -> ExplorerResult | None:
    """The result :func:`semrsm.explorer.compute` would return for ``config``, when every
    part of it is in the cache; otherwise None. Imports neither torch nor timm.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
    images : ImageSet, the image set of ``config`` (:func:`semrsm.explorer.load_images`)

    Returns
    -------
    ExplorerResult or None
        None when a fact or an entry is missing, stale or invalid, or the configuration
        is one ``compute`` would reject (the caller then calls ``compute``, which says why).
    """
    if config.kernel not in KERNELS or not config.model.strip() or config.device not in DEVICES:
        return None
    if config.device == "cuda" and not cuda_available():
        return None  # compute says that there is no GPU
    facts = model_facts(cache, config)
    try:
        params = config.params
    except ValueError:
        return None  # compute says what is wrong
    if facts is None:
        return None
    layer = _find(facts.layers, config.layer)
    if layer is None:
        return None
    n = len(images)
    digest = images_digest(images)
    tk = tokens_key(facts, layer.name, digest)
    rk = rsm_key(tk, config.matcher, params)
    if tk not in cache or rk not in cache:
        return None
    proba = None
    if facts.has_classifier is not False:
        proba = load_proba(cache, proba_key(facts, digest), n)
        if proba is None:
            return None
    tok = load_tokens(cache, tk, n)
    if tok is None:
        return None
    rs = load_rsms(cache, rk, *read_tokens(tok)[0].shape[:2])
    if rs is None:
        return None
    hits = {"tokens": True, "rsm": True, "proba": proba is not None}
    return build_result(
        config.replace(layer=layer.name), images, tok, rs, proba, facts, layer, facts.layers,
        timings={"total": 0.0}, hits=hits, key=rk, transform=facts.transform, params=params,
    )
