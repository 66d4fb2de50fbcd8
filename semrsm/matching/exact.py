"""Exact linear assignment on CPU: a forward auction with ε-scaling, compiled by numba.

Why an auction: on CNN features the optimal matching uses many weak entries, so
shortest-augmenting-path solvers (scipy's) do a lot of work per row; the auction with
ε-scaling settles most rows in the coarse phases and only re-bids the contested ones.

Exactness certificate. At the end every row ``i`` is assigned to a column within ``ε`` of
its best ``max_j (a_ij − p_j)`` (ε-complementary slackness). With row potentials
``u_i = max_j (a_ij − p_j)``, ``(u, p)`` is dual feasible, so the optimum ``V*`` satisfies
``P ≤ V* ≤ D = Σ_i u_i + Σ_j p_j`` where ``P`` is the value of the returned assignment.
The solver lowers ε until the computed gap ``D − P`` is at most ``rtol · Σ_i max_j |a_ij|``
and returns that gap: the value is certified optimal to that relative tolerance
(default 1e-10), far below float32 feature noise. For integer costs with
``rtol · scale < 1`` it is the exact optimum.

The auction always ends. Each problem has a cap on its bids (``max_bids_per_row · S``, about
16× what the hardest real features need) and stops when a price no longer moves in float64;
a problem stopped this way, or whose gap could not be certified, is re-solved by
``scipy.optimize.linear_sum_assignment`` (exact) and counted (:func:`fallback_count`).
Non-finite costs raise ValueError (checked in the first pass over each matrix, for free).

Speed. Each bid scans its row for the best and second-best ``a_ij − p_j``: that scan is
the solver's inner loop, written as vector code (:mod:`semrsm.matching.row_scan`). At the
start of each ε phase every row is checked; when no row fails, that check has computed
every row's best at unchanged prices, which is the certificate: a problem whose
assignment is already optimal skips its remaining phases.

Threads. ``exact_batch`` runs single-threaded ``nogil`` numba kernels on a shared pool of Python
threads (``numba.get_num_threads()`` of them by default). It does not use numba's parallel
threading layer, so it may be called from several Python threads at once.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from semrsm.matching.registry import DEFAULT_RTOL
from semrsm.matching.row_scan import row_top2

DEFAULT_MAX_BIDS_PER_ROW = 1000
_THETA = 6.0  # ε reduction factor between phases (tuned in bids per pair on CNN features)
_EPS0_DIV = 4.0  # first ε = (max − min) / 4
_THETA_TAIL = 40.0  # ... and 40 once ε < 1e-5 · (max − min): the late phases cost about one
_TAIL_BELOW = 1e-5  # bid per row whatever θ, so fewer of them save work (bids per row, CPU-s:
# −11 % / −4 % bids and 3–4 fewer phases at S = 49 / 196, +9 % bids at S = 784, −2 % at 1,024)

# status codes of the kernels (``stats[1]``)
_OK = 0
_NOT_CERTIFIED = 1  # bid cap hit, prices stuck at float64 resolution, or gap above tol
_NON_FINITE = 2

_counters = {"problems": 0, "bids": 0, "fallbacks": 0}
_counters_lock = threading.Lock()


def fallback_count() -> int:
    """How many problems this process re-solved with scipy because the auction stopped early."""
    return _counters["fallbacks"]


def solver_counters() -> dict[str, int]:
    """Process-wide totals of :func:`exact_batch`: ``problems`` solved, auction ``bids`` (a
    load-independent measure of work: divide by problems · S for bids per row) and
    ``fallbacks`` to scipy."""
    with _counters_lock:
        return dict(_counters)


@nb.njit(cache=True, nogil=True)
def _scan_range(a: np.ndarray, n: int) -> tuple[float, float, float, bool]:
    """max, min, Σ_i max_j |a_ij| and whether every entry is finite."""
    amax = -np.inf
    amin = np.inf
    scale = 0.0
    nonfinite = 0.0  # v − v is 0 for finite v, NaN for NaN or ±inf
    for i in range(n):
        rmax = 0.0
        for j in range(n):
            v = a[i, j]
            nonfinite += v - v
            if v > amax:
                amax = v
            if v < amin:
                amin = v
            if abs(v) > rmax:
                rmax = abs(v)
        scale += rmax
    finite = nonfinite == 0.0 and np.isfinite(amax) and np.isfinite(amin) and np.isfinite(scale)
    return amax, amin, scale, finite


@nb.njit(cache=True, nogil=True)
def _complete(row2col: np.ndarray, col2row: np.ndarray) -> None:
    """Give every unassigned row a free column (keeps the output a permutation after a stop)."""
    n = row2col.shape[0]
    j = 0
    for i in range(n):
        if row2col[i] < 0:
            while col2row[j] >= 0:
                j += 1
            row2col[i] = j
            col2row[j] = i


@nb.njit(cache=True, nogil=True, inline="always")
def _bid(i: int, j: int, raise_by: float, prices: np.ndarray, row2col: np.ndarray,
         col2row: np.ndarray) -> tuple[int, bool]:
    """Row ``i`` takes column ``j`` and raises its price by ``raise_by`` (best − second best
    + ε). Returns the row it displaced (−1 if none, now free) and whether the price failed
    to move in float64 (ε below the price's resolution: the auction cannot progress)."""
    old = prices[j]
    prices[j] = old + raise_by
    k = col2row[j]
    if k >= 0:
        row2col[k] = -1
    col2row[j] = i
    row2col[i] = j
    return k, prices[j] == old


@nb.njit(cache=True, nogil=True)
def _auction(a: np.ndarray, rtol: float, row2col: np.ndarray, max_bids: int,
             stats: np.ndarray) -> float:
    """Core solver; see :func:`auction_solve`. Adds its number of bids to ``stats[0]`` and
    writes its status to ``stats[1]`` (0 certified, 1 not certified, 2 non-finite input)."""
    n = a.shape[0]
    stats[1] = _OK
    if n == 0:
        return 0.0
    amax, amin, scale, finite = _scan_range(a, n)
    if not finite:
        for i in range(n):
            row2col[i] = i
        stats[1] = _NON_FINITE
        return np.nan
    if n == 1:
        row2col[0] = 0
        return 0.0
    rng = amax - amin
    tol = rtol * scale
    if rng <= tol or scale == 0.0:
        # all entries (numerically) equal: every permutation is optimal
        for i in range(n):
            row2col[i] = i
        return 0.0
    eps_final = tol / n
    eps_stop = eps_final * 1e-6  # last tightening step for rounding in the sums
    eps = rng / _EPS0_DIV
    tail = rng * _TAIL_BELOW
    if eps < eps_final:
        eps = eps_final
    prices = np.zeros(n)
    col2row = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        row2col[i] = -1
    stack = np.empty(n, dtype=np.int64)
    bids = 0
    gap = np.inf
    status = _NOT_CERTIFIED
    stuck = False
    while True:
        # Check ε-CS of every row for the new ε. A row that fails (or is free) bids at once
        # with the values its check just computed: one row scan instead of two. A row it
        # displaces goes on the stack if the check already passed it, else the check will
        # meet it free. Then the stack is bid out (each row is on it at most once).
        top = 0
        bids_before = bids
        dual = 0.0
        primal = 0.0
        for i in range(n):
            j0 = row2col[i]
            b1, b2, j1 = row_top2(a, i, prices)
            if j0 >= 0:
                if a[i, j0] - prices[j0] >= b1 - eps:
                    dual += b1
                    primal += a[i, j0]
                    continue
                row2col[i] = -1
                col2row[j0] = -1
            bids += 1
            k2, stuck_now = _bid(i, j1, b1 - b2 + eps, prices, row2col, col2row)
            stuck = stuck or stuck_now
            if 0 <= k2 < i:
                stack[top] = k2
                top += 1
        if bids == bids_before:
            # every row kept its column: the check computed each row's best at unchanged
            # prices, which is the certificate. An earlier phase's assignment is often
            # already optimal, and then the remaining phases are skipped.
            for j in range(n):
                dual += prices[j]
            gap = dual - primal
            if gap <= tol:
                status = _OK
                break
        while top > 0 and not stuck and bids <= max_bids:
            top -= 1
            i = stack[top]
            bids += 1
            b1, b2, j1 = row_top2(a, i, prices)
            k2, stuck_now = _bid(i, j1, b1 - b2 + eps, prices, row2col, col2row)
            stuck = stuck or stuck_now
            if k2 >= 0:
                stack[top] = k2
                top += 1
        if stuck or bids > max_bids:
            _complete(row2col, col2row)
            break
        if eps <= eps_final:
            # the same certificate as the no-bid check above (Σ prices, gap ≤ tol), kept
            # inline: both sit in the auction's hot loop and end it with a break
            dual = 0.0
            primal = 0.0
            for i in range(n):
                best, _, _ = row_top2(a, i, prices)
                dual += best
                primal += a[i, row2col[i]]
            for j in range(n):
                dual += prices[j]
            gap = dual - primal
            if gap <= tol:
                status = _OK
                break
            if eps <= eps_stop:
                break
            eps_final = eps_final / _THETA  # rounding in the sums: tighten and go on
        eps = max(eps / (_THETA if eps > tail else _THETA_TAIL), eps_final)
    stats[0] += bids
    stats[1] = status
    return gap


@nb.njit(cache=True, nogil=True)
def auction_solve(a: np.ndarray, rtol: float, row2col: np.ndarray) -> float:
    """Maximise ``Σ_i a[i, row2col[i]]`` for one dense (n, n) float64 or float32 matrix.

    Writes the assignment into ``row2col`` (int64, length n) and returns the certified
    duality gap ``D − P`` (≥ 0 up to rounding); ``inf`` when the auction stopped at its bid
    cap or could not certify ``rtol`` (``row2col`` is then a valid, possibly suboptimal
    permutation), NaN for non-finite entries. Memory: O(n) besides ``a``.
    """
    stats = np.zeros(2, dtype=np.int64)
    return _auction(a, rtol, row2col, DEFAULT_MAX_BIDS_PER_ROW * max(a.shape[0], 1), stats)


@nb.njit(cache=True, nogil=True)
def _solve_range(costs, rtol, perms, gaps, values, bids, status, start, stop, max_bids_per_row):
    stats = np.zeros(2, dtype=np.int64)
    s = costs.shape[1]
    for b in range(start, stop):
        stats[0] = 0
        gaps[b] = _auction(costs[b], rtol, perms[b], max_bids_per_row * max(s, 1), stats)
        bids[b] = stats[0]
        status[b] = stats[1]
        v = 0.0
        for i in range(s):
            v += costs[b, i, perms[b, i]]
        values[b] = v


_pools: dict[int, ThreadPoolExecutor] = {}


def _after_fork_in_child() -> None:
    # a forked child has none of the parent's worker threads, and the lock may be held
    global _counters_lock
    _counters_lock = threading.Lock()
    _pools.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` workers (starting threads per call costs more than a
    small batch's solves); concurrent callers share it, their tasks interleave."""
    with _counters_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="semrsm-lap")
        return pool


def _check_rtol(rtol: float) -> float:
    try:
        r = float(rtol)
    except (TypeError, ValueError):
        r = math.nan
    if not (math.isfinite(r) and r > 0):
        raise ValueError(
            f"rtol: the certified relative gap must be a finite number > 0, got {rtol!r}; "
            f"the default {DEFAULT_RTOL:g} is far below float32 feature noise"
        )
    return r


def exact_batch(
    costs: np.ndarray,
    rtol: float = DEFAULT_RTOL,
    *,
    threads: int | None = None,
    max_bids_per_row: int = DEFAULT_MAX_BIDS_PER_ROW,
    stats: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a batch of maximisation LAPs exactly (certified to ``rtol``), on several threads.

    Parameters
    ----------
    costs : ndarray (B, S, S), float64 or float32 (solved in float64 arithmetic without a
        copy; other dtypes are converted to float64). Any finite values.
    rtol : certified relative gap, relative to ``Σ_s max_t |costs[b, s, t]|``; finite, > 0.
    threads : Python threads running the nogil kernel; default ``numba.get_num_threads()``.
    max_bids_per_row : bid cap per problem is ``max_bids_per_row · S``; beyond it the problem
        is re-solved by scipy's exact solver (real CNN features need under 100 · S).
    stats : optional dict, filled with ``fallbacks`` (problems re-solved by scipy here) and
        ``bids`` (total auction bids, a load-independent measure of work).

    Returns
    -------
    perms : (B, S) int64, values : (B,) float64, gaps : (B,) float64 certified ``D − P``
        (0 for problems re-solved by the scipy fallback, whose solver is exact).

    Raises
    ------
    ValueError
        ``costs`` not (B, S, S); ``rtol`` not finite and > 0; NaN or ±inf in ``costs``.

    Memory: O(B · S) besides ``costs`` (per thread O(S) work arrays).
    """
    rtol = _check_rtol(rtol)
    costs = np.asarray(costs)
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise ValueError(f"costs: expected shape (B, S, S), got {costs.shape}")
    if costs.dtype not in (np.float32, np.float64):
        costs = costs.astype(np.float64)
    costs = np.ascontiguousarray(costs)
    b, s, _ = costs.shape
    perms = np.empty((b, s), dtype=np.int64)
    gaps = np.empty(b, dtype=np.float64)
    values = np.empty(b, dtype=np.float64)
    bids = np.zeros(b, dtype=np.int64)
    status = np.zeros(b, dtype=np.int64)
    max_bids_per_row = max(1, int(max_bids_per_row))
    if threads is None:
        threads = nb.get_num_threads()
    threads = max(1, min(int(threads), b))
    if b and threads == 1:
        _solve_range(costs, rtol, perms, gaps, values, bids, status, 0, b, max_bids_per_row)
    elif b:
        # small tasks balance uneven problems; each task is one nogil kernel call
        step = max(1, -(-b // (threads * 8)))
        list(_pool(threads).map(
            lambda lo: _solve_range(costs, rtol, perms, gaps, values, bids, status, lo,
                                    min(lo + step, b), max_bids_per_row),
            range(0, b, step)))
    if b and (status == _NON_FINITE).any():
        bad = int(np.flatnonzero(status == _NON_FINITE)[0])
        raise ValueError(
            f"costs: problem {bad} of the batch has NaN or ±inf inner products; the layer's "
            "activations overflow float32 products or are not finite: rescale the features "
            "(e.g. divide by their largest norm), use float64 tokens, or check the model"
        )
    failed = np.flatnonzero(status == _NOT_CERTIFIED)
    if len(failed):
        from scipy.optimize import linear_sum_assignment

        for k in failed:
            _, cols = linear_sum_assignment(costs[k], maximize=True)
            perms[k] = cols
            values[k] = float(costs[k][np.arange(s), cols].astype(np.float64).sum())
            gaps[k] = 0.0
    with _counters_lock:
        _counters["problems"] += b
        _counters["bids"] += int(bids.sum())
        _counters["fallbacks"] += len(failed)
    if stats is not None:
        stats["fallbacks"] = stats.get("fallbacks", 0) + len(failed)
        stats["bids"] = stats.get("bids", 0) + int(bids.sum())
    return perms, values, gaps


def exact_perms(costs: np.ndarray, row_norms: np.ndarray | None = None,
                col_norms: np.ndarray | None = None, *, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """The registry's CPU ``exact``: :func:`exact_batch`'s permutations, (B, S) int64
    (token norms unused)."""
    return exact_batch(costs, rtol=rtol)[0]
