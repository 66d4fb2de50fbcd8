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

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from semrsm.matching.registry import REGISTRY, get_matcher

#: the steps of :func:`warm_up`, in the order they run
STEPS = ("exact", "approximate", "umap")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_status: dict[str, float | str] = {}
_started = threading.Event()
_precompile: subprocess.Popen | None = None
#: file in numba's cache folder that records a finished compile of the exact matcher
MARKER = "semrsm-exact-compiled.json"


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
        params = dict(get_matcher(matcher).warmup or {})  # sized for S = 16
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


def compile_exact_without_torch() -> float:
    """Compile the exact matcher's kernel into numba's on-disk cache without importing
    torch; returns the seconds it took.

    The kernel lives in two modules that need only numpy and numba (``exact.py``,
    ``row_scan.py``), and ``semrsm.matching`` imports torch only with its solvers (on
    first use), so this process (the precompile of a fresh install,
    :func:`start_precompile`) loads just those, under their usual names: numba's cache
    entries are then the ones the app's process looks up. The batch is float64 and
    C-ordered, as ``exact_batch`` passes every batch the pipeline gives it, so the
    signature is the pipeline's too (``tests/test_explorer_cached.py`` checks that the
    app's first matching loads it).
    """
    t0 = time.perf_counter()
    from semrsm.matching.exact import exact_batch

    tokens = _tokens().astype(np.float64)
    exact_batch(np.einsum("bsc,btc->bst", tokens, tokens[::-1]), threads=1)
    return time.perf_counter() - t0


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
    out: dict[str, float] = {}
    for step in steps:
        if before is not None:
            before(step)
        t0 = time.perf_counter()
        try:
            if step == "exact":
                _warm_matchers(["exact"], device)
            elif step == "approximate":
                _warm_matchers([m for m, spec in REGISTRY.items()
                                if spec.approximate and spec.warmup is not None], device)
            else:
                _warm_umap()
            out[step] = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a warm-up must never break the app
            out[step] = float("nan")
            _status[f"{step}_error"] = f"{type(err).__name__}: {err}"[:300]
        _status[step] = out[step]
    return out


def start_warm_up(
    device: str = "auto",
    *,
    wait_for: threading.Event | None = None,
    wait_s: float = 30.0,
    start_on: threading.Event | None = None,
    settle_s: float = 0.0,
) -> threading.Thread:
    """Start :func:`warm_up` in a daemon thread, once per process (later calls return the
    same thread).

    Parameters
    ----------
    device : str
        As :func:`warm_up`.
    wait_for : threading.Event, optional
        Every step waits for this event (at most ``wait_s`` seconds), so compiling does
        not compete for the cores, nor for the GIL, with the first page: on a restart that
        page is drawn from the cache without any compiled code; on a fresh install it
        computes, with the exact matcher compiled by :func:`start_precompile`'s process.
    wait_s : float
    start_on : threading.Event, optional
        Set when the first page computes: the exact matcher is then warmed first (the
        user's next run needs it), else UMAP is (nothing needs to compute; an Embedding
        visit needs UMAP).
    settle_s : float
        Once ``wait_for`` is set, wait this much longer before the first step: the browser
        is still drawing the page the server has just sent, on the same cores.

    Returns
    -------
    threading.Thread
    """
    global _thread
    with _lock:
        if _thread is not None:
            return _thread

        settled = threading.Event()

        def before(step: str) -> None:
            _status["running"] = step
            if wait_for is None:
                return
            wait_for.wait(wait_s)
            if wait_for.is_set() and not settled.is_set():
                settled.set()
                time.sleep(settle_s)
            if step == "exact":
                wait_precompile()

        def run() -> None:
            _status["started"] = time.time()
            if wait_for is not None:
                wait_for.wait(wait_s)
            # after a page that computed, the exact matcher first (the next run needs it);
            # after a page drawn from the cache (a restart), UMAP: the Embedding page needs
            # it and it is the longest to load
            computing = start_on is not None and start_on.is_set()
            steps = ("umap", "exact", "approximate") if wait_for is not None and not computing \
                else ("exact", "umap", "approximate")
            out = warm_up(steps, device=device, before=before)
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


def _marker_text() -> str:
    from semrsm.explorer.cached import environment

    return json.dumps({"environment": list(environment()), "python": sys.version})


def exact_compiled(folder: str | os.PathLike | None = None) -> bool:
    """Whether numba's cache folder (default ``$NUMBA_CACHE_DIR``) holds the exact
    matcher compiled by this code and these package versions (:data:`MARKER`)."""
    folder = folder or os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        return False
    try:
        return (Path(folder) / MARKER).read_text() == _marker_text()
    except OSError:
        return False


def start_precompile() -> subprocess.Popen | None:
    """Compile the exact matcher into numba's on-disk cache in a separate process, once
    per process, when that cache lacks it (a fresh install).

    A separate process, not a thread: numba's compiler holds the GIL most of the time,
    so only a process compiles in parallel with this one importing torch and timm,
    loading the model and extracting tokens. The page waits for it
    (:func:`wait_precompile`) before its first matching, which then loads the compiled
    code from the cache. Needs ``$NUMBA_CACHE_DIR`` (the app sets it).

    Returns
    -------
    subprocess.Popen or None
        None when the cache holds the compiled code already, no cache folder is set, or
        the process could not start (the matcher then compiles in this process, as
        without a precompile).
    """
    global _precompile
    with _lock:
        if _precompile is not None or exact_compiled():
            return _precompile
        folder = os.environ.get("NUMBA_CACHE_DIR")
        if not folder:
            return None
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)}
        try:
            _precompile = subprocess.Popen(
                [sys.executable, "-m", "semrsm.explorer.warmup", "--precompile"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=package_parent,
            )
        except OSError:
            return None
        _status["precompile_started"] = time.time()
        return _precompile


def wait_precompile(timeout_s: float = 120.0) -> bool:
    """Wait for the process of :func:`start_precompile`, if one runs.

    Returns
    -------
    bool
        True when no process was started or it finished in time (successfully or not:
        on failure the matcher simply compiles in this process on first use).
    """
    proc = _precompile
    if proc is None:
        return True
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    _status.setdefault("precompile_finished", time.time())
    return True


def status() -> dict[str, float | str]:
    """What the background warm-up did so far: seconds per finished step, ``running``
    (the step in progress, "" when done), ``started``/``finished`` (epoch seconds)."""
    return dict(_status)


def _main(argv: Sequence[str]) -> int:
    """``python -m semrsm.explorer.warmup [STEP ...]``: run the steps (default all) and,
    after "exact", write :data:`MARKER` into ``$NUMBA_CACHE_DIR``.
    ``python -m semrsm.explorer.warmup --precompile``: only the exact matcher, without
    torch (:func:`compile_exact_without_torch`), then the marker."""
    if list(argv) == ["--precompile"]:
        steps = ["exact"]
        try:
            out = {"exact": compile_exact_without_torch()}
        except Exception:  # noqa: BLE001 - the app then compiles on first use
            out = {"exact": float("nan")}
    else:
        steps = list(argv) or list(STEPS)
        out = warm_up(steps)
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if "exact" in steps and out.get("exact") == out.get("exact") and folder:  # not NaN
        marker = Path(folder) / MARKER
        tmp = marker.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(_marker_text())
            os.replace(tmp, marker)
        except OSError:
            return 1
    return 0 if all(v == v for v in out.values()) else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
