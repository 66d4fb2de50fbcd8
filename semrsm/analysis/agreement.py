"""Agreement of an RSM with the model's output: Jensen-Shannon divergence of the
predicted class probabilities and its correlation with the RSM's similarities."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm


def _check_probs(p: Any, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise AnalysisError(
            f"{name}: expected class probabilities of shape (N, K), got {np.shape(p)}"
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise AnalysisError(
            f"{name}: probabilities must be finite and non-negative (apply softmax to logits)"
        )
    sums = arr.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise AnalysisError(
            f"{name}: a row sums to 0; every image needs a probability distribution"
        )
    return arr / sums


def jensen_shannon(p: np.ndarray, q: np.ndarray | None = None) -> np.ndarray | float:
    """Jensen-Shannon divergence in bits (base 2, so it lies in [0, 1]).

    ``JSD(p, q) = H((p + q) / 2) - (H(p) + H(q)) / 2`` with the Shannon entropy ``H`` in bits.

    Parameters
    ----------
    p : ndarray (N, K) or (K,), class probabilities (rows are renormalised to sum to 1).
    q : ndarray (M, K) or (K,), or None for ``q = p``.

    Returns
    -------
    jsd : ndarray (N, M) float64, ``jsd[i, j] = JSD(p_i, q_j)``; symmetric with a zero
        diagonal when ``q`` is None; a float when both inputs are 1-D.

    Raises
    ------
    AnalysisError (ValueError)
        Wrong shapes, different K, negative or non-finite values, or an all-zero row.
    """
    scalar = np.ndim(p) == 1 and (q is None or np.ndim(q) == 1)
    pa = _check_probs(p, "p")
    qa = pa if q is None else _check_probs(q, "q")
    if pa.shape[1] != qa.shape[1]:
        raise AnalysisError(
            f"p and q have different numbers of classes: {pa.shape[1]} and {qa.shape[1]}"
        )

    def entropy(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0)), 0.0)
        return -t.sum(axis=-1)

    hp, hq = entropy(pa), entropy(qa)
    n, m, c = pa.shape[0], qa.shape[0], pa.shape[1]
    out = np.empty((n, m))
    # (rows, M, K) blocks keep memory near 64 MB for ImageNet-sized K
    rows = max(1, int(8_000_000 // max(1, m * c)))
    for start in range(0, n, rows):
        mix = 0.5 * (pa[start : start + rows, None, :] + qa[None, :, :])
        out[start : start + rows] = entropy(mix) - 0.5 * (
            hp[start : start + rows, None] + hq[None, :]
        )
    np.clip(out, 0.0, 1.0, out=out)
    if q is None:
        out = 0.5 * (out + out.T)
        np.fill_diagonal(out, 0.0)
    return float(out[0, 0]) if scalar else out


def _correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy import stats

    res = {
        "pearson_r": math.nan,
        "pearson_p": math.nan,
        "spearman_r": math.nan,
        "spearman_p": math.nan,
    }
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return res  # correlation undefined for constant or too short inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pr = stats.pearsonr(x, y)
        sr = stats.spearmanr(x, y)
    res.update(
        pearson_r=float(pr[0]),
        pearson_p=float(pr[1]),
        spearman_r=float(sr[0]),
        spearman_p=float(sr[1]),
    )
    return res


def output_agreement(rsm: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """How well an RSM agrees with the model's output: correlation of each pair's
    similarity with the Jensen-Shannon divergence (bits) of their predicted class
    probabilities, over the off-diagonal upper triangle (each pair once).

    A representation that agrees with the output has a strongly *negative* correlation:
    images the RSM calls similar get similar predictions.

    Parameters
    ----------
    rsm : ndarray (N, N) float.
    probs : ndarray (N, K), class probabilities for the same images (softmax outputs).

    Returns
    -------
    dict with ``pearson_r``, ``pearson_p``, ``spearman_r``, ``spearman_p`` (floats; nan when
    either side is constant or there are fewer than 3 pairs), ``n_pairs`` (int),
    ``similarity`` and ``divergence`` (ndarray (P,) float64, the pairs' values in
    ``np.triu_indices(N, 1)`` order, for scatter plots).

    Raises
    ------
    AnalysisError (ValueError)
        ``N < 2``, mismatched N, or invalid probabilities.
    """
    arr = _check_rsm(rsm, min_n=2)
    pa = _check_probs(probs, "probs")
    if pa.shape[0] != arr.shape[0]:
        raise AnalysisError(
            f"probs has {pa.shape[0]} rows but the RSM covers {arr.shape[0]} images"
        )
    iu = np.triu_indices(arr.shape[0], 1)
    sim = arr[iu]
    div = jensen_shannon(pa)[iu]
    out: dict[str, Any] = _correlations(sim, div)
    out.update(n_pairs=int(sim.size), similarity=sim, divergence=div)
    return out
