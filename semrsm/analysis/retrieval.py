"""Retrieval: nearest neighbours under an RSM and retrieval quality against labels."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm


def _is_multi_label(labels: Sequence) -> bool:
    """Multi-label when every label is a collection of object names (not a string)."""
    return len(labels) > 0 and all(isinstance(lab, (set, frozenset, list, tuple)) for lab in labels)


def nearest_neighbours(rsm: np.ndarray, query: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar images to ``query`` under ``rsm``, the query itself excluded.

    Parameters
    ----------
    rsm : ndarray (N, N) float, larger means more similar.
    query : int, index of the query image, ``0 <= query < N``.
    k : int >= 1; values above ``N - 1`` are clipped to ``N - 1``.

    Returns
    -------
    indices : ndarray (k,) int64, most similar first; ties broken by the lower index.
    similarities : ndarray (k,) float64, ``rsm[query, indices]``.

    Raises
    ------
    AnalysisError (ValueError)
        Non-square or non-finite ``rsm``, ``query`` out of range, ``k < 1`` or ``N < 2``.
    """
    arr = _check_rsm(rsm, min_n=2)
    n = arr.shape[0]
    if not 0 <= int(query) < n:
        raise AnalysisError(f"query: index {query} is out of range for {n} images")
    if int(k) < 1:
        raise AnalysisError(f"k: need at least one neighbour, got k = {k}")
    k = min(int(k), n - 1)
    row = arr[int(query)]
    others = np.delete(np.arange(n), int(query))
    # stable sort on the negated row: equal similarities keep index order
    order = others[np.argsort(-row[others], kind="stable")][:k]
    return order.astype(np.int64), row[order].astype(np.float64)


def _ranking(arr: np.ndarray, i: int) -> np.ndarray:
    n = arr.shape[0]
    others = np.delete(np.arange(n), i)
    return others[np.argsort(-arr[i, others], kind="stable")]


def retrieval_metrics(rsm: np.ndarray, labels: Sequence, k: int = 5) -> dict[str, Any]:
    """Retrieval quality of an RSM: every image in turn queries all the others.

    Relevance of a retrieved image ``j`` for the query ``i``: same label (single-label data)
    or at least one shared object (multi-label data: each label is a set/list/tuple of
    object names). The query itself is never retrieved.

    Parameters
    ----------
    rsm : ndarray (N, N) float, larger means more similar.
    labels : sequence of length N. Hashable labels (str, int) for single-label data, or
        collections of object names (set, frozenset, list, tuple) for multi-label data.
    k : int >= 1, depth for precision@k; clipped to ``N - 1``.

    Returns
    -------
    dict with
        ``precision_at_k`` : float, mean over queries of the fraction of relevant images
            among the top ``k``;
        ``f1_at_1`` : float, mean over queries of the F1 score of the top-1 neighbour.
            Single-label: 1 when its label equals the query's, else 0 (top-1 accuracy).
            Multi-label (as in the paper): ``2 |A ∩ B| / (|A| + |B|)`` between the query's
            and the neighbour's object sets (0 when both are empty);
        ``mean_average_precision`` : float, mean over queries that have at least one
            relevant image of the average precision of the full ranking (nan if none has);
        ``k`` : int, the depth used; ``n_queries`` : int;
        ``n_queries_without_relevant`` : int, queries with no relevant image in the set;
        ``multi_label`` : bool;
        ``per_query`` : dict of (N,) float64 arrays ``precision_at_k``, ``f1_at_1``,
            ``average_precision`` (nan for queries without relevant images).

    Raises
    ------
    AnalysisError (ValueError)
        ``rsm`` not square/finite, ``N < 2``, ``len(labels) != N``, ``k < 1``, or a
        mixture of single labels and label collections.
    """
    arr = _check_rsm(rsm, min_n=2)
    n = arr.shape[0]
    labels = list(labels)
    if len(labels) != n:
        raise AnalysisError(f"labels: got {len(labels)} labels for {n} images; give one per image")
    if int(k) < 1:
        raise AnalysisError(f"k: need k >= 1, got {k}")
    k = min(int(k), n - 1)
    multi = _is_multi_label(labels)
    if not multi and any(isinstance(lab, (set, frozenset, list, tuple)) for lab in labels):
        raise AnalysisError(
            "labels: mix of single labels and label collections; give either one label per "
            "image or one collection of object names per image"
        )
    if multi:
        sets = [frozenset(lab) for lab in labels]
        inter = np.array([[len(a & b) for b in sets] for a in sets], dtype=np.float64)
        sizes = np.array([len(a) for a in sets], dtype=np.float64)
        relevant = inter > 0
        denom = sizes[:, None] + sizes[None, :]
        f1 = np.divide(2.0 * inter, denom, out=np.zeros_like(inter), where=denom > 0)
    else:
        index: dict[Hashable, int] = {}
        try:
            codes = np.array([index.setdefault(lab, len(index)) for lab in labels])
        except TypeError as exc:
            raise AnalysisError(
                f"labels: single labels must be hashable (str, int): {exc}"
            ) from exc
        relevant = codes[:, None] == codes[None, :]
        f1 = relevant.astype(np.float64)

    p_at_k = np.empty(n)
    f1_at_1 = np.empty(n)
    ap = np.full(n, np.nan)
    for i in range(n):
        order = _ranking(arr, i)
        rel = relevant[i, order]
        p_at_k[i] = rel[:k].mean()
        f1_at_1[i] = f1[i, order[0]]
        if rel.any():
            hits = np.cumsum(rel)
            ranks = np.arange(1, n)
            ap[i] = float(np.mean(hits[rel] / ranks[rel]))
    has_rel = ~np.isnan(ap)
    return {
        "precision_at_k": float(p_at_k.mean()),
        "f1_at_1": float(f1_at_1.mean()),
        "mean_average_precision": float(ap[has_rel].mean()) if has_rel.any() else math.nan,
        "k": k,
        "n_queries": n,
        "n_queries_without_relevant": int((~has_rel).sum()),
        "multi_label": multi,
        "per_query": {"precision_at_k": p_at_k, "f1_at_1": f1_at_1, "average_precision": ap},
    }
