"""Matchings: one linear assignment per pair of images, maximising ``Σ_s M[s, perm[s]]``.

A matcher takes cost matrices ``M[b] = A_b B_bᵀ`` (B, S, S) and returns permutations
``perms[b, s] = t`` (position ``t`` of the second image matched to position ``s`` of the
first) and their values. Registry in the spirit of timm: :data:`MATCHERS` lists the names,
their parameters and defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semrsm.matching.approximate import batch_optimal_batch, greedy_batch, topk_greedy_batch
from semrsm.matching.exact import DEFAULT_RTOL, exact_batch
from semrsm.matching.scheduling import CPU_SOLVER

# numba's default (workqueue) threading layer must not be entered from two threads at once,
# and a Streamlit server runs each browser session in its own thread: serialise the parallel
# CPU solves (each one already uses every core) in fair, cancellable slices (scheduling.py).
_CPU_SOLVER_LOCK = CPU_SOLVER

MATCHERS: dict[str, dict[str, Any]] = {
    "exact": {
        "params": {"rtol": DEFAULT_RTOL},
        "description": "optimal permutation (auction with ε-scaling, certified to rtol)",
    },
    "batch_optimal": {
        "params": {"window": 128},
        "description": "tokens sorted by norm, exact within consecutive windows (paper's trade-off)",
    },
    "topk_greedy": {
        "params": {"k": 32},
        "description": "exact among the k highest-norm tokens of each side, greedy for the rest",
    },
    "greedy": {"params": {}, "description": "repeatedly take the highest remaining inner product"},
    "identity": {"params": {}, "description": "no matching: reproduces the spatio-semantic RSM"},
}


BACKENDS = ("auto", "numba", "torch")


def check_backend(backend: str) -> str:
    """Raise ValueError unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; use one of {BACKENDS}")
    return backend


def check_matcher(matcher: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate a matcher name and its parameters; return the parameters with defaults filled in."""
    if matcher not in MATCHERS:
        raise ValueError(f"matcher: unknown matcher {matcher!r}; choose one of {tuple(MATCHERS)}")
    allowed = MATCHERS[matcher]["params"]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"matcher {matcher!r} takes parameters {tuple(allowed) or '()'}; "
            f"got unknown {sorted(unknown)}"
        )
    return {**allowed, **params}


def solve_batch(
    costs: np.ndarray | torch.Tensor,
    matcher: str = "exact",
    *,
    row_norms: np.ndarray | torch.Tensor | None = None,
    col_norms: np.ndarray | torch.Tensor | None = None,
    backend: str = "auto",
    **params: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve a batch of assignment problems.

    Parameters
    ----------
    costs : (B, S, S) array or tensor; ``costs[b, s, t] = <a_s, b_t>``. CUDA tensors are
        solved on the GPU (``semrsm.matching.gpu``); everything else on the CPU in float64.
    matcher : a name of :data:`MATCHERS`.
    row_norms, col_norms : (B, S) token norms of the two sides; needed by ``topk_greedy`` and
        ``batch_optimal`` (they sort tokens by norm).
    backend : "auto" (CUDA tensors → the torch solver, everything else → numba), "numba"
        (CPU, float64) or "torch" (the batched torch solver on the costs' device: this is
        how CI runs the GPU code path without a GPU).
    **params : the matcher's parameters (see :data:`MATCHERS`).

    Returns
    -------
    perms : (B, S) int64 ndarray, values : (B,) float64 ndarray with
        ``values[b] = Σ_s costs[b, s, perms[b, s]]``.

    Raises
    ------
    ValueError
        Unknown matcher or parameter, or costs that are not a batch of square matrices.
    """
    params = check_matcher(matcher, params)
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise ValueError(f"costs: expected shape (B, S, S), got {tuple(costs.shape)}")
    check_backend(backend)
    is_cuda = isinstance(costs, torch.Tensor) and costs.is_cuda
    if backend == "torch" or (backend == "auto" and is_cuda):
        from semrsm.matching.gpu import solve_batch_torch

        costs = torch.as_tensor(costs)

        def _t(x):
            return None if x is None else torch.as_tensor(x, device=costs.device)

        perms_t, values_t = solve_batch_torch(
            costs, matcher, row_norms=_t(row_norms), col_norms=_t(col_norms), **params
        )
        return perms_t.cpu().numpy(), values_t.cpu().numpy().astype(np.float64)
    if isinstance(costs, torch.Tensor):
        costs = costs.detach().cpu().numpy()
    if isinstance(row_norms, torch.Tensor):
        row_norms = row_norms.detach().cpu().numpy()
    if isinstance(col_norms, torch.Tensor):
        col_norms = col_norms.detach().cpu().numpy()
    costs = np.ascontiguousarray(costs, dtype=np.float64)
    return _CPU_SOLVER_LOCK.run_sliced(
        lambda sl: _solve_cpu(costs[sl], matcher, _part(row_norms, sl), _part(col_norms, sl), params),
        costs.shape[0], (matcher, costs.shape[1], tuple(sorted(params.items()))),
    )


def _part(norms: np.ndarray | None, sl: slice) -> np.ndarray | None:
    return None if norms is None else norms[sl]


def _solve_cpu(costs: np.ndarray, matcher: str, row_norms: np.ndarray | None,
               col_norms: np.ndarray | None, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    b, s, _ = costs.shape
    if matcher == "exact":
        perms, values, _ = exact_batch(costs, rtol=params["rtol"])
        return perms, values
    if matcher == "identity":
        perms = np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)).copy()
    elif matcher == "greedy":
        perms = greedy_batch(costs)
    elif matcher == "batch_optimal":
        perms = batch_optimal_batch(costs, row_norms, col_norms, window=params["window"])
    else:
        perms = topk_greedy_batch(costs, row_norms, col_norms, k=params["k"])
    values = np.take_along_axis(costs, perms[:, :, None], axis=2)[:, :, 0].sum(axis=1)
    return perms, values


def match_pair(a: Any, b: Any, matcher: str = "exact", **params: Any) -> tuple[np.ndarray, float]:
    """Optimally (or approximately) match the positions of two representations.

    Parameters
    ----------
    a, b : (S, C) arrays or tensors (numpy or torch, any device), the tokens of two images;
        a (C, H, W) feature map is accepted too and flattened to (H*W, C).
    matcher : a name of :data:`MATCHERS`; ``**params`` its parameters.

    Returns
    -------
    perm : (S,) int64 ndarray; ``b[perm[s]]`` is matched to ``a[s]``.
    value : float, ``<a, b[perm]>_F`` (the matched inner product).

    Raises
    ------
    ValueError
        Wrong rank, different shapes, NaN/inf, unknown matcher.
    """
    from semrsm.tokens import validate_tokens

    ta = validate_tokens([a])
    tb = validate_tokens([b])
    if ta.shape != tb.shape:
        raise ValueError(
            f"match_pair: a and b must have the same shape (S, C); got {tuple(ta.shape[1:])} and "
            f"{tuple(tb.shape[1:])}"
        )
    dtype = torch.float64 if not ta.is_cuda else ta.dtype
    ta, tb = ta.to(dtype), tb.to(device=ta.device, dtype=dtype)
    costs = torch.bmm(ta, tb.transpose(1, 2))
    perms, values = solve_batch(
        costs, matcher, row_norms=ta.norm(dim=2), col_norms=tb.norm(dim=2), **params
    )
    return perms[0], float(values[0])


__all__ = ["BACKENDS", "MATCHERS", "check_backend", "check_matcher", "match_pair", "solve_batch"]
