"""Cost matrices: the token inner products ``M_ij = R_i R_jᵀ`` of many pairs, in chunks.

Products are batched with ``torch.bmm`` on the chosen device. A chunk holds as many pairs
as fit a memory budget, so memory stays bounded whatever ``N``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

CPU_BUDGET_BYTES = 64 * 2**20  # small chunks stay in cache and keep both cores busy
GPU_BUDGET_BYTES = 2 * 2**30


def pair_indices(n: int) -> np.ndarray:
    """The unordered pairs ``i < j`` of ``n`` images, row-major; (n(n-1)/2, 2) int64."""
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1).astype(np.int64)


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
    if chunk_pairs < 1:
        raise ValueError(f"chunk_pairs must be at least 1, got {chunk_pairs}")
    index = torch.as_tensor(pairs, device=tokens.device)
    for start in range(0, len(pairs), chunk_pairs):
        stop = min(start + chunk_pairs, len(pairs))
        a = tokens.index_select(0, index[start:stop, 0])
        b = tokens.index_select(0, index[start:stop, 1])
        yield start, stop, torch.bmm(a, b.transpose(1, 2))
