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

from semrsm.matching.exact import DEFAULT_RTOL, auction_solve


@nb.njit(cache=True, nogil=True)
def greedy_solve(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, row2col: np.ndarray) -> None:
    """Global greedy on the sub-matrix ``a[rows][:, cols]``; writes ``row2col[rows[i]] = cols[j]``.

    Lazy evaluation: each row keeps the best value over the columns that were free when it was
    computed. Columns only disappear, so a stale value is an upper bound of the row's true best;
    picking the row with the highest bound and re-evaluating it when its column is gone
    therefore always takes the global maximum of the remaining entries.
    """
    m = rows.shape[0]
    col_free = np.ones(m, dtype=np.bool_)
    row_free = np.ones(m, dtype=np.bool_)
    best_val = np.empty(m)
    best_col = np.empty(m, dtype=np.int64)
    for i in range(m):
        bv = -np.inf
        bc = 0
        for j in range(m):
            v = a[rows[i], cols[j]]
            if v > bv:
                bv = v
                bc = j
        best_val[i] = bv
        best_col[i] = bc
    assigned = 0
    while assigned < m:
        r = -1
        rv = -np.inf
        for i in range(m):
            if row_free[i] and (r < 0 or best_val[i] > rv):
                rv = best_val[i]
                r = i
        c = best_col[r]
        if col_free[c]:
            row_free[r] = False
            col_free[c] = False
            row2col[rows[r]] = cols[c]
            assigned += 1
        else:
            bv = -np.inf
            bc = -1
            for j in range(m):
                if col_free[j]:
                    v = a[rows[r], cols[j]]
                    if bc < 0 or v > bv:
                        bv = v
                        bc = j
            best_val[r] = bv
            best_col[r] = bc


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


def _norm_order(norms: np.ndarray | None, costs: np.ndarray, axis: int) -> np.ndarray:
    """Positions sorted by descending token norm (stable); (B, S) int64."""
    if norms is None:
        raise ValueError(
            "this matcher sorts tokens by norm: pass row_norms and col_norms (B, S) "
            "(semantic_rsm and match_pair do this for you)"
        )
    norms = np.asarray(norms, dtype=np.float64)
    if norms.shape != costs.shape[:2]:
        raise ValueError(f"norms: expected shape {costs.shape[:2]}, got {norms.shape}")
    return np.ascontiguousarray(np.argsort(-norms, axis=1, kind="stable").astype(np.int64))


def greedy_batch(costs: np.ndarray) -> np.ndarray:
    """Greedy permutations for a (B, S, S) float64 batch; returns (B, S) int64."""
    perms = np.empty(costs.shape[:2], dtype=np.int64)
    if costs.shape[0]:
        _greedy_batch(costs, perms)
    return perms


def batch_optimal_batch(costs: np.ndarray, row_norms: np.ndarray | None, col_norms: np.ndarray | None,
                        window: int = 128, rtol: float = DEFAULT_RTOL) -> np.ndarray:
    """Batch-Optimal permutations (windows of ``window`` tokens sorted by norm); (B, S) int64."""
    if int(window) < 1:
        raise ValueError(f"batch_optimal: window must be a positive integer, got {window}")
    rows = _norm_order(row_norms, costs, 1)
    cols = _norm_order(col_norms, costs, 2)
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
