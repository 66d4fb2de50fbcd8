"""Tiles of a square semantic RSM and the matched inner products of one tile.

The ``N × N`` RSM is cut into ``B × B`` tiles along both axes; only tiles on or above the
diagonal are computed (the RSM is symmetric). A diagonal tile solves its pairs ``a < b``;
an off-diagonal tile is a full rectangle of images ``[i0, i1)`` against ``[j0, j1)``. Both
go through the per-chunk code of the square RSM (:mod:`semrsm.blocks`), so the assembled
matrix equals :func:`semrsm.semantic_rsm`'s bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semrsm.blocks import cost_chunks, solve_chunks
from semrsm.matching.scheduling import CancelLike


@dataclass(frozen=True, order=True)
class Tile:
    """Rows ``[i0, i1)`` × columns ``[j0, j1)`` of the RSM, with ``i0 <= j0``."""

    i0: int
    i1: int
    j0: int
    j1: int

    @property
    def diagonal(self) -> bool:
        """True for a tile on the diagonal (rows and columns are the same images)."""
        return self.i0 == self.j0

    @property
    def shape(self) -> tuple[int, int]:
        return self.i1 - self.i0, self.j1 - self.j0

    @property
    def pairs(self) -> int:
        """Assignments the tile solves: ``m(m−1)/2`` on the diagonal, ``m_i · m_j`` elsewhere."""
        m, k = self.shape
        return m * (m - 1) // 2 if self.diagonal else m * k

    def __str__(self) -> str:
        return f"[{self.i0}:{self.i1}, {self.j0}:{self.j1}]"


def plan_tiles(n: int, tile: int) -> list[Tile]:
    """The tiles on and above the diagonal of an ``n × n`` RSM, ``tile`` images a side.

    Parameters
    ----------
    n : number of images, ≥ 1.
    tile : images per tile side, ≥ 1 (the last row/column of tiles may be smaller).

    Returns
    -------
    list of :class:`Tile`, row-major; ``B(B+1)/2`` of them with ``B = ⌈n / tile⌉``.

    Raises
    ------
    ValueError
        ``n < 1`` or ``tile < 1``.
    """
    if int(n) < 1:
        raise ValueError(f"n: need at least one image, got {n}")
    if int(tile) < 1:
        raise ValueError(f"tile: images per tile side must be at least 1, got {tile}")
    bounds = [(a, min(a + tile, n)) for a in range(0, n, tile)]
    return [
        Tile(i0, i1, j0, j1)
        for k, (i0, i1) in enumerate(bounds)
        for (j0, j1) in bounds[k:]
    ]


def compute_tile(
    tokens_i: torch.Tensor,
    tokens_j: torch.Tensor | None,
    matcher: str,
    params: dict[str, Any],
    *,
    norms_i: torch.Tensor | None = None,
    norms_j: torch.Tensor | None = None,
    backend: str = "auto",
    chunk_pairs: int | None = None,
    cancel: CancelLike = None,
) -> tuple[np.ndarray, float]:
    """Matched inner products of one tile.

    Parameters
    ----------
    tokens_i : (m_i, S, C) validated tokens of the tile's rows (CPU or CUDA).
    tokens_j : (m_j, S, C) tokens of its columns, or None for a diagonal tile.
    matcher, params : a matcher and its checked parameters.
    norms_i, norms_j : (m, S) token norms for ``batch_optimal`` / ``topk_greedy`` (slices of
        the norms of the whole set, so that they are the square RSM's bits); None otherwise.
    backend, chunk_pairs, cancel : as :func:`semrsm.semantic_rsm`.

    Returns
    -------
    block : (m_i, m_j) float64; a diagonal tile fills its strict upper triangle (the rest is 0).
    seconds : compute time of the tile.
    """
    started = time.perf_counter()
    m_i = len(tokens_i)
    m_j = m_i if tokens_j is None else len(tokens_j)
    block = np.zeros((m_i, m_j), dtype=np.float64)
    if norms_j is None:
        norms_j = norms_i
    solved = solve_chunks(
        cost_chunks(tokens_i, tokens_j, chunk_pairs=chunk_pairs), matcher, params,
        norms_a=norms_i, norms_b=norms_j, backend=backend, cancel=cancel,
    )
    for rows, cols, _, values in solved:
        block[rows, cols] = values
    return block, time.perf_counter() - started


def place_tile(inner: np.ndarray, tile: Tile, block: np.ndarray) -> None:
    """Write a tile's block and its mirror image into the (N, N) matrix ``inner`` (in place).

    Raises
    ------
    ValueError
        ``block`` is not of the tile's shape.
    """
    if block.shape != tile.shape:
        raise ValueError(f"tile {tile}: block of shape {block.shape}, expected {tile.shape}")
    if tile.diagonal:
        r, c = np.triu_indices(block.shape[0], k=1)
        inner[tile.i0 + r, tile.i0 + c] = block[r, c]
        inner[tile.i0 + c, tile.i0 + r] = block[r, c]
    else:
        inner[tile.i0:tile.i1, tile.j0:tile.j1] = block
        inner[tile.j0:tile.j1, tile.i0:tile.i1] = block.T


def tile_task(
    part_i: tuple[np.ndarray, np.ndarray | None],
    part_j: tuple[np.ndarray, np.ndarray | None] | None,
    spec: dict[str, Any],
) -> tuple[np.ndarray, float]:
    """One tile as a Ray task: ``part_*`` are ``(tokens, token norms or None)`` row blocks
    from the object store (``part_j`` None on the diagonal); ``spec`` holds ``device``,
    ``matcher``, ``params``, ``backend``, ``chunk_pairs`` and ``threads``. Returns
    :func:`compute_tile`'s block and seconds."""
    from semrsm.scale.ray_pool import as_tensor, limit_threads

    limit_threads(spec.get("threads"))
    device = torch.device(spec["device"])
    tok_i, nrm_i = part_i
    tok_j, nrm_j = part_j if part_j is not None else (None, None)
    return compute_tile(
        as_tensor(tok_i, device), as_tensor(tok_j, device), spec["matcher"], spec["params"],
        norms_i=as_tensor(nrm_i, device), norms_j=as_tensor(nrm_j, device),
        backend=spec["backend"], chunk_pairs=spec["chunk_pairs"],
    )
