"""Matched inner products of pairs of images: the one per-chunk code path of every RSM.

The square semantic RSM (:func:`semrsm.semantic_rsm`), a rectangular block of images of A
against images of B (:func:`semantic_block`), a tile of a tiled RSM
(:mod:`semrsm.scale.tiles`) and the re-ranking of search candidates
(:mod:`semrsm.scale.search`) all go through :func:`cost_chunks` (cost matrices
``M = R_a R_bᵀ`` in memory-bounded chunks: CPU GEMM tiles, CUDA ``bmm``) and
:func:`solve_chunks` (one assignment per pair). A pair therefore gets the same costs, the
same assignment and the same value, bit for bit, whichever of them computes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semrsm.arguments import check_match_arguments
from semrsm.costs import (
    CPU_BUDGET_BYTES,
    default_chunk_pairs,
    iter_cost_blocks,
    iter_cost_chunks,
    iter_cost_pair_list,
    prefetch,
)
from semrsm.devices import resolve_device
from semrsm.kernels import kernel_from_block
from semrsm.matching import solve_batch
from semrsm.matching.registry import get_matcher
from semrsm.matching.scheduling import CancelLike, cancel_scope, check_cancel
from semrsm.memory import MemoryEstimate, check_memory
from semrsm.pairs import pair_indices
from semrsm.tokens import ArrayLike, squared_norms, token_layout, validate_tokens

Progress = Callable[[int, int], None]


def token_norms(t: torch.Tensor, matcher: str) -> torch.Tensor | None:
    """Per-token norms (N, S) in the tokens' dtype when ``matcher`` sorts tokens by norm
    (the registry's ``needs_norms``), else None."""
    return t.norm(dim=2) if get_matcher(matcher).needs_norms else None


def all_pairs(na: int, nb: int) -> np.ndarray:
    """Every pair ``(a, b)`` of ``range(na) × range(nb)``, row-major; (na·nb, 2) int64."""
    a, b = np.meshgrid(np.arange(na, dtype=np.int64), np.arange(nb, dtype=np.int64), indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def cost_chunks(
    tokens_a: torch.Tensor,
    tokens_b: torch.Tensor | None = None,
    *,
    pairs: np.ndarray | None = None,
    chunk_pairs: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | torch.Tensor]]:
    """Cost matrices of many pairs, in chunks bounded in memory.

    Parameters
    ----------
    tokens_a : (N_a, S, C) validated tensor (CPU or CUDA).
    tokens_b : (N_b, S, C) tensor on the same device and of the same dtype, or None.
    pairs : (P, 2) int64 pairs ``(a, b)`` to compute, or None: with ``tokens_b`` None every
        pair ``a < b`` of ``tokens_a`` (the square RSM), else every pair of
        ``tokens_a × tokens_b`` (a block).
    chunk_pairs : pairs per chunk; default from the memory budget of the device
        (see :func:`semrsm.costs.default_chunk_pairs`, :func:`semrsm.costs.iter_cost_blocks`).

    Yields
    ------
    rows, cols : (B,) int64 indices into ``tokens_a`` and ``tokens_b`` (or ``tokens_a``).
    costs : (B, S, S): float64 ndarray on CPU (the next chunk is produced in a background
        thread while the caller solves this one); a tensor in the tokens' dtype on CUDA.
    """
    other = tokens_a if tokens_b is None else tokens_b
    if tokens_a.device.type == "cpu":
        if pairs is None:
            return prefetch(iter_cost_blocks(tokens_a, tokens_b, chunk_pairs))
        return prefetch(iter_cost_pair_list(tokens_a, other, pairs, chunk_pairs))
    if pairs is None:
        pairs = pair_indices(len(tokens_a)) if tokens_b is None else all_pairs(len(tokens_a), len(other))
    if chunk_pairs is None:
        _, s, c = tokens_a.shape
        chunk_pairs = default_chunk_pairs(s, c, tokens_a.device, tokens_a.element_size())
    return (
        (pairs[start:stop, 0], pairs[start:stop, 1], costs)
        for start, stop, costs in iter_cost_chunks(tokens_a, pairs, chunk_pairs, tokens_b=tokens_b)
    )


def solve_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | torch.Tensor]],
    matcher: str,
    params: dict[str, Any],
    *,
    norms_a: torch.Tensor | None = None,
    norms_b: torch.Tensor | None = None,
    backend: str = "auto",
    cancel: CancelLike = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Solve one assignment per pair of each chunk of :func:`cost_chunks`.

    Parameters
    ----------
    chunks : ``(rows, cols, costs)`` as yielded by :func:`cost_chunks`.
    matcher, params : a matcher and its checked parameters (:func:`semrsm.matching.check_matcher`).
    norms_a, norms_b : (N_a, S) and (N_b, S) token norms, needed by ``batch_optimal`` and
        ``topk_greedy`` (see :func:`token_norms`).
    backend : see :func:`semrsm.matching.solve_batch`.
    cancel : threading.Event or callable; raises :class:`semrsm.Cancelled` between and
        within CPU solves once set.

    Yields
    ------
    rows, cols : (B,) int64; perms : (B, S) int64; values : (B,) float64 matched inner
        products ``Σ_s costs[s, perms[s]]``.
    """
    for rows, cols, costs in chunks:
        check_cancel(cancel)
        rn = cn = None
        if norms_a is not None and norms_b is not None:
            rn, cn = norms_a[rows], norms_b[cols]
        with cancel_scope(cancel):
            perms, values = solve_batch(
                costs, matcher, row_norms=rn, col_norms=cn, backend=backend, **params
            )
        yield rows, cols, perms, values


@dataclass
class BlockResult:
    """Matched inner products of every image of A against every image of B.

    Attributes
    ----------
    inner : (N_a, N_b) float64, ``⟨R_a, P*_ab R_b⟩``.
    sq_a, sq_b : (N_a,), (N_b,) float64 squared Frobenius norms of the images.
    perms : (N_a, N_b, S) int32 or None; ``perms[a, b, s]`` is the position of image ``b``
        matched to position ``s`` of image ``a``.
    rsm : (N_a, N_b) float64 of the asked kernel, or a dict kernel → ndarray.
    kernels, matcher, params : what was computed; ``sigma2`` the RBF bandwidth used.
    seconds : wall time of the call.
    """

    # the last fields are those of semrsm.rsm.SemanticResult on purpose (a block reads as
    # the square RSM does); the first ones differ, so no common base class
    inner: np.ndarray
    sq_a: np.ndarray
    sq_b: np.ndarray
    perms: np.ndarray | None
    rsm: np.ndarray | dict[str, np.ndarray]
    kernels: list[str]
    matcher: str
    params: dict[str, Any]
    sigma2: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


# same keywords, in the same order, as semrsm.rsm.semantic_rsm (bandwidth aside): a block
# is asked for as the square RSM is
def semantic_block(
    tokens_a: ArrayLike,
    tokens_b: ArrayLike,
    kernel: str | Sequence[str] = "cosine",
    matcher: str = "exact",
    *,
    device: str | torch.device = "auto",
    progress: Progress | None = None,
    return_matchings: bool = False,
    return_result: bool = False,
    chunk_pairs: int | None = None,
    sigma2: float | None = None,
    backend: str = "auto",
    cancel: CancelLike = None,
    max_memory: int | float | str | None = None,
    **matcher_params: Any,
) -> np.ndarray | dict[str, np.ndarray] | BlockResult:
    """Semantic similarities of every image of A against every image of B (a rectangular block).

    The same costs, matchers and certificate as :func:`semrsm.semantic_rsm`: an entry
    ``(a, b)`` here equals the entry of the square RSM of the union of both sets, bit for bit
    (linear, cosine; RBF with the same ``sigma2``).

    Parameters
    ----------
    tokens_a : (N_a, S, C) or (N_a, C, H, W) numpy array or torch tensor, N_a ≥ 1.
    tokens_b : (N_b, S, C) or (N_b, C, H, W), same S and C (and the same layout) as A.
    kernel : "linear", "cosine", "rbf", or a list of them (solved once for all).
    matcher : a name of :data:`semrsm.MATCHERS`; ``**matcher_params`` its parameters.
    device, chunk_pairs, backend, cancel : as :func:`semrsm.semantic_rsm`.
    progress : called as ``progress(done_pairs, total_pairs)`` after each chunk.
    return_matchings : keep every pair's permutation (N_a · N_b · S int32) in the result.
    return_result : return a :class:`BlockResult`.
    sigma2 : RBF bandwidth; None uses the median of the block's non-zero squared matched
        distances (pass the σ² of a larger matrix to put a block on its scale).
    max_memory : the memory budget (see :func:`semrsm.semantic_rsm`), checked against
        the block's (N_a, N_b) matrices, the matchings and the cost chunks before anything
        is allocated.

    Returns
    -------
    (N_a, N_b) float64 ndarray, a dict kernel → ndarray when ``kernel`` is a list, or a
    :class:`BlockResult` with ``return_matchings``/``return_result``.

    Raises
    ------
    ValueError
        Unknown kernel/matcher/parameter, bad tokens (see :func:`semrsm.semantic_rsm`), or
        A and B of different S or C.
    semrsm.memory.MemoryLimitError (a ValueError)
        The estimated peak memory is above the budget; nothing was allocated.
    semrsm.Cancelled
        ``cancel`` was set.
    """
    started = time.perf_counter()
    args = check_match_arguments(kernel, matcher, matcher_params, sigma2=sigma2,
                                 chunk_pairs=chunk_pairs, backend=backend)
    kernels, sigma2, chunk_pairs, params = args.kernels, args.sigma2, args.chunk_pairs, args.params
    dev = resolve_device(device, tokens_a)
    _check_block_memory(tokens_a, tokens_b, len(kernels), return_matchings, chunk_pairs,
                        dev, max_memory)
    ta = validate_tokens(tokens_a, device=dev).detach()
    tb = validate_tokens(tokens_b, device=dev).detach()
    if ta.shape[1:] != tb.shape[1:]:
        raise ValueError(
            f"tokens_b: images of shape (S, C) = {tuple(tb.shape[1:])} against "
            f"{tuple(ta.shape[1:])} in tokens_a; both sets must come from the same model, "
            "layer and input size"
        )
    if ta.dtype != tb.dtype:  # e.g. float64 A, float32 B: match both in float64
        dtype = torch.promote_types(ta.dtype, tb.dtype)
        ta, tb = ta.to(dtype), tb.to(dtype)
    na, s, _ = ta.shape
    nb = tb.shape[0]
    inner = np.empty((na, nb), dtype=np.float64)
    perms_all = np.empty((na, nb, s), dtype=np.int32) if return_matchings else None
    total, done = na * nb, 0
    if progress is not None:
        progress(0, total)
    solved = solve_chunks(
        cost_chunks(ta, tb, chunk_pairs=chunk_pairs), matcher, params,
        norms_a=token_norms(ta, matcher), norms_b=token_norms(tb, matcher),
        backend=backend, cancel=cancel,
    )
    for rows, cols, perms, values in solved:
        inner[rows, cols] = values
        if perms_all is not None:
            perms_all[rows, cols] = perms
        done += len(rows)
        if progress is not None:
            progress(done, total)
    sq_a, sq_b = squared_norms(ta), squared_norms(tb)
    s2 = {}
    rsms = {}
    for k in kernels:
        rsms[k], used = kernel_from_block(inner, sq_a, sq_b, k, sigma2)
        if used is not None:
            s2[k] = used
    out = rsms[kernel] if isinstance(kernel, str) else rsms
    if not (return_matchings or return_result):
        return out
    return BlockResult(
        inner=inner, sq_a=sq_a, sq_b=sq_b, perms=perms_all, rsm=out, kernels=kernels,
        matcher=matcher, params=params, sigma2=s2, seconds=time.perf_counter() - started,
    )


def block_memory(na: int, nb: int, s: int, *, return_matchings: bool = False,
                 kernels: int = 1) -> MemoryEstimate:
    """Estimated peak memory of :func:`semantic_block` beyond the inputs: the (N_a, N_b)
    matched inner products and one matrix per kernel plus three temporaries (RBF), the
    matchings ``4 N_a N_b S`` when kept, and the CPU cost chunks (≤ 5 × the chunk budget)."""
    cells = na * nb
    return MemoryEstimate({
        "(N_a, N_b) matrices": 8 * cells * (1 + kernels + 3),
        "matchings (return_matchings)": 4 * cells * s if return_matchings else 0,
        "cost matrices of the pairs in flight": 5 * CPU_BUDGET_BYTES,
    })


def _check_block_memory(tokens_a: ArrayLike, tokens_b: ArrayLike, kernels: int,
                        return_matchings: bool, chunk_pairs: int | None, dev: torch.device,
                        max_memory: int | float | str | None) -> None:
    """Refuse a block whose estimate is above the budget, before any copy of the tokens."""
    la, lb = token_layout(tokens_a), token_layout(tokens_b)
    if la is None or lb is None:  # validation explains what is wrong with the input
        return
    (na, s, c), _, copy_a = la
    (nb, _, _), _, copy_b = lb
    est = block_memory(na, nb, s, return_matchings=return_matchings, kernels=kernels)
    if dev.type == "cpu":
        est = est + MemoryEstimate({"converted tokens": copy_a + copy_b})
    ways = ["split A or B into smaller blocks (the entries do not change)"]
    if return_matchings:
        ways.append("return_matchings=False")
    check_memory(f"semantic_block of {na:,} × {nb:,} images (S = {s:,}, C = {c:,})", est,
                 ways, max_memory)
