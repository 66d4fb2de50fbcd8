"""How long a run will take before it starts, and what it will do (:class:`RunPlan`)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from semrsm.cache import Cache
from semrsm.explorer.config import LONG_RUN_SECONDS, ExplorerConfig, ExplorerError
from semrsm.explorer.keys import images_digest, proba_key, rsm_key, tokens_key
from semrsm.explorer.sources import _find_layer, _inputs
from semrsm.images import ImageSet
from semrsm.matching import MATCHERS

# Pairs per second of ``semantic_rsm`` on the 2-core development machine (idle, 2026-11-26),
# measured on the demo CNN's tokens of the shapes set, times 0.7 as a margin: S = 16 ... 1024
# are its layers (C = 192 ... 32); S = 4096 is extrapolated. Keys: positions S.
_CPU_PAIRS_PER_S: dict[str, dict[int, float]] = {
    "exact": {16: 32000.0, 64: 4400.0, 256: 350.0, 1024: 19.0, 4096: 0.29},
    "batch_optimal": {16: 32000.0, 64: 3300.0, 256: 640.0, 1024: 133.0, 4096: 22.0},
    "topk_greedy": {16: 29000.0, 64: 8800.0, 256: 1400.0, 1024: 63.0, 4096: 6.3},
    "greedy": {16: 53000.0, 64: 21000.0, 256: 1500.0, 1024: 77.0, 4096: 6.4},
    "identity": {16: 1e6, 64: 5e5, 256: 1e5, 1024: 2e4, 4096: 2e3},
}
_GPU_SPEEDUP = 20.0  # not measured here (no GPU on the dev machine): a conservative guess
_CPU_SECONDS_PER_IMAGE = 0.004  # demo models; bigger timm models are measured (seconds_per_image)
_measured: dict[tuple[str, str, int], float] = {}  # (matcher, device, S) -> pairs/s seen here


def _interp_rate(table: Mapping[int, float], s: int) -> float:
    keys = sorted(table)
    if s <= keys[0]:
        return table[keys[0]] * (keys[0] / max(s, 1)) ** 2
    if s >= keys[-1]:
        return table[keys[-1]] * (keys[-1] / s) ** 3
    for lo, hi in zip(keys, keys[1:], strict=False):
        if lo <= s <= hi:
            t = (math.log(s) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return math.exp((1 - t) * math.log(table[lo]) + t * math.log(table[hi]))
    return table[keys[-1]]


def estimate_seconds(
    n_images: int,
    num_tokens: int,
    *,
    matcher: str = "exact",
    device: str = "cpu",
    tokens_cached: bool = False,
    rsm_cached: bool = False,
    seconds_per_image: float | None = None,
) -> dict[str, float]:
    """Rough time of a run before it starts.

    Parameters
    ----------
    n_images : int
        Number of images N (``N(N-1)/2`` pairs are matched).
    num_tokens : int
        Positions S of the layer.
    matcher : str
        A name of :data:`semrsm.matching.MATCHERS`.
    device : str
        "cpu" or "cuda" (resolved).
    tokens_cached, rsm_cached : bool
        Parts already in the cache cost nothing.
    seconds_per_image : float, optional
        Measured forward time per image; default a small-model guess.

    Returns
    -------
    dict
        ``extract``, ``match`` and ``total`` seconds and ``pairs`` (the number of pairs).
        Rates come from measurements on the development machine, refined by the
        runs of this process.

    Raises
    ------
    ExplorerError
        Unknown matcher or non-positive sizes.
    """
    if matcher not in MATCHERS:
        raise ExplorerError(f"matcher: {matcher!r} is not one of {tuple(MATCHERS)}")
    if n_images < 1 or num_tokens < 1:
        raise ExplorerError("estimate needs at least one image and one token")
    pairs = n_images * (n_images - 1) // 2
    per_image = _CPU_SECONDS_PER_IMAGE if seconds_per_image is None else seconds_per_image
    extract = 0.0 if tokens_cached else n_images * per_image
    rate = _measured.get((matcher, device, num_tokens))
    if rate is None:
        rate = _interp_rate(_CPU_PAIRS_PER_S[matcher], num_tokens)
        if device == "cuda":
            rate *= _GPU_SPEEDUP
    match = 0.0 if rsm_cached else pairs / rate
    return {"extract": extract, "match": match, "total": extract + match, "pairs": float(pairs)}


def _record_rate(matcher: str, device: str, s: int, pairs: int, seconds: float) -> None:
    if pairs >= 50 and seconds > 0.05:
        _measured[(matcher, device, s)] = pairs / seconds


_forward_seconds: dict[tuple[str, str], float] = {}


def seconds_per_image(model: Any, layer: str) -> float:
    """Forward time per image of ``model``, measured once per model and device on a
    batch of 8 (after one warm-up image), so per-batch overheads are included."""
    key = (f"{model.name}:{model.weights_id}", str(model.device))
    if key not in _forward_seconds:
        from semrsm.layers import extract_tokens

        img = Image.new("RGB", (96, 96), (128, 128, 128))
        extract_tokens(model, [img], layer)  # warm-up
        t0 = time.perf_counter()
        extract_tokens(model, [img] * 8, layer)
        _forward_seconds[key] = (time.perf_counter() - t0) / 8
    return _forward_seconds[key]


@dataclass
class RunPlan:
    """What a run will do before it starts (for the "this will take ..." notice).

    Attributes
    ----------
    config : ExplorerConfig (with ``layer`` resolved)
    layer : semrsm.layers.LayerInfo
    n_images : int
    digest, tokens_key, rsm_key, proba_key : str, the cache keys
    tokens_cached, rsm_cached : bool
    estimate : dict, from :func:`estimate_seconds`
    device : str, resolved ("cpu" or "cuda")
    """

    config: ExplorerConfig
    layer: Any
    n_images: int
    digest: str
    tokens_key: str
    rsm_key: str
    proba_key: str
    tokens_cached: bool
    rsm_cached: bool
    estimate: dict[str, float]
    device: str

    @property
    def seconds(self) -> float:
        """Estimated total seconds."""
        return self.estimate["total"]

    @property
    def is_long(self) -> bool:
        """True when the run should wait for an explicit click."""
        return self.seconds > LONG_RUN_SECONDS


def plan(
    config: ExplorerConfig,
    cache: Cache,
    *,
    model: Any = None,
    images: ImageSet | None = None,
    measure_forward: bool = True,
) -> RunPlan:
    """Resolve the layer, the cache keys and the time estimate of a run.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
    model : semrsm.models.LoadedModel, optional
        Default :func:`load_model` (pass one held by the app to avoid reloading).
    images : ImageSet, optional
        Default :func:`load_images`.
    measure_forward : bool
        Time one small forward pass when the tokens are not cached, for the estimate.

    Raises
    ------
    ExplorerError, semrsm.models.ModelError, semrsm.images.ImageError
        As :func:`load_model` and :func:`load_images`; an unknown layer.
    """
    device, model, images = _inputs(config, cache, model, images)
    layer, _ = _find_layer(model, config.layer)
    digest = images_digest(images)
    tk = tokens_key(model, layer.name, digest)
    rk = rsm_key(tk, config.matcher, config.params)
    pk = proba_key(model, digest)
    tokens_cached = tk in cache
    rsm_cached = rk in cache
    spi = None
    if measure_forward and not tokens_cached:
        try:
            spi = seconds_per_image(model, layer.name)
        except Exception:  # noqa: BLE001 - only an estimate; the real run reports errors
            spi = None
    est = estimate_seconds(
        len(images),
        layer.num_tokens,
        matcher=config.matcher,
        device=device,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        seconds_per_image=spi,
    )
    return RunPlan(
        config=config.replace(layer=layer.name),
        layer=layer,
        n_images=len(images),
        digest=digest,
        tokens_key=tk,
        rsm_key=rk,
        proba_key=pk,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        estimate=est,
        device=device,
    )
