"""Finished tiles on disk, so that an interrupted run computes only the missing ones.

A :class:`TileStore` is a :class:`semrsm.cache.Cache` without a size cap: each tile is one
entry, written atomically (temporary file, fsync, rename) the moment it is finished, and
validated on read (shape, dtype, CRC-32): a torn or corrupted file is a missing tile. The key
of a tile (:func:`semrsm.cache_schema.tile_key` of a :func:`semrsm.cache_schema.tile_run_key`)
is a digest of everything its numbers depend on — the tokens' bytes, the matcher and its
parameters, the backend, the kind of device, the code version — and the tile's bounds, so a
store never hands a tile of another run, and several runs may share a folder. What a tile
entry holds is :mod:`semrsm.cache_schema`'s to say.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from semrsm.cache import Cache
from semrsm.cache_schema import TILE_ARRAYS, read_tile, tile_key, tile_payload, tile_valid
from semrsm.scale.tiles import Tile

_NO_CAP = 2**62  # a tile store never evicts: every tile is needed
_DIGEST_BYTES = 64 * 2**20  # tokens are hashed in pieces of this size (no full copy)


def tokens_digest(t: torch.Tensor) -> str:
    """SHA-256 of (N, S, C) tokens: dtype, shape and bytes, read in pieces (no full copy).

    Returns
    -------
    str, 64 hex digits.
    """
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    flat = t.detach().reshape(t.shape[0], -1)
    per = max(1, _DIGEST_BYTES // max(1, flat.shape[1] * flat.element_size()))
    for start in range(0, flat.shape[0], per):
        part = flat[start:start + per].contiguous().cpu().numpy()
        h.update(memoryview(part).cast("B"))
    return h.hexdigest()


class TileStore:
    """The finished tiles of one run, in a folder.

    Parameters
    ----------
    root : folder (created if missing); its ``entries/`` hold one ``.npz`` per tile.
    key : :func:`semrsm.cache_schema.tile_run_key` of the run.

    Attributes
    ----------
    root : Path; key : str.
    """

    def __init__(self, root: str | os.PathLike, key: str):
        self.root = Path(root).expanduser()
        self.key = key
        self._cache = Cache(self.root, max_bytes=_NO_CAP)

    def __repr__(self) -> str:
        return f"TileStore({str(self.root)!r}, key={self.key[:12]}…)"

    def _tile_key(self, tile: Tile) -> str:
        return tile_key(self.key, tile)

    def __contains__(self, tile: Tile) -> bool:
        return self._tile_key(tile) in self._cache

    def load(self, tile: Tile) -> np.ndarray | None:
        """The tile's (m_i, m_j) float64 block, or None when it is missing or invalid (an
        invalid file is removed, so the tile is computed again)."""
        arrays = self._cache.load(self._tile_key(tile), TILE_ARRAYS, tile_valid(tile))
        return None if arrays is None else read_tile(arrays)

    def save(self, tile: Tile, block: np.ndarray, seconds: float = 0.0) -> bool:
        """Store a finished tile atomically.

        Returns
        -------
        bool, False when the file system refused the write (a :class:`semrsm.cache.CacheWarning`
        says why; the run goes on, that tile is just not resumable).
        """
        arrays, meta = tile_payload(tile, block, seconds, self.key)
        return self._cache.save(self._tile_key(tile), arrays, meta=meta)

    def stored(self, tiles: list[Tile]) -> list[Tile]:
        """The tiles of ``tiles`` that have a file in the store (not yet validated)."""
        return [t for t in tiles if t in self]
