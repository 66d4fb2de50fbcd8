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
(:mod:`semrsm.explorer.keys`), loads the tokens, RSMs and probabilities with the same
checks, and builds the :class:`ExplorerResult` with the same function
(:func:`build_result`), so a hit returns what a compute would. Anything missing, stale or
invalid is a miss (``None``): the caller computes, which stores the facts for next time.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import semrsm
from semrsm._platform import cuda_available
from semrsm.cache import Cache, content_key
from semrsm.catalog import ASSETS_DIR, DEMO_MODELS
from semrsm.explorer.config import DEVICES, ExplorerConfig
from semrsm.explorer.keys import _plain, images_digest, proba_key, rsm_key, tokens_key
from semrsm.explorer.result import ExplorerResult
from semrsm.images import ImageSet
from semrsm.kernels import KERNELS
from semrsm.layer_info import LayerInfo

__all__ = [
    "RSM_ARRAYS",
    "TOKEN_ARRAYS",
    "ModelFacts",
    "build_result",
    "cached_layers",
    "cached_result",
    "environment",
    "model_facts",
    "remember_model",
]

#: arrays of a tokens entry and of an RSM entry (all kernels of both RSMs)
TOKEN_ARRAYS = ("tokens", "grid")
RSM_ARRAYS = tuple(f"{kind}_{k}" for kind in ("spatial", "semantic") for k in KERNELS) + ("inner",)

#: source files whose code determines the facts (model facts, parameter defaults)
_FACT_SOURCES = ("models.py", "layers.py", "layer_info.py", "catalog.py", "matching")


# ----------------------------------------------------------------------- entry checks
def tokens_valid(n: int) -> Callable[[dict[str, np.ndarray]], bool]:
    """Check of a stored tokens entry: (n, S, C) tokens whose grid has S cells."""

    def valid(a: dict[str, np.ndarray]) -> bool:
        t, g = a["tokens"], a["grid"]
        return t.ndim == 3 and t.shape[0] == n and g.shape == (2,) and int(g[0] * g[1]) == t.shape[1]

    return valid


def rsm_valid(n: int, s: int) -> Callable[[dict[str, np.ndarray]], bool]:
    """Check of a stored RSM entry: every matrix (n, n), matchings (pairs, s) when kept."""

    def valid(a: dict[str, np.ndarray]) -> bool:
        if any(a[name].shape != (n, n) for name in RSM_ARRAYS):
            return False
        if "perms" in a:
            return a["perms"].shape == (n * (n - 1) // 2, s) and a["pairs"].shape == (n * (n - 1) // 2, 2)
        return True

    return valid


def proba_valid(n: int) -> Callable[[dict[str, np.ndarray]], bool]:
    """Check of a stored probabilities entry: one row per image."""
    return lambda a: a["proba"].shape[0] == n


# ----------------------------------------------------------------------- environment
@functools.lru_cache(maxsize=1)
def environment() -> tuple[str, ...]:
    """What, besides the configuration, determines the facts: package versions (semrsm,
    timm, torch, numba) and a SHA-256 of the source files of the models, layers and
    matchers (read as bytes, not imported). Computed once per process."""
    versions = [semrsm.__version__]
    for dist in ("timm", "torch", "numba"):
        try:
            versions.append(f"{dist}={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist}=none")
    h = hashlib.sha256()
    root = Path(semrsm.__file__).resolve().parent
    for name in _FACT_SOURCES:
        path = root / name
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(f.name.encode())
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"?")
    return (*versions, h.hexdigest())


def _file_identity(path: str | Path) -> list[Any] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def weights_source(config: ExplorerConfig) -> list[Any] | None:
    """Identity of where ``config``'s weights come from, without loading them.

    Returns
    -------
    list or None
        The demo weights file or the checkpoint as ``[path, size, mtime_ns]`` (a changed
        file gives another identity), ``["pretrained"]`` or ``["none"]``; None when the
        file is missing or the weights choice is unknown.
    """
    name = config.model.strip()
    if config.weights == "file":
        return _file_identity(config.checkpoint) if config.checkpoint else None
    if config.weights == "default":
        if name in DEMO_MODELS:
            return _file_identity(ASSETS_DIR / DEMO_MODELS[name]["file"])
        return ["none"]
    if config.weights in ("pretrained", "none"):
        return [config.weights]
    return None


# ----------------------------------------------------------------------- facts
def _fact_key(kind: str, *parts: Any) -> str:
    """Key of a fact: its kind, :func:`environment` and ``parts`` (and, through
    :func:`content_key`, the cache format)."""
    return content_key("fact", kind, list(environment()), *parts)


def _load_fact(cache: Cache, key: str) -> dict | None:
    """The facts stored under ``key``, or None when missing or unusable (a miss)."""
    if key not in cache:
        return None
    arrays = cache.load(key, ("fact",))
    if arrays is None:
        return None
    try:
        facts = Cache.meta(arrays)
    except ValueError:  # not JSON: the caller recomputes, which stores them again
        return None
    return facts if isinstance(facts, dict) else None


def _save_fact(cache: Cache, key: str, facts: Mapping[str, Any]) -> None:
    if key not in cache:
        cache.save(key, {"fact": np.zeros(1, dtype=np.uint8)}, meta=dict(facts))


@dataclass(frozen=True)
class ModelFacts:
    """What the cache keys and the pages need from a loaded model (see
    :class:`semrsm.models.LoadedModel`); serves as the ``model`` of
    :func:`semrsm.explorer.tokens_key` and :func:`semrsm.explorer.proba_key`."""

    name: str
    weights: str
    weights_id: str
    data_config: dict
    class_names: list[str] | None
    layers: tuple[LayerInfo, ...]
    has_classifier: bool | None

    def transform(self, image: Any) -> Any:
        """The model's preprocessing of one PIL image (timm's eval transform of
        :attr:`data_config`, as :func:`semrsm.models.create_model` builds it); imports timm
        on first use."""
        return _timm_transform(_frozen(self.data_config))(image)


def _frozen(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        return tuple(_frozen(v) for v in obj)
    return obj


@functools.lru_cache(maxsize=8)
def _timm_transform(frozen_config: tuple) -> Callable[[Any], Any]:
    import timm.data

    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in frozen_config}
    for k in ("input_size", "mean", "std"):
        if k in config:
            config[k] = tuple(config[k])
    return timm.data.create_transform(**config, is_training=False)


def _model_key(config: ExplorerConfig) -> str | None:
    source = weights_source(config)
    if source is None:
        return None
    checkpoint = config.checkpoint if config.weights == "file" else None
    return _fact_key("model", config.model.strip(), config.weights, checkpoint, source)


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
    key = _model_key(config)
    if key is None:
        return
    old = _load_fact(cache, key)
    if old is not None and (has_classifier is None or old.get("has_classifier") is not None):
        return
    if old is not None:
        cache.save(key, {"fact": np.zeros(1, dtype=np.uint8)}, meta={**old, "has_classifier": has_classifier})
        return
    _save_fact(cache, key, {
        "name": model.name,
        "weights": model.weights,
        "weights_id": model.weights_id,
        "data_config": _plain(model.data_config),
        "class_names": list(model.class_names) if getattr(model, "class_names", None) else None,
        "layers": [[li.name, li.kind, li.channels, list(li.grid), li.num_tokens] for li in layers],
        "has_classifier": has_classifier,
    })


def model_facts(cache: Cache, config: ExplorerConfig) -> ModelFacts | None:
    """The facts stored by :func:`remember_model` for ``config``'s model, or None."""
    key = _model_key(config)
    facts = None if key is None else _load_fact(cache, key)
    if facts is None:
        return None
    try:
        layers = tuple(
            LayerInfo(str(n), str(kind), int(c), (int(g[0]), int(g[1])), int(s))
            for n, kind, c, g, s in facts["layers"]
        )
        return ModelFacts(
            name=str(facts["name"]),
            weights=str(facts["weights"]),
            weights_id=str(facts["weights_id"]),
            data_config=dict(facts["data_config"]),
            class_names=facts["class_names"],
            layers=layers,
            has_classifier=facts.get("has_classifier"),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


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
    tok : tokens entry (``tokens`` (N, S, C) float32, ``grid`` (2,))
    rs : RSM entry (:data:`RSM_ARRAYS`, optional ``perms``/``pairs``, metadata)
    proba : (N, K) float64 or None
    model : semrsm.models.LoadedModel or :class:`ModelFacts`
    layer, layers : the layer used and all layers of the model
    timings, hits, key : seconds per stage, cache hits per stage, the RSM key
    transform : the model's preprocessing (for ``ExplorerResult.model_view``)
    params : ``config.params`` (the matcher's parameters with defaults)
    """
    from semrsm.figures.neighbours import make_thumbnails

    meta = Cache.meta(rs)
    return ExplorerResult(
        config=config,
        images=list(images.images),
        thumbnails=make_thumbnails(images.images, 96),
        names=list(images.names),
        labels=list(images.labels) if images.labels is not None else None,
        skipped=list(images.skipped),
        description=images.description,
        meta=dict(images.meta),
        tokens=tok["tokens"],
        grid=(int(tok["grid"][0]), int(tok["grid"][1])),
        layer=layer,
        layers=list(layers),
        spatial={k: rs[f"spatial_{k}"] for k in KERNELS},
        semantic={k: rs[f"semantic_{k}"] for k in KERNELS},
        inner=rs["inner"],
        pairs=rs.get("pairs"),
        perms=rs.get("perms"),
        proba=proba,
        class_names=list(model.class_names) if getattr(model, "class_names", None) else None,
        model_name=model.name,
        weights=model.weights,
        weights_id=model.weights_id,
        sigma2=dict(meta.get("sigma2", {})),
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
        arrays = cache.load(proba_key(facts, digest), ("proba",), proba_valid(n))
        if arrays is None:
            return None
        proba = arrays["proba"]
    tok = cache.load(tk, TOKEN_ARRAYS, tokens_valid(n))
    if tok is None:
        return None
    rs = cache.load(rk, RSM_ARRAYS, rsm_valid(*tok["tokens"].shape[:2]))
    if rs is None:
        return None
    hits = {"tokens": True, "rsm": True, "proba": proba is not None}
    return build_result(
        config.replace(layer=layer.name), images, tok, rs, proba, facts, layer, facts.layers,
        timings={"total": 0.0}, hits=hits, key=rk, transform=facts.transform, params=params,
    )
