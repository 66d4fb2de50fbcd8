"""Orders of the images for heatmaps: as loaded, by label, or by hierarchical clustering.

Clustering uses the distances an RSM induces between the images,
``d_ij = sqrt(max(0, s_ii + s_jj − 2 s_ij))`` (for cosine and RBF, whose diagonal is 1,
``sqrt(2 − 2 s_ij)``), average linkage, and scipy's *optimal leaf ordering*
(Bar-Joseph et al., 2001): among the 2^(N−1) orders the dendrogram allows, the one whose
neighbouring images are most similar. One order is applied to both RSMs, so the same cell
shows the same pair in each panel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm

__all__ = ["ORDERINGS", "cluster_order", "image_order", "label_order"]

#: the orders :func:`image_order` knows
ORDERINGS = ("loaded", "label", "cluster")


def label_order(labels: Sequence | None, n: int | None = None) -> np.ndarray:
    """Images grouped by label (sorted label names), stable within a label; no labels: as loaded.

    Parameters
    ----------
    labels : sequence of length N, or None
        One label per image (compared as text); None keeps the given order.
    n : int, optional
        Number of images, required when ``labels`` is None.

    Returns
    -------
    ndarray (N,) int64
        ``order[p]`` is the image shown at position ``p``.

    Raises
    ------
    AnalysisError (ValueError)
        Both ``labels`` and ``n`` are None, or ``n`` disagrees with ``len(labels)``.
    """
    if labels is None:
        if n is None:
            raise AnalysisError("give labels or the number of images n")
        return np.arange(int(n), dtype=np.int64)
    if n is not None and len(labels) != n:
        raise AnalysisError(f"got {len(labels)} labels for {n} images")
    lab = [str(x) for x in labels]
    return np.array(sorted(range(len(lab)), key=lambda i: (lab[i], i)), dtype=np.int64)


def cluster_order(rsm: np.ndarray, method: str = "average") -> np.ndarray:
    """Leaf order of a hierarchical clustering of the images with optimal leaf ordering.

    Parameters
    ----------
    rsm : ndarray (N, N) float, a similarity (larger = more alike).
    method : scipy linkage method ("average", "complete", "single", "weighted").

    Returns
    -------
    order : ndarray (N,) int64, a permutation of ``range(N)``.

    Raises
    ------
    AnalysisError (ValueError)
        A non-square or non-finite RSM, an unknown linkage method.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    s = _check_rsm(rsm)
    n = s.shape[0]
    if n < 3:
        return np.arange(n, dtype=np.int64)
    if method not in ("average", "complete", "single", "weighted"):
        raise AnalysisError(
            f"method: {method!r} is not 'average', 'complete', 'single' or 'weighted'"
        )
    s = 0.5 * (s + s.T)
    diag = np.diag(s)
    d = np.sqrt(np.maximum(diag[:, None] + diag[None, :] - 2.0 * s, 0.0))
    np.fill_diagonal(d, 0.0)
    condensed = squareform(d, checks=False)
    z = linkage(condensed, method=method)
    z = optimal_leaf_ordering(z, condensed)
    return leaves_list(z).astype(np.int64)


def image_order(
    how: str,
    n: int,
    *,
    labels: Sequence | None = None,
    rsm: np.ndarray | None = None,
) -> np.ndarray:
    """The display order of ``n`` images.

    Parameters
    ----------
    how : "loaded", "label" (needs ``labels``; without them the order as loaded) or
        "cluster" (needs ``rsm``, the RSM whose clustering decides).
    n : int, the number of images.
    labels, rsm : as ``how`` needs.

    Returns
    -------
    order : ndarray (n,) int64; ``order[p]`` is the image shown at position ``p``.

    Raises
    ------
    AnalysisError (ValueError)
        Unknown ``how``, "cluster" without an (n, n) RSM.
    """
    if how == "loaded":
        return np.arange(n, dtype=np.int64)
    if how == "label":
        return label_order(labels, n)
    if how == "cluster":
        if rsm is None or np.shape(rsm) != (n, n):
            raise AnalysisError(f"ordering by clustering needs the ({n}, {n}) RSM to cluster")
        return cluster_order(rsm)
    raise AnalysisError(f"how: unknown order {how!r}; choose one of {ORDERINGS}")
