"""The unordered pairs ``i < j`` of ``n`` images and their row-major index.

RSMs keep per-pair results (matchings, costs) in one array whose row ``p`` is the
``p``-th pair of :func:`pair_indices`; :func:`pair_ids` maps a pair back to ``p``. NumPy
only, so the explorer's cached results can look a matching up without torch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_ids", "pair_indices"]


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


def pair_ids(a: np.ndarray | int, b: np.ndarray | int, n: int) -> np.ndarray | int:
    """Row-major index among the pairs ``i < j`` of ``n`` images of each pair ``(a, b)``.

    Parameters
    ----------
    a, b : int or int ndarray of one shape, with ``0 <= a < b < n`` (not checked).
    n : int, the number of images.

    Returns
    -------
    int or int64 ndarray of that shape: the row of ``(a, b)`` in :func:`pair_indices`.
    """
    return a * n - a * (a + 1) // 2 + (b - a - 1)
