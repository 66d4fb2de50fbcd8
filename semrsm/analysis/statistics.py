"""RSA statistics of two RSMs over the same images: kernel CKA, Spearman's ρ and
Kendall's τ_a of the upper triangles.

* ``cka`` — **kernel CKA with the RSMs as the kernel (Gram) matrices** (Kornblith et al.,
  2019; the biased HSIC estimator): ``<HKH, HLH>_F / (‖HKH‖_F ‖HLH‖_F)`` with the
  centring matrix ``H``. It uses the whole matrix, diagonal included, and is invariant to
  scaling either RSM. Same number as :func:`semrsm.analysis.linear_cka` (which is "linear"
  only in that it takes the RSMs as given kernels).
* ``spearman`` — RSA: Spearman's rank correlation of the upper triangles (``i < j``).
* ``kendall_tau_a`` — RSA: Kendall's τ_a of the upper triangles, ``(concordant −
  discordant) / (m(m−1)/2)`` over the ``m`` pairs of entries; ties count as neither, so
  a model that predicts ties is not rewarded (Nili et al., 2014, the rsatoolbox choice).

rsatoolbox is not needed at run time: the three statistics are a few lines on top of
scipy and are tested against rsatoolbox's own ``compare``. Intervals over images are in
:mod:`semrsm.analysis.bootstrap`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm
from semrsm.analysis.cka import _centre

__all__ = [
    "COMPARE_METHODS",
    "METHOD_LABELS",
    "kendall_tau_a",
    "rsm_similarity",
    "spearman",
    "upper_triangle",
]

#: statistics, in display order
COMPARE_METHODS = ("cka", "spearman", "kendall_tau_a")
METHOD_LABELS = {"cka": "kernel CKA", "spearman": "RSA Spearman ρ", "kendall_tau_a": "RSA Kendall τ_a"}

def upper_triangle(m: np.ndarray) -> np.ndarray:
    """The entries ``i < j`` of a square matrix, row by row, shape ``(N(N-1)/2,)``."""
    m = np.asarray(m)
    i, j = np.triu_indices(m.shape[0], k=1)
    return m[i, j]


def _ties(x: np.ndarray) -> int:
    """Number of tied pairs ``sum t(t-1)/2`` over groups of equal values."""
    _, counts = np.unique(x, return_counts=True)
    return int(np.sum(counts * (counts - 1) // 2))


def kendall_tau_a(x: np.ndarray, y: np.ndarray, copies: np.ndarray | None = None) -> float:
    """Kendall's τ_a of two vectors: ``(concordant − discordant) / (m(m−1)/2)``.

    Computed in ``O(m log m)`` from scipy's τ_b: ``con − dis = τ_b·sqrt((m0−tx)(m0−ty))``
    with ``m0 = m(m−1)/2`` and ``tx``, ``ty`` the tied pairs in each vector.

    Parameters
    ----------
    x, y : ndarray (m,) float, m >= 2.
    copies : ndarray (m,) int, optional. In a bootstrap resample one RSM entry can appear
        several times; entries with the same id here are copies of one entry, and the
        pairs of copies are left out of the denominator (like an image's pair with its
        own copy), so that identical RSMs still score 1.

    Returns
    -------
    float in [-1, 1]; 0 when either vector is constant.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    m = x.size
    if m != y.size or m < 2:
        raise AnalysisError(f"kendall_tau_a: need two vectors of equal length >= 2, got {m}, {y.size}")
    m0 = m * (m - 1) / 2
    tx, ty = _ties(x), _ties(y)
    if tx == m0 or ty == m0:
        return 0.0
    from scipy import stats  # imported here: about a second, and most pages never need it

    tau_b = stats.kendalltau(x, y, variant="b").statistic
    if not math.isfinite(tau_b):
        return 0.0
    denom = m0 - (_ties(np.asarray(copies)) if copies is not None else 0)
    return float(np.clip(tau_b * math.sqrt((m0 - tx) * (m0 - ty)) / denom, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ (Pearson correlation of average ranks); nan when a vector is constant."""
    from scipy import stats

    rx = stats.rankdata(np.asarray(x, dtype=np.float64).ravel())
    ry = stats.rankdata(np.asarray(y, dtype=np.float64).ravel())
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom <= 0:
        return math.nan
    return float(np.clip((rx @ ry) / denom, -1.0, 1.0))


def _cka(k: np.ndarray, l_: np.ndarray) -> float:
    kc, lc = _centre(k), _centre(l_)
    denom = math.sqrt(float(np.sum(kc * kc)) * float(np.sum(lc * lc)))
    if denom <= 0 or not math.isfinite(denom):
        return math.nan
    return float(np.clip(np.sum(kc * lc) / denom, -1.0, 1.0))


def _cka_weighted(k: np.ndarray, l_: np.ndarray, w: np.ndarray) -> float:
    """CKA of a bootstrap sample given as distinct images ``k, l_`` with multiplicities ``w``.

    Equal to the CKA of the sample's Gram matrices except that the copies of one image are
    not paired with each other (those entries would be self-similarities off the diagonal,
    agree perfectly in both RSMs and bias CKA upwards); the diagonal keeps weight ``w_i``.
    With all ``w_i = 1`` this is :func:`_cka`.
    """
    weights = np.outer(w, w)
    np.fill_diagonal(weights, w)
    total = w.sum()

    def centre(m: np.ndarray) -> np.ndarray:
        r = (m @ w) / total
        return m - r[:, None] - r[None, :] + (r @ w) / total

    kc, lc = centre(k), centre(l_)
    denom = math.sqrt(float(np.sum(weights * kc * kc)) * float(np.sum(weights * lc * lc)))
    if denom <= 0 or not math.isfinite(denom):
        return math.nan
    return float(np.clip(np.sum(weights * kc * lc) / denom, -1.0, 1.0))


def _check_method(method: str) -> None:
    if method not in COMPARE_METHODS:
        raise AnalysisError(f"method: unknown {method!r}; choose one of {COMPARE_METHODS}")


def _stat(
    method: str,
    a: np.ndarray,
    b: np.ndarray,
    keep: np.ndarray | None = None,
    copies: np.ndarray | None = None,
) -> float:
    """One statistic of two (sub-)RSMs; ``keep`` masks the upper-triangle entries used by
    RSA, ``copies`` (for the kept entries) names the original entry of each (bootstrap)."""
    if method == "cka":
        return _cka(a, b)
    x, y = upper_triangle(a), upper_triangle(b)
    if keep is not None:
        x, y = x[keep], y[keep]
    if x.size < 2:
        return math.nan
    return spearman(x, y) if method == "spearman" else kendall_tau_a(x, y, copies)


def rsm_similarity(a: np.ndarray, b: np.ndarray, method: str = "cka") -> float:
    """How much two RSMs over the same images agree: ``cka``, ``spearman`` or ``kendall_tau_a``.

    Parameters
    ----------
    a, b : ndarray (N, N) float, the same images in the same order, N >= 3.
    method : one of :data:`COMPARE_METHODS`.

    Returns
    -------
    float in [-1, 1] (nan for a constant RSM).

    Raises
    ------
    AnalysisError (ValueError)
        Non-square, non-finite or mismatched matrices, N < 3, an unknown method.
    """
    _check_method(method)
    a, b = _pair_of_rsms(a, b)
    return _stat(method, a, b)


def _pair_of_rsms(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = _check_rsm(a, "A", min_n=3)
    b = _check_rsm(b, "B", min_n=3)
    if a.shape != b.shape:
        raise AnalysisError(
            f"A and B cover different image sets: shapes {a.shape} and {b.shape}; "
            "compare RSMs of the same images in the same order"
        )
    return a, b
