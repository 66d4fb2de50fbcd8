"""The solvers behind :func:`semrsm.matching.solve_batch` and :func:`semrsm.matching.match_pair`:
the registry's implementation for the device, on the CPU in fair slices (scheduling.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semrsm.matching import check_backend, check_matcher
from semrsm.matching.registry import MatcherSpec, get_matcher, select_implementation
from semrsm.matching.scheduling import CPU_SOLVER

# numba's default (workqueue) threading layer must not be entered from two threads at once,
# and a Streamlit server runs each browser session in its own thread: serialise the parallel
# CPU solves (each one already uses every core) in fair, cancellable slices (scheduling.py).
_CPU_SOLVER_LOCK = CPU_SOLVER


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
    costs : (B, S, S) array or tensor; ``costs[b, s, t] = <a_s, b_t>``.
    matcher : a name of :data:`MATCHERS`.
    row_norms, col_norms : (B, S) token norms of the two sides; needed by ``topk_greedy`` and
        ``batch_optimal`` (they sort tokens by norm).
    backend : one of :data:`BACKENDS`. "auto": numba for everything not on CUDA; on CUDA
        the registry's rule (:func:`semrsm.matching.registry.select_implementation`:
        torch-linear-assignment for exact problems, windows and top-k blocks until a faster
        solver is measured; torch ops for greedy and identity).
    **params : the matcher's parameters (see :data:`MATCHERS`).

    Returns
    -------
    perms : (B, S) int64 ndarray, values : (B,) float64 ndarray with
        ``values[b] = Σ_s costs[b, s, perms[b, s]]`` (gathered from ``costs``, summed in
        float64).

    Raises
    ------
    ValueError
        Unknown matcher, backend or parameter, a bad parameter value, or costs that are not
        a batch of square matrices.
    """
    spec = get_matcher(matcher)
    params = spec.check(params)
    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise ValueError(f"costs: expected shape (B, S, S), got {tuple(costs.shape)}")
    check_backend(backend)
    device = costs.device if isinstance(costs, torch.Tensor) else torch.device("cpu")
    impl = select_implementation(matcher, device, costs.shape[1], params, backend)
    if impl != "numba":
        from semrsm.matching.torch_batched import solve_batch_torch

        costs = torch.as_tensor(costs)

        def _t(x):
            return None if x is None else torch.as_tensor(x, device=costs.device)

        perms_t, values_t = solve_batch_torch(
            costs, matcher, row_norms=_t(row_norms), col_norms=_t(col_norms),
            exact_solver_name=impl, **params,
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
        lambda sl: _solve_cpu(spec, costs[sl], _part(row_norms, sl), _part(col_norms, sl), params),
        costs.shape[0], (matcher, costs.shape[1], tuple(sorted(params.items()))),
    )


def _part(norms: np.ndarray | None, sl: slice) -> np.ndarray | None:
    return None if norms is None else norms[sl]


def _solve_cpu(spec: MatcherSpec, costs: np.ndarray, row_norms: np.ndarray | None,
               col_norms: np.ndarray | None, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One slice of CPU solves (run inside a fair turn of the CPU solver, see scheduling.py)."""
    perms = spec.cpu_impl()(costs, row_norms, col_norms, **params)
    values = np.take_along_axis(costs, perms[:, :, None], axis=2)[:, :, 0].sum(axis=1)
    return perms, values



def _check_pair_memory(a: Any, max_memory: int | float | str | None) -> None:
    """Refuse a pair whose (S, S) float64 cost matrix would not fit the memory budget."""
    from semrsm.memory import MemoryEstimate, check_memory
    from semrsm.tokens import token_layout

    layout = token_layout([a])
    if layout is None:  # validation says what is wrong
        return
    (_, s, c), _, _ = layout
    estimate = MemoryEstimate({
        "(S, S) float64 costs and the solver's copy": 16 * s * s,
        "float64 copies of a and b": 16 * s * c,
    })
    check_memory(f"match_pair of S = {s:,} positions × C = {c:,} channels", estimate,
                 ["use fewer positions (pool the feature maps or pick a later layer)"], max_memory)


def match_pair(
    a: Any, b: Any, matcher: str = "exact", *, max_memory: int | float | str | None = None,
    **params: Any,
) -> tuple[np.ndarray, float]:
    """Optimally (or approximately) match the positions of two representations.

    Parameters
    ----------
    a, b : (S, C) arrays or tensors (numpy or torch, any device), the tokens of two images;
        a (C, H, W) feature map is accepted too and flattened to (H*W, C).
    matcher : a name of :data:`MATCHERS`; ``**params`` its parameters.
    max_memory : the memory budget (see :mod:`semrsm.memory`); the (S, S) costs take
        ``16 S²`` bytes.

    Returns
    -------
    perm : (S,) int64 ndarray; ``b[perm[s]]`` is matched to ``a[s]``.
    value : float, ``<a, b[perm]>_F`` (the matched inner product).

    Raises
    ------
    ValueError
        Wrong rank, different shapes, NaN/inf, unknown matcher.
    semrsm.memory.MemoryLimitError (a ValueError)
        The pair's cost matrix would not fit the memory budget; nothing was allocated.
    """
    from semrsm.tokens import validate_tokens

    check_matcher(matcher, params)
    _check_pair_memory(a, max_memory)

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


__all__ = ["match_pair", "solve_batch"]
