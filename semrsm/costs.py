"""Cost matrices: the token inner products ``M_ij = R_i R_jᵀ`` of many pairs, in chunks.

CPU: :func:`iter_cost_tiles` computes the products of a block of images against a block of
images as one large matrix product (GEMM speed; per-pair ``bmm`` of small matrices is
several times slower at S = 49) and cuts the result into per-pair views. CUDA:
:func:`iter_cost_chunks` batches the pairs with ``torch.bmm``. Either way a chunk holds as
many pairs as fit a memory budget, so memory stays bounded whatever ``N``.

A pair must get the same bits whichever computation it belongs to (the square RSM, a
rectangular block, a tile of a tiled RSM, a search candidate), so that they all agree
exactly. float32: the per-pair blocks of a GEMM tile equal ``tokens[a] @ tokens[b].T``
computed alone, whatever the tile's shape and the number of threads (checked bit for bit in
the tests). float64: BLAS's dgemm picks kernels by the operands' shapes, which changes the
last bits of a pair's products with the tile it is cut from; float64 pairs are therefore
computed with ``torch.bmm`` of per-pair (S, C) × (C, S) products (the same shape every
time, so the same bits; about half the GEMM tiles' speed, the price of exactness).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from semrsm.pairs import pair_ids

CPU_BUDGET_BYTES = 96 * 2**20  # per chunk; two chunks are alive while products overlap solves
GPU_BUDGET_BYTES = 2 * 2**30
_MIN_GEMM_ROWS = 512  # tokens per tile row: below this, CPU GEMMs run far from peak
T = TypeVar("T")


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
    tokens: torch.Tensor, pairs: np.ndarray, chunk_pairs: int,
    tokens_b: torch.Tensor | None = None,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, costs)`` with ``costs[b] = tokens[i_b] @ tokens_b[j_b].T`` for the
    pairs ``pairs[start:stop]``; costs is (stop − start, S, S) on ``tokens.device`` in its dtype.

    ``tokens_b`` (N_b, S, C) is the second set (default: ``tokens`` itself).
    """
    chunk_pairs = check_chunk_pairs(chunk_pairs)
    if chunk_pairs is None:
        raise ValueError("chunk_pairs: give the pairs per chunk (see default_chunk_pairs)")
    other = tokens if tokens_b is None else tokens_b
    index = torch.as_tensor(pairs, device=tokens.device)
    for start in range(0, len(pairs), chunk_pairs):
        stop = min(start + chunk_pairs, len(pairs))
        a = tokens.index_select(0, index[start:stop, 0])
        b = other.index_select(0, index[start:stop, 1])
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
    return _chunk_cap(n * (n - 1) // 2, tile_bytes_per_pair(s, itemsize), chunk_pairs, budget_bytes)


def _chunk_cap(total: int, per_pair: int, chunk_pairs: object, budget_bytes: int) -> int:
    """Pairs per CPU chunk: ``chunk_pairs``, or what fits the budget (``per_pair`` bytes a
    pair) and at most a quarter of all pairs (≥ 64) so that products of the next chunk can
    overlap the solves of this one."""
    cap = check_chunk_pairs(chunk_pairs)
    if cap is None:
        cap = max(1, min(budget_bytes // per_pair, max(64, -(-total // 4))))
    return max(1, min(cap, max(total, 1)))


def _per_pair_products(tokens: torch.Tensor) -> bool:
    """float64 pairs are multiplied one by one (``bmm``): see the module docstring."""
    return tokens.dtype == torch.float64


def _pair_runs(na: int, nb: int, triangle: bool, cap: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs of the triangle ``a < b`` of ``na`` images, or of ``na × nb``, row-major, in
    chunks of at most ``cap`` (never all at once: N(N−1)/2 indices can be gigabytes)."""
    ia = np.empty(cap, dtype=np.int64)
    ib = np.empty(cap, dtype=np.int64)
    k = 0
    for a in range(na):
        b = a + 1 if triangle else 0
        while b < nb:
            m = min(nb - b, cap - k)
            ia[k:k + m] = a
            ib[k:k + m] = np.arange(b, b + m)
            k += m
            b += m
            if k == cap:
                yield ia, ib
                ia = np.empty(cap, dtype=np.int64)
                ib = np.empty(cap, dtype=np.int64)
                k = 0
    if k:
        yield ia[:k], ib[:k]


def _bmm_costs(tokens_a: torch.Tensor, tokens_b: torch.Tensor, rows: np.ndarray,
               cols: np.ndarray) -> np.ndarray:
    """(B, S, S) float64 products of the pairs ``(rows[k], cols[k])``, one matrix product each."""
    a = tokens_a.index_select(0, torch.as_tensor(rows))
    b = tokens_b.index_select(0, torch.as_tensor(cols))
    return torch.bmm(a, b.transpose(1, 2)).numpy()


def iter_cost_blocks(
    tokens_a: torch.Tensor,
    tokens_b: torch.Tensor | None = None,
    chunk_pairs: int | None = None,
    budget_bytes: int = CPU_BUDGET_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(rows, cols, costs)`` chunks of CPU cost matrices, cut from GEMM tiles.

    Parameters
    ----------
    tokens_a : (N_a, S, C) CPU tensor (float32 or float64).
    tokens_b : (N_b, S, C) CPU tensor of the same S, C and dtype, or None. None: every pair
        ``a < b`` of ``tokens_a`` once (the square RSM's triangle); else every pair
        ``(a, b)`` of ``tokens_a × tokens_b`` (a rectangular block).
    chunk_pairs : pairs per chunk (the last one may be smaller). Default: what fits
        ``budget_bytes``, and at most a quarter of all pairs (≥ 64).
    budget_bytes : bound on one chunk's memory, ``chunk_pairs · S² · (itemsize + 8)`` bytes:
        the float64 costs and the GEMM tile they are cut from (at least one pair).

    Yields
    ------
    rows, cols : (B,) int64, indices into ``tokens_a`` and ``tokens_b`` (``tokens_a`` again
        for the triangle); row-major order.
    costs : (B, S, S) float64 C-contiguous ndarray, ``costs[k] = tokens_a[rows[k]] @
        tokens_b[cols[k]].T``.

    Raises
    ------
    ValueError
        ``chunk_pairs < 1``.

    Products (float32): a tile row of ``T = ⌈512 / S⌉`` images times ``U = chunk_pairs // T``
    column images is one GEMM; in the triangle, diagonal tiles also compute their unused
    lower halves (about ``T / N`` extra work). Each pair's block equals ``tokens_a[a] @
    tokens_b[b].T`` computed alone, bit for bit, so a pair gets the same costs in the
    square RSM, a tile or a block. float64: one ``bmm`` product per pair (module docstring);
    the budget then also counts the gathered inputs, ``2 · S · C · 8`` bytes a pair.
    """
    triangle = tokens_b is None
    other = tokens_a if triangle else tokens_b
    na, s, c = tokens_a.shape
    nb = other.shape[0]
    item = tokens_a.element_size()
    total = na * (na - 1) // 2 if triangle else na * nb
    if _per_pair_products(tokens_a):
        cap = _chunk_cap(total, bytes_per_pair(s, c, item), chunk_pairs, budget_bytes)
        for rows, cols in _pair_runs(na, nb, triangle, cap):
            yield rows, cols, _bmm_costs(tokens_a, other, rows, cols)
        return
    cap = _chunk_cap(total, tile_bytes_per_pair(s, item), chunk_pairs, budget_bytes)
    if total == 0:
        return
    rows = max(1, min(na, -(-_MIN_GEMM_ROWS // s), cap))
    cols = max(1, cap // rows)
    flat_a = tokens_a.reshape(na * s, c)
    flat_b = other.reshape(nb * s, c)
    ia = np.empty(cap, dtype=np.int64)
    ib = np.empty(cap, dtype=np.int64)
    costs = np.empty((cap, s, s), dtype=np.float64)
    k = 0
    for a0 in range(0, na - 1 if triangle else na, rows):
        a1 = min(na, a0 + rows)
        for b0 in range(a0 + 1 if triangle else 0, nb, cols):
            b1 = min(nb, b0 + cols)
            # in the triangle, rows with a partner b > a in [b0, b1)
            lo_a, hi_a = a0, (min(a1, b1 - 1) if triangle else a1)
            if lo_a >= hi_a:
                continue
            g = (flat_a[lo_a * s:hi_a * s] @ flat_b[b0 * s:b1 * s].T).numpy()
            g4 = g.reshape(hi_a - lo_a, s, b1 - b0, s)
            for a in range(lo_a, hi_a):
                b = max(a + 1, b0) if triangle else b0
                while b < b1:
                    m = min(b1 - b, cap - k)
                    ia[k:k + m] = a
                    ib[k:k + m] = np.arange(b, b + m)
                    costs[k:k + m] = g4[a - lo_a, :, b - b0:b - b0 + m, :].transpose(1, 0, 2)
                    k += m
                    b += m
                    if k == cap:
                        yield ia, ib, costs
                        ia = np.empty(cap, dtype=np.int64)
                        ib = np.empty(cap, dtype=np.int64)
                        costs = np.empty((cap, s, s), dtype=np.float64)
                        k = 0
    if k:
        yield ia[:k], ib[:k], costs[:k]


def iter_cost_tiles(
    tokens: torch.Tensor, chunk_pairs: int | None = None, budget_bytes: int = CPU_BUDGET_BYTES
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(pair_ids, costs)`` chunks covering every pair ``a < b`` of CPU tokens once.

    The triangle of :func:`iter_cost_blocks`, with the pairs as indices into
    :func:`pair_indices` order: ``pair_ids`` (B,) int64, ``costs`` (B, S, S) float64.
    """
    n = tokens.shape[0]
    for a, b, costs in iter_cost_blocks(tokens, None, chunk_pairs, budget_bytes):
        yield pair_ids(a, b, n), costs


def iter_cost_pair_list(
    tokens_a: torch.Tensor,
    tokens_b: torch.Tensor,
    pairs: np.ndarray,
    chunk_pairs: int | None = None,
    budget_bytes: int = CPU_BUDGET_BYTES,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(rows, cols, costs)`` for a list of pairs of CPU tokens (e.g. each query
    against its own candidates): one GEMM per run of pairs that share their first image.

    Parameters
    ----------
    tokens_a, tokens_b : (N_a, S, C) and (N_b, S, C) CPU tensors of one dtype.
    pairs : (P, 2) int64, ``(a, b)`` indices into ``tokens_a`` and ``tokens_b``; grouped by
        ``a`` for speed (any order works).
    chunk_pairs, budget_bytes : as :func:`iter_cost_blocks`.

    Yields
    ------
    rows, cols : (B,) int64, the chunk's pairs in the order of ``pairs``.
    costs : (B, S, S) float64, ``costs[k] = tokens_a[rows[k]] @ tokens_b[cols[k]].T``, bit
        for bit as :func:`iter_cost_blocks` computes them.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    _, s, c = tokens_a.shape
    item = tokens_a.element_size()
    per_pair = _per_pair_products(tokens_a)
    cap = _chunk_cap(len(pairs), bytes_per_pair(s, c, item) if per_pair else
                     tile_bytes_per_pair(s, item), chunk_pairs, budget_bytes)
    for start in range(0, len(pairs), cap):
        part = pairs[start:start + cap]
        if per_pair:
            yield part[:, 0].copy(), part[:, 1].copy(), _bmm_costs(tokens_a, tokens_b, part[:, 0], part[:, 1])
            continue
        costs = np.empty((len(part), s, s), dtype=np.float64)
        # runs of equal first image: one (S, C) × (C, m·S) product each
        cuts = np.flatnonzero(np.diff(part[:, 0])) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(part)], strict=True):
            a = int(part[lo, 0])
            cols = torch.as_tensor(part[lo:hi, 1])
            right = tokens_b.index_select(0, cols).reshape((hi - lo) * s, c)
            g = (tokens_a[a] @ right.T).numpy()
            costs[lo:hi] = g.reshape(s, hi - lo, s).transpose(1, 0, 2)
        yield part[:, 0].copy(), part[:, 1].copy(), costs


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
