"""Compile the app's numba code once per server, in the background, and keep it on disk.

The matchers are numba functions with ``cache=True``; UMAP (``umap-learn`` and
``pynndescent``) compiles about 60 numba functions on its first run, and most of them
(the parallel ones among them) are *not* cached by those packages, so every new server
process paid about 10 s again (40 s on a fresh install) on its first embedding.
:func:`cache_umap` turns numba's on-disk cache on for them; :func:`warm_up` runs every
compiled path once on a tiny input; :func:`start_warm_up` does that in a daemon thread,
once per process, so a user's first click finds the code compiled.

Where numba keeps its cache is decided before numba is imported (the app sets
``NUMBA_CACHE_DIR`` to a folder of its own cache, see ``pages/_startup.py``).
"""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

#: the steps of :func:`warm_up`, in the order they run
STEPS = ("exact", "approximate", "umap")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_status: dict[str, float | str] = {}
_started = threading.Event()


def cache_umap() -> int:
    """Import UMAP and switch numba's on-disk cache on for its uncached functions.

    Only functions not compiled yet are changed (a compiled one keeps its in-memory
    code). Functions numba cannot cache (ones that take other functions as arguments)
    are left uncached by numba with a warning, which is silenced here.

    Returns
    -------
    int
        How many functions were switched.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # noqa: F401 - imports pynndescent too
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    switched = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("umap", "pynndescent")):
            continue
        for obj in list(vars(module).values()):
            if (
                isinstance(obj, Dispatcher)
                and isinstance(getattr(obj, "_cache", None), NullCache)
                and not obj.overloads
            ):
                obj.enable_caching()
                switched += 1
    return switched


def _tokens(n: int = 4, s: int = 16, c: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.abs(rng.standard_normal((n, s, c))).astype(np.float32)


def _warm_matchers(names: Sequence[str], device: str) -> None:
    import semrsm
    from semrsm.kernels import KERNELS

    tokens = _tokens()
    for matcher in names:
        params = {"window": 4} if matcher == "batch_optimal" else {}
        if matcher == "topk_greedy":
            params = {"k": 4}
        # the same call the explorer's pipeline makes, so the same signatures compile
        semrsm.semantic_rsm(
            tokens,
            kernel=list(KERNELS),
            matcher=matcher,
            device=device,
            return_matchings=True,
            return_result=True,
            **params,
        )


def _warm_umap() -> None:
    from semrsm.embedding import embed_rsm

    cache_umap()
    x = _tokens(24, 4, 6).reshape(24, -1).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    embed_rsm(x @ x.T, "cosine", method="umap", n_neighbors=15, seed=0)


def warm_up(
    steps: Sequence[str] = STEPS,
    *,
    device: str = "auto",
    before: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Run each compiled path of the app once on a tiny input.

    Parameters
    ----------
    steps : sequence of "exact", "approximate", "umap"
        What to compile, in this order.
    device : str
        The device the app computes on ("auto", "cpu", "cuda").
    before : callable, optional
        Called with the step's name before it starts (the background thread waits there
        for the first page to be drawn before the long UMAP step).

    Returns
    -------
    dict
        Seconds per step; a step that failed maps to NaN (the app then compiles on first
        use, as without a warm-up).

    Raises
    ------
    ValueError
        An unknown step.
    """
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown warm-up step(s) {unknown}; choose from {STEPS}")
    from semrsm.matching import MATCHERS

    approximate = [m for m in MATCHERS if m not in ("exact", "identity")]
    out: dict[str, float] = {}
    for step in steps:
        if before is not None:
            before(step)
        t0 = time.perf_counter()
        try:
            if step == "exact":
                _warm_matchers(["exact"], device)
            elif step == "approximate":
                _warm_matchers(approximate, device)
            else:
                _warm_umap()
            out[step] = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a warm-up must never break the app
            out[step] = float("nan")
            _status[f"{step}_error"] = f"{type(err).__name__}: {err}"[:300]
        _status[step] = out[step]
    return out


def start_warm_up(
    device: str = "auto", *, wait_for: threading.Event | None = None, wait_s: float = 30.0
) -> threading.Thread:
    """Start :func:`warm_up` in a daemon thread, once per process (later calls return the
    same thread).

    Parameters
    ----------
    device : str
        As :func:`warm_up`.
    wait_for : threading.Event, optional
        The steps after "exact" wait for this event (at most ``wait_s`` seconds), so the
        long UMAP compile does not compete for the two cores with the first page.
    wait_s : float

    Returns
    -------
    threading.Thread
    """
    global _thread
    with _lock:
        if _thread is not None:
            return _thread

        def before(step: str) -> None:
            _status["running"] = step
            if step != "exact" and wait_for is not None:
                wait_for.wait(wait_s)

        def run() -> None:
            _status["started"] = time.time()
            out = warm_up(("exact", "umap", "approximate"), device=device, before=before)
            # a step can fail on a module that the script thread was importing at the same
            # moment (seen as a half-initialised module); one retry, a little later
            failed = [step for step, sec in out.items() if sec != sec]
            if failed:
                time.sleep(2.0)
                warm_up(failed, device=device)
            _status["running"] = ""
            _status["finished"] = time.time()

        _thread = threading.Thread(target=run, name="semrsm-warm-up", daemon=True)
        _started.set()
        _thread.start()
        return _thread


def status() -> dict[str, float | str]:
    """What the background warm-up did so far: seconds per finished step, ``running``
    (the step in progress, "" when done), ``started``/``finished`` (epoch seconds)."""
    return dict(_status)
