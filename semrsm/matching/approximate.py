"""Approximate matchers of the paper (Wald et al. 2024, §4), compiled by numba.

* ``greedy``: repeatedly take the highest remaining entry of ``M = A Bᵀ`` and assign it.
* ``topk_greedy``: optimal assignment among the ``k`` highest-norm tokens of each side,
  greedy for the rest.
* ``batch_optimal``: sort each side's tokens by norm, cut into consecutive windows of
  ``window`` tokens and solve each window (rows of window w against columns of window w)
  exactly. The paper's recommended trade-off.

All return valid permutations whose value is a lower bound of the exact optimum.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from semrsm.matching.exact import auction_solve
from semrsm.matching.registry import DEFAULT_RTOL, ORDERS


@nb.njit(cache=True, nogil=True, inline="always")
def _sift_down(keys: np.ndarray, vals: np.ndarray, size: int, pos: int) -> None:
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and keys[child + 1] > keys[child]:
            child += 1
        if keys[child] <= keys[pos]:
            return
        keys[pos], keys[child] = keys[child], keys[pos]
        vals[pos], vals[child] = vals[child], vals[pos]
        pos = child


@nb.njit(cache=True, nogil=True)
def greedy_solve(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, row2col: np.ndarray) -> None:
    """Global greedy on the sub-matrix ``a[rows][:, cols]``; writes ``row2col[rows[i]] = cols[j]``.

    Lazy evaluation with a max-heap of rows: each row's key is its best value over the columns
    that were free when it was computed. Columns only disappear, so a stale key is an upper
    bound of the row's true best; popping the highest key and re-evaluating the row when its
    column is gone therefore always takes the global maximum of the remaining entries.
    O(S² + R·S) for R re-evaluations instead of sorting all S² entries.
    """
    m = rows.shape[0]
    col_free = np.ones(m, dtype=np.bool_)
    best_col = np.empty(m, dtype=np.int64)
    keys = np.empty(m)
    heap_rows = np.empty(m, dtype=np.int64)
    for i in range(m):
        bv = -np.inf
        bc = 0
        for j in range(m):
            v = a[rows[i], cols[j]]
            if v > bv:
                bv = v
                bc = j
        keys[i] = bv
        heap_rows[i] = i
        best_col[i] = bc
    size = m
    for pos in range(m // 2 - 1, -1, -1):
        _sift_down(keys, heap_rows, size, pos)
    while size > 0:
        r = heap_rows[0]
        c = best_col[r]
        if col_free[c]:
            col_free[c] = False
            row2col[rows[r]] = cols[c]
            size -= 1
            keys[0] = keys[size]
            heap_rows[0] = heap_rows[size]
        else:
            bv = -np.inf
            bc = -1
            ar = rows[r]
            for j in range(m):
                if col_free[j]:
                    v = a[ar, cols[j]]
                    if bc < 0 or v > bv:
                        bv = v
                        bc = j
            best_col[r] = bc
            keys[0] = bv
        _sift_down(keys, heap_rows, size, 0)


@nb.njit(cache=True, nogil=True)
def _exact_window(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, row2col: np.ndarray,
                  rtol: float) -> None:
    m = rows.shape[0]
    sub = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            sub[i, j] = a[rows[i], cols[j]]
    local = np.empty(m, dtype=np.int64)
    auction_solve(sub, rtol, local)
    for i in range(m):
        row2col[rows[i]] = cols[local[i]]


@nb.njit(cache=True, parallel=True)
def _greedy_batch(costs, perms):
    s = costs.shape[1]
    for b in nb.prange(costs.shape[0]):
        idx = np.arange(s)
        greedy_solve(costs[b], idx, idx.copy(), perms[b])


@nb.njit(cache=True, parallel=True)
def _batch_optimal_batch(costs, row_order, col_order, window, rtol, perms):
    s = costs.shape[1]
    for b in nb.prange(costs.shape[0]):
        for start in range(0, s, window):
            stop = min(start + window, s)
            _exact_window(costs[b], row_order[b, start:stop], col_order[b, start:stop], perms[b], rtol)


@nb.njit(cache=True, parallel=True)
def _topk_greedy_batch(costs, row_order, col_order, k, rtol, perms):
    s = costs.shape[1]
    for b in nb.prange(costs.shape[0]):
        if k > 0:
            _exact_window(costs[b], row_order[b, :k], col_order[b, :k], perms[b], rtol)
        if k < s:
            greedy_solve(costs[b], row_order[b, k:].copy(), col_order[b, k:].copy(), perms[b])


def _norm_order(norms: np.ndarray | None, costs: np.ndarray, axis: int,
                order: str = "descending") -> np.ndarray:
    """Positions sorted by token norm, descending (default) or ascending (stable); (B, S) int64."""
    if norms is None:
        raise ValueError(
            "this matcher sorts tokens by norm: pass row_norms and col_norms (B, S) "
            "(semantic_rsm and match_pair do this for you)"
        )
    norms = np.asarray(norms, dtype=np.float64)
    if norms.shape != costs.shape[:2]:
        raise ValueError(f"norms: expected shape {costs.shape[:2]}, got {norms.shape}")
    key = -norms if order == "descending" else norms
    return np.ascontiguousarray(np.argsort(key, axis=1, kind="stable").astype(np.int64))


def greedy_batch(costs: np.ndarray, row_norms: np.ndarray | None = None,
                 col_norms: np.ndarray | None = None) -> np.ndarray:
    """Greedy permutations for a (B, S, S) float64 batch; returns (B, S) int64 (token
    norms unused: the registry's CPU calling convention)."""
    perms = np.empty(costs.shape[:2], dtype=np.int64)
    if costs.shape[0]:
        _greedy_batch(costs, perms)
    return perms


def batch_optimal_batch(costs: np.ndarray, row_norms: np.ndarray | None, col_norms: np.ndarray | None,
                        window: int = 128, rtol: float = DEFAULT_RTOL,
                        order: str = "descending") -> np.ndarray:
    """Batch-Optimal permutations (windows of ``window`` tokens sorted by norm); (B, S) int64.

    ``order="descending"`` (default) puts the highest-norm tokens, which carry most of the
    similarity, in the first full window; ``"ascending"`` is the paper authors' code (their
    last window, the one that may be short, then holds the highest norms).
    """
    if int(window) < 1:
        raise ValueError(f"batch_optimal: window must be a positive integer, got {window}")
    if order not in ORDERS:
        raise ValueError(f"batch_optimal: order must be one of {ORDERS}, got {order!r}")
    rows = _norm_order(row_norms, costs, 1, order)
    cols = _norm_order(col_norms, costs, 2, order)
    perms = np.empty(costs.shape[:2], dtype=np.int64)
    if costs.shape[0]:
        _batch_optimal_batch(costs, rows, cols, int(window), float(rtol), perms)
    return perms


def topk_greedy_batch(costs: np.ndarray, row_norms: np.ndarray | None, col_norms: np.ndarray | None,
                      k: int = 32, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """TopK-Greedy permutations (exact on the ``k`` highest-norm tokens, greedy after); (B, S) int64."""
    if int(k) < 0:
        raise ValueError(f"topk_greedy: k must be a non-negative integer, got {k}")
    rows = _norm_order(row_norms, costs, 1)
    cols = _norm_order(col_norms, costs, 2)
    perms = np.empty(costs.shape[:2], dtype=np.int64)
    if costs.shape[0]:
        _topk_greedy_batch(costs, rows, cols, min(int(k), costs.shape[1]), float(rtol), perms)
    return perms


def identity_batch(costs: np.ndarray, row_norms: np.ndarray | None = None,
                   col_norms: np.ndarray | None = None) -> np.ndarray:
    """No matching: position s matched to position s; (B, S) int64."""
    b, s, _ = costs.shape
    return np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)).copy()
