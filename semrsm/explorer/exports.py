"""Exports of a run for scripts: the tokens, all three kernels of both RSMs, and the
matchings of chosen pairs. (The comparison results are exported by
:meth:`semrsm.analysis.Comparison.to_csv`.)

Every ``.npz`` loads without pickle: ``numpy.load(path, allow_pickle=False)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import numpy as np

from semrsm.explorer.result import ExplorerResult
from semrsm.kernels import KERNELS

__all__ = ["kernels_npz", "matchings_csv", "tokens_npy", "tokens_npz"]


def _strings(result: ExplorerResult) -> dict[str, np.ndarray]:
    arrays = {
        "names": np.array(result.names, dtype=str),
        "labels": np.array(result.labels if result.labels is not None else [""] * result.n,
                           dtype=str),
    }
    arrays.update({k: np.array(v) for k, v in result.descriptors().items()})
    return arrays


def tokens_npy(result: ExplorerResult) -> bytes:
    """``.npy`` bytes of the tokens, ``(N, S, C)`` float32 (positions row by row over the grid)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(result.tokens, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def tokens_npz(result: ExplorerResult) -> bytes:
    """``.npz`` with ``tokens`` (N, S, C) float32, ``grid`` (2,) int64 ``(H, W)`` with
    ``H·W = S`` (position ``s`` at row ``s // W``, column ``s % W``), ``names``, ``labels``
    (N,) str, and the descriptors of :meth:`ExplorerResult.descriptors` (0-d str)."""
    arrays = _strings(result)
    arrays["grid"] = np.asarray(result.grid, dtype=np.int64)  # numbers, not the "HxW" text
    buf = io.BytesIO()
    np.savez_compressed(
        buf, tokens=np.ascontiguousarray(result.tokens, dtype=np.float32), **arrays
    )
    return buf.getvalue()


def kernels_npz(result: ExplorerResult) -> bytes:
    """``.npz`` with both RSMs for every kernel: ``spatial_linear``, ``spatial_cosine``,
    ``spatial_rbf``, ``semantic_linear``, ``semantic_cosine``, ``semantic_rbf`` (N, N)
    float64; ``inner`` (matched inner products); ``sigma2_spatial``, ``sigma2_semantic``
    (RBF bandwidths, 0-d float); ``names``, ``labels`` and the descriptors (``kernel`` is
    the one shown in the app; all three are here)."""
    arrays: dict[str, np.ndarray] = {}
    for k in KERNELS:
        arrays[f"spatial_{k}"] = np.asarray(result.spatial[k], dtype=np.float64)
        arrays[f"semantic_{k}"] = np.asarray(result.semantic[k], dtype=np.float64)
    arrays["inner"] = np.asarray(result.inner, dtype=np.float64)
    for side in ("spatial", "semantic"):
        arrays[f"sigma2_{side}"] = np.array(float(result.sigma2.get(side, np.nan)))
    arrays.update(_strings(result))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


MATCHING_COLUMNS = ("i", "j", "name_i", "name_j", "position_i", "row_i", "col_i",
                    "position_j", "row_j", "col_j", "inner_product")


def matchings_csv(result: ExplorerResult, pairs: Iterable[tuple[int, int]]) -> str:
    """CSV of the matchings of ``pairs``: one row per position of image ``i`` with the
    position of image ``j`` matched to it and their inner product (its share of the linear
    semantic similarity). Columns: :data:`MATCHING_COLUMNS`; grid rows and columns count
    from 0.

    Raises
    ------
    ValueError
        A pair out of range.
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(MATCHING_COLUMNS)
    width = int(result.grid[1])
    tok = result.tokens
    for i, j in pairs:
        i, j = int(i), int(j)
        perm, _ = result.matching(i, j)
        contrib = np.einsum("sc,sc->s", tok[i].astype(np.float64), tok[j][perm].astype(np.float64))
        for s, t in enumerate(perm):
            w.writerow([i, j, result.names[i], result.names[j], s, s // width, s % width,
                        int(t), int(t) // width, int(t) % width, f"{contrib[s]:.10g}"])
    return out.getvalue()
