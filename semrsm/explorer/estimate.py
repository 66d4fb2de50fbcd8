"""How long a run will take before it starts, and what it will do (:class:`RunPlan`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from semrsm.cache import Cache
from semrsm.cache_schema import images_digest, proba_key, rsm_key, tokens_key
from semrsm.explorer.config import LONG_RUN_SECONDS, ExplorerConfig, ExplorerError
from semrsm.explorer.sources import _find_layer, _inputs
from semrsm.images import ImageSet
from semrsm.matching.registry import REGISTRY

# Pairs per second of ``semantic_rsm`` on the CPU: each matcher's ``cpu_rates`` in the
# registry (semrsm/matching/registry.py), positions S -> pairs/s on the 2-core development
# machine (how they were measured is written there); ``bench/bench_app.py`` prints
# estimate against measured time for the app's runs.
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


def _check_matcher(matcher: str) -> None:
    if matcher not in REGISTRY:
        raise ExplorerError(f"matcher: {matcher!r} is not one of {tuple(REGISTRY)}")


def cpu_rates(matcher: str) -> Mapping[int, float]:
    """The development machine's CPU rates of ``matcher`` (positions S → pairs per
    second), from the registry; a matcher that declares none gets the exact matcher's
    (an upper bound of the time)."""
    rates = REGISTRY[matcher].cpu_rates
    return rates if rates is not None else REGISTRY["exact"].cpu_rates


def table_rate(matcher: str, device: str, num_tokens: int) -> float:
    """Pairs per second from the development machine's table (CPU), or a rate measured by
    a run of this process on the same matcher, device and S.

    Raises
    ------
    ExplorerError
        Unknown matcher.
    """
    _check_matcher(matcher)
    rate = _measured.get((matcher, device, num_tokens))
    if rate is None:
        rate = _interp_rate(cpu_rates(matcher), num_tokens)
        if device == "cuda":
            rate *= _GPU_SPEEDUP
    return rate


def estimate_seconds(
    n_images: int,
    num_tokens: int,
    *,
    matcher: str = "exact",
    device: str = "cpu",
    tokens_cached: bool = False,
    rsm_cached: bool = False,
    proba_cached: bool = True,
    seconds_per_image: float | None = None,
    pairs_per_second: float | None = None,
) -> dict[str, float]:
    """Time of a run before it starts: extraction + matching + class probabilities.

    Parameters
    ----------
    n_images : int
        Number of images N (``N(N-1)/2`` pairs are matched).
    num_tokens : int
        Positions S of the layer.
    matcher : str
        A name of :data:`semrsm.matching.MATCHERS`.
    device : str
        "cpu" or "cuda" (resolved): the device that will run the job.
    tokens_cached, rsm_cached, proba_cached : bool
        Parts already in the cache cost nothing.
    seconds_per_image : float, optional
        Forward time per image on ``device`` (a probe, :func:`probe_forward`); default a
        small-model guess. Class probabilities cost one more forward pass per image.
    pairs_per_second : float, optional
        Matching rate on ``device`` (a probe, :func:`probe_matching`); default
        :func:`table_rate`.

    Returns
    -------
    dict
        ``extract``, ``match``, ``predict`` and ``total`` seconds, ``pairs`` (the number of
        pairs) and ``rate`` (the pairs per second used).

    Raises
    ------
    ExplorerError
        Unknown matcher or non-positive sizes or rates.
    """
    _check_matcher(matcher)
    if n_images < 1 or num_tokens < 1:
        raise ExplorerError("estimate needs at least one image and one token")
    if (pairs_per_second is not None and not pairs_per_second > 0) or (
        seconds_per_image is not None and not seconds_per_image >= 0
    ):
        raise ExplorerError("rates must be positive")
    pairs = n_images * (n_images - 1) // 2
    per_image = _CPU_SECONDS_PER_IMAGE if seconds_per_image is None else seconds_per_image
    extract = 0.0 if tokens_cached else n_images * per_image
    predict = 0.0 if proba_cached else n_images * per_image
    rate = pairs_per_second if pairs_per_second is not None else table_rate(
        matcher, device, num_tokens
    )
    match = 0.0 if rsm_cached else pairs / rate
    return {
        "extract": extract,
        "match": match,
        "predict": predict,
        "total": extract + match + predict,
        "pairs": float(pairs),
        "rate": float(rate),
    }


#: the first run of a process that has not loaded a model yet (a restarted app draws
#: cached results without one): importing timm and loading the demo model 1.5 s, the
#: matcher's first load from numba's cache 0.4 s (2-core machine, load 0.7, 2026-12-04)
MODEL_LOAD_SECONDS = 2.0


def estimate_layers(
    n_images: int,
    num_tokens: Sequence[int],
    *,
    matcher: str = "exact",
    device: str = "cpu",
    seconds_per_image: float | None = None,
    model_loaded: bool | None = None,
) -> dict[str, float]:
    """Time of an analysis over several layers (:func:`semrsm.explorer.layer_rsms`) when
    nothing is cached: loading the model if this process has not, one forward pass for
    all layers, and each layer's matching at the rate of :func:`table_rate` (the
    development machine's table, or what this process measured on the same matcher,
    device and S).

    Parameters
    ----------
    n_images : int
    num_tokens : positions S of each layer
    matcher, device : as :func:`estimate_seconds`
    seconds_per_image : float, optional; default a small-model guess
    model_loaded : bool, optional
        Whether a model is in memory; default: whether timm is imported (after a restart
        the app draws cached results without a model, and the first analysis then
        imports timm, loads the model and the matcher: :data:`MODEL_LOAD_SECONDS` more,
        which the old estimate left out: "about 1 s" for a 2.7 s run, 6 s on a busy
        machine).

    Returns
    -------
    dict with ``load``, ``extract``, ``match`` and ``total`` seconds.

    Raises
    ------
    ExplorerError
        Unknown matcher, or no image.
    """
    _check_matcher(matcher)
    if n_images < 1:
        raise ExplorerError("estimate needs at least one image")
    if model_loaded is None:
        import sys

        model_loaded = "timm" in sys.modules
    pairs = n_images * (n_images - 1) // 2
    per_image = _CPU_SECONDS_PER_IMAGE if seconds_per_image is None else seconds_per_image
    load = 0.0 if model_loaded else MODEL_LOAD_SECONDS
    extract = n_images * per_image if num_tokens else 0.0
    match = sum(pairs / table_rate(matcher, device, int(s)) for s in num_tokens)
    return {"load": load, "extract": extract, "match": match,
            "total": load + extract + match}


def _record_rate(matcher: str, device: str, s: int, pairs: int, seconds: float) -> None:
    if pairs >= 50 and seconds > 0.05:
        _measured[(matcher, device, s)] = pairs / seconds


#: probes of this process: key -> seconds per image or pairs per second
_probes: dict[str, float] = {}
#: a probe stops growing once one run takes this long (seconds)
PROBE_SECONDS = 0.4
#: at most this many timed runs of the probe's last size (the fastest counts)
PROBE_RUNS = 5
#: estimated matching below this (seconds, from the table) is not worth a probe
PROBE_ABOVE_SECONDS = 2.0


def probe_matching(
    tokens: np.ndarray,
    matcher: str,
    params: Mapping[str, Any],
    device: str,
    *,
    budget_s: float = PROBE_SECONDS,
    start_images: int | None = None,
    solver: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Pairs per second of the semantic RSM of these tokens, measured on the first few.

    The matcher runs once, untimed, on the first size (so any compile, the solver's
    worker threads and fresh memory are paid outside the timing), then on the first
    ``n`` images, ``n`` doubling from ``start_images`` until one run takes at least
    ``budget_s / 4`` or all images are used. Every size is run twice, the last one up to
    :data:`PROBE_RUNS` times within ``budget_s``, and the fastest run counts: the first
    calls of a batch with several pairs took 1.3× to 5× the steady time (at S = 1,024 the batch-optimal matcher's first two 4-image runs took 0.17 s
    each, the third 0.04 s; stopping there, as a "long enough" run, estimated a 15 s run
    at 68 s). The solver is called exactly as the real run calls it, with the same
    threads. Measuring on the data itself matters: the exact auction's speed depends on
    the features, not only on S.

    Parameters
    ----------
    tokens : ndarray (N, S, C), N >= 2
    matcher, params : the matcher and its parameters
    device : "cpu" or "cuda", the device that will run the job
    budget_s : float
        Target length of the last timed run.
    start_images : int, optional
        Default 4 on the CPU, 32 on CUDA (a GPU needs many pairs per launch to show
        its speed; fewer pairs give a pessimistic rate).
    solver, clock : injectable for tests (default :func:`semrsm.rsm.semantic_rsm`,
        ``time.perf_counter``).

    Returns
    -------
    float
        Pairs per second.

    Raises
    ------
    ExplorerError
        Fewer than two images.
    """
    n = int(tokens.shape[0])
    if n < 2:
        raise ExplorerError("a matching probe needs at least two images")
    if solver is None:
        from semrsm.rsm import semantic_rsm as solver
    kw = dict(kernel="linear", matcher=matcher, device=device, **dict(params))
    m = min(n, start_images or (32 if device == "cuda" else 4))
    solver(tokens[:m], **kw)  # compile / load / start threads outside the timing
    while True:
        elapsed, spent, runs, last = math.inf, 0.0, 0, False
        # twice at every size; at the last one up to PROBE_RUNS times, until budget_s is
        # spent there (identical 0.05 s runs took 0.04-0.12 s on a busy 2-core machine)
        while runs < 2 or (last and runs < PROBE_RUNS and spent < budget_s):
            t0 = clock()
            solver(tokens[:m], **kw)
            took = max(clock() - t0, 1e-6)
            elapsed, spent, runs = min(elapsed, took), spent + took, runs + 1
            last = elapsed >= budget_s / 4 or m >= n
        if last:
            return (m * (m - 1) // 2) / elapsed
        m = min(n, 2 * m)


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items spread evenly over ``items`` (first and last included): a probe on
    a set ordered by class or by source photo sees all of it, not its first part."""
    n = len(items)
    if count >= n:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, n - 1, max(count, 1))).astype(int))
    return [items[int(i)] for i in idx]


def probe_forward(
    model: Any,
    images: Sequence[Any],
    layer: str,
    *,
    count: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, np.ndarray]:
    """Forward time per image of ``model`` on ``count`` real images spread over the set
    (:func:`spread`; after a one-image warm-up), on the model's device; the faster of two
    runs counts (on a busy machine a single run of a few milliseconds was 5× too slow).

    Returns
    -------
    seconds_per_image : float
    tokens : ndarray (count, S, C) float32, the layer's tokens of those images (for
        :func:`probe_matching`).
    """
    from semrsm.layers import extract_tokens

    if count is None:
        count = 32 if str(getattr(model, "device", "cpu")).startswith("cuda") else 8
    count = max(1, min(count, len(images)))
    sample = spread(list(images), count)
    extract_tokens(model, sample[:1], layer)  # warm-up
    best, out = math.inf, None
    for _ in range(2):
        t0 = clock()
        out = extract_tokens(model, sample, layer)
        best = min(best, clock() - t0)
    return best / count, np.asarray(out.tokens, dtype=np.float32)


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
    sources : dict, for "extract" and "match": "probe" (measured here on this data and
        device), "table" or "guess"
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
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Estimated total seconds."""
        return self.estimate["total"]

    @property
    def slowest(self) -> str:
        """The part that takes longest: "extract", "match" or "predict"."""
        return max(("extract", "match", "predict"), key=lambda k: self.estimate.get(k, 0.0))

    @property
    def is_long(self) -> bool:
        """True when the run should wait for an explicit click."""
        return self.seconds > LONG_RUN_SECONDS


def _probe_key(*parts: Any) -> str:
    return "|".join(str(p) for p in parts)


def plan(
    config: ExplorerConfig,
    cache: Cache,
    *,
    model: Any = None,
    images: ImageSet | None = None,
    measure_forward: bool = True,
    probe: bool = True,
) -> RunPlan:
    """Resolve the layer, the cache keys and the time estimate of a run.

    The estimate uses rates of the device that will run the job, measured here: the
    forward pass on the first few images of the set (when the tokens are not cached),
    and the matcher on those images' tokens (or on the cached tokens) when the table's
    guess says the matching takes more than :data:`PROBE_ABOVE_SECONDS`. Probes are
    kept per process, keyed by the model, layer, data, matcher and device.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
    model : semrsm.models.LoadedModel, optional
        Default :func:`load_model` (pass one held by the app to avoid reloading).
    images : ImageSet, optional
        Default :func:`load_images`.
    measure_forward : bool
        Time the forward pass on a few images when the tokens are not cached.
    probe : bool
        Time the matcher on a few images' tokens when the matching may be long.

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
    proba_cached = pk in cache or not getattr(model, "class_names", None)
    n = len(images)
    sources: dict[str, str] = {}
    spi = None
    sample: np.ndarray | None = None
    # per-image forward time depends on the model, layer and device, not on the pictures
    # (preprocessing resizes them), so one probe serves every image set
    fkey = _probe_key("forward", model.name, model.weights_id, layer.name, device)
    if measure_forward and not (tokens_cached and proba_cached):
        if fkey in _probes:
            spi = _probes[fkey]
        else:
            try:
                spi, sample = probe_forward(model, images.images, layer.name)
                _probes[fkey] = spi
            except Exception:  # noqa: BLE001 - only an estimate; the real run reports errors
                spi = None
        sources["extract"] = "probe" if spi is not None else "guess"
    rate = None
    if not rsm_cached and n >= 2:
        mkey = _probe_key("match", tk, config.matcher, sorted(config.params.items()), device)
        guess = (n * (n - 1) // 2) / table_rate(config.matcher, device, layer.num_tokens)
        if mkey in _probes:
            rate = _probes[mkey]
        elif probe and guess > PROBE_ABOVE_SECONDS:
            try:
                if sample is None or len(sample) < 2:
                    arrays = cache.load(tk) if tokens_cached else None
                    if arrays is not None:
                        sample = arrays["tokens"]
                    else:
                        _, sample = probe_forward(model, images.images, layer.name)
                rate = probe_matching(sample, config.matcher, config.params, device)
                _probes[mkey] = rate
            except Exception:  # noqa: BLE001 - fall back to the table
                rate = None
        sources["match"] = "probe" if rate is not None else "table"
    # this call and RunPlan(...) below look alike (keyword lists): different things
    est = estimate_seconds(
        n,
        layer.num_tokens,
        matcher=config.matcher,
        device=device,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        proba_cached=proba_cached,
        seconds_per_image=spi,
        pairs_per_second=rate,
    )
    return RunPlan(
        config=config.replace(layer=layer.name),
        layer=layer,
        n_images=n,
        digest=digest,
        tokens_key=tk,
        rsm_key=rk,
        proba_key=pk,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        estimate=est,
        device=device,
        sources=sources,
    )
