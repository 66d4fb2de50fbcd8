"""Exact batched assignment in Triton kernels (Jonker-Volgenant, ε-auction), with a certificate.

One program solves one problem; a launch solves a whole batch (every pair of a chunk), and
the host synchronises once, after the launch, to read the certificate flags.

Algorithm (minimisation of ``a = -c``, i.e. maximisation of ``c``), all state in registers:

1. **Column reduction** (one pass over the rows): ``v_j = min_i a_ij``; each row takes the
   highest column whose minimum it holds. Dual feasible: ``a_ij - v_j ≥ 0``.
2. **Augmenting row reduction** (LAPJV): a free row takes its best column ``j1`` under
   ``a_ij - v_j`` and lowers ``v_j1`` by the gap to its second best, evicting the owner,
   which bids next; at most ``arr_iters · S`` such bids (a Gauss-Seidel auction without ε;
   off by default, see :data:`DEFAULT_ARR_ITERS`).
   Every assigned row keeps a column of minimal reduced cost.
3. **Shortest augmenting paths** (Dijkstra on reduced costs, LAPJV's augment) for the rows
   still free; one column is scanned per step, free columns first among ties.
4. **Certificate**: with ``u_i = min_j (a_ij - v_j)``, ``(u, v)`` is dual feasible for any
   ``v``, so ``0 ≤ P - V* ≤ Σ_i [(a_iπ(i) - v_π(i)) - u_i] = gap`` (weak duality). The gap
   is summed in float64 from non-negative per-row terms and compared with
   ``rtol · Σ_i max_j |c_ij|``. A problem whose gap is larger, whose result is not a
   permutation, or whose search hit its cap is flagged; the host solves flagged
   problems with ``scipy.optimize.linear_sum_assignment`` and counts them.

A second kernel, ``_auction_kernel``, solves the same problems with the CPU solver's
algorithm (Gauss-Seidel forward auction with ε-scaling, ε from range/4 down to
``rtol · scale / S``, θ = 6, assignments that keep ε-CS carried across phases) and the
same certificate with ``u_i = max_j (c_ij − p_j)``; :data:`ALGORITHM_BY_S` picks one by S.

Costs are read in their own dtype (float32 or float64) and cast to float64 in registers,
so the certified problem is exactly the stored one. The cost matrix stays in global
memory (read row by row through L1/L2): Triton has no dynamically indexed on-chip array
for an S × S matrix; the O(S) state vectors (column duals, owners, distances,
predecessors) live in registers for the whole solve.

Needs ``triton`` (shipped with Linux torch wheels). Runs on CUDA, and on CPU tensors under
``TRITON_INTERPRET=1`` (set before this module is imported), which is how CI tests it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from semrsm.matching.registry import DEFAULT_RTOL

try:  # triton ships with the Linux torch wheels; elsewhere this solver is simply absent
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the platform
    triton = None
    tl = None

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
# Row-reduction bids per row before the shortest paths. 0: on CNN features (resnet18 on
# photo crops) a numpy model of this kernel shows the bids removing < 1 % of the Dijkstra
# steps at S = 196 and ≈ 5 % at S = 49 while costing more than they save;
# bench/bench_gpu.py measures 0 / 2 / 8 on the GPU.
DEFAULT_ARR_ITERS = 0
# Kernel by problem size, rows (largest S, kernel), first match wins: "jv" (column
# reduction + shortest augmenting paths) or "auction" (ε-scaling forward auction). From
# CPU models of both on CNN features (row scans per problem, JV vs auction incl. its
# ε-CS and certificate passes): S = 49: 1.1 k vs 1.9 k; S = 196: 14–18 k vs 10.4 k;
# S = 784: 204–210 k vs 53 k. bench/bench_gpu.py measures both on the GPU.
ALGORITHM_BY_S: tuple[tuple[int, str], ...] = ((100, "jv"), (1 << 30, "auction"))


def available(device: torch.device | str) -> bool:
    """Whether :func:`solve_exact_triton` can run on ``device``.

    CUDA with compute capability ≥ 8.0 when triton is installed; CPU only when this module
    was imported under ``TRITON_INTERPRET=1``.
    """
    if triton is None:
        return False
    device = torch.device(device)
    if device.type == "cuda":
        return (
            not INTERPRET
            and torch.cuda.is_available()
            and torch.cuda.get_device_capability(device) >= (8, 0)
        )
    return INTERPRET and device.type == "cpu"


def num_warps_for(block: int) -> int:
    """Warps per program: one warp up to 256 lanes (reductions stay in shuffles), then more."""
    return max(1, min(8, block // 256))


if triton is not None:

    @triton.jit
    def _row(cost_b, i, lane, S: tl.constexpr):
        """Row ``i`` of the minimisation costs ``-c`` in float64; +inf beyond column S."""
        c = tl.load(cost_b + i * S + lane, mask=lane < S, other=0.0).to(tl.float64)
        return tl.where(lane < S, -c, float("inf"))

    @triton.jit
    def _pick(vec, lane, j):
        """``vec[j]`` of a register vector (a masked reduction)."""
        return tl.sum(tl.where(lane == j, vec, tl.zeros_like(vec)), axis=0)

    @triton.jit
    def _argmin_combine(d1, k1, d2, k2):
        """(value, key) of the smaller value; equal values: the smaller key."""
        take1 = (d1 < d2) | ((d1 == d2) & (k1 < k2))
        return tl.where(take1, d1, d2), tl.where(take1, k1, k2)

    @triton.jit
    def _lap_kernel(
        cost,
        perm_out,
        gap_out,
        scale_out,
        flag_out,
        stat_out,
        rtol,
        max_paths,
        S: tl.constexpr,
        BLOCK: tl.constexpr,
        ARR_ITERS: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        cost_b = cost + b * S * S
        lane = tl.arange(0, BLOCK)
        valid = lane < S
        inf = float("inf")
        zero_f = tl.zeros([BLOCK], dtype=tl.float64)
        minus1 = tl.full([BLOCK], -1, tl.int32)

        # 1. column reduction: v_j = min_i a_ij and the first row holding it
        v = tl.full([BLOCK], inf, tl.float64)
        argrow = minus1
        for i in range(S):
            a = _row(cost_b, i, lane, S)
            better = a < v
            v = tl.where(better, a, v)
            argrow = tl.where(better, i, argrow)
        v = tl.where(valid, v, zero_f)  # padding lanes: a = +inf, v = 0
        row4col = minus1  # indexed by column
        col4row = minus1  # indexed by row
        nfree = tl.sum(valid.to(tl.int32), axis=0)
        for i in range(S):
            j = tl.max(tl.where(argrow == i, lane, minus1), axis=0)
            row4col = tl.where(lane == j, i, row4col)
            col4row = tl.where((lane == i) & (j >= 0), j, col4row)
            nfree = tl.where(j >= 0, nfree - 1, nfree)

        # 2. augmenting row reduction (LAPJV): bids without ε, capped
        cur = -1
        it = 0
        while (it < ARR_ITERS * S) & (nfree > 0):
            first_free = tl.min(tl.where(valid & (col4row < 0), lane, 2 * BLOCK), axis=0)
            i = tl.where(cur >= 0, cur, first_free)
            x = _row(cost_b, i, lane, S) - v
            u1 = tl.min(x, axis=0)
            j1 = tl.min(tl.where(x == u1, lane, 2 * BLOCK), axis=0)
            x2 = tl.where(lane == j1, inf, x)
            u2 = tl.min(x2, axis=0)
            j2 = tl.min(tl.where(x2 == u2, lane, 2 * BLOCK), axis=0)
            # float comparisons go through int32: the interpreter cannot `&` their 0-d bools
            lower = (u1 < u2).to(tl.int32) != 0
            own1 = _pick(row4col, lane, j1)
            own2 = _pick(row4col, lane, j2)
            take_first = lower | (own1 < 0)
            jt = tl.where(take_first, j1, j2)
            i0 = tl.where(take_first, own1, own2)
            v = tl.where(lower & (lane == j1), v - (u2 - u1), v)
            row4col = tl.where(lane == jt, i, row4col)
            col4row = tl.where(lane == i, jt, col4row)
            col4row = tl.where((lane == i0) & (i0 >= 0), -1, col4row)
            cur = tl.where(lower & (i0 >= 0), i0, -1)
            nfree = tl.where(i0 >= 0, nfree, nfree - 1)
            it += 1

        # 3. shortest augmenting paths for the rows still free, lowest index first
        failed = 0
        paths = 0
        steps_total = 0
        while (nfree > 0) & (paths < max_paths) & (failed == 0):
            f = tl.min(tl.where(valid & (col4row < 0), lane, 2 * BLOCK), axis=0)
            d = _row(cost_b, f, lane, S) - v
            pred = tl.full([BLOCK], 0, tl.int32) + f
            todo = valid
            ready = valid & (lane < 0)
            mu = tl.sum(zero_f, axis=0)
            sink = -1
            steps = 0
            searching = nfree > 0
            while searching:
                # one fused reduction: the smallest distance, free columns first, then lowest
                key = tl.where(row4col >= 0, lane + BLOCK, lane)
                key = tl.where(todo, key, 3 * BLOCK)
                mu, kmin = tl.reduce((tl.where(todo, d, inf), key), 0, _argmin_combine)
                js = kmin % BLOCK
                found = kmin < BLOCK
                sink = tl.where(found, js, sink)
                i = tl.where(found, f, _pick(row4col, lane, js))
                todo = todo & (lane != js)
                ready = ready | ((lane == js) & ~found)
                ai = _row(cost_b, i, lane, S)
                h = -tl.load(cost_b + i * S + js).to(tl.float64) - _pick(v, lane, js) - mu
                cand = ai - v - h
                upd = todo & (cand < d) & ~found
                d = tl.where(upd, cand, d)
                pred = tl.where(upd, i, pred)
                steps += 1
                searching = ~found & (steps < S)
            failed = tl.where(sink < 0, 1, failed)
            paths += 1
            steps_total += steps
            v = tl.where(ready & (sink >= 0), v + d - mu, v)
            j = sink
            aug = sink >= 0
            hops = 0
            while aug:
                i = _pick(pred, lane, j)
                row4col = tl.where(lane == j, i, row4col)
                jprev = _pick(col4row, lane, i)
                col4row = tl.where(lane == i, j, col4row)
                j = jprev
                hops += 1
                aug = (i != f) & (hops <= S)
            nfree -= 1

        # 4. certificate: gap = Σ_i (a_iπ(i) - v_π(i)) - min_j (a_ij - v_j) ≥ P - V*
        gap = tl.sum(zero_f, axis=0)
        scale = tl.sum(zero_f, axis=0)
        for i in range(S):
            a = _row(cost_b, i, lane, S)
            x = a - v
            ji = _pick(col4row, lane, i)
            xi = _pick(tl.where(valid, x, zero_f), lane, ji)
            gap += xi - tl.min(x, axis=0)
            scale += tl.max(tl.where(valid, tl.abs(a), zero_f), axis=0)
        perm_ok = tl.min(tl.where(valid, col4row, S), axis=0) >= 0
        perm_ok = perm_ok & (tl.min(tl.where(valid, row4col, S), axis=0) >= 0)
        within = (gap <= rtol * scale).to(tl.int32) != 0
        certified = perm_ok & (failed == 0) & within
        tl.store(perm_out + b * S + lane, col4row, mask=valid)
        tl.store(gap_out + b, gap)
        tl.store(scale_out + b, scale)
        tl.store(flag_out + b, tl.where(certified, 0, 1))
        tl.store(stat_out + b * 3, it)
        tl.store(stat_out + b * 3 + 1, paths)
        tl.store(stat_out + b * 3 + 2, steps_total)


    @triton.jit
    def _argmax_combine(x1, k1, x2, k2):
        """(value, key) of the larger value; equal values: the smaller key."""
        take1 = (x1 > x2) | ((x1 == x2) & (k1 < k2))
        return tl.where(take1, x1, x2), tl.where(take1, k1, k2)

    # Same launch arguments and per-problem set-up (program id, lanes, constants) as
    # _lap_kernel, on purpose: each kernel is launched on its own, and the set-up is
    # register declarations a shared @triton.jit helper could not return more cheaply.
    @triton.jit
    def _auction_kernel(
        cost,
        perm_out,
        gap_out,
        scale_out,
        flag_out,
        stat_out,
        rtol,
        max_bids,
        S: tl.constexpr,
        BLOCK: tl.constexpr,
        THETA: tl.constexpr,
    ):
        """Forward auction with ε-scaling (Gauss-Seidel, as the CPU solver), maximising c."""
        b = tl.program_id(0).to(tl.int64)
        cost_b = cost + b * S * S
        lane = tl.arange(0, BLOCK)
        valid = lane < S
        ninf = float("-inf")
        zero_f = tl.zeros([BLOCK], dtype=tl.float64)
        minus1 = tl.full([BLOCK], -1, tl.int32)
        # scale Σ_i max_j |c_ij| and the cost range
        scale = tl.sum(zero_f, axis=0)
        cmax = tl.sum(zero_f, axis=0) + ninf
        cmin = tl.sum(zero_f, axis=0) - ninf
        for i in range(S):
            c = -_row(cost_b, i, lane, S)  # +c, -inf beyond S
            scale += tl.max(tl.where(valid, tl.abs(c), zero_f), axis=0)
            cmax = tl.maximum(cmax, tl.max(c, axis=0))
            cmin = tl.minimum(cmin, tl.min(tl.where(valid, c, -ninf), axis=0))
        tol = rtol * scale
        eps_final = tol / S
        eps = tl.maximum((cmax - cmin) / 4.0, eps_final)
        prices = zero_f
        col2row = minus1
        row2col = minus1
        # constant matrices: every permutation is optimal (identity below)
        running = ((cmax - cmin) > tol).to(tl.int32) != 0
        bids = 0
        phases = 0
        gap = tl.sum(zero_f, axis=0)
        while running:
            phases += 1
            # keep the assignments that satisfy ε-CS for the new ε; free the others
            nfree = 0
            for i in range(S):
                j0 = _pick(row2col, lane, i)
                x = -_row(cost_b, i, lane, S) - prices
                keep = (j0 >= 0) & ((_pick(tl.where(valid, x, zero_f), lane, j0)
                                     >= tl.max(x, axis=0) - eps).to(tl.int32) != 0)
                row2col = tl.where((lane == i) & ~keep, -1, row2col)
                col2row = tl.where((lane == j0) & (j0 >= 0) & ~keep, -1, col2row)
                nfree = tl.where(keep, nfree, nfree + 1)
            cur = -1
            while (nfree > 0) & (bids < max_bids):
                first_free = tl.min(tl.where(valid & (row2col < 0), lane, 2 * BLOCK), axis=0)
                i = tl.where(cur >= 0, cur, first_free)
                x = -_row(cost_b, i, lane, S) - prices
                b1, j1 = tl.reduce((x, lane), 0, _argmax_combine)
                b2 = tl.max(tl.where(lane == j1, ninf, x), axis=0)
                prices = tl.where(lane == j1, prices + (b1 - b2) + eps, prices)
                k = _pick(col2row, lane, j1)
                col2row = tl.where(lane == j1, i, col2row)
                row2col = tl.where(lane == i, j1, row2col)
                row2col = tl.where((lane == k) & (k >= 0), -1, row2col)
                cur = k
                nfree = tl.where(k >= 0, nfree, nfree - 1)
                bids += 1
            if eps <= eps_final:
                gap = _auction_gap(cost_b, prices, row2col, lane, S)
                stop = ((gap <= tol).to(tl.int32) | (eps <= eps_final * 1e-6).to(tl.int32)) != 0
                running = ~stop & (bids < max_bids)
                eps_final = tl.where(stop, eps_final, eps_final / THETA)
            else:
                running = bids < max_bids
            eps = tl.maximum(eps / THETA, eps_final)
        constant = ((cmax - cmin) <= tol).to(tl.int32) != 0
        row2col = tl.where(valid & constant, lane, row2col)
        gap = _auction_gap(cost_b, prices, row2col, lane, S)
        perm_ok = tl.min(tl.where(valid, row2col, S), axis=0) >= 0
        within = (gap <= tol).to(tl.int32) != 0
        certified = perm_ok & within
        tl.store(perm_out + b * S + lane, row2col, mask=valid)
        tl.store(gap_out + b, gap)
        tl.store(scale_out + b, scale)
        tl.store(flag_out + b, tl.where(certified, 0, 1))
        tl.store(stat_out + b * 3, bids)
        tl.store(stat_out + b * 3 + 1, phases)
        tl.store(stat_out + b * 3 + 2, 0)

    @triton.jit
    def _auction_gap(cost_b, prices, row2col, lane, S: tl.constexpr):
        """Σ_i [max_j (c_ij − p_j) − (c_iπ(i) − p_π(i))] ≥ V* − P (weak duality)."""
        valid = lane < S
        zero_f = tl.zeros_like(prices)
        gap = tl.sum(zero_f, axis=0)
        for i in range(S):
            x = -_row(cost_b, i, lane, S) - prices
            ji = _pick(row2col, lane, i)
            gap += tl.max(x, axis=0) - _pick(tl.where(valid, x, zero_f), lane, ji)
        return gap

def algorithm_for(s: int) -> str:
    """The kernel :func:`solve_exact_triton` runs by default at size ``s`` (see :data:`ALGORITHM_BY_S`)."""
    for max_s, name in ALGORITHM_BY_S:
        if s <= max_s:
            return name
    return ALGORITHM_BY_S[-1][1]


def launch(
    costs: torch.Tensor, rtol: float, arr_iters: int = DEFAULT_ARR_ITERS,
    max_paths: int | None = None, num_warps: int | None = None, algorithm: str | None = None,
    max_bids: int | None = None,
) -> dict[str, torch.Tensor]:
    """Run a kernel on a contiguous (B, S, S) float32/float64 tensor with S ≥ 2.

    ``algorithm``: "jv" (:func:`_lap_kernel`) or "auction" (:func:`_auction_kernel`);
    default :func:`algorithm_for`. ``max_paths`` (jv) caps the augmenting paths per
    problem (default S, which always suffices) and ``max_bids`` (auction, default
    ``200·S² + 10⁴``) the bids; a problem that hits a cap, or whose certificate fails, is
    flagged. ``num_warps`` overrides :func:`num_warps_for` (a tuning knob).

    Returns the raw device outputs: ``perm`` (B, S) int32, ``gap`` and ``scale`` (B,)
    float64, ``flag`` (B,) int32 (1 = not certified), ``stats`` (B, 3) int32 (jv:
    row-reduction bids, augmenting paths, Dijkstra steps; auction: bids, phases, 0).
    No host synchronisation.
    """
    b, s, _ = costs.shape
    dev = costs.device
    block = max(16, triton.next_power_of_2(s))
    algorithm = algorithm or algorithm_for(s)
    out = {
        "perm": torch.empty((b, s), dtype=torch.int32, device=dev),
        "gap": torch.empty(b, dtype=torch.float64, device=dev),
        "scale": torch.empty(b, dtype=torch.float64, device=dev),
        "flag": torch.empty(b, dtype=torch.int32, device=dev),
        "stats": torch.empty((b, 3), dtype=torch.int32, device=dev),
    }
    if not b:
        return out
    warps = int(num_warps or num_warps_for(block))
    args = (costs, out["perm"], out["gap"], out["scale"], out["flag"], out["stats"], float(rtol))
    if algorithm == "jv":
        _lap_kernel[(b,)](
            *args, int(s if max_paths is None else max_paths), S=s, BLOCK=block,
            ARR_ITERS=int(arr_iters), num_warps=warps,
        )
    elif algorithm == "auction":
        cap = 200 * s * s + 10_000 if max_bids is None else int(max_bids)
        _auction_kernel[(b,)](*args, min(cap, 2**31 - 1), S=s, BLOCK=block, THETA=6.0,
                              num_warps=warps)
    else:
        raise ValueError(f"algorithm: unknown {algorithm!r}; use 'jv' or 'auction'")
    return out


def solve_exact_triton(
    costs: torch.Tensor,
    *,
    rtol: float = DEFAULT_RTOL,
    arr_iters: int = DEFAULT_ARR_ITERS,
    max_paths: int | None = None,
    num_warps: int | None = None,
    algorithm: str | None = None,
    max_bids: int | None = None,
    stats: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Certified-optimal assignments of a batch (maximisation), one Triton program per problem.

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32 or float64, finite; CUDA (or CPU under
        ``TRITON_INTERPRET=1``).
    rtol : certified gap relative to ``Σ_s max_t |costs[b, s, t]|`` (> 0).
    arr_iters : augmenting-row-reduction bids per row before the shortest paths (≥ 0).
    max_paths : cap on augmenting paths per problem (default S: never reached); problems
        that hit it are solved by scipy and counted (how tests exercise the fallback).
    num_warps : warps per program (default :func:`num_warps_for` of the padded size).
    algorithm : "jv" or "auction" (default :func:`algorithm_for`); ``max_bids`` caps the
        auction's bids (as ``max_paths`` the JV paths).
    stats : optional dict, filled with ``problems``, ``fallback`` (problems solved by scipy
        because they were not certified), ``max_gap_rel``, ``arr_bids``, ``paths`` and
        ``steps`` (sums over the batch; for the auction: bids, phases, 0).

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``; values : (B,) float64, gathered from
        ``costs`` and summed in float64.

    Raises
    ------
    ValueError
        Triton unavailable for this device, or a bad shape/dtype.
    """
    if not available(costs.device):
        raise ValueError(
            f"the Triton solver needs a CUDA GPU (compute capability ≥ 8.0) with triton "
            f"installed, or TRITON_INTERPRET=1 for CPU tensors; got device {costs.device}. "
            "Use backend='auto'"
        )
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise ValueError(f"costs: expected shape (B, S, S), got {tuple(costs.shape)}")
    if costs.dtype not in (torch.float32, torch.float64):
        costs = costs.float()
    costs = costs.detach().contiguous()
    b, s, _ = costs.shape
    st: dict[str, Any] = {"problems": b, "fallback": 0, "max_gap_rel": 0.0,
                          "arr_bids": 0, "paths": 0, "steps": 0}
    if b == 0 or s <= 1:
        perms = torch.zeros((b, s), dtype=torch.int64, device=costs.device)
    else:
        out = launch(costs, rtol, arr_iters, max_paths, num_warps, algorithm, max_bids)
        perms = out["perm"].long()
        bad = out["flag"] != 0
        if bool(bad.any()):  # the one host synchronisation, after the launch
            idx = bad.nonzero()[:, 0]
            perms[idx] = _scipy(costs[idx]).to(costs.device)
            st["fallback"] = int(idx.numel())
        rel = out["gap"] / out["scale"].clamp(min=1e-300)
        sums = out["stats"].long().sum(0).tolist()
        st.update(max_gap_rel=float(rel.masked_fill(bad, 0).max()),
                  arr_bids=sums[0], paths=sums[1], steps=sums[2])
    values = costs.gather(2, perms[:, :, None]).to(torch.float64).sum(dim=(1, 2))
    if stats is not None:
        stats.update(st)
    return perms, values


def _scipy(costs: torch.Tensor) -> torch.Tensor:
    from scipy.optimize import linear_sum_assignment

    out = []
    for c in costs.detach().cpu().double().numpy():
        _, col = linear_sum_assignment(c, maximize=True)
        out.append(col)
    return torch.from_numpy(np.stack(out).astype(np.int64))


__all__ = ["ALGORITHM_BY_S", "algorithm_for", "available", "launch", "num_warps_for", "solve_exact_triton"]
