"""RSMs over a set of images: spatio-semantic (identity alignment) and semantic (matched).

Flow: validated tokens → pairs ``i < j`` in memory-bounded chunks → cost matrices (on CPU
one GEMM per tile of images, produced in a background thread while the previous tile is
solved; ``torch.bmm`` on CUDA) → one assignment per pair (CPU numba auction, or the batched
GPU solver) → matched inner products → every requested kernel.
One assignment serves all kernels (the optimal permutation maximises the inner product for
linear, cosine and RBF alike), so asking for several kernels solves once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semrsm.arguments import check_match_arguments
from semrsm.blocks import cost_chunks, solve_chunks, token_norms
from semrsm.costs import (
    GPU_BUDGET_BYTES,
    bytes_per_pair,
    tile_bytes_per_pair,
    tile_chunk_pairs,
)
from semrsm.devices import resolve_device
from semrsm.kernels import (
    bandwidth_sigma2,
    check_bandwidth,
    check_kernels,
    check_sigma2,
    kernel_from_inner,
    squared_distances,
)
from semrsm.matching.registry import REGISTRY
from semrsm.matching.scheduling import CancelLike
from semrsm.memory import (
    MemoryEstimate,
    MemoryLimitError,
    check_memory,
    format_bytes,
    memory_budget,
)
from semrsm.pairs import pair_ids, pair_indices
from semrsm.tokens import (
    BLOCK_ELEMENTS,
    ArrayLike,
    squared_norms,
    token_layout,
    validate_tokens,
)

Progress = Callable[[int, int], None]


@dataclass
class SemanticResult:
    """A semantic RSM with its descriptors and (optionally) the matchings behind it.

    Attributes
    ----------
    rsm : (N, N) float64 ndarray, or a dict kernel → ndarray when several kernels were asked.
    inner : (N, N) float64 matched inner products ``⟨R_i, P*_ij R_j⟩`` (diagonal ``‖R_i‖²``).
    pairs : (P, 2) int64, the solved pairs ``i < j``.
    perms : (P, S) int32 or None; ``perms[p, s]`` is the position of image ``pairs[p, 1]``
        matched to position ``s`` of image ``pairs[p, 0]``.
    kernels, matcher, params : what was computed; ``sigma2`` the RBF bandwidth used per kernel.
    seconds : wall time of the whole call.
    """

    rsm: np.ndarray | dict[str, np.ndarray]
    inner: np.ndarray
    pairs: np.ndarray
    perms: np.ndarray | None
    kernels: list[str]
    matcher: str
    params: dict[str, Any]
    sigma2: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def perm(self, i: int, j: int) -> np.ndarray:
        """Permutation matching image ``j``'s positions to image ``i``'s: ``R_j[perm[s]] ↔ R_i[s]``."""
        if self.perms is None:
            raise ValueError("matchings were not kept; call semantic_rsm(..., return_matchings=True)")
        if i == j:
            return np.arange(self.perms.shape[1])
        a, b = (i, j) if i < j else (j, i)
        n = self.inner.shape[0]
        if not (0 <= a < n and 0 <= b < n):
            raise ValueError(f"pair ({i}, {j}) out of range for {n} images")
        perm = self.perms[int(pair_ids(a, b, n))].astype(np.int64)
        return perm if i < j else np.argsort(perm)


# --------------------------------------------------------------------------- memory model
#
# Peak bytes beyond the caller's own tokens, from the sizes alone (no allocation). The
# parts alive together are added; of the phases that follow one another (checks, cost
# matrices, kernels) the largest is added. Coefficients are upper bounds of what
# tests/memory.py measured (tests/test_security_library.py keeps them honest).

#: (N, N) float64 temporaries of the kernels step besides one result per kernel
#: (measured: 0.9 linear, 2.1 cosine, 2.0 rbf; 1.8 for all three)
_KERNEL_TEMPORARIES = 3
#: CPU cost chunks counted at once: the one being solved, the prefetched next one, the one
#: after it being filled, the GEMM tiles they are cut from, and what the allocator keeps
#: of freed tiles (measured: 4.1 chunks' worth at S = 784)
_CHUNKS_ALIVE = 5
#: per pair and position in a CPU chunk: solver permutations, gathered values, norm orders
_SOLVER_BYTES = 64
#: scratch per value of the input checks, in blocks of images (float64 norms, |x|, masks)
_CHECK_BYTES = 8 + 8 + 2


def _needs_norms(matcher: str) -> bool:
    """Whether ``matcher`` sorts tokens by norm (an unknown name: no, validation says why)."""
    spec = REGISTRY.get(matcher)
    return spec is not None and spec.needs_norms


def _kernels_bytes(n: int, kernels: int) -> int:
    """The kernels step: one (N, N) float64 result per kernel, temporaries and masks."""
    return 8 * n * n * (kernels + _KERNEL_TEMPORARIES) + 2 * n * n


def _check_scratch(s: int, c: int) -> int:
    return max(BLOCK_ELEMENTS, s * c) * _CHECK_BYTES


def semantic_memory(
    n: int,
    s: int,
    c: int,
    *,
    itemsize: int = 4,
    copy_bytes: int = 0,
    kernels: int = 1,
    matcher: str = "exact",
    return_matchings: bool = False,
    chunk_pairs: int | None = None,
    device_type: str = "cpu",
) -> MemoryEstimate:
    """Estimated peak host memory of :func:`semantic_rsm` beyond the input tokens.

    Parameters
    ----------
    n, s, c : images, positions per image, channels.
    itemsize : bytes per value the products run in (8 for float64 tokens, else 4).
    copy_bytes : the converted copy of the tokens validation makes (see
        :func:`semrsm.tokens.token_layout`; on CUDA it lives on the GPU and is not counted).
    kernels : how many kernels are asked.
    matcher, return_matchings, chunk_pairs : as :func:`semantic_rsm`.
    device_type : "cpu" or "cuda" (on CUDA the cost matrices live on the GPU, see
        :func:`semantic_device_memory`).

    Returns
    -------
    MemoryEstimate with, in bytes: the (N, N) float64 inner products ``8 N²``; the pair
    indices ``16 P`` (``P = N(N−1)/2``); the matchings ``4 P S`` with
    ``return_matchings``; token norms ``N S itemsize`` for batch_optimal / topk_greedy;
    the scratch of the input checks (blocks of images: ``18 · max(2²², S C)``, kept
    by the allocator); and the larger phase of: the CPU cost chunks
    ``5 · B · S² · (itemsize + 8) + 64 · B · S`` (``B`` pairs a chunk, :func:`tile_chunk_pairs`)
    and the kernels ``8 N² (kernels + 3) + 2 N²``.
    """
    pairs = n * (n - 1) // 2
    cpu = device_type == "cpu"
    parts = {
        "converted tokens": copy_bytes if cpu else 0,
        "(N, N) inner products": 8 * n * n,
        "pair indices": 16 * pairs,
        "matchings (return_matchings)": 4 * pairs * s if return_matchings else 0,
        "token norms": n * s * itemsize if cpu and _needs_norms(matcher) else 0,
        "input checks": _check_scratch(s, c) if cpu else 0,
    }
    phases = {
        f"kernel step ({kernels} kernel{'s' if kernels > 1 else ''})": _kernels_bytes(n, kernels),
    }
    if cpu:
        b = tile_chunk_pairs(n, s, itemsize, chunk_pairs)
        phases["cost matrices of the pairs in flight"] = (
            _CHUNKS_ALIVE * b * tile_bytes_per_pair(s, itemsize) + _SOLVER_BYTES * b * s
        )
    name, phase = max(phases.items(), key=lambda kv: kv[1])
    return MemoryEstimate({**parts, name: phase})


def semantic_device_memory(
    n: int, s: int, c: int, *, itemsize: int = 4, copy_bytes: int = 0,
    matcher: str = "exact", chunk_pairs: int | None = None,
) -> MemoryEstimate:
    """Estimated peak GPU memory of :func:`semantic_rsm` on CUDA: the tokens moved there
    (``copy_bytes``), the pair indices ``16 P``, token norms, and the cost chunks: with
    ``chunk_pairs`` given, ``2 · B · (S² · (itemsize + 8) + 2 S C itemsize)`` (costs, their
    solver's copies); by default at most 2 GiB (the default shrinks to a quarter of the
    free memory)."""
    pairs = n * (n - 1) // 2
    if chunk_pairs is None:
        chunk = min(GPU_BUDGET_BYTES, max(1, pairs) * bytes_per_pair(s, c, itemsize))
    else:
        chunk = 2 * min(chunk_pairs, max(1, pairs)) * bytes_per_pair(s, c, itemsize)
    return MemoryEstimate({
        "tokens on the GPU": copy_bytes,
        "pair indices": 16 * pairs,
        "token norms": n * s * itemsize if _needs_norms(matcher) else 0,
        "cost matrices of a chunk": chunk,
    })


def spatial_memory(
    n: int, s: int, c: int, *, itemsize: int = 4, copy_bytes: int = 0, kernels: int = 1,
    device_type: str = "cpu",
) -> MemoryEstimate:
    """Estimated peak host memory of :func:`spatial_rsm` beyond the input tokens: the
    converted copy (CPU), the (N, N) Gram matrix ``8 N²``, the scratch of the input checks,
    and the larger of the float64 column blocks of the Gram (``≤ 2 · 64 MiB``, at least
    one column of ``8 N`` bytes) and the kernels ``8 N² (kernels + 3) + 2 N²``."""
    cpu = device_type == "cpu"
    phases = {
        "float64 column blocks": 2 * max(_GRAM_BLOCK_BYTES, 8 * n * min(itemsize, 8)),
        f"kernel step ({kernels} kernel{'s' if kernels > 1 else ''})": _kernels_bytes(n, kernels),
    }
    name, phase = max(phases.items(), key=lambda kv: kv[1])
    return MemoryEstimate({
        "converted tokens": copy_bytes if cpu else 0,
        "(N, N) Gram matrix": 8 * n * n,
        "input checks": _check_scratch(s, c) if cpu else 0,
        name: phase,
    })


def spatial_device_memory(
    n: int, s: int, c: int, *, itemsize: int = 4, copy_bytes: int = 0,
) -> MemoryEstimate:
    """Estimated peak GPU memory of :func:`spatial_rsm` on CUDA: the tokens moved there,
    the (N, N) float64 Gram matrix and two float64 column blocks."""
    return MemoryEstimate({
        "tokens on the GPU": copy_bytes,
        "(N, N) Gram matrix": 8 * n * n,
        "float64 column blocks": 2 * max(_GRAM_BLOCK_BYTES, 8 * n),
    })


def _largest_fitting(total: Callable[[int], int], hi: int, limit: int) -> int:
    """The largest ``x`` in [0, hi] with ``total(x) ≤ limit`` (``total`` non-decreasing)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(mid) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def ways_to_fit(
    estimate: Callable[[int, int], MemoryEstimate], n: int, s: int, limit: int,
    extra: list[str],
) -> list[str]:
    """What to change so that ``estimate(n, s)`` fits ``limit`` bytes, most useful first:
    ``extra`` (the caller's options), then the largest N and the largest S that fit."""
    ways = list(extra)
    n_fit = _largest_fitting(lambda x: estimate(x, s).total, n, limit)
    if 2 <= n_fit < n:
        ways.append(f"use at most about {n_fit:,} images (memory grows as N²), e.g. a random subset")
    s_fit = _largest_fitting(lambda x: estimate(n, x).total, s, limit)
    if 1 <= s_fit < s:
        ways.append(f"use fewer positions per image (at most about S = {s_fit:,}): pool the "
                    "feature maps or pick a later layer")
    if not ways:
        ways.append("use fewer images or fewer positions per image")
    return ways


def _check_rsm_memory(
    what: str, tokens: ArrayLike, dev: torch.device, max_memory: int | float | str | None,
    host: Callable[..., MemoryEstimate], device: Callable[..., MemoryEstimate] | None = None,
    advice: Callable[[MemoryEstimate], list[str]] = lambda e: [],
) -> None:
    """Raise :class:`semrsm.memory.MemoryLimitError` when the computation ``host`` (and on
    CUDA ``device``) estimates from the tokens' sizes would not fit, before any copy."""
    layout = token_layout(tokens)
    if layout is None:  # validation explains what is wrong with the input
        return
    (n, s, c), itemsize, copy = layout
    if dev.type == "cuda":  # the copy, if any, is made on the GPU (not host memory)
        in_place = (isinstance(tokens, torch.Tensor) and tokens.device == dev
                    and tokens.dtype in (torch.float32, torch.float64)
                    and tokens.ndim == 3 and tokens.is_contiguous())
        copy = 0 if in_place else n * s * c * itemsize
    label = f"{what} of N = {n:,} images × S = {s:,} positions × C = {c:,} channels"

    def host_at(n_: int, s_: int) -> MemoryEstimate:
        return host(n_, s_, c, itemsize=itemsize, copy_bytes=copy * n_ * s_ // max(1, n * s),
                    device_type=dev.type)

    est = host_at(n, s)
    limit, _ = memory_budget(max_memory)
    check_memory(label, est, ways_to_fit(host_at, n, s, limit, advice(est)), max_memory)
    if device is not None and dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        dest = device(n, s, c, itemsize=itemsize, copy_bytes=copy)
        if dest.total > free:
            parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in dest.largest())
            chunks = ", or a smaller chunk_pairs" if "cost matrices of a chunk" in dest.parts else ""
            raise MemoryLimitError(
                f"{label} would need about {format_bytes(dest.total)} of GPU memory ({parts}), "
                f"more than the {format_bytes(free)} free on {dev}; nothing was computed. Use "
                f"device='cpu' or fewer images{chunks}",
                dest.total, free,
            )


def _finish(
    inner: np.ndarray, kernels: list[str], sigma2: float | None, bandwidth: str = "median"
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every requested kernel from one inner-product matrix; also the RBF bandwidth used."""
    s2 = {}
    if "rbf" in kernels:
        s2["rbf"] = (
            check_sigma2(sigma2) if sigma2 is not None
            else bandwidth_sigma2(squared_distances(inner), bandwidth)
        )
    return {k: kernel_from_inner(inner, k, s2.get(k)) for k in kernels}, s2


#: bytes of one float64 column block of the spatial Gram matrix (float32 tokens are
#: multiplied in float64 block by block instead of as one float64 copy of all tokens)
_GRAM_BLOCK_BYTES = 64 * 2**20


def _gram_float64(flat: torch.Tensor) -> torch.Tensor:
    """``flat @ flat.T`` in float64 for (N, D) ``flat``, (N, N) on its device.

    One product when the float64 copy of ``flat`` fits one block (bit for bit the plain
    product); otherwise column blocks of at most 64 MiB accumulated in place.
    """
    n, d = flat.shape
    width = max(1, _GRAM_BLOCK_BYTES // (8 * max(1, n)))
    if width >= d:
        f64 = flat.to(torch.float64)
        return f64 @ f64.T
    gram = torch.zeros((n, n), dtype=torch.float64, device=flat.device)
    for start in range(0, d, width):
        block = flat[:, start:start + width].to(torch.float64)
        gram.addmm_(block, block.T)
    return gram


def spatial_rsm(
    tokens: ArrayLike,
    kernel: str | Sequence[str] = "cosine",
    *,
    device: str | torch.device = "auto",
    sigma2: float | None = None,
    bandwidth: str = "median",
    max_memory: int | float | str | None = None,
) -> np.ndarray | dict[str, np.ndarray]:
    """Spatio-semantic (classic) RSM: ``k(vec(R_i), vec(R_j))``.

    Parameters
    ----------
    tokens : (N, S, C) or (N, C, H, W) numpy array or torch tensor (any device), N ≥ 1.
    kernel : "linear", "cosine", "rbf", or a list of them.
    device : where the Gram matrix is computed ("auto", "cpu", "cuda").
    sigma2 : RBF bandwidth; None uses the recipe ``bandwidth``.
    bandwidth : "median" (σ² = median of the non-zero off-diagonal squared distances) or
        "authors" (the paper's code: σ = √(lower median) + 1e-3; docs/FIDELITY.md).
    max_memory : the memory budget in bytes (or a size such as ``"16G"``); None:
        ``$SEMRSM_MAX_MEMORY``, else min(8 GiB, half the available memory)
        (:mod:`semrsm.memory`; the estimate is :func:`spatial_memory`, on CUDA also
        :func:`spatial_device_memory` against the GPU's free memory).

    Returns
    -------
    (N, N) float64 ndarray, or a dict kernel → ndarray when ``kernel`` is a list.

    Raises
    ------
    ValueError
        Unknown kernel, device or bandwidth, a bad ``sigma2``, wrong rank, an empty set,
        mismatched shapes, NaN/inf, an unsupported dtype (text, float128).
    semrsm.memory.MemoryLimitError (a ValueError)
        The estimated peak memory is above the budget; nothing was allocated. The message
        gives the estimate, the limit and what to change.
    """
    kernels = check_kernels(kernel)
    check_bandwidth(bandwidth)
    sigma2 = check_sigma2(sigma2)
    dev = resolve_device(device, tokens)
    _check_rsm_memory(
        "spatial_rsm", tokens, dev, max_memory,
        lambda n, s, c, **kw: spatial_memory(n, s, c, kernels=len(kernels), **kw),
        spatial_device_memory,
    )
    t = validate_tokens(tokens, device=dev).detach()  # tensors that require grad work too
    inner = _gram_float64(t.reshape(t.shape[0], -1)).cpu().numpy()
    rsms, _ = _finish(inner, kernels, sigma2, bandwidth)
    return rsms[kernel] if isinstance(kernel, str) else rsms


def _solve_pairs(
    t: torch.Tensor,
    pairs: np.ndarray,
    inner: np.ndarray,
    perms_all: np.ndarray | None,
    matcher: str,
    params: dict[str, Any],
    *,
    backend: str,
    dev: torch.device,
    chunk_pairs: int | None,
    cancel: CancelLike,
    progress: Progress | None,
) -> None:
    """Match every pair chunk by chunk; write values into ``inner`` (N, N) float64 (both
    triangles) and permutations into ``perms_all`` (P, S) int32 when given.

    A function of its own so that the last chunk's cost matrices are freed on return,
    before the kernels step allocates its (N, N) matrices.
    """
    n = t.shape[0]
    norms = token_norms(t, matcher)
    total = len(pairs)
    if progress is not None:
        progress(0, total)
    # the per-chunk code shared with blocks, tiles and search (semrsm/blocks.py): on CPU one
    # GEMM per tile of images, the next tile's products overlapping this tile's solves
    solved = solve_chunks(
        cost_chunks(t, chunk_pairs=chunk_pairs), matcher, params,
        norms_a=norms, norms_b=norms, backend=backend, cancel=cancel,
    )
    done = 0
    for rows, cols, perms, values in solved:
        inner[rows, cols] = values
        inner[cols, rows] = values
        if perms_all is not None:
            perms_all[pair_ids(rows, cols, n)] = perms
        done += len(rows)
        if progress is not None:
            progress(done, total)


def _semantic_advice(
    est: MemoryEstimate, return_matchings: bool, chunk_pairs: int | None
) -> list[str]:
    """Options of :func:`semantic_rsm` whose parts take a large share of ``est``."""
    ways = []
    perms = est.parts.get("matchings (return_matchings)", 0)
    if return_matchings and perms > est.total / 4:
        ways.append(f"return_matchings=False (the matchings alone take {format_bytes(perms)})")
    chunks = est.parts.get("cost matrices of the pairs in flight", 0)
    if chunk_pairs is not None and chunks > est.total / 4:
        ways.append("a smaller chunk_pairs, or None for the memory-bounded default")
    return ways


def semantic_rsm(
    tokens: ArrayLike,
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
    bandwidth: str = "median",
    max_memory: int | float | str | None = None,
    **matcher_params: Any,
) -> np.ndarray | dict[str, np.ndarray] | SemanticResult:
    """Semantic RSM: ``s(i, j) = k(R_i, P* R_j)`` with ``P*`` the best spatial permutation.

    Parameters
    ----------
    tokens : (N, S, C) or (N, C, H, W) numpy array or torch tensor (any device), N ≥ 1.
        float64 input is matched in float64 (the exact path); other dtypes in float32 products
        and a float64 solver.
    kernel : "linear", "cosine", "rbf", or a list of them (solved once for all).
    matcher : "exact" (default), "batch_optimal", "topk_greedy", "greedy", "identity"
        (see :data:`semrsm.matching.MATCHERS`); ``**matcher_params`` its parameters,
        e.g. ``window=128`` for batch_optimal, ``k=32`` for topk_greedy.
    device : "auto" (CUDA when present), "cpu" or "cuda": where products and, on CUDA,
        the assignments run.
    progress : called as ``progress(done_pairs, total_pairs)`` after each chunk.
    return_matchings : keep the permutation of every pair (P × S int32, P = N(N−1)/2: about
        400 MB at N = 1024, S = 196) and return a :class:`SemanticResult`.
    return_result : return a :class:`SemanticResult` (without matchings unless asked).
    chunk_pairs : int ≥ 1 or None, pairs per chunk; default from the memory budget. CPU: a
        chunk's float64 costs take ``P_chunk · S² · 8`` bytes and the GEMM tile they are
        cut from at most ``P_chunk · S² · 4``; the default keeps that under 96 MiB (at
        least one pair). The next chunk is produced while this one is solved, and the
        allocator keeps some freed tiles: measured peak of the chunks about 4 × that
        (the memory check counts 5). CUDA: ``P_chunk · (S² · 12 + 2 · S · C · 4)`` bytes,
        at most min(2 GiB, free/4).
    sigma2 : RBF bandwidth; None uses the recipe ``bandwidth`` over the matched distances.
    bandwidth : "median" (default) or "authors" (as :func:`spatial_rsm`).
    backend : assignment solver, one of :data:`semrsm.matching.BACKENDS`: "auto" (numba on
        CPU; on CUDA the fastest measured GPU solver per matcher and size, see
        :func:`semrsm.matching.select_implementation`), "numba", "torch" (the torch-op
        solvers, also on CPU), "tla" (torch-linear-assignment) or "triton" (the project's
        Triton kernel).
    cancel : threading.Event or callable returning bool, optional. Set the event (from any
        thread) or return True to stop: :class:`semrsm.Cancelled` is raised within about a
        quarter second of CPU solving (CPU solves of all threads take fair turns in such
        slices, see ``semrsm.matching.scheduling``), or after the current chunk on CUDA.
        A ``progress`` callback may also raise (any exception) to stop after a chunk.
    max_memory : the memory budget in bytes (or a size such as ``"16G"``); None:
        ``$SEMRSM_MAX_MEMORY``, else min(8 GiB, half the available memory)
        (:mod:`semrsm.memory`). The peak is estimated from N, S, C and the options
        (:func:`semantic_memory`; on CUDA also :func:`semantic_device_memory` against the
        GPU's free memory) before anything is allocated.

    Returns
    -------
    (N, N) float64 ndarray, a dict kernel → ndarray when ``kernel`` is a list, or a
    :class:`SemanticResult` with ``return_matchings``/``return_result``.

    Raises
    ------
    ValueError
        Unknown kernel/matcher/parameter/device, a bad ``sigma2`` or ``chunk_pairs``,
        wrong rank, an empty set, mismatched shapes, NaN/inf features, an unsupported
        dtype (text, float128), features so large that float products overflow, or
        ``device="cuda"`` without a GPU.
    semrsm.memory.MemoryLimitError (a ValueError)
        The estimated peak memory is above the budget; nothing was allocated. The message
        gives the estimate, the limit and what to change.
    semrsm.Cancelled
        ``cancel`` was set, or the process is shutting down.
    """
    started = time.perf_counter()
    args = check_match_arguments(kernel, matcher, matcher_params, sigma2=sigma2,
                                 chunk_pairs=chunk_pairs, backend=backend, bandwidth=bandwidth)
    kernels, sigma2, chunk_pairs, params = args.kernels, args.sigma2, args.chunk_pairs, args.params
    dev = resolve_device(device, tokens)
    _check_rsm_memory(
        "semantic_rsm", tokens, dev, max_memory,
        lambda n, s, c, **kw: semantic_memory(
            n, s, c, kernels=len(kernels), matcher=matcher, return_matchings=return_matchings,
            chunk_pairs=chunk_pairs, **kw),
        lambda n, s, c, **kw: semantic_device_memory(
            n, s, c, matcher=matcher, chunk_pairs=chunk_pairs, **kw),
        lambda est: _semantic_advice(est, return_matchings, chunk_pairs),
    )
    t = validate_tokens(tokens, device=dev).detach()  # tensors that require grad work too
    n, s, c = t.shape
    inner = np.diag(squared_norms(t))  # float64, one block of images at a time
    pairs = pair_indices(n)
    perms_all = np.empty((len(pairs), s), dtype=np.int32) if return_matchings else None
    _solve_pairs(t, pairs, inner, perms_all, matcher, params, backend=backend, dev=dev,
                 chunk_pairs=chunk_pairs, cancel=cancel, progress=progress)
    rsms, s2 = _finish(inner, kernels, sigma2, bandwidth)
    out = rsms[kernel] if isinstance(kernel, str) else rsms
    if not (return_matchings or return_result):
        return out
    return SemanticResult(
        rsm=out, inner=inner, pairs=pairs, perms=perms_all, kernels=kernels, matcher=matcher,
        params=params, sigma2=s2, seconds=time.perf_counter() - started,
    )
