"""Summary numbers of a result and the pair that best explains the difference of the RSMs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from semrsm.explorer.result import ExplorerResult


def summarize(result: ExplorerResult, kernel: str | None = None) -> dict[str, Any]:
    """Summary numbers of the two RSMs (off-diagonal pairs, each pair once).

    Returns
    -------
    dict
        ``mean_spatial``, ``mean_semantic``, ``mean_gap`` (semantic − spatial) over all
        pairs; with labels also ``same_*`` and ``diff_*`` versions and
        ``separation_spatial`` / ``separation_semantic`` (same-label mean minus
        different-label mean); ``frac_improved`` (pairs where matching added more than
        1e-9); ``n_pairs``, ``n_same``.
    """
    kernel = kernel or result.kernel
    a = result.spatial[kernel]
    b = result.semantic[kernel]
    n = a.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    va, vb = a[iu, ju], b[iu, ju]
    out: dict[str, Any] = {
        "kernel": kernel,
        "n_pairs": int(iu.size),
        "mean_spatial": float(va.mean()) if va.size else math.nan,
        "mean_semantic": float(vb.mean()) if vb.size else math.nan,
        "mean_gap": float((vb - va).mean()) if va.size else math.nan,
        "frac_improved": float(np.mean(vb - va > 1e-9)) if va.size else math.nan,
    }
    if result.labels is not None:
        lab = np.array(result.labels, dtype=object)
        same = lab[iu] == lab[ju]
        out["n_same"] = int(same.sum())

        def m(x: np.ndarray, mask: np.ndarray) -> float:
            return float(x[mask].mean()) if mask.any() else math.nan

        out.update(
            same_spatial=m(va, same),
            same_semantic=m(vb, same),
            diff_spatial=m(va, ~same),
            diff_semantic=m(vb, ~same),
        )
        out["same_gap"] = out["same_semantic"] - out["same_spatial"]
        out["diff_gap"] = out["diff_semantic"] - out["diff_spatial"]
        out["separation_spatial"] = out["same_spatial"] - out["diff_spatial"]
        out["separation_semantic"] = out["same_semantic"] - out["diff_semantic"]
    return out


def explain_pair(
    result: ExplorerResult, i: int | None = None, j: int | None = None
) -> dict[str, Any]:
    """Numbers for the "why does a moved copy look different" explanation.

    Without ``i, j`` the pair is chosen from the data: for crops, the two crops of the
    same photo that are farthest apart; otherwise the same-label pair (any pair without
    labels) whose similarity gains most from the matching.

    Returns
    -------
    dict
        ``i``, ``j``, ``spatial``, ``semantic`` (chosen kernel), ``moved`` (fraction of
        positions not matched to the same position), ``mean_shift`` (mean grid distance,
        in token cells, between matched positions), ``grid``, ``offset`` (pixel offset
        between crops, crops only), ``reason`` (how the pair was chosen).

    Raises
    ------
    ValueError
        Indices out of range or fewer than 2 images.
    """
    n = result.n
    if n < 2:
        raise ValueError("need at least 2 images")
    a, b = result.spatial_rsm, result.semantic_rsm
    reason = "given"
    offset = None
    if i is None or j is None:
        offs = result.meta.get("offsets")
        srcs = result.meta.get("sources")
        if offs is not None and srcs is not None and len(offs) == n:
            best = (-1.0, 0, 1)
            for p in range(n):
                for q in range(p + 1, n):
                    if srcs[p] == srcs[q]:
                        d = math.dist(offs[p], offs[q])
                        if d > best[0]:
                            best = (d, p, q)
            i, j = best[1], best[2]
            reason = "two crops of the same photo, farthest apart"
        else:
            gain = b - a
            np.fill_diagonal(gain, -np.inf)
            if result.labels is not None:
                lab = np.array(result.labels, dtype=object)
                same = lab[:, None] == lab[None, :]
                if (same & ~np.eye(n, dtype=bool)).any():
                    gain = np.where(same, gain, -np.inf)
                    reason = "same-label pair that gains most from the matching"
                else:
                    reason = "pair that gains most from the matching"
            else:
                reason = "pair that gains most from the matching"
            i, j = (int(x) for x in np.unravel_index(np.argmax(gain), gain.shape))
    if not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"pair ({i}, {j}) is out of range for {n} images")
    offs = result.meta.get("offsets")
    if offs is not None and len(offs) == n:
        offset = (offs[j][0] - offs[i][0], offs[j][1] - offs[i][1])
    perm, _ = result.matching(i, j)
    h, w = result.grid
    s = perm.size
    pos = np.arange(s)
    if h * w == s:
        r0, c0 = np.divmod(pos, w)
        r1, c1 = np.divmod(perm, w)
        shift = float(np.mean(np.hypot(r1 - r0, c1 - c0)))
    else:
        shift = math.nan
    return {
        "i": int(i),
        "j": int(j),
        "spatial": float(a[i, j]),
        "semantic": float(b[i, j]),
        "moved": float(np.mean(perm != pos)),
        "mean_shift": shift,
        "grid": (h, w),
        "offset": offset,
        "reason": reason,
    }
