"""Batched linear assignment in torch ops: the GPU path of :mod:`semrsm.matching`.

Every function here takes a batch of cost matrices ``costs`` (B, S, S) on any torch device
and solves the *maximisation* problem ``max_perm Σ_s costs[b, s, perm[s]]`` for all ``b`` at
once. The same code runs on CUDA and on the CPU (where the tests compare it with scipy).

Exact matcher: a Jacobi auction with ε-scaling (Bertsekas), batched over problems.

* Every unassigned row of every active problem bids at once: it finds its best and second
  best column under the current prices (``topk(2)``) and offers
  ``p_j + (v_best − v_second) + ε``; each column keeps its highest bid (``scatter_reduce``
  amax, ties to the lowest bidder slot), the previous owner becomes unassigned.
* The list of bidders is kept in a fixed-size slot array: a slot whose row wins a column
  takes over the row it evicted (or becomes empty), so many rounds run back to back with no
  host synchronisation; the list is compacted every ``check_every`` rounds.
* Each problem runs its own ε schedule. When all of its rows are assigned (end of a phase)
  the certificate is evaluated: with ``u_i = max_j (c_ij − p_j)``, ``D = Σ u_i + Σ p_j`` is an
  upper bound of the optimum for *any* prices (weak duality), so ``0 ≤ V* − P ≤ D − P`` where
  ``P`` is the value of the assignment. ``D − P = Σ_i (u_i − (c_iπ(i) − p_π(i)))`` is summed
  from non-negative per-row slacks in float64. If it is at most ``rtol · Σ_i max_j |c_ij|``
  the problem is done and leaves the active set; otherwise ε shrinks by ``theta``, rows whose
  slack exceeds the new ε are unassigned (the rest keep their columns and all prices are
  kept) and the next phase starts. ε never goes below ``rtol · scale / S``, where ε-CS
  alone implies the certificate, so the loop ends.
* Prices, bids and the certificate are float64; float32 costs are read in float32 and cast
  row by row, so the certified problem is exactly the float32 one.
* Problems still uncertified after ``max_rounds`` bidding rounds (not seen on real features;
  it guards against float64 stalls with extreme cost ranges) are solved by
  ``scipy.optimize.linear_sum_assignment`` on the CPU and counted in ``stats["fallback"]``.

Approximate matchers: ``greedy`` (rounds of mutually-best pairs, equal to the global greedy
order), ``batch_optimal`` and ``topk_greedy`` (windows/blocks of norm-sorted tokens solved
with the batched auction), ``identity``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

DEFAULT_RTOL = 1e-10
GPU_MATCHERS = ("exact", "greedy", "batch_optimal", "topk_greedy", "identity")
_NEG_INF = float("-inf")


class GPUMatcherError(ValueError):
    """Bad input to a batched torch matcher."""


def _default_work_bytes(device: torch.device) -> int:
    """Bytes of temporaries a solver may hold at once (on top of the cost tensor)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(min(8 << 30, max(256 << 20, free // 4)))
    return 256 << 20


def _check_costs(costs: Any) -> torch.Tensor:
    if not isinstance(costs, torch.Tensor):
        raise GPUMatcherError(
            f"costs: expected a torch.Tensor (B, S, S), got {type(costs).__name__}; "
            "use torch.as_tensor(costs)"
        )
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise GPUMatcherError(f"costs: expected shape (B, S, S), got {tuple(costs.shape)}")
    if costs.dtype not in (torch.float32, torch.float64):
        raise GPUMatcherError(
            f"costs: expected float32 or float64, got {costs.dtype}; convert with .float()"
        )
    if costs.numel() and not bool(torch.isfinite(costs).all()):
        raise GPUMatcherError("costs: contains NaN or inf; clean the features first")
    return costs.detach().contiguous()


def _gather_values(costs: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
    """``Σ_s costs[b, s, perms[b, s]]`` in float64; (B,)."""
    if perms.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64, device=costs.device)
    return costs.gather(2, perms[:, :, None]).to(torch.float64).sum(dim=(1, 2))


# --------------------------------------------------------------------------------------
# exact: batched auction with ε-scaling and a duality-gap certificate
# --------------------------------------------------------------------------------------


class _Auction:
    """State of the batched auction over one cost tensor (B, S, S).

    Flat indices: row ``i`` of problem ``b`` is ``b * S + i``, column ``j`` is ``b * S + j``;
    index ``B * S`` is a sink that absorbs writes of non-winning bidders (no masked
    indexing, hence no host sync inside a round).
    """

    def __init__(
        self,
        costs: torch.Tensor,
        rtol: float,
        theta: float,
        eps0: float,
        check_every: int,
        max_rounds: int,
        max_active: int,
        work_bytes: int,
    ) -> None:
        self.c3 = costs
        self.B, self.S, _ = costs.shape
        self.cf = costs.view(self.B * self.S, self.S)
        self.dev = costs.device
        self.rtol, self.theta, self.eps0 = rtol, theta, eps0
        self.check_every, self.max_rounds, self.max_active = check_every, max_rounds, max_active
        self.work_bytes = work_bytes
        n = self.B * self.S
        self.sink = n
        i64, f64 = torch.int64, torch.float64
        self.prices = torch.zeros(n + 1, dtype=f64, device=self.dev)
        self.owner = torch.full((n + 1,), -1, dtype=i64, device=self.dev)  # col -> flat row
        self.assign = torch.full((n + 1,), -1, dtype=i64, device=self.dev)  # row -> local col
        self.best = torch.full((n + 1,), _NEG_INF, dtype=f64, device=self.dev)
        self.win = torch.full((n + 1,), -1, dtype=i64, device=self.dev)
        self.eps = torch.zeros(self.B, dtype=f64, device=self.dev)
        self.eps_min = torch.zeros(self.B, dtype=f64, device=self.dev)
        self.target = torch.zeros(self.B, dtype=f64, device=self.dev)
        self.rounds = torch.zeros(self.B, dtype=i64, device=self.dev)
        self.perms = torch.empty((self.B, self.S), dtype=i64, device=self.dev)
        self.values = torch.zeros(self.B, dtype=f64, device=self.dev)
        self.gaps = torch.zeros(self.B, dtype=f64, device=self.dev)
        self.stats: dict[str, Any] = {
            "problems": self.B,
            "rounds": 0,
            "checks": 0,
            "phases": 0,
            "fallback": 0,
            "trivial": 0,
        }
        # rows of (K, S) float64 a bidding chunk may hold (two such temporaries live at once)
        self.k_cap = max(1, work_bytes // (16 * self.S + 64))
        # problems per dense (n, S, S) float64 chunk of the certificate
        self.p_cap = max(1, work_bytes // (24 * self.S * self.S + 1))
        self.arS = torch.arange(self.S, device=self.dev)

    # -- setup ---------------------------------------------------------------------------
    def init_problems(self) -> torch.Tensor:
        """Per-problem scale, target and ε₀; returns the ids of non-trivial problems."""
        cmax = torch.empty(self.B, dtype=torch.float64, device=self.dev)
        cmin = torch.empty_like(cmax)
        scale = torch.empty_like(cmax)
        for lo in range(0, self.B, self.p_cap):
            c = self.c3[lo : lo + self.p_cap]
            cmax[lo : lo + len(c)] = c.amax(dim=(1, 2)).double()
            cmin[lo : lo + len(c)] = c.amin(dim=(1, 2)).double()
            scale[lo : lo + len(c)] = c.abs().amax(dim=2).double().sum(dim=1)
        rng = cmax - cmin
        self.target = self.rtol * scale
        # below this ε, ε-complementary slackness alone certifies the gap (gap ≤ S ε)
        self.eps_min = self.target / self.S
        self.eps = torch.maximum(rng * self.eps0, self.eps_min)
        trivial = rng <= 0  # constant costs: every permutation is optimal
        ids = torch.arange(self.B, device=self.dev)
        triv = ids[trivial]
        if len(triv):
            self.perms[triv] = self.arS
            self.values[triv] = cmax[triv] * self.S
            self.stats["trivial"] = len(triv)
        return ids[~trivial]

    # -- one Jacobi bidding round over a chunk of bidder slots ---------------------------
    def bid(self, slots: torch.Tensor) -> torch.Tensor:
        """All rows in ``slots`` (flat row ids, −1 = empty) bid once; returns the new slots."""
        S, sink = self.S, self.sink
        valid = slots >= 0
        r = slots.clamp(min=0)
        pid = torch.div(r, S, rounding_mode="floor")
        vals = self.cf[r].to(torch.float64)  # (K, S)
        vals -= self.prices[:-1].view(self.B, S)[pid]
        top_v, top_i = vals.topk(2, dim=1)
        j1 = top_i[:, 0]
        col = pid * S + j1
        bid = self.prices[col] + (top_v[:, 0] - top_v[:, 1]) + self.eps[pid]
        bid = torch.where(valid, bid, _NEG_INF)
        col = torch.where(valid, col, sink)
        self.best.scatter_reduce_(0, col, bid, reduce="amax")
        cand = valid & (bid == self.best[col])
        k = torch.arange(len(slots), device=self.dev)
        self.win.scatter_reduce_(
            0, torch.where(cand, col, sink), torch.where(cand, k, -1), reduce="amax"
        )
        won = cand & (self.win[col] == k)
        tcol = torch.where(won, col, sink)
        old = torch.where(won, self.owner[col], -1)  # evicted owner (flat row) or −1
        self.owner.scatter_(0, tcol, r)
        self.prices.scatter_(0, tcol, bid)
        self.assign.scatter_(0, torch.where(won, r, sink), j1)
        self.assign.scatter_(0, torch.where(old >= 0, old, sink), torch.full_like(old, -1))
        self.best.index_fill_(0, col, _NEG_INF)
        self.win.index_fill_(0, col, -1)
        return torch.where(won, old, slots)

    def bidders(self, active: torch.Tensor) -> list[torch.Tensor]:
        """Unassigned rows of the active problems, split into chunks of at most ``k_cap``."""
        rows = (active[:, None] * self.S + self.arS).reshape(-1)
        rows = rows[self.assign[rows] < 0]
        return list(torch.split(rows, self.k_cap)) if len(rows) else []

    # -- end of an ε phase: certificate, ε reduction --------------------------------------
    def phase_end(self, ids: torch.Tensor) -> torch.Tensor:
        """Certify problems ``ids`` (all rows assigned); returns the certified ids."""
        S = self.S
        done = []
        for lo in range(0, len(ids), self.p_cap):
            g = ids[lo : lo + self.p_cap]
            c = self.c3[g].to(torch.float64)  # (n, S, S)
            a = self.assign[:-1].view(self.B, S)[g]  # (n, S) local columns
            p = self.prices[:-1].view(self.B, S)[g]
            own_c = c.gather(2, a[:, :, None])[:, :, 0]
            c -= p[:, None, :]
            u = c.amax(dim=2)
            slack = u - (own_c - p.gather(1, a))
            gap = slack.clamp(min=0).sum(dim=1)
            ok = gap <= self.target[g]
            self.perms[g] = a
            self.values[g] = own_c.sum(dim=1)
            self.gaps[g] = gap
            done.append(g[ok])
            # next phase for the others: smaller ε, keep only the ε-CS rows
            eps = torch.maximum(self.eps[g] / self.theta, self.eps_min[g])
            self.eps[g] = eps
            drop = (slack > eps[:, None]) & ~ok[:, None]
            rows = (g[:, None] * S + self.arS)[drop]
            cols = (g[:, None] * S + a)[drop]
            self.assign[rows] = -1
            self.owner[cols] = -1
        self.stats["phases"] += len(ids)
        return torch.cat(done) if done else ids[:0]

    # -- driver --------------------------------------------------------------------------
    def run(self) -> None:
        pending = self.init_problems()
        active = pending[: self.max_active]
        pending = pending[self.max_active :]
        fallback: list[torch.Tensor] = []
        start_round = torch.zeros(self.B, dtype=torch.int64, device=self.dev)
        total_rounds = 0
        chunks = self.bidders(active)
        while len(active):
            for _ in range(self.check_every):
                chunks = [self.bid(ch) for ch in chunks]
            total_rounds += self.check_every
            self.stats["checks"] += 1
            # problems whose phase ended: no unassigned row left
            unassigned = (self.assign[:-1].view(self.B, self.S)[active] < 0).any(dim=1)
            finished = active[~unassigned]
            keep = torch.ones(len(active), dtype=torch.bool, device=self.dev)
            if len(finished):
                cert = self.phase_end(finished)
                keep &= ~torch.isin(active, cert)
            over = (total_rounds - start_round[active]) > self.max_rounds
            if bool(over.any()):
                fallback.append(active[over & keep])
                keep &= ~over
            active = active[keep]
            if len(pending) and len(active) < self.max_active:
                new = pending[: self.max_active - len(active)]
                pending = pending[len(new) :]
                start_round[new] = total_rounds
                active = torch.cat([active, new])
            chunks = self.bidders(active)
        self.stats["rounds"] = total_rounds
        if fallback:
            self._fallback(torch.cat(fallback))

    def _fallback(self, ids: torch.Tensor) -> None:
        from scipy.optimize import linear_sum_assignment

        for g in ids.tolist():
            c = self.c3[g].to(torch.float64).cpu().numpy()
            _, col = linear_sum_assignment(c, maximize=True)
            self.perms[g] = torch.as_tensor(col, device=self.dev)
            self.gaps[g] = 0.0
        if len(ids):
            self.values[ids] = _gather_values(self.c3[ids], self.perms[ids])
        self.stats["fallback"] += len(ids)


def solve_exact_torch(
    costs: torch.Tensor,
    *,
    rtol: float = DEFAULT_RTOL,
    theta: float = 6.0,
    eps0: float = 0.05,
    check_every: int = 8,
    max_rounds: int | None = None,
    max_active: int | None = None,
    work_bytes: int | None = None,
    stats: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Certified-optimal assignments of a batch of dense cost matrices (maximisation).

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32 or float64, any device, finite.
    rtol : certified duality gap relative to ``scale_b = Σ_s max_t |costs[b, s, t]|``:
        every returned value satisfies ``V*_b − rtol · scale_b ≤ values[b] ≤ V*_b``.
        Must lie in [1e-13, 1e-2].
    theta : ε reduction factor between phases (> 1).
    eps0 : initial ε as a fraction of each problem's cost range ``max − min``.
    check_every : bidding rounds between host synchronisations (phase ends, compaction).
    max_rounds : bidding rounds after which a problem is handed to scipy on the CPU
        (default ``200 * S + 2000``).
    max_active : problems bidding at the same time (default: all); finished problems are
        replaced by waiting ones.
    work_bytes : budget for temporaries (bidding rows and certificate chunks); default
        a quarter of the free CUDA memory (at most 8 GiB), 256 MiB on the CPU.
    stats : optional dict, filled with ``problems``, ``rounds`` (bidding rounds),
        ``checks``, ``phases``, ``trivial`` (constant matrices), ``fallback`` (problems
        solved by scipy), ``max_gap_rel`` (largest certified gap / scale) and ``seconds``.

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``, ``perms[b, s]`` = column matched to row ``s``.
    values : (B,) float64, ``Σ_s costs[b, s, perms[b, s]]``.

    Notes
    -----
    Memory: the cost tensor itself, O(B·S) float64/int64 state (about 48·B·S bytes), and
    at most ``work_bytes`` of temporaries.

    Raises
    ------
    ValueError (GPUMatcherError)
        Wrong shape or dtype, NaN/inf, or parameters out of range.
    """
    t0 = time.perf_counter()
    costs = _check_costs(costs)
    rtol = float(rtol)
    if not (1e-13 <= rtol <= 1e-2):
        raise GPUMatcherError(
            f"rtol must lie in [1e-13, 1e-2], got {rtol}; below 1e-13 float64 rounding of "
            "the certificate itself dominates"
        )
    if not theta > 1:
        raise GPUMatcherError(f"theta must be > 1, got {theta}")
    if not 0 < eps0 <= 10:
        raise GPUMatcherError(f"eps0 must lie in (0, 10], got {eps0}")
    if int(check_every) < 1:
        raise GPUMatcherError(f"check_every must be a positive integer, got {check_every}")
    b, s, _ = costs.shape
    st: dict[str, Any] = {"problems": b, "rounds": 0, "checks": 0, "phases": 0,
                          "trivial": 0, "fallback": 0, "max_gap_rel": 0.0}
    if b == 0 or s <= 1:
        perms = torch.zeros((b, s), dtype=torch.int64, device=costs.device)
        values = _gather_values(costs, perms)
    else:
        if max_rounds is None:
            max_rounds = 200 * s + 2000
        if max_active is None:
            max_active = b
        if int(max_active) < 1:
            raise GPUMatcherError(f"max_active must be a positive integer, got {max_active}")
        if work_bytes is None:
            work_bytes = _default_work_bytes(costs.device)
        auc = _Auction(costs, rtol, float(theta), float(eps0), int(check_every),
                       int(max_rounds), int(max_active), int(work_bytes))
        auc.run()
        perms, values = auc.perms, auc.values
        st.update(auc.stats)
        scale = costs.abs().amax(dim=2).double().sum(dim=1).clamp(min=1e-300)
        st["max_gap_rel"] = float((auc.gaps / scale).max())
    st["seconds"] = time.perf_counter() - t0
    if stats is not None:
        stats.update(st)
    return perms, values
