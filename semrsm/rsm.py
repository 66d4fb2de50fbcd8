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

from semrsm.blocks import cost_chunks, solve_chunks, squared_norms, token_norms
from semrsm.costs import pair_ids, pair_indices
from semrsm.kernels import (
    bandwidth_sigma2,
    check_bandwidth,
    check_kernels,
    kernel_from_inner,
    squared_distances,
)
from semrsm.matching import check_backend, check_matcher
from semrsm.matching.scheduling import CancelLike
from semrsm.tokens import ArrayLike, validate_tokens

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
        p = a * n - a * (a + 1) // 2 + (b - a - 1)  # row-major index of (a, b) among i < j
        perm = self.perms[p].astype(np.int64)
        return perm if i < j else np.argsort(perm)


def resolve_device(device: str | torch.device, tokens: ArrayLike | None = None) -> torch.device:
    """``"auto"`` → the tokens' CUDA device if they are on one, else CUDA when present, else CPU.

    Raises ValueError for a CUDA request on a machine without a usable GPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device: got {device!r}; use 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        if isinstance(tokens, torch.Tensor) and tokens.is_cuda:
            return tokens.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("gpu",):
        device = "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r}: no CUDA GPU is available here; use device='cpu' or 'auto'"
        )
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device: unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from err


def _finish(
    inner: np.ndarray, kernels: list[str], sigma2: float | None, bandwidth: str = "median"
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every requested kernel from one inner-product matrix; also the RBF bandwidth used."""
    s2 = {}
    if "rbf" in kernels:
        s2["rbf"] = (
            float(sigma2) if sigma2 is not None
            else bandwidth_sigma2(squared_distances(inner), bandwidth)
        )
    return {k: kernel_from_inner(inner, k, s2.get(k)) for k in kernels}, s2


def spatial_rsm(
    tokens: ArrayLike,
    kernel: str | Sequence[str] = "cosine",
    *,
    device: str | torch.device = "auto",
    sigma2: float | None = None,
    bandwidth: str = "median",
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

    Returns
    -------
    (N, N) float64 ndarray, or a dict kernel → ndarray when ``kernel`` is a list.

    Raises
    ------
    ValueError
        Unknown kernel, wrong rank, an empty set, mismatched shapes, NaN/inf.
    """
    kernels = check_kernels(kernel)
    check_bandwidth(bandwidth)
    dev = resolve_device(device, tokens)
    t = validate_tokens(tokens, device=dev).detach()  # tensors that require grad work too
    flat = t.reshape(t.shape[0], -1).to(torch.float64)
    inner = (flat @ flat.T).cpu().numpy()
    rsms, _ = _finish(inner, kernels, sigma2, bandwidth)
    return rsms[kernel] if isinstance(kernel, str) else rsms


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
    chunk_pairs : pairs per chunk; default from the memory budget. CPU: a chunk's float64
        costs take ``P_chunk · S² · 8`` bytes and the GEMM tile they are cut from at most
        ``P_chunk · S² · 4``; the default keeps that under 96 MiB. The next chunk is
        produced while this one is solved, so peak extra memory is about
        ``P_chunk · S² · 20`` bytes (≤ 160 MiB by default) plus O(P_chunk · S) for the
        solver. CUDA: ``P_chunk · (S² · 12 + 2 · S · C · 4)`` bytes, at most
        min(2 GiB, free/4).
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

    Returns
    -------
    (N, N) float64 ndarray, a dict kernel → ndarray when ``kernel`` is a list, or a
    :class:`SemanticResult` with ``return_matchings``/``return_result``.

    Raises
    ------
    ValueError
        Unknown kernel/matcher/parameter, wrong rank, an empty set, mismatched shapes,
        NaN/inf features, features so large that float products overflow, or
        ``device="cuda"`` without a GPU.
    semrsm.Cancelled
        ``cancel`` was set, or the process is shutting down.
    """
    started = time.perf_counter()
    kernels = check_kernels(kernel)
    check_bandwidth(bandwidth)
    params = check_matcher(matcher, matcher_params)
    check_backend(backend)
    dev = resolve_device(device, tokens)
    t = validate_tokens(tokens, device=dev).detach()  # tensors that require grad work too
    n, s, c = t.shape
    inner = np.diag(squared_norms(t))
    pairs = pair_indices(n)
    perms_all = np.empty((len(pairs), s), dtype=np.int32) if return_matchings else None
    norms = token_norms(t, matcher)
    total = len(pairs)
    if progress is not None:
        progress(0, total)
    # the per-chunk code shared with blocks and tiles (semrsm/blocks.py): on CPU one GEMM
    # per tile of images, the next tile's products overlapping this tile's solves
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
    rsms, s2 = _finish(inner, kernels, sigma2, bandwidth)
    out = rsms[kernel] if isinstance(kernel, str) else rsms
    if not (return_matchings or return_result):
        return out
    return SemanticResult(
        rsm=out, inner=inner, pairs=pairs, perms=perms_all, kernels=kernels, matcher=matcher,
        params=params, sigma2=s2, seconds=time.perf_counter() - started,
    )
