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
from semrsm.cache_schema import (
    fetch_proba,
    fetch_rsms,
    fetch_tokens,
    images_digest,
    load_tokens,
    proba_key,
    proba_payload,
    read_rsms,
    read_tokens,
    rsm_key,
    rsm_payload,
    tokens_key,
    tokens_payload,
)
from semrsm.explorer.cached import build_result, remember_model
from semrsm.explorer.config import (
    PERMS_MAX_BYTES,
    ComputeError,
    ExplorerConfig,
    ExplorerError,
    Progress,
)
from semrsm.explorer.estimate import _record_rate
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
    """The tokens entry of one layer (:func:`semrsm.cache_schema.tokens_payload`)."""
    from semrsm.layers import extract_tokens

    out = extract_tokens(model, imageset.images, layer, progress=_stage(progress, "extract"))
    return tokens_payload(out.tokens, out.grid, layer)


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
    from semrsm.kernels import median_sigma2, squared_distances

    sigma2 = {
        # the linear spatio-semantic RSM is the matrix of plain inner products
        "spatial": float(median_sigma2(squared_distances(spatial["linear"]))),
        "semantic": float(res.sigma2.get("rbf", float("nan"))),
    }
    kept = keep and res.perms is not None
    return rsm_payload(
        spatial, res.rsm, res.inner, perms=res.perms if kept else None,
        pairs=res.pairs if kept else None, seconds=seconds, sigma2=sigma2,
    )


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
        tok, hits["tokens"] = fetch_tokens(
            cache, tk, len(images), lambda: _tokens(model, images, layer.name, progress)
        )
        timings["extract"] = time.perf_counter() - t0
        tokens, _ = read_tokens(tok)
        t0 = time.perf_counter()
        rs, hits["rsm"] = fetch_rsms(
            cache, rk, *tokens.shape[:2], lambda: _rsms(tokens, config, device, progress)
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
        return proba_payload(predict_proba(model, images.images, progress=_stage(progress, "predict")))

    try:
        return fetch_proba(cache, key, len(images), run)
    except ValueError:
        return None, False  # e.g. a model without a classification head


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
        arrays = load_tokens(cache, keys[name], len(images))
        if arrays is None:
            missing.append(name)
        else:
            tokens[name], grids[name] = read_tokens(arrays)
    with _memory_errors_as_compute_errors(device):
        if missing:
            out = extract_layers(
                model, images.images, list(missing), progress=_stage(progress, "extract")
            )
            for name, tk_ in out.items():
                arrays, meta = tokens_payload(tk_.tokens, tk_.grid, name)
                cache.save(keys[name], arrays, meta=meta)
                tokens[name], grids[name] = read_tokens(arrays)
        result = {}
        for name in layers:
            rk = rsm_key(keys[name], config.matcher, config.params)
            t = tokens[name]
            rs, _ = fetch_rsms(
                cache, rk, *t.shape[:2], lambda t=t: _rsms(t, config, device, progress)
            )
            entry = read_rsms(rs)
            result[name] = {"spatial": entry.spatial, "semantic": entry.semantic, "grid": grids[name]}
    return result
