"""Summary numbers of a result and the pair that best explains the difference of the RSMs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from semrsm.explorer.result import ExplorerResult

__all__ = ["block_means", "describe_pair", "pair_explanation", "signed", "summarize"]


def signed(value: float, digits: int = 3) -> str:
    """``value`` with its sign, as people read a change: ``+0.012``, ``-0.034``, and a
    plain ``0.000`` (no sign) for a value that rounds to zero (``-0.0001`` is no drop)."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def block_means(
    spatial: np.ndarray, semantic: np.ndarray, rows: Sequence[int], cols: Sequence[int]
) -> tuple[float, float, int]:
    """Mean of both RSMs over a block of rows × columns, self-similarities left out (as
    in :func:`summarize`: an image's similarity with itself is no pair).

    Returns
    -------
    (mean classic, mean semantic, cells) : the means over the block's cells ``(i, j)``
    with ``i != j`` and their number; NaN means and 0 when the block holds no such cell.
    """
    r = np.asarray(rows, dtype=np.int64)[:, None]
    c = np.asarray(cols, dtype=np.int64)[None, :]
    keep = np.broadcast_to(r != c, (r.size, c.size))
    n = int(keep.sum())
    if n == 0:
        return math.nan, math.nan, 0
    a = np.asarray(spatial)[r, c][keep]
    b = np.asarray(semantic)[r, c][keep]
    return float(a.mean()), float(b.mean()), n


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


def describe_pair(
    result: ExplorerResult, i: int | None = None, j: int | None = None
) -> dict[str, Any]:
    """Numbers for the explanation of one pair on the RSM page.

    Without ``i, j`` the pair is chosen from the data: for crops, the two crops of the
    same photo that are farthest apart; otherwise the same-label pair (any pair without
    labels) whose similarity gains most from the matching.

    Returns
    -------
    dict
        ``i``, ``j``, ``spatial``, ``semantic`` (chosen kernel), ``moved`` (fraction of
        positions not matched to the same position), ``mean_shift`` (mean grid distance,
        in token cells, between matched positions), ``grid``, ``offset`` (pixel offset
        between crops of the same photo, else None), ``reason`` (how the pair was
        chosen) and ``relation``: "same_source" (two crops of one photo), "same_label",
        "different_label" or "unknown" (no labels): only the first two may be said to
        show the same content.

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
    offs = result.meta.get("offsets")
    srcs = result.meta.get("sources")
    crops = offs is not None and srcs is not None and len(offs) == n and len(srcs) == n
    if i is None or j is None:
        best = (-1.0, 0, 1)
        if crops:
            for p in range(n):
                for q in range(p + 1, n):
                    if srcs[p] == srcs[q]:
                        d = math.dist(offs[p], offs[q])
                        if d > best[0]:
                            best = (d, p, q)
        if best[0] >= 0:
            i, j = best[1], best[2]
            reason = "two crops of the same photo, farthest apart"
        else:
            gain = b - a
            np.fill_diagonal(gain, -np.inf)
            reason = "pair that gains most from the matching"
            if result.labels is not None:
                lab = np.array(result.labels, dtype=object)
                same = lab[:, None] == lab[None, :]
                if (same & ~np.eye(n, dtype=bool)).any():
                    gain = np.where(same, gain, -np.inf)
                    reason = "same-label pair that gains most from the matching"
            i, j = (int(x) for x in np.unravel_index(np.argmax(gain), gain.shape))
    if not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"pair ({i}, {j}) is out of range for {n} images")
    if crops and srcs[i] == srcs[j]:
        relation = "same_source"
    elif result.labels is None:
        relation = "unknown"
    elif result.labels[i] == result.labels[j]:
        relation = "same_label"
    else:
        relation = "different_label"
    offset = None
    if relation == "same_source":
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
        "relation": relation,
    }


def _change(before: float, after: float, tol: float) -> str:
    if after > before + tol:
        return f"rises to **{after:.3f}**"
    if after < before - tol:
        return f"drops to **{after:.3f}**"
    return f"stays at **{after:.3f}**"


def pair_explanation(
    result: ExplorerResult, ex: dict[str, Any], summary: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Heading and text that explain one pair (from :func:`describe_pair`) on the RSM page.

    Every sentence is true for the data: moved content is only claimed for two crops of
    one photo or two images with the same label; otherwise the text says what the
    matching found. Whether the similarity rises, drops or stays follows the numbers
    (with RBF each RSM has its own bandwidth, so the semantic value can be lower).

    Returns
    -------
    (heading, markdown)
    """
    names = result.names
    n_i, n_j = names[ex["i"]], names[ex["j"]]
    kernel = result.kernel
    h, w = ex["grid"]
    rel = ex["relation"]
    if rel == "same_source":
        dy, dx = ex["offset"] or (0, 0)
        parts = [f"{abs(dy)} px {'lower' if dy > 0 else 'higher'}"] if dy else []
        parts += [f"{abs(dx)} px further {'right' if dx > 0 else 'left'}"] if dx else []
        what = (
            f"two crops of the same photo: {n_j} was cut "
            f"{' and '.join(parts) or 'at the same place'} than {n_i}, so the same content "
            "sits at different positions in the two"
        )
        heading = "Why a moved copy looks different to the classic RSM"
    elif rel == "same_label":
        what = (
            f"both are labelled *{result.labels[ex['i']]}*, so they show the same kind of "
            "thing, but not necessarily at the same positions"
        )
        heading = "Why the same kind of content can look different to the classic RSM"
    else:
        what = (
            "they have different labels"
            if rel == "different_label"
            else "the set has no labels, so nothing says they show the same content"
        ) + ("; the matching has no moved copy to find here, it pairs each position with "
             "whichever position of the other image is most alike")
        heading = "What the matching does for one pair"
    scale = max(abs(ex["spatial"]), abs(ex["semantic"]), 1e-12)
    text = (
        f"Take **{n_i}** and **{n_j}** ({ex['reason']}): {what}. The classic RSM compares "
        f"position 1 of one with position 1 of the other, position 2 with position 2, and "
        f"so on over the {h}×{w} grid of layer `{result.layer.name}`; its {kernel} "
        f"similarity is **{ex['spatial']:.3f}**. The semantic RSM may pair each position "
        f"with any position of the other image: the best pairing moves {ex['moved']:.0%} "
        f"of the positions, by {ex['mean_shift']:.1f} grid cells on average, and the "
        f"similarity {_change(ex['spatial'], ex['semantic'], 1e-9 * scale)}."
    )
    if kernel == "rbf":
        sig = result.sigma2 or {}
        text += (
            " With the RBF kernel each RSM uses its own bandwidth σ², the median squared "
            "distance of its own pairs"
            + (
                f" (classic {sig['spatial']:.4g}, semantic {sig['semantic']:.4g})"
                if sig.get("spatial") and sig.get("semantic")
                else ""
            )
            + (
                ": the optimal matching never lengthens the distance between two images, "
                "so the semantic RSM's median, and its σ², is smaller too; a pair whose "
                "distance shrank less than is typical then gets a lower similarity than in "
                "the classic RSM."
                if result.config.matcher == "exact"
                else ": an approximate matching may shorten or lengthen a pair's distance, "
                "and the two bandwidths differ, so the semantic value can be lower."
            )
        )
    if summary and result.labels is not None and summary.get("n_same", 0) > 0:
        text += (
            f" Over all {summary['n_same']} same-label pairs the matching changes the mean "
            f"by {signed(summary['same_gap'])}, over different-label pairs by "
            f"{signed(summary['diff_gap'])}."
        )
    text += " In deeper layers, with fewer positions, the two RSMs usually agree more closely."
    return heading, text
