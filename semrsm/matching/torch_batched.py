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
  alone implies the certificate, so the loop ends. Late phases first try to certify with
  prices tightened by a few batched Bellman-Ford passes (zero gap iff the assignment is
  already optimal), which saves the last ε phases.
* Prices, bids and the certificate are float64; float32 costs are read in float32 and cast
  row by row, so the certified problem is exactly the float32 one.
* Problems still uncertified after ``max_rounds`` bidding rounds (not seen on real features;
  it guards against float64 stalls with extreme cost ranges) are solved by
  ``scipy.optimize.linear_sum_assignment`` on the CPU and counted in ``stats["fallback"]``.

Approximate matchers: ``greedy`` (rounds of mutually-best pairs, equal to the global greedy
order), ``batch_optimal`` and ``topk_greedy`` (windows/blocks of norm-sorted tokens solved
as one batch by an exact solver of :data:`EXACT_SOLVERS`: this auction,
torch-linear-assignment or the project's Triton kernel), ``identity``.

Which matcher runs with which exact solver is decided by the registry
(:mod:`semrsm.matching.registry`); :func:`solve_batch_torch` is its torch-side entry, and
the ``*_matcher_torch`` functions at the end are the implementations it names.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from semrsm.matching.registry import DEFAULT_RTOL, ORDERS, get_matcher

EXACT_SOLVERS = ("torch", "tla", "triton")
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
        refine_iters: int = 64,
        refine_below: float = 1e-4,
    ) -> None:
        self.c3 = costs
        self.B, self.S, _ = costs.shape
        self.cf = costs.view(self.B * self.S, self.S)
        self.dev = costs.device
        self.rtol, self.theta, self.eps0 = rtol, theta, eps0
        self.check_every, self.max_rounds, self.max_active = check_every, max_rounds, max_active
        self.work_bytes = work_bytes
        self.refine_iters = refine_iters
        self.refine_below = refine_below
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
        self.finish_round = torch.zeros(self.B, dtype=i64, device=self.dev)
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
        self.p_cap = max(1, work_bytes // (32 * self.S * self.S + 1))
        self.arS = torch.arange(self.S, device=self.dev)
        self.count_bids = False  # diagnostics only: costs a host sync per round
        self.stats["bids"] = 0

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
        if self.count_bids:
            self.stats["bids"] += int(valid.sum())
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
            w = self.c3[g].to(torch.float64)  # (n, S, S)
            a = self.assign[:-1].view(self.B, S)[g]  # (n, S) local columns
            p = self.prices[:-1].view(self.B, S)[g]
            own_c = w.gather(2, a[:, :, None])[:, :, 0]
            w -= own_c[:, :, None]  # w_ij = c_ij - c_iπ(i): row i's gain from moving to j
            slack = (w - p[:, None, :]).amax(dim=2) + p.gather(1, a)
            gap = slack.clamp(min=0).sum(dim=1)
            ok = gap <= self.target[g]
            if self.refine_iters:
                # only worth trying once ε is small enough for the assignment to be optimal
                late = self.eps[g] * S <= self.refine_below * self.target[g] / self.rtol
                sub = (~ok & late).nonzero()[:, 0]
                if len(sub):
                    gap_r = self.refined_gap(w[sub], a[sub], p[sub])
                    better = gap_r <= self.target[g[sub]]
                    gap[sub] = torch.where(better, gap_r, gap[sub])
                    ok[sub] = better
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

    def refined_gap(self, w: torch.Tensor, a: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Duality gap of assignment ``a`` after tightening the prices ``p`` (Bellman-Ford).

        The assignment is optimal iff prices with zero slack exist, i.e. ``p_j ≥ p_π(i) +
        w_ij`` for all i, j (no positive cycle in the residual graph). Relaxing
        ``p_j ← max(p_j, max_i (w_ij + p_π(i)))`` from the auction's ε-CS prices reaches such
        prices in a few dense max-plus passes when the assignment is optimal; the gap is then
        0 up to rounding. For a suboptimal assignment the prices keep rising and the gap
        stays large. Any prices give a valid bound (weak duality), so this only ever helps.
        """
        for it in range(self.refine_iters):
            q = p.gather(1, a)  # price of each row's own column
            new = torch.maximum(p, (w + q[:, :, None]).amax(dim=1))
            if it % 8 == 7 and torch.equal(new, p):
                break
            p = new
        slack = (w - p[:, None, :]).amax(dim=2) + p.gather(1, a)
        return slack.clamp(min=0).sum(dim=1)

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
                self.finish_round[cert] = total_rounds - start_round[cert]
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
    theta: float = 7.0,
    eps0: float = 0.02,
    check_every: int = 8,
    max_rounds: int | None = None,
    max_active: int | None = None,
    work_bytes: int | None = None,
    refine_iters: int = 64,
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
    refine_iters : Bellman-Ford price-tightening passes tried at the end of late ε phases
        (0 disables); certifies an already optimal assignment without further phases.
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
    st: dict[str, Any] = {
        "problems": b,
        "rounds": 0,
        "checks": 0,
        "phases": 0,
        "trivial": 0,
        "fallback": 0,
        "max_gap_rel": 0.0,
    }
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
        auc = _Auction(
            costs,
            rtol,
            float(theta),
            float(eps0),
            int(check_every),
            int(max_rounds),
            int(max_active),
            int(work_bytes),
            max(0, int(refine_iters)),
        )
        auc.run()
        perms, values = auc.perms, auc.values
        st.update(auc.stats)
        scale = costs.abs().amax(dim=2).double().sum(dim=1).clamp(min=1e-300)
        st["max_gap_rel"] = float((auc.gaps / scale).max())
    st["seconds"] = time.perf_counter() - t0
    if stats is not None:
        stats.update(st)
    return perms, values


# --------------------------------------------------------------------------------------
# greedy: rounds of mutually-best pairs
# --------------------------------------------------------------------------------------


def _greedy_chunk(c: torch.Tensor) -> torch.Tensor:
    """Global greedy permutations of (n, S, S) costs; (n, S) int64.

    Each round fixes every pair (i, j) that is the maximum of its row *and* its column among
    the remaining entries. The global greedy order takes each such pair too (no larger entry
    can remove its row or column first), and the largest remaining entry is always such a
    pair, so the rounds reproduce the global greedy result exactly when there are no ties
    (with ties: the lowest-index tie-break, still a greedy order). The working matrix is
    compacted to the free rows/columns whenever they shrink by a quarter, so late rounds
    are cheap.
    """
    n, S, _ = c.shape
    dev = c.device
    w = c.clone()
    rid = torch.arange(S, device=dev).expand(n, S).clone()  # original row of each w row
    cid = rid.clone()
    perm = torch.full((n, S + 1), -1, dtype=torch.int64, device=dev)
    while True:
        m = w.shape[1]
        ar = torch.arange(m, device=dev)
        rv, rj = w.max(dim=2)
        ci = w.argmax(dim=1)
        rowvalid = rv > _NEG_INF
        mutual = rowvalid & (ci.gather(1, rj) == ar)
        perm.scatter_(1, torch.where(mutual, rid, S), cid.gather(1, rj))
        rowfree = rowvalid & ~mutual
        colkill = torch.zeros((n, m + 1), dtype=torch.bool, device=dev)
        colkill.scatter_(1, torch.where(mutual, rj, m), True)
        colfree = (cid >= 0) & ~colkill[:, :m]
        nfree = int(rowfree.sum(dim=1).max())
        if nfree == 0:
            break
        if nfree <= 0.75 * m:
            order_r = torch.argsort((~rowfree).to(torch.int8), dim=1, stable=True)[:, :nfree]
            order_c = torch.argsort((~colfree).to(torch.int8), dim=1, stable=True)[:, :nfree]
            w = w.gather(1, order_r[:, :, None].expand(n, nfree, m))
            w = w.gather(2, order_c[:, None, :].expand(n, nfree, nfree))
            rid = torch.where(rowfree.gather(1, order_r), rid.gather(1, order_r), -1)
            cid = torch.where(colfree.gather(1, order_c), cid.gather(1, order_c), -1)
            w.masked_fill_((rid < 0)[:, :, None] | (cid < 0)[:, None, :], _NEG_INF)
        else:
            rid = torch.where(rowfree, rid, -1)
            cid = torch.where(colfree, cid, -1)
            w.masked_fill_(~rowfree[:, :, None] | ~colfree[:, None, :], _NEG_INF)
    return perm[:, :S].contiguous()


def greedy_torch(costs: torch.Tensor, *, work_bytes: int | None = None) -> torch.Tensor:
    """Global greedy permutations of a batch (repeatedly take the largest remaining entry).

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32/float64, any device.
    work_bytes : budget for temporaries (a working copy of a chunk of problems and its
        reductions); default as :func:`solve_exact_torch`.

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``.
    """
    costs = _check_costs(costs)
    b, s, _ = costs.shape
    if b == 0 or s <= 1:
        return torch.zeros((b, s), dtype=torch.int64, device=costs.device)
    if work_bytes is None:
        work_bytes = _default_work_bytes(costs.device)
    per = 3 * s * s * costs.element_size() + 64 * s
    step = max(1, int(work_bytes) // per)
    return torch.cat([_greedy_chunk(costs[lo : lo + step]) for lo in range(0, b, step)])


# --------------------------------------------------------------------------------------
# norm-sorted windows: batch_optimal, topk_greedy
# --------------------------------------------------------------------------------------


def _norm_order(norms: Any, proxy: torch.Tensor, name: str) -> torch.Tensor:
    """Positions by descending norm (stable, as the CPU matchers); (B, S) int64."""
    if norms is not None:
        norms = torch.as_tensor(norms, device=proxy.device)
        if tuple(norms.shape) != tuple(proxy.shape):
            raise GPUMatcherError(
                f"{name}: expected shape {tuple(proxy.shape)} (B, S), got {tuple(norms.shape)}"
            )
        proxy = norms
    return torch.sort(proxy.to(torch.float64), dim=1, descending=True, stable=True).indices


def _orders(
    costs: torch.Tensor, row_norms: Any, col_norms: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    # Without token norms, sort by each token's best inner product with the other side
    # (row maximum for rows, column maximum for columns): high-norm tokens have the largest.
    ro = _norm_order(row_norms, costs.amax(dim=2), "row_norms")
    co = _norm_order(col_norms, costs.amax(dim=1), "col_norms")
    return ro, co


def _sub(costs: torch.Tensor, ro: torch.Tensor, co: torch.Tensor) -> torch.Tensor:
    """costs[b][ro[b]][:, co[b]] for every b: (B, m, k)."""
    b, s, _ = costs.shape
    x = costs.gather(1, ro[:, :, None].expand(b, ro.shape[1], s))
    return x.gather(2, co[:, None, :].expand(b, ro.shape[1], co.shape[1]))


def exact_solver(name: str = "torch", rtol: float = DEFAULT_RTOL, **tuning: Any):
    """A batched exact solver ``solve(costs, stats) -> (perms, values)``.

    Parameters
    ----------
    name : "torch" (:func:`solve_exact_torch`, tuning: its keyword parameters), "tla"
        (torch-linear-assignment; no tuning, ``rtol`` unused) or "triton"
        (:func:`semrsm.matching.triton_lap.solve_exact_triton`, tuning: ``arr_iters``).
    rtol : certified relative gap (torch, triton).

    Raises
    ------
    GPUMatcherError
        Unknown solver name.
    """
    if name == "torch":
        return lambda c, st: solve_exact_torch(c, rtol=rtol, stats=st, **tuning)
    if name == "tla":
        from semrsm.matching.tla import solve_exact_tla

        if tuning:
            raise GPUMatcherError(f"exact solver 'tla' takes no tuning parameters; got {sorted(tuning)}")
        return lambda c, st: solve_exact_tla(c, stats=st)
    if name == "triton":
        from semrsm.matching.triton_lap import solve_exact_triton

        return lambda c, st: solve_exact_triton(c, rtol=rtol, stats=st, **tuning)
    raise GPUMatcherError(f"exact solver: unknown {name!r}; use one of {EXACT_SOLVERS}")


def _exact_blocks(
    costs: torch.Tensor,
    ro: torch.Tensor,
    co: torch.Tensor,
    perm: torch.Tensor,
    exact,
    stats: dict,
) -> None:
    """Solve costs[b][ro[b]][:, co[b]] exactly for all b; write into perm (B, S)."""
    if ro.shape[1] == 0:
        return
    st: dict = {}
    loc, _ = exact(_sub(costs, ro, co).contiguous(), st)
    perm.scatter_(1, ro, co.gather(1, loc))
    stats["fallback"] = stats.get("fallback", 0) + st.get("fallback", 0)


def _start_blocks(
    costs: Any, exact: Any, exact_params: dict[str, Any]
) -> tuple[torch.Tensor, Any, torch.Tensor, dict]:
    """What both norm-sorted matchers start with: the checked costs, the exact solver of
    their blocks (default the auction with ``exact_params``), a zero (B, S) int64
    permutation to fill and their stats."""
    costs = _check_costs(costs)
    if exact is None:
        exact = exact_solver("torch", **exact_params)
    perm = torch.zeros(costs.shape[:2], dtype=torch.int64, device=costs.device)
    return costs, exact, perm, {"fallback": 0}


def batch_optimal_torch(
    costs: torch.Tensor,
    *,
    window: int = 128,
    order: str = "descending",
    row_norms: torch.Tensor | None = None,
    col_norms: torch.Tensor | None = None,
    stats: dict | None = None,
    exact=None,
    **exact_params: Any,
) -> torch.Tensor:
    """Batch-Optimal permutations: norm-sorted tokens, exact within consecutive windows.

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32/float64, any device.
    window : tokens per window (≥ 1). All windows of all problems of the same size are
        solved as one batch by :func:`solve_exact_torch`.
    order : "descending" (default: the highest norms fill the first window) or "ascending"
        (the paper authors' code), as the CPU matcher.
    row_norms, col_norms : (B, S) token norms of the two sides. If omitted, a proxy is
        used: each row's maximum over its columns and each column's maximum over its rows
        (high-norm tokens have the largest inner products).
    stats : optional dict; ``fallback`` counts windows solved by scipy.
    exact : batched exact solver of the windows (:func:`exact_solver`); default the
        auction of :func:`solve_exact_torch` with ``**exact_params`` (``rtol``, ...).

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``.
    """
    if int(window) < 1:
        raise GPUMatcherError(f"batch_optimal: window must be a positive integer, got {window}")
    if order not in ORDERS:
        raise GPUMatcherError(f"batch_optimal: order must be 'descending' or 'ascending', got {order!r}")
    costs, exact, perm, st = _start_blocks(costs, exact, exact_params)
    b, s, _ = costs.shape
    if b and s:
        ro, co = _orders(costs, row_norms, col_norms)
        if order == "ascending":
            ro, co = ro.flip(1), co.flip(1)
        window = min(int(window), s)
        full = s // window * window
        if full:
            # (B, nwin, window) -> one batch of B * nwin windows
            nw = full // window
            rw = ro[:, :full].reshape(b * nw, window)
            cw = co[:, :full].reshape(b * nw, window)
            src = costs.repeat_interleave(nw, dim=0) if nw > 1 else costs
            sub_perm = torch.empty((b * nw, s), dtype=torch.int64, device=costs.device)
            _exact_blocks(src, rw, cw, sub_perm, exact, st)
            perm.scatter_(1, ro[:, :full], sub_perm.gather(1, rw).reshape(b, full))
        if full < s:
            _exact_blocks(costs, ro[:, full:], co[:, full:], perm, exact, st)
    if stats is not None:
        stats.update(st)
    return perm


def topk_greedy_torch(
    costs: torch.Tensor,
    *,
    k: int = 32,
    row_norms: torch.Tensor | None = None,
    col_norms: torch.Tensor | None = None,
    stats: dict | None = None,
    exact=None,
    **exact_params: Any,
) -> torch.Tensor:
    """TopK-Greedy permutations: exact among the ``k`` highest-norm tokens, greedy after.

    Parameters as :func:`batch_optimal_torch` (``k`` ≥ 0 instead of ``window``).

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``.
    """
    if int(k) < 0:
        raise GPUMatcherError(f"topk_greedy: k must be a non-negative integer, got {k}")
    costs, exact, perm, st = _start_blocks(costs, exact, exact_params)
    b, s, _ = costs.shape
    if b and s:
        k = min(int(k), s)
        ro, co = _orders(costs, row_norms, col_norms)
        _exact_blocks(costs, ro[:, :k], co[:, :k], perm, exact, st)
        if k < s:
            loc = greedy_torch(_sub(costs, ro[:, k:], co[:, k:]))
            perm.scatter_(1, ro[:, k:], co[:, k:].gather(1, loc))
    if stats is not None:
        stats.update(st)
    return perm


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------


def solve_batch_torch(
    costs: torch.Tensor,
    matcher: str = "exact",
    *,
    row_norms: torch.Tensor | None = None,
    col_norms: torch.Tensor | None = None,
    stats: dict | None = None,
    exact_solver_name: str = "torch",
    **params: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve a batch of maximisation assignment problems with torch ops (CUDA or CPU).

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32 or float64 on any device;
        ``costs[b, s, t] = <a_s, b_t>``.
    matcher : a name of the registry (:mod:`semrsm.matching.registry`): ``"exact"``,
        ``"greedy"``, ``"batch_optimal"`` (``window``), ``"topk_greedy"`` (``k``),
        ``"identity"``.
    row_norms, col_norms : (B, S) token norms, used by ``batch_optimal``/``topk_greedy``
        to sort tokens; without them the row/column maxima of ``costs`` stand in.
    stats : optional dict filled with solver diagnostics (see :func:`solve_exact_torch`);
        ``stats["fallback"]`` counts problems handed to scipy.
    exact_solver_name : the exact solver of whole problems, windows and top-k blocks, one
        of :data:`EXACT_SOLVERS` (see :func:`exact_solver`).
    **params : the matcher's registry parameters (``rtol`` alias ``tol``, ``window``,
        ``k``); any other keyword is a tuning parameter of the exact solver.

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``; ``perms[b, s]`` = column matched to row ``s``.
    values : (B,) float64 on ``costs.device``; ``Σ_s costs[b, s, perms[b, s]]``, summed in
        float64.

    Raises
    ------
    ValueError (GPUMatcherError)
        Unknown matcher or parameter, bad shape/dtype, NaN/inf.

    Notes
    -----
    Memory: the cost tensor, O(B·S) solver state and a bounded budget of temporaries
    (``work_bytes``, default a quarter of the free CUDA memory, at most 8 GiB).
    """
    if "tol" in params:
        params["rtol"] = params.pop("tol")
    try:
        spec = get_matcher(matcher)
    except ValueError as e:
        raise GPUMatcherError(str(e)) from None
    costs = _check_costs(costs)
    names = {p.name for p in spec.params}
    tuning = {k: params.pop(k) for k in list(params) if k not in names and k != "rtol"}
    rtol = params.pop("rtol", DEFAULT_RTOL)
    if matcher == "exact":
        params["rtol"] = rtol
    try:
        checked = spec.check(params)
    except ValueError as e:
        raise GPUMatcherError(str(e)) from None
    if tuning and spec.exact_size(costs.shape[1], checked) == 0:
        raise GPUMatcherError(f"matcher {matcher!r}: unexpected parameters {sorted(tuning)}")
    try:
        exact = exact_solver(exact_solver_name, rtol=rtol, **tuning)
        st: dict = {"fallback": 0}
        if matcher == "exact":  # keep the solver's own values and diagnostics
            perms, values = exact(costs, st)
        else:
            impl = spec.gpu_impl()
            if impl is None:
                raise GPUMatcherError(f"matcher {matcher!r} has no torch implementation; "
                                      "use backend='numba'")
            perms = impl(costs, row_norms, col_norms, exact, st, **checked)
            values = _gather_values(costs, perms)
    except TypeError as e:  # unknown tuning keyword
        raise GPUMatcherError(f"matcher {matcher!r}: {e}") from None
    if stats is not None:
        stats.update(st)
    return perms, values


# --------------------------------------------------------------------------------------
# the registry's torch implementations: (costs, row_norms, col_norms, exact, stats,
# **params) -> perms (B, S) int64 on the costs' device
# --------------------------------------------------------------------------------------


def exact_matcher_torch(costs: torch.Tensor, row_norms: Any, col_norms: Any, exact: Any,
                        stats: dict, *, rtol: float = DEFAULT_RTOL) -> torch.Tensor:
    """``exact``: the whole problems, by the exact solver (which already holds ``rtol``)."""
    return exact(costs, stats)[0]


def batch_optimal_matcher_torch(costs: torch.Tensor, row_norms: Any, col_norms: Any,
                                exact: Any, stats: dict, *, window: int,
                                order: str) -> torch.Tensor:
    """``batch_optimal``: :func:`batch_optimal_torch`."""
    return batch_optimal_torch(costs, window=window, order=order, row_norms=row_norms,
                               col_norms=col_norms, stats=stats, exact=exact)


def topk_greedy_matcher_torch(costs: torch.Tensor, row_norms: Any, col_norms: Any,
                              exact: Any, stats: dict, *, k: int) -> torch.Tensor:
    """``topk_greedy``: :func:`topk_greedy_torch`."""
    return topk_greedy_torch(costs, k=k, row_norms=row_norms, col_norms=col_norms,
                             stats=stats, exact=exact)


def greedy_matcher_torch(costs: torch.Tensor, row_norms: Any, col_norms: Any, exact: Any,
                         stats: dict) -> torch.Tensor:
    """``greedy``: :func:`greedy_torch` (norms and the exact solver unused)."""
    return greedy_torch(costs)


def identity_torch(costs: torch.Tensor, row_norms: Any, col_norms: Any, exact: Any,
                   stats: dict) -> torch.Tensor:
    """``identity``: position s matched to position s."""
    b, s = costs.shape[0], costs.shape[1]
    return torch.arange(s, device=costs.device).expand(b, s).contiguous()


__all__ = [
    "DEFAULT_RTOL",
    "GPUMatcherError",
    "EXACT_SOLVERS",
    "batch_optimal_torch",
    "exact_solver",
    "greedy_torch",
    "solve_batch_torch",
    "solve_exact_torch",
    "topk_greedy_torch",
]
