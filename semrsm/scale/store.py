"""Finished tiles on disk, so that an interrupted run computes only the missing ones.

A :class:`TileStore` is a :class:`semrsm.cache.Cache` without a size cap: each tile is one
entry, written atomically (temporary file, fsync, rename) the moment it is finished, and
validated on read (shape, dtype, CRC-32): a torn or corrupted file is a missing tile. The key
of a tile is a digest of everything its numbers depend on — the tokens' bytes, the matcher
and its parameters, the backend, the kind of device, the code version — and the tile's
bounds, so a store never hands a tile of another run, and several runs may share a folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import semrsm
from semrsm.cache import Cache, content_key
from semrsm.scale.tiles import Tile

#: bump when the numbers a tile holds change meaning
TILE_FORMAT = "semrsm-tile-v1"
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


def run_key(
    tokens_hash: str, matcher: str, params: dict[str, Any], backend: str, device_kind: str
) -> str:
    """The key shared by the tiles of one run (see the module docstring)."""
    return content_key(
        TILE_FORMAT, semrsm.__version__, tokens_hash, matcher, dict(params), backend, device_kind
    )


class TileStore:
    """The finished tiles of one run, in a folder.

    Parameters
    ----------
    root : folder (created if missing); its ``entries/`` hold one ``.npz`` per tile.
    key : :func:`run_key` of the run.

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
        return content_key(self.key, tile.i0, tile.i1, tile.j0, tile.j1)

    def __contains__(self, tile: Tile) -> bool:
        return self._tile_key(tile) in self._cache

    def load(self, tile: Tile) -> np.ndarray | None:
        """The tile's (m_i, m_j) float64 block, or None when it is missing or invalid (an
        invalid file is removed, so the tile is computed again)."""
        arrays = self._cache.load(
            self._tile_key(tile), required=("inner",),
            valid=lambda a: a["inner"].shape == tile.shape and a["inner"].dtype == np.float64,
        )
        return None if arrays is None else arrays["inner"]

    def save(self, tile: Tile, block: np.ndarray, seconds: float = 0.0) -> bool:
        """Store a finished tile atomically.

        Returns
        -------
        bool, False when the file system refused the write (a :class:`semrsm.cache.CacheWarning`
        says why; the run goes on, that tile is just not resumable).
        """
        meta = {"tile": [tile.i0, tile.i1, tile.j0, tile.j1], "seconds": round(seconds, 4),
                "run": self.key}
        return self._cache.save(self._tile_key(tile), {"inner": block}, meta=meta)

    def stored(self, tiles: list[Tile]) -> list[Tile]:
        """The tiles of ``tiles`` that have a file in the store (not yet validated)."""
        return [t for t in tiles if t in self]
