"""Linear CKA between RSMs, one pair or every pair of two collections."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm


def linear_cka(K: np.ndarray, L: np.ndarray) -> float:
    """Linear CKA between two RSMs over the same images (Kornblith et al., 2019).

    Both matrices are treated as Gram matrices: ``HSIC(K, L) = <HKH, HLH>_F`` with the
    centring matrix ``H = I - 11ᵀ/N``, and ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``.
    Invariant to isotropic scaling of either matrix and to adding a constant to all
    entries; 1 for identical (non-constant) matrices.

    Parameters
    ----------
    K, L : ndarray (N, N) float, the same images in the same order.

    Returns
    -------
    cka : float in [-1, 1] (in [0, 1] for positive semi-definite inputs); nan when one
        centred matrix is zero (a constant RSM carries no structure to compare).

    Raises
    ------
    AnalysisError (ValueError)
        Non-square, non-finite, different sizes, or ``N < 2``.
    """
    k = _check_rsm(K, "K", min_n=2)
    l_ = _check_rsm(L, "L", min_n=2)
    if k.shape != l_.shape:
        raise AnalysisError(f"K and L cover different image sets: shapes {k.shape} and {l_.shape}")
    kc = _centre(k)
    lc = _centre(l_)
    denom = math.sqrt(float(np.sum(kc * kc)) * float(np.sum(lc * lc)))
    if denom <= 0 or not math.isfinite(denom):
        return math.nan
    return float(np.clip(np.sum(kc * lc) / denom, -1.0, 1.0))


def _centre(m: np.ndarray) -> np.ndarray:
    """``H M H`` without forming ``H``: subtract row and column means, add the grand mean."""
    return m - m.mean(axis=0, keepdims=True) - m.mean(axis=1, keepdims=True) + m.mean()


def cka_matrix(rsms_a: Mapping[str, np.ndarray], rsms_b: Mapping[str, np.ndarray]) -> np.ndarray:
    """Linear CKA between every RSM of ``rsms_a`` and every RSM of ``rsms_b``.

    Parameters
    ----------
    rsms_a, rsms_b : mappings name -> ndarray (N, N), all over the same N images
        (for example layer -> semantic RSM and layer -> spatio-semantic RSM).

    Returns
    -------
    cka : ndarray (len(rsms_a), len(rsms_b)) float64; rows follow ``rsms_a``'s order,
        columns ``rsms_b``'s order.

    Raises
    ------
    AnalysisError (ValueError)
        An empty mapping, or matrices of different sizes.
    """
    if not rsms_a or not rsms_b:
        raise AnalysisError("cka_matrix: give at least one RSM on each side")
    # centre once per matrix: the layer x layer table is then just normalised inner products
    ca = [_centre(_check_rsm(m, f"rsms_a[{key!r}]", min_n=2)) for key, m in rsms_a.items()]
    cb = [_centre(_check_rsm(m, f"rsms_b[{key!r}]", min_n=2)) for key, m in rsms_b.items()]
    shapes = {m.shape for m in ca + cb}
    if len(shapes) > 1:
        raise AnalysisError(
            f"cka_matrix: RSMs cover different image sets (shapes {sorted(shapes)})"
        )
    fa = np.stack([m.ravel() for m in ca])
    fb = np.stack([m.ravel() for m in cb])
    na = np.linalg.norm(fa, axis=1)
    nb = np.linalg.norm(fb, axis=1)
    denom = na[:, None] * nb[None, :]
    out = np.full(denom.shape, np.nan)
    np.divide(fa @ fb.T, denom, out=out, where=denom > 0)
    return np.clip(out, -1.0, 1.0)
