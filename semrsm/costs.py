"""Cost matrices: the token inner products ``M_ij = R_i R_jᵀ`` of many pairs, in chunks.

CPU: :func:`iter_cost_tiles` computes the products of a block of images against a block of
images as one large matrix product (GEMM speed; per-pair ``bmm`` of small matrices is
several times slower at S = 49) and cuts the result into per-pair views. CUDA:
:func:`iter_cost_chunks` batches the pairs with ``torch.bmm``. Either way a chunk holds as
many pairs as fit a memory budget, so memory stays bounded whatever ``N``.

On CPU the per-pair blocks of the tile product equal ``tokens[a] @ tokens[b].T`` computed
alone (same BLAS kernel and summation order; checked bit for bit in the tests).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

CPU_BUDGET_BYTES = 96 * 2**20  # per chunk; two chunks are alive while products overlap solves
GPU_BUDGET_BYTES = 2 * 2**30
_MIN_GEMM_ROWS = 512  # tokens per tile row: below this, CPU GEMMs run far from peak
T = TypeVar("T")


def pair_indices(n: int) -> np.ndarray:
    """The unordered pairs ``i < j`` of ``n`` images, row-major; (n(n-1)/2, 2) int64.

    Filled row by row into the result: 16 bytes a pair and nothing more (``np.triu_indices``
    would add an (n, n) mask and three more copies of the pairs).
    """
    out = np.empty((n * (n - 1) // 2, 2), dtype=np.int64)
    cols = np.arange(n, dtype=np.int64)
    start = 0
    for i in range(n - 1):
        stop = start + n - 1 - i
        out[start:stop, 0] = i
        out[start:stop, 1] = cols[i + 1:]
        start = stop
    return out


def check_chunk_pairs(chunk_pairs: object) -> int | None:
    """``chunk_pairs`` as an int ≥ 1, or None (the memory-bounded default).

    Raises
    ------
    ValueError
        Not a whole number ≥ 1 (floats such as 1.5, text, booleans), saying what to use.
    """
    if chunk_pairs is None:
        return None
    if isinstance(chunk_pairs, bool | np.bool_) or not isinstance(chunk_pairs, numbers.Integral):
        raise ValueError(
            f"chunk_pairs: pairs per chunk must be a whole number ≥ 1, or None for the "
            f"memory-bounded default; got {chunk_pairs!r}"
        )
    if int(chunk_pairs) < 1:
        raise ValueError(f"chunk_pairs must be at least 1, got {chunk_pairs}")
    return int(chunk_pairs)


def bytes_per_pair(s: int, c: int, itemsize: int) -> int:
    """Peak bytes one pair needs: the two gathered (S, C) inputs, the (S, S) product, its float64 copy."""
    return 2 * s * c * itemsize + s * s * (itemsize + 8) + 16 * s


def default_chunk_pairs(s: int, c: int, device: torch.device, itemsize: int = 4) -> int:
    """Pairs per chunk so that one chunk stays under the device's budget (at least 1).

    CPU: 64 MiB. CUDA: min(2 GiB, a quarter of the free memory).
    """
    budget = CPU_BUDGET_BYTES
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = min(GPU_BUDGET_BYTES, free // 4)
    return max(1, int(budget // bytes_per_pair(s, c, itemsize)))


def iter_cost_chunks(
    tokens: torch.Tensor, pairs: np.ndarray, chunk_pairs: int
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, costs)`` with ``costs[b] = tokens[i_b] @ tokens[j_b].T`` for the
    pairs ``pairs[start:stop]``; costs is (stop − start, S, S) on ``tokens.device`` in its dtype.
    """
    chunk_pairs = check_chunk_pairs(chunk_pairs)
    if chunk_pairs is None:
        raise ValueError("chunk_pairs: give the pairs per chunk (see default_chunk_pairs)")
    index = torch.as_tensor(pairs, device=tokens.device)
    for start in range(0, len(pairs), chunk_pairs):
        stop = min(start + chunk_pairs, len(pairs))
        a = tokens.index_select(0, index[start:stop, 0])
        b = tokens.index_select(0, index[start:stop, 1])
        yield start, stop, torch.bmm(a, b.transpose(1, 2))


def tile_bytes_per_pair(s: int, itemsize: int = 4) -> int:
    """Bytes one pair takes in a CPU tile: its (S, S) block of the product and its float64 copy."""
    return s * s * (itemsize + 8)


def tile_chunk_pairs(
    n: int, s: int, itemsize: int = 4, chunk_pairs: int | None = None,
    budget_bytes: int = CPU_BUDGET_BYTES,
) -> int:
    """Pairs per chunk of :func:`iter_cost_tiles` for ``n`` images of ``s`` positions.

    ``chunk_pairs`` when given (at most all pairs); else what fits ``budget_bytes`` and at
    most a quarter of all pairs (≥ 64), so that the next chunk's products can overlap this
    one's solves. At least 1.
    """
    total = n * (n - 1) // 2
    cap = chunk_pairs
    if cap is None:
        cap = max(1, min(budget_bytes // tile_bytes_per_pair(s, itemsize), max(64, -(-total // 4))))
    return max(1, min(cap, total))


def iter_cost_tiles(
    tokens: torch.Tensor, chunk_pairs: int | None = None, budget_bytes: int = CPU_BUDGET_BYTES
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(pair_ids, costs)`` chunks covering every pair ``a < b`` of CPU tokens once.

    Parameters
    ----------
    tokens : (N, S, C) CPU tensor (float32 or float64).
    chunk_pairs : pairs per chunk (the last one may be smaller). Default: what fits
        ``budget_bytes``, and at most a quarter of all pairs (≥ 64) so that products of the
        next chunk can overlap the solves of this one.
    budget_bytes : bound on one chunk's memory, ``chunk_pairs · S² · (itemsize + 8)`` bytes:
        the float64 costs and the GEMM tile they are cut from (at least one pair).

    Yields
    ------
    pair_ids : (B,) int64, indices of the pairs in :func:`pair_indices` order (any order).
    costs : (B, S, S) float64 C-contiguous ndarray, ``costs[k] = tokens[a] @ tokens[b].T``.

    Products: a tile row of ``T = ⌈512 / S⌉`` images times ``U = chunk_pairs // T`` column
    images is one GEMM; diagonal tiles also compute their unused lower halves (about
    ``T / N`` extra work).
    """
    n, s, c = tokens.shape
    cap = tile_chunk_pairs(n, s, tokens.element_size(), check_chunk_pairs(chunk_pairs), budget_bytes)
    rows = max(1, min(n, -(-_MIN_GEMM_ROWS // s), cap))
    cols = max(1, cap // rows)
    flat = tokens.reshape(n * s, c)
    ids = np.empty(cap, dtype=np.int64)
    costs = np.empty((cap, s, s), dtype=np.float64)
    k = 0
    for a0 in range(0, n - 1, rows):
        a1 = min(n, a0 + rows)
        for b0 in range(a0 + 1, n, cols):
            b1 = min(n, b0 + cols)
            lo_a, hi_a = a0, min(a1, b1 - 1)  # rows with a partner b > a in [b0, b1)
            if lo_a >= hi_a:
                continue
            g = (flat[lo_a * s:hi_a * s] @ flat[b0 * s:b1 * s].T).numpy()
            g4 = g.reshape(hi_a - lo_a, s, b1 - b0, s)
            for a in range(lo_a, hi_a):
                b = max(a + 1, b0)
                while b < b1:
                    m = min(b1 - b, cap - k)
                    ids[k:k + m] = a * n - a * (a + 1) // 2 + (np.arange(b, b + m) - a - 1)
                    costs[k:k + m] = g4[a - lo_a, :, b - b0:b - b0 + m, :].transpose(1, 0, 2)
                    k += m
                    b += m
                    if k == cap:
                        yield ids, costs
                        ids = np.empty(cap, dtype=np.int64)
                        costs = np.empty((cap, s, s), dtype=np.float64)
                        k = 0
    if k:
        yield ids[:k], costs[:k]


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """Produce the next item of ``items`` in a background thread while the caller works on
    this one (torch products release the GIL, so they overlap the nogil solves).
    At most two items are alive at once."""
    done = object()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, items, done)
        while True:
            item = future.result()
            if item is done:
                return
            future = pool.submit(next, items, done)
            yield item
