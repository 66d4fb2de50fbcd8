"""What the cache holds: every kind of entry, its key, arrays, check, writer and reader.

:class:`semrsm.cache.Cache` stores named arrays under a key and knows nothing of what they
mean; this module is the one place that says it. For each kind of entry:

=============  ==========================  =========================================  ======================
kind           key                         arrays (dtype, shape)                      reader
=============  ==========================  =========================================  ======================
tokens         :func:`tokens_key`          ``tokens`` float32 (N, S, C), ``grid``     :func:`read_tokens`
                                           int64 (2,) with ``grid[0] * grid[1] == S``
RSMs           :func:`rsm_key`             :data:`RSM_ARRAYS` float64 (N, N) (both    :func:`read_rsms`
                                           RSMs, every kernel, and ``inner``);
                                           optional ``perms`` int32 (P, S) and
                                           ``pairs`` int64 (P, 2), P = N(N-1)/2;
                                           meta ``seconds``, ``sigma2``
probabilities  :func:`proba_key`           ``proba`` float64 (N, K)                   :func:`read_proba`
facts          :func:`fact_key`,           ``fact`` uint8 (1,) placeholder; the       :func:`load_fact`,
               :func:`model_facts_key`     facts are the entry's JSON meta            :func:`read_model_facts`
tiles          :func:`tile_key` of a       ``inner`` float64 (m_i, m_j); meta         :func:`read_tile`
               :func:`tile_run_key`        ``tile``, ``seconds``, ``run``
=============  ==========================  =========================================  ======================

Each kind has ``<KIND>_ARRAYS`` (the arrays an entry must hold), ``<kind>_valid`` (the
check of their shapes, run by :meth:`Cache.load`: a failing entry is dropped and
recomputed), ``<kind>_payload`` (the writer: what is stored) and ``read_<kind>`` (the
reader: arrays → values); ``load_<kind>`` and ``fetch_<kind>`` combine them with
:meth:`Cache.load` and :meth:`Cache.get_or_compute`.

Every key is made by :func:`semrsm.cache.content_key`, which hashes
:data:`semrsm.cache.CACHE_FORMAT`: a new cache format gives new keys of every kind, and the
manifest of every entry records the format it was written in. Changing what an entry
holds under the same inputs (another layout, dtype or meaning) means raising
``CACHE_FORMAT`` (or :data:`TILE_FORMAT` for tiles only).

Imports neither torch nor timm (the app reads finished results through this module
before those are imported).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import semrsm
from semrsm.cache import Cache, content_key
from semrsm.catalog import ASSETS_DIR, DEMO_MODELS
from semrsm.kernels import KERNELS
from semrsm.layer_info import LayerInfo

if TYPE_CHECKING:
    from semrsm.explorer.config import ExplorerConfig
    from semrsm.images import ImageSet
    from semrsm.scale.tiles import Tile

__all__ = [
    "FACT_ARRAYS",
    "PROBA_ARRAYS",
    "RSM_ARRAYS",
    "TILE_ARRAYS",
    "TILE_FORMAT",
    "TOKEN_ARRAYS",
    "ModelFacts",
    "RsmEntry",
    "environment",
    "fact_key",
    "fetch_proba",
    "fetch_rsms",
    "fetch_tokens",
    "images_digest",
    "load_fact",
    "load_proba",
    "load_rsms",
    "load_tokens",
    "model_facts_key",
    "model_facts_payload",
    "proba_key",
    "proba_payload",
    "proba_valid",
    "read_model_facts",
    "read_proba",
    "read_rsms",
    "read_tile",
    "read_tokens",
    "rsm_key",
    "rsm_payload",
    "rsm_valid",
    "save_fact",
    "tile_key",
    "tile_payload",
    "tile_run_key",
    "tile_valid",
    "tokens_key",
    "tokens_payload",
    "tokens_valid",
    "weights_source",
]

Arrays = dict[str, np.ndarray]
Check = Callable[[Arrays], bool]


def _plain(obj: Any) -> Any:
    """JSON-able, hashable copy of a data config (tuples → lists, other objects → str)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def images_digest(imageset: ImageSet) -> str:
    """Content hash of the pixels (mode, size and bytes of every image, in order).

    Names and labels are not part of it: they do not change tokens or RSMs.

    Returns
    -------
    str, 64 hex digits.
    """
    parts = []
    for img in imageset.images:
        parts.append([img.mode, list(img.size), img.tobytes()])
    return content_key("images", parts)


# ----------------------------------------------------------------------- tokens
#: arrays of a tokens entry
TOKEN_ARRAYS = ("tokens", "grid")


def tokens_key(model: Any, layer: str, digest: str) -> str:
    """Key of a layer's tokens: model name + weights identity, layer, data config
    (preprocessing), image pixels (:func:`images_digest`) and package version."""
    return content_key(
        "tokens",
        semrsm.__version__,
        model.name,
        model.weights_id,
        layer,
        _plain(model.data_config),
        digest,
    )


def tokens_valid(n: int) -> Check:
    """Check of a stored tokens entry: (n, S, C) tokens whose grid has S cells."""

    def valid(a: Arrays) -> bool:
        t, g = a["tokens"], a["grid"]
        return t.ndim == 3 and t.shape[0] == n and g.shape == (2,) and int(g[0] * g[1]) == t.shape[1]

    return valid


def tokens_payload(tokens: Any, grid: Sequence[int], layer: str) -> tuple[Arrays, dict]:
    """What is stored for a layer's tokens.

    Parameters
    ----------
    tokens : array-like (N, S, C)
    grid : (H, W) with ``H * W == S``
    layer : the layer's name (kept as meta)

    Returns
    -------
    (arrays, meta) : ``tokens`` float32 C-contiguous, ``grid`` int64 (2,); ``{"layer": layer}``
    """
    arrays = {
        "tokens": np.ascontiguousarray(tokens, dtype=np.float32),
        "grid": np.asarray(grid, dtype=np.int64),
    }
    return arrays, {"layer": layer}


def read_tokens(arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
    """``(tokens (N, S, C) float32, (H, W))`` of a tokens entry."""
    return arrays["tokens"], (int(arrays["grid"][0]), int(arrays["grid"][1]))


def load_tokens(cache: Cache, key: str, n: int) -> Arrays | None:
    """The tokens entry ``key`` of ``n`` images, or None when missing or invalid."""
    return cache.load(key, TOKEN_ARRAYS, tokens_valid(n))


def fetch_tokens(
    cache: Cache, key: str, n: int, compute: Callable[[], tuple[Arrays, dict]]
) -> tuple[Arrays, bool]:
    """The tokens entry ``key`` of ``n`` images, computed (by ``compute``, returning
    :func:`tokens_payload`) and stored once when missing; ``(arrays, hit)``."""
    return cache.get_or_compute(key, compute, required=TOKEN_ARRAYS, valid=tokens_valid(n))


# ----------------------------------------------------------------------- RSMs
#: arrays every RSM entry holds: both RSMs for every kernel, and the matched inner products
RSM_ARRAYS = tuple(f"{kind}_{k}" for kind in ("spatial", "semantic") for k in KERNELS) + ("inner",)


def rsm_key(tok_key: str, matcher: str, params: Mapping[str, Any]) -> str:
    """Key of both RSMs (all kernels) and the matchings computed from some tokens
    (``tok_key``: :func:`tokens_key`) with a matcher and its parameters."""
    return content_key("rsm", semrsm.__version__, tok_key, list(KERNELS), matcher, dict(params))


def rsm_valid(n: int, s: int) -> Check:
    """Check of a stored RSM entry: every matrix (n, n), matchings (pairs, s) when kept."""

    def valid(a: Arrays) -> bool:
        if any(a[name].shape != (n, n) for name in RSM_ARRAYS):
            return False
        if "perms" in a:
            return a["perms"].shape == (n * (n - 1) // 2, s) and a["pairs"].shape == (n * (n - 1) // 2, 2)
        return True

    return valid


def rsm_payload(
    spatial: Mapping[str, np.ndarray],
    semantic: Mapping[str, np.ndarray],
    inner: np.ndarray,
    *,
    perms: np.ndarray | None = None,
    pairs: Any = None,
    seconds: float,
    sigma2: Mapping[str, float],
) -> tuple[Arrays, dict]:
    """What is stored for the RSMs of some tokens.

    Parameters
    ----------
    spatial, semantic : {kernel: (N, N)} for every kernel of :data:`semrsm.kernels.KERNELS`
    inner : (N, N) matched inner products
    perms, pairs : (P, S) matchings and their (P, 2) pairs, or None when not kept
    seconds : time the matching took
    sigma2 : RBF bandwidths ``{"spatial": ..., "semantic": ...}``

    Returns
    -------
    (arrays, meta) : :data:`RSM_ARRAYS` (+ ``perms`` int32, ``pairs`` int64); the meta.
    """
    arrays = {f"spatial_{k}": spatial[k] for k in KERNELS}
    arrays.update({f"semantic_{k}": semantic[k] for k in KERNELS})
    arrays["inner"] = inner
    if perms is not None:
        arrays["perms"] = perms.astype(np.int32)
        arrays["pairs"] = np.asarray(pairs, dtype=np.int64)
    return arrays, {"seconds": seconds, "sigma2": dict(sigma2)}


@dataclass(frozen=True)
class RsmEntry:
    """An RSM entry as read (:func:`read_rsms`).

    Attributes
    ----------
    spatial, semantic : {kernel: (N, N) float64}
    inner : (N, N) float64
    pairs : (P, 2) int64 or None; perms : (P, S) int32 or None (not kept when too large)
    sigma2 : dict, the RBF bandwidths (empty for entries without them)
    """

    spatial: dict[str, np.ndarray]
    semantic: dict[str, np.ndarray]
    inner: np.ndarray
    pairs: np.ndarray | None
    perms: np.ndarray | None
    sigma2: dict[str, float]


def read_rsms(arrays: Mapping[str, np.ndarray]) -> RsmEntry:
    """The :class:`RsmEntry` of an RSM entry's arrays (as :meth:`Cache.load` returns them)."""
    return RsmEntry(
        spatial={k: arrays[f"spatial_{k}"] for k in KERNELS},
        semantic={k: arrays[f"semantic_{k}"] for k in KERNELS},
        inner=arrays["inner"],
        pairs=arrays.get("pairs"),
        perms=arrays.get("perms"),
        sigma2=dict(Cache.meta(arrays).get("sigma2", {})),
    )


def load_rsms(cache: Cache, key: str, n: int, s: int) -> Arrays | None:
    """The RSM entry ``key`` of ``n`` images of ``s`` positions, or None."""
    return cache.load(key, RSM_ARRAYS, rsm_valid(n, s))


def fetch_rsms(
    cache: Cache, key: str, n: int, s: int, compute: Callable[[], tuple[Arrays, dict]]
) -> tuple[Arrays, bool]:
    """The RSM entry ``key``, computed (``compute`` returns :func:`rsm_payload`) and
    stored once when missing; ``(arrays, hit)``."""
    return cache.get_or_compute(key, compute, required=RSM_ARRAYS, valid=rsm_valid(n, s))


# ----------------------------------------------------------------------- probabilities
#: arrays of a class-probabilities entry
PROBA_ARRAYS = ("proba",)


def proba_key(model: Any, digest: str) -> str:
    """Key of the class probabilities of a model on some images."""
    return content_key(
        "proba", semrsm.__version__, model.name, model.weights_id, _plain(model.data_config), digest
    )


def proba_valid(n: int) -> Check:
    """Check of a stored probabilities entry: one row per image."""
    return lambda a: a["proba"].shape[0] == n


def proba_payload(proba: Any) -> Arrays:
    """What is stored for (N, K) class probabilities: ``proba`` float64."""
    return {"proba": np.asarray(proba, dtype=np.float64)}


def read_proba(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (N, K) float64 probabilities of an entry."""
    return arrays["proba"]


def load_proba(cache: Cache, key: str, n: int) -> np.ndarray | None:
    """The probabilities stored under ``key`` for ``n`` images, or None."""
    arrays = cache.load(key, PROBA_ARRAYS, proba_valid(n))
    return None if arrays is None else read_proba(arrays)


def fetch_proba(
    cache: Cache, key: str, n: int, compute: Callable[[], Arrays]
) -> tuple[np.ndarray, bool]:
    """The probabilities under ``key``, computed (``compute`` returns
    :func:`proba_payload`) and stored once when missing; ``(proba, hit)``."""
    arrays, hit = cache.get_or_compute(key, compute, required=PROBA_ARRAYS, valid=proba_valid(n))
    return read_proba(arrays), hit


# ----------------------------------------------------------------------- facts
#: arrays of a facts entry: a placeholder; the facts are the entry's JSON meta
FACT_ARRAYS = ("fact",)
#: source files whose code determines the facts (model facts, parameter defaults)
_FACT_SOURCES = ("models.py", "layers.py", "layer_info.py", "catalog.py", "matching")


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


def fact_key(kind: str, *parts: Any) -> str:
    """Key of a fact: its kind, :func:`environment` and ``parts`` (and, through
    :func:`content_key`, the cache format)."""
    return content_key("fact", kind, list(environment()), *parts)


def load_fact(cache: Cache, key: str) -> dict | None:
    """The facts stored under ``key``, or None when missing or unusable (a miss)."""
    if key not in cache:
        return None
    arrays = cache.load(key, FACT_ARRAYS)
    if arrays is None:
        return None
    try:
        facts = Cache.meta(arrays)
    except ValueError:  # not JSON: the caller recomputes, which stores them again
        return None
    return facts if isinstance(facts, dict) else None


def save_fact(cache: Cache, key: str, facts: Mapping[str, Any], *, replace: bool = False) -> None:
    """Store ``facts`` (JSON-able) under ``key``; an existing entry is kept unless ``replace``."""
    if replace or key not in cache:
        cache.save(key, {"fact": np.zeros(1, dtype=np.uint8)}, meta=dict(facts))


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


def model_facts_key(config: ExplorerConfig) -> str | None:
    """Key of the model facts of ``config``: its model, weights and checkpoint and
    :func:`weights_source`; None when the weights' source is unknown or missing."""
    source = weights_source(config)
    if source is None:
        return None
    checkpoint = config.checkpoint if config.weights == "file" else None
    return fact_key("model", config.model.strip(), config.weights, checkpoint, source)


@dataclass(frozen=True)
class ModelFacts:
    """What the cache keys and the pages need from a loaded model (see
    :class:`semrsm.models.LoadedModel`); serves as the ``model`` of :func:`tokens_key`
    and :func:`proba_key`."""

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


def model_facts_payload(
    model: Any, layers: Sequence[LayerInfo], has_classifier: bool | None
) -> dict[str, Any]:
    """The model facts stored for a loaded model (JSON-able), read by :func:`read_model_facts`."""
    return {
        "name": model.name,
        "weights": model.weights,
        "weights_id": model.weights_id,
        "data_config": _plain(model.data_config),
        "class_names": list(model.class_names) if getattr(model, "class_names", None) else None,
        "layers": [[li.name, li.kind, li.channels, list(li.grid), li.num_tokens] for li in layers],
        "has_classifier": has_classifier,
    }


def read_model_facts(facts: Mapping[str, Any]) -> ModelFacts | None:
    """The :class:`ModelFacts` of stored facts, or None when they do not have that form."""
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


# ----------------------------------------------------------------------- tiles
#: bump when the numbers a tile holds change meaning (tiles only; CACHE_FORMAT is hashed too)
TILE_FORMAT = "semrsm-tile-v1"
#: arrays of a tile entry
TILE_ARRAYS = ("inner",)


def tile_run_key(
    tokens_hash: str, matcher: str, params: Mapping[str, Any], backend: str, device_kind: str
) -> str:
    """The key shared by the tiles of one run: the tokens' digest, the matcher and its
    parameters, the backend, the kind of device and the code version."""
    return content_key(
        TILE_FORMAT, semrsm.__version__, tokens_hash, matcher, dict(params), backend, device_kind
    )


def tile_key(run: str, tile: Tile) -> str:
    """Key of one tile of run ``run`` (:func:`tile_run_key`): the run and its bounds."""
    return content_key(run, tile.i0, tile.i1, tile.j0, tile.j1)


def tile_valid(tile: Tile) -> Check:
    """Check of a stored tile: an (m_i, m_j) float64 block."""
    return lambda a: a["inner"].shape == tile.shape and a["inner"].dtype == np.float64


def tile_payload(tile: Tile, block: np.ndarray, seconds: float, run: str) -> tuple[Arrays, dict]:
    """What is stored for a finished tile: ``inner`` and its bounds, time and run as meta."""
    meta = {"tile": [tile.i0, tile.i1, tile.j0, tile.j1], "seconds": round(seconds, 4), "run": run}
    return {"inner": block}, meta


def read_tile(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The (m_i, m_j) float64 block of a tile entry."""
    return arrays["inner"]
