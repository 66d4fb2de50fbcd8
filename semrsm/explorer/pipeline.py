"""Running a configuration: tokens, both RSMs and class probabilities, each served from or
stored in the cache, for one layer (:func:`compute`) or several (:func:`layer_rsms`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

import semrsm
from semrsm.cache import Cache
from semrsm.explorer.cached import (
    RSM_ARRAYS,
    TOKEN_ARRAYS,
    build_result,
    remember_model,
)
from semrsm.explorer.cached import rsm_valid as _rsm_valid
from semrsm.explorer.cached import tokens_valid as _tokens_valid
from semrsm.explorer.config import (
    PERMS_MAX_BYTES,
    ComputeError,
    ExplorerConfig,
    ExplorerError,
    Progress,
)
from semrsm.explorer.estimate import _record_rate
from semrsm.explorer.keys import images_digest, proba_key, rsm_key, tokens_key
from semrsm.explorer.result import ExplorerResult
from semrsm.explorer.sources import _find_layer, _inputs
from semrsm.images import ImageSet
from semrsm.kernels import KERNELS
from semrsm.rsm import spatial_rsm
from semrsm.tokens import FeatureOverflowError, check_magnitude


def _oom_message(device: str) -> str:
    if device == "cuda":
        return (
            "ran out of GPU memory: choose the CPU device, fewer images, or a deeper layer "
            "(fewer positions)"
        )
    return (
        "ran out of memory: use fewer images, a deeper layer (fewer positions) or a smaller model"
    )


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
    )


@contextmanager
def _memory_errors_as_compute_errors(device: str) -> Iterator[None]:
    """Turn running out of (GPU) memory into a :class:`ComputeError` that says what to try,
    after freeing what the failed step held on the GPU."""
    try:
        yield
    except (ExplorerError, ComputeError):
        raise
    except Exception as err:
        if _is_oom(err):
            _free_gpu()
            raise ComputeError(_oom_message(device)) from err
        raise


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, int(done), int(total))


def _tokens(model: Any, imageset: ImageSet, layer: str, progress: Progress | None):
    from semrsm.layers import extract_tokens

    return _token_arrays(
        extract_tokens(model, imageset.images, layer, progress=_stage(progress, "extract"))
    )


def _token_arrays(out: Any) -> dict[str, np.ndarray]:
    """The cache entry of one layer's ``semrsm.layers.Tokens``."""
    return {
        "tokens": np.ascontiguousarray(out.tokens, dtype=np.float32),
        "grid": np.asarray(out.grid, dtype=np.int64),
    }


def _grid(arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    return int(arrays["grid"][0]), int(arrays["grid"][1])


def _by_kernel(arrays: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    """``{kernel: RSM}`` of one kind ("spatial" or "semantic") from an RSM cache entry."""
    return {k: arrays[f"{kind}_{k}"] for k in KERNELS}


def _rsms(tokens: np.ndarray, config: ExplorerConfig, device: str, progress: Progress | None):
    n, s, _ = tokens.shape
    pairs = n * (n - 1) // 2
    keep = pairs * s * 4 <= PERMS_MAX_BYTES
    t0 = time.perf_counter()
    try:
        check_magnitude(torch.from_numpy(np.ascontiguousarray(tokens)))
    except FeatureOverflowError as err:
        raise ComputeError(
            f"the layer's activations are too large to compare (largest token norm "
            f"{err.max_norm:.3g}): their products overflow float32. The model's weights are "
            "probably broken or badly scaled; pick another checkpoint or layer"
        ) from None
    spatial = spatial_rsm(tokens, kernel=list(KERNELS), device=device)
    # looked up on the package at call time, so callers and tests can swap the solver
    res = semrsm.explorer.semantic_rsm(
        tokens,
        kernel=list(KERNELS),
        matcher=config.matcher,
        device=device,
        progress=_stage(progress, "match"),
        return_matchings=keep,
        return_result=True,
        **config.params,
    )
    seconds = time.perf_counter() - t0
    _record_rate(config.matcher, device, s, pairs, seconds)
    arrays = {f"spatial_{k}": spatial[k] for k in KERNELS}
    arrays.update({f"semantic_{k}": res.rsm[k] for k in KERNELS})
    arrays["inner"] = res.inner
    if keep and res.perms is not None:
        arrays["perms"] = res.perms.astype(np.int32)
        arrays["pairs"] = np.asarray(res.pairs, dtype=np.int64)
    from semrsm.kernels import median_sigma2, squared_distances

    meta = {
        "seconds": seconds,
        "sigma2": {
            # the linear spatio-semantic RSM is the matrix of plain inner products
            "spatial": float(median_sigma2(squared_distances(spatial["linear"]))),
            "semantic": float(res.sigma2.get("rbf", float("nan"))),
        },
    }
    return arrays, meta


def compute(
    config: ExplorerConfig,
    cache: Cache,
    *,
    progress: Progress | None = None,
    model: Any = None,
    images: ImageSet | None = None,
    with_proba: bool = True,
) -> ExplorerResult:
    """Run (or fetch from the cache) everything the explorer shows for ``config``.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
        Tokens, RSMs and probabilities are read from / written to it; two sessions
        asking for the same entry compute it once.
    progress : callable, optional
        ``progress(stage, done, total)`` with stage "extract" (images) or "match" (pairs)
        or "predict" (images).
    model : semrsm.models.LoadedModel, optional
        A model already loaded for ``config`` (the app holds them with
        ``st.cache_resource``); default :func:`load_model`.
    images : ImageSet, optional
        The image set of ``config``; default :func:`load_images`.
    with_proba : bool
        Also compute the class probabilities (when the model has a classifier).

    Returns
    -------
    ExplorerResult

    Raises
    ------
    ExplorerError
        Bad configuration (unknown layer, no data root, too few images, ...).
    semrsm.models.ModelError, semrsm.images.ImageError (ValueError)
        Unknown model or unusable weights; a malformed image-set spec or folder.
    ComputeError
        Out of (GPU) memory; the message says what to try.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    device, model, images = _inputs(config, cache, model, images, timings)
    layer, layers = _find_layer(model, config.layer)
    config = config.replace(layer=layer.name)
    digest = images_digest(images)
    tk = tokens_key(model, layer.name, digest)
    rk = rsm_key(tk, config.matcher, config.params)
    hits: dict[str, bool] = {}
    with _memory_errors_as_compute_errors(device):
        t0 = time.perf_counter()
        tok, hits["tokens"] = cache.get_or_compute(
            tk, lambda: (_tokens(model, images, layer.name, progress), {"layer": layer.name}),
            required=TOKEN_ARRAYS, valid=_tokens_valid(len(images)),
        )
        timings["extract"] = time.perf_counter() - t0
        tokens = tok["tokens"]
        t0 = time.perf_counter()
        rs, hits["rsm"] = cache.get_or_compute(
            rk, lambda: _rsms(tokens, config, device, progress),
            required=RSM_ARRAYS, valid=_rsm_valid(*tokens.shape[:2]),
        )
        timings["match"] = time.perf_counter() - t0
        proba = None
        if with_proba:
            t0 = time.perf_counter()
            proba, hits["proba"] = _proba(model, images, cache, proba_key(model, digest), progress)
            timings["predict"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    # what cached_result needs to serve this run again without loading the model
    remember_model(cache, config, model, layers, has_classifier=(proba is not None) if with_proba else None)
    return build_result(
        config, images, tok, rs, proba, model, layer, layers,
        timings=timings, hits=hits, key=rk, transform=getattr(model, "transform", None),
        params=config.params,
    )


def _free_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _proba(model: Any, images: ImageSet, cache: Cache, key: str, progress: Progress | None):
    """Class probabilities, or (None, False) when the model has no classifier."""
    from semrsm.layers import predict_proba

    def run():
        p = predict_proba(model, images.images, progress=_stage(progress, "predict"))
        return {"proba": np.asarray(p, dtype=np.float64)}

    try:
        arrays, hit = cache.get_or_compute(
            key, run, required=("proba",), valid=lambda a: a["proba"].shape[0] == len(images)
        )
    except ValueError:
        return None, False  # e.g. a model without a classification head
    return arrays["proba"], hit


def layer_rsms(
    config: ExplorerConfig,
    cache: Cache,
    layers: Sequence[str],
    *,
    model: Any = None,
    images: ImageSet | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Both RSMs (all kernels) for several layers, sharing the cache with :func:`compute`.

    Tokens of the layers not yet cached are extracted in one forward pass per batch
    (:func:`semrsm.layers.extract_layers`); each layer's RSMs are then served from or
    stored in the cache under the same keys :func:`compute` uses.

    Parameters
    ----------
    config : ExplorerConfig (its ``layer`` is ignored)
    cache : Cache
    layers : sequence of str, layer names
    model, images, progress : as :func:`compute` (progress stage "extract" counts images,
        "match" counts pairs of the layer being matched)

    Returns
    -------
    dict layer → {"spatial": {kernel: (N, N)}, "semantic": {kernel: (N, N)},
    "grid": (H, W)}

    Raises
    ------
    As :func:`compute`.
    """
    from semrsm.layers import extract_layers

    device, model, images = _inputs(config, cache, model, images)
    for name in layers:
        _find_layer(model, name)
    digest = images_digest(images)
    keys = {name: tokens_key(model, name, digest) for name in layers}
    tokens: dict[str, np.ndarray] = {}
    grids: dict[str, tuple[int, int]] = {}
    missing = []
    for name in layers:
        arrays = cache.load(keys[name], TOKEN_ARRAYS, _tokens_valid(len(images)))
        if arrays is None:
            missing.append(name)
        else:
            tokens[name] = arrays["tokens"]
            grids[name] = _grid(arrays)
    with _memory_errors_as_compute_errors(device):
        if missing:
            out = extract_layers(
                model, images.images, list(missing), progress=_stage(progress, "extract")
            )
            for name, tk_ in out.items():
                arrays = _token_arrays(tk_)
                cache.save(keys[name], arrays, meta={"layer": name})
                tokens[name] = arrays["tokens"]
                grids[name] = _grid(arrays)
        result = {}
        for name in layers:
            rk = rsm_key(keys[name], config.matcher, config.params)
            t = tokens[name]
            rs, _ = cache.get_or_compute(
                rk, lambda t=t: _rsms(t, config, device, progress),
                required=RSM_ARRAYS, valid=_rsm_valid(*t.shape[:2]),
            )
            result[name] = {
                "spatial": _by_kernel(rs, "spatial"),
                "semantic": _by_kernel(rs, "semantic"),
                "grid": grids[name],
            }
    return result
