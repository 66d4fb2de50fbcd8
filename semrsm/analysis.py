"""The paper's analyses on RSMs: retrieval, CKA, agreement with the output, translation,
matcher comparison, and the per-token contributions of a matching.

Pure functions on numpy arrays (and the core library for RSMs and matchings); no
Streamlit. Every function that needs RSMs per layer accepts either tokens (then it
computes them with :func:`semrsm.spatial_rsm` / :func:`semrsm.semantic_rsm`) or RSMs
computed elsewhere (for example served from the app's cache), see :func:`layer_rsms`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Progress = Callable[[int, int], None]


class AnalysisError(ValueError):
    """Bad input to an analysis function; the message says what to change."""


# --------------------------------------------------------------------------- helpers


def _check_rsm(rsm: Any, name: str = "rsm", *, min_n: int = 1) -> np.ndarray:
    """Return ``rsm`` as a finite square float64 array or raise :class:`AnalysisError`."""
    arr = np.asarray(rsm, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise AnalysisError(f"{name}: expected a square (N, N) matrix, got shape {arr.shape}")
    if arr.shape[0] < min_n:
        raise AnalysisError(f"{name}: needs at least {min_n} images, got N = {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name}: contains NaN or inf; recompute it from finite features")
    return arr


def _is_multi_label(labels: Sequence) -> bool:
    """Multi-label when every label is a collection of object names (not a string)."""
    return len(labels) > 0 and all(isinstance(lab, (set, frozenset, list, tuple)) for lab in labels)


# --------------------------------------------------------------------------- retrieval


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


# --------------------------------------------------------------------------- CKA


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


# --------------------------------------------------------------------------- output agreement


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


# --------------------------------------------------------------------------- matching contributions


def _pair_arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two images' tokens as float64 (S, C) arrays with the same S and C."""
    arrs = []
    for name, x in (("a", a), ("b", b)):
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2:
            raise AnalysisError(
                f"{name}: expected one image's tokens of shape (S, C), got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise AnalysisError(f"{name}: tokens contain NaN or inf")
        arrs.append(arr)
    if arrs[0].shape != arrs[1].shape:
        raise AnalysisError(
            f"a and b have different shapes {arrs[0].shape} and {arrs[1].shape}; both images must "
            "come from the same layer"
        )
    return arrs[0], arrs[1]


def _check_perm(perm: Any, s: int) -> np.ndarray:
    p = np.asarray(perm)
    if p.shape != (s,) or not np.issubdtype(p.dtype, np.integer):
        raise AnalysisError(
            f"perm: expected an integer array of shape ({s},), got {p.dtype} {p.shape}"
        )
    if not np.array_equal(np.sort(p), np.arange(s)):
        raise AnalysisError("perm: not a permutation of 0..S-1 (every position must be used once)")
    return p.astype(np.int64)


def matching_contributions(
    a: np.ndarray, b: np.ndarray, perm: np.ndarray | None = None
) -> np.ndarray:
    """Each matched token pair's share of the linear similarity: ``<a_s, b_perm[s]>``.

    ``contributions.sum()`` is the matched inner product ``<a, P b>_F``: the semantic linear
    similarity for the exact matcher's permutation, the spatio-semantic one for the
    identity (``perm=None``).

    Parameters
    ----------
    a, b : ndarray or Tensor (S, C), the tokens of two images from the same layer.
    perm : ndarray (S,) int, ``b[perm[s]]`` is matched to ``a[s]`` (as returned by
        :func:`semrsm.match_pair`); None for the identity alignment.

    Returns
    -------
    contributions : ndarray (S,) float64, indexed by the position in ``a``.

    Raises
    ------
    AnalysisError (ValueError)
        Shape mismatch, non-finite tokens, or ``perm`` not a permutation of ``0..S-1``.
    """
    aa, bb = _pair_arrays(a, b)
    p = np.arange(aa.shape[0]) if perm is None else _check_perm(perm, aa.shape[0])
    return np.einsum("sc,sc->s", aa, bb[p])


def contribution_maps(
    contributions: np.ndarray, perm: np.ndarray | None, grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Place per-pair contributions on the token grids of both images.

    Parameters
    ----------
    contributions : ndarray (S,), from :func:`matching_contributions`.
    perm : ndarray (S,) int or None (identity).
    grid : (H, W) with ``H * W == S``; token ``s`` sits at row ``s // W``, column ``s % W``.

    Returns
    -------
    map_a : ndarray (H, W) float64, the contribution of each position of image a.
    map_b : ndarray (H, W) float64, at each position of image b the contribution of the
        pair it belongs to (``map_b.flat[perm[s]] = contributions[s]``). Both maps sum to
        the same total.

    Raises
    ------
    AnalysisError (ValueError)
        ``H * W != S`` or a bad ``perm``.
    """
    c = np.asarray(contributions, dtype=np.float64).ravel()
    h, w = int(grid[0]), int(grid[1])
    if h * w != c.size:
        raise AnalysisError(f"grid {grid} has {h * w} cells but there are {c.size} tokens")
    p = np.arange(c.size) if perm is None else _check_perm(perm, c.size)
    map_b = np.empty(c.size)
    map_b[p] = c
    return c.reshape(h, w).copy(), map_b.reshape(h, w)


def token_alternatives(
    inner: np.ndarray, position: int, top: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """The positions of image b most similar to position ``position`` of image a.

    Parameters
    ----------
    inner : ndarray (S, S), ``inner[s, t] = <a_s, b_t>``.
    position : int, a token of image a.
    top : int >= 1, how many (clipped to S).

    Returns
    -------
    positions : ndarray (top,) int64, best first (ties by lower index).
    values : ndarray (top,) float64, the inner products.
    """
    m = np.asarray(inner, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise AnalysisError(f"inner: expected an (S, S) matrix, got {m.shape}")
    if not 0 <= int(position) < m.shape[0]:
        raise AnalysisError(f"position: {position} is out of range for S = {m.shape[0]}")
    if int(top) < 1:
        raise AnalysisError(f"top: need at least 1, got {top}")
    row = m[int(position)]
    order = np.argsort(-row, kind="stable")[: min(int(top), row.size)]
    return order.astype(np.int64), row[order]


def kernel_values(
    inner: float, norm_a_sq: float, norm_b_sq: float, sigma2: float | None = None
) -> dict[str, float]:
    """The step from a (matched or identity) inner product to each kernel's value.

    ``linear = <a, Pb>``; ``cosine = <a, Pb> / (‖a‖ ‖b‖)`` (0 if a norm is 0);
    ``rbf = exp(-(‖a‖² + ‖b‖² - 2 <a, Pb>) / (2 σ²))``. The norms do not depend on P.

    Parameters
    ----------
    inner : float, ``<a, P b>_F``.
    norm_a_sq, norm_b_sq : float, squared Frobenius norms of both images' tokens.
    sigma2 : float > 0 or None; the RBF bandwidth σ² (see :func:`rbf_sigma2`). None omits
        the ``rbf`` entry.

    Returns
    -------
    dict with ``linear``, ``cosine``, ``squared_distance`` and, with ``sigma2``, ``rbf``.
    """
    denom = math.sqrt(max(norm_a_sq, 0.0) * max(norm_b_sq, 0.0))
    d2 = max(0.0, norm_a_sq + norm_b_sq - 2.0 * inner)
    out = {
        "linear": float(inner),
        "cosine": float(np.clip(inner / denom, -1.0, 1.0)) if denom > 0 else 0.0,
        "squared_distance": d2,
    }
    if sigma2 is not None:
        if not sigma2 > 0:
            raise AnalysisError(f"sigma2 must be positive, got {sigma2}")
        out["rbf"] = math.exp(-d2 / (2.0 * sigma2))
    return out


def rbf_sigma2(linear_rsm: np.ndarray) -> float:
    """The RBF bandwidth σ² the core library uses for an RSM built from this linear one:
    the median of the non-zero off-diagonal squared distances ``‖R_i - P R_j‖²``.

    Pass the spatio-semantic linear RSM for the spatio-semantic RBF kernel and the semantic
    linear RSM for the semantic one.
    """
    from semrsm.kernels import median_sigma2, squared_distances

    return median_sigma2(squared_distances(_check_rsm(linear_rsm, "linear_rsm")))


@dataclass
class PairExplanation:
    """Everything the token-matching view shows for one pair of images.

    Attributes
    ----------
    inner : ndarray (S, S) float64, ``inner[s, t] = <a_s, b_t>``.
    perm : ndarray (S,) int64, the chosen matcher's permutation (``b[perm[s]]`` ↔ ``a[s]``).
    value : float, ``<a, P b>`` under ``perm``.
    matcher : str, the matcher that produced ``perm``.
    exact_perm, exact_value : the optimal permutation and value (same as ``perm``/``value``
        for the exact matcher).
    identity_value : float, ``trace(inner)``, the spatio-semantic inner product.
    contributions : ndarray (S,), ``inner[s, perm[s]]``.
    identity_contributions : ndarray (S,), ``diag(inner)``.
    norm_a_sq, norm_b_sq : float, squared Frobenius norms.
    grid : (H, W) or None.
    """

    inner: np.ndarray
    perm: np.ndarray
    value: float
    matcher: str
    exact_perm: np.ndarray
    exact_value: float
    identity_value: float
    contributions: np.ndarray
    identity_contributions: np.ndarray
    norm_a_sq: float
    norm_b_sq: float
    grid: tuple[int, int] | None = None

    @property
    def ratio_to_optimal(self) -> float:
        """``value / exact_value`` (1 for the exact matcher; nan if the optimum is not positive)."""
        return self.value / self.exact_value if self.exact_value > 0 else math.nan

    @property
    def gap_to_optimal(self) -> float:
        """``exact_value - value`` (>= 0 up to rounding)."""
        return self.exact_value - self.value

    def kernels(
        self, sigma2_spatial: float | None = None, sigma2_semantic: float | None = None
    ) -> dict:
        """Kernel values for identity and matched alignment: ``{"spatial": {...}, "semantic": {...}}``
        (see :func:`kernel_values`)."""
        return {
            "spatial": kernel_values(
                self.identity_value, self.norm_a_sq, self.norm_b_sq, sigma2_spatial
            ),
            "semantic": kernel_values(self.value, self.norm_a_sq, self.norm_b_sq, sigma2_semantic),
        }

    def maps(self, which: str = "matched") -> tuple[np.ndarray, np.ndarray]:
        """Contribution maps on the grid of both images, ``which`` = "matched" or "identity"."""
        if self.grid is None:
            raise AnalysisError(
                "maps: this explanation has no grid; pass grid=(H, W) to explain_pair"
            )
        if which == "matched":
            return contribution_maps(self.contributions, self.perm, self.grid)
        if which == "identity":
            return contribution_maps(self.identity_contributions, None, self.grid)
        raise AnalysisError(f"which: expected 'matched' or 'identity', got {which!r}")


def explain_pair(
    a: np.ndarray,
    b: np.ndarray,
    matcher: str = "exact",
    *,
    grid: tuple[int, int] | None = None,
    perm: np.ndarray | None = None,
    **matcher_params: Any,
) -> PairExplanation:
    """Match one pair of images and collect what the token-matching view shows.

    Parameters
    ----------
    a, b : ndarray or Tensor (S, C), tokens of two images from the same layer.
    matcher : a matcher name of :func:`semrsm.matching.solve_batch`.
    grid : (H, W) with ``H * W == S``, or None when the tokens have no grid.
    perm : ndarray (S,) int or None; the matcher's permutation when it is already known
        (for example the one behind a cached RSM), so the view shows exactly that matching.
    **matcher_params : passed to the matcher (``k``, ``window``, ...).

    Returns
    -------
    PairExplanation

    Raises
    ------
    AnalysisError (ValueError)
        Shape mismatch, non-finite tokens, or a grid that does not fit S; unknown matchers
        raise the core library's ValueError.
    """
    from semrsm.matching import solve_batch

    aa, bb = _pair_arrays(a, b)
    s = aa.shape[0]
    if grid is not None and int(grid[0]) * int(grid[1]) != s:
        raise AnalysisError(
            f"grid {tuple(grid)} has {grid[0] * grid[1]} cells but the images have {s} tokens"
        )
    inner = aa @ bb.T
    # norm-sorting matchers (topk_greedy, batch_optimal) need the token norms of both sides
    norms = {
        "row_norms": np.linalg.norm(aa, axis=1)[None],
        "col_norms": np.linalg.norm(bb, axis=1)[None],
    }
    if perm is None:
        perms, _ = solve_batch(inner[None], matcher=matcher, **norms, **matcher_params)
        perm = np.asarray(perms[0], dtype=np.int64)
    else:
        perm = _check_perm(perm, s)
    if matcher == "exact":
        exact_perm = perm
    else:
        exact_perm = np.asarray(solve_batch(inner[None], matcher="exact")[0][0], dtype=np.int64)
    idx = np.arange(s)
    return PairExplanation(
        inner=inner,
        perm=perm,
        value=float(inner[idx, perm].sum()),
        matcher=matcher,
        exact_perm=exact_perm,
        exact_value=float(inner[idx, exact_perm].sum()),
        identity_value=float(np.trace(inner)),
        contributions=inner[idx, perm],
        identity_contributions=np.diag(inner).copy(),
        norm_a_sq=float(np.sum(aa * aa)),
        norm_b_sq=float(np.sum(bb * bb)),
        grid=None if grid is None else (int(grid[0]), int(grid[1])),
    )


# --------------------------------------------------------------------------- RSMs per layer


@dataclass
class RSMPair:
    """The two RSMs of one layer over the same images: spatio-semantic and semantic."""

    spatial: np.ndarray
    semantic: np.ndarray


def _token_array(x: Any) -> Any:
    """Tokens from a ``semrsm.layers.Tokens`` object, an ndarray or a tensor."""
    return x.tokens if hasattr(x, "tokens") and hasattr(x, "grid") else x


def _as_rsm_pair(x: Any, kernel: str) -> RSMPair | None:
    if isinstance(x, RSMPair):
        return x
    if isinstance(x, Mapping) and {"spatial", "semantic"} <= set(x):
        # semrsm.explorer.layer_rsms gives {"spatial": {kernel: rsm}, "semantic": {...}}
        sp, se = x["spatial"], x["semantic"]
        if isinstance(sp, Mapping) or isinstance(se, Mapping):
            try:
                sp, se = sp[kernel], se[kernel]
            except KeyError as exc:
                raise AnalysisError(f"precomputed RSMs lack the kernel {kernel!r}") from exc
        return RSMPair(np.asarray(sp, float), np.asarray(se, float))
    if isinstance(x, tuple) and len(x) == 2 and all(np.ndim(m) == 2 for m in x):
        return RSMPair(np.asarray(x[0], float), np.asarray(x[1], float))
    return None


def _scaled_progress(progress: Progress | None, step: int, steps: int, scale: int = 1000):
    """Map a sub-task's ``(done, total)`` onto step ``step`` of ``steps`` of an overall bar."""
    if progress is None:
        return None

    def cb(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        progress(step * scale + int(round(frac * scale)), steps * scale)

    return cb


def layer_rsms(
    layers: Mapping[str, Any],
    kernel: str = "cosine",
    matcher: str = "exact",
    *,
    progress: Progress | None = None,
    device: str = "auto",
    **matcher_params: Any,
) -> dict[str, RSMPair]:
    """Spatio-semantic and semantic RSM of each layer.

    Parameters
    ----------
    layers : mapping layer name -> tokens (ndarray/Tensor (N, S, C) or a
        ``semrsm.layers.Tokens``) or already computed RSMs (an :class:`RSMPair`, a tuple
        ``(spatial, semantic)``, a dict with those keys, or an entry of
        :func:`semrsm.explorer.layer_rsms` whose values map kernel -> RSM). Precomputed entries are used as
        they are, so a caller with a cache passes its RSMs and nothing is recomputed.
    kernel : "linear", "cosine" or "rbf".
    matcher : matcher for the semantic RSM.
    progress : ``progress(done, total)`` over all layers (total = 1000 per layer).
    device : passed to :func:`semrsm.semantic_rsm`.

    Returns
    -------
    dict layer -> :class:`RSMPair`, in the input's order.

    Raises
    ------
    AnalysisError (ValueError)
        No layers, or RSMs of different sizes across layers.
    """
    import semrsm

    if not layers:
        raise AnalysisError("layers: give at least one layer")
    out: dict[str, RSMPair] = {}
    names = list(layers)
    for step, name in enumerate(names):
        pair = _as_rsm_pair(layers[name], kernel)
        if pair is None:
            tok = _token_array(layers[name])
            spatial = semrsm.spatial_rsm(tok, kernel=kernel)
            semantic = semrsm.semantic_rsm(
                tok,
                kernel=kernel,
                matcher=matcher,
                device=device,
                progress=_scaled_progress(progress, step, len(names)),
                **matcher_params,
            )
            pair = RSMPair(np.asarray(spatial, np.float64), np.asarray(semantic, np.float64))
        _check_rsm(pair.spatial, f"{name}: spatial RSM")
        _check_rsm(pair.semantic, f"{name}: semantic RSM")
        out[name] = pair
        if progress is not None:
            progress((step + 1) * 1000, len(names) * 1000)
    sizes = {p.spatial.shape for p in out.values()} | {p.semantic.shape for p in out.values()}
    if len(sizes) > 1:
        raise AnalysisError(f"layers: RSMs cover different image sets (shapes {sorted(sizes)})")
    return out


# --------------------------------------------------------------------------- translation


def crop_overlaps(meta: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Overlap fraction of every pair of crops, from a crops image set's ``meta``.

    Parameters
    ----------
    meta : mapping with ``offsets`` (N pairs ``(dy, dx)``, top-left corners in source
        pixels), ``sources`` (N source indices or names) and ``crop_size`` (square side in
        source pixels, or ``(h, w)``, or a list with one side per source when
        ``sources`` are indices), optionally ``crop_sizes`` (one side per source).

    Returns
    -------
    overlap : ndarray (N, N) float64 in [0, 1], area of intersection over the crop area;
        0 between crops of different sources, 1 on the diagonal.
    same_source : ndarray (N, N) bool.

    Raises
    ------
    AnalysisError (ValueError)
        Missing keys or inconsistent lengths (the image set is not a crops set).
    """
    missing = [key for key in ("offsets", "sources", "crop_size") if key not in meta]
    if missing:
        raise AnalysisError(
            f"translation: the image set's meta lacks {missing}; use a crops set such as "
            "'crops:astronaut'"
        )
    off = np.asarray(meta["offsets"], dtype=np.float64).reshape(-1, 2)
    sources = list(meta["sources"])
    n = off.shape[0]
    if len(sources) != n:
        raise AnalysisError(f"translation: {n} offsets but {len(sources)} sources")
    codes = np.unique(np.array([str(s) for s in sources]), return_inverse=True)[1]
    same = codes[:, None] == codes[None, :]
    per_source = meta.get("crop_sizes")
    size = meta["crop_size"]
    if per_source is None and np.ndim(size) == 1 and len(size) != 2:
        per_source = size
    if per_source is not None:
        # one square side per source; sources are indices into that list
        try:
            side = np.array([float(per_source[int(s)]) for s in sources])
        except (IndexError, TypeError, ValueError) as exc:
            raise AnalysisError(f"translation: crop sizes do not fit the sources: {exc}") from exc
        h = w = side
    elif np.ndim(size) == 0:
        h = w = np.full(n, float(size))
    else:
        h, w = np.full(n, float(size[0])), np.full(n, float(size[1]))
    if not (np.all(h > 0) and np.all(w > 0)):
        raise AnalysisError(f"translation: crop sizes must be positive, got {size}")
    oy = np.clip(h[:, None] - np.abs(off[:, None, 0] - off[None, :, 0]), 0, None)
    ox = np.clip(w[:, None] - np.abs(off[:, None, 1] - off[None, :, 1]), 0, None)
    overlap = np.where(same, oy * ox / (h[:, None] * w[:, None]), 0.0)
    return overlap, same


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


@dataclass
class TranslationResult:
    """Result of :func:`translation_analysis`.

    Attributes
    ----------
    pairs : pandas.DataFrame, one row per same-source pair ``i < j`` and layer, columns
        ``layer, i, j, source, overlap, spatial, semantic, gap`` (gap = semantic - spatial).
    summary : pandas.DataFrame, one row per layer: ``layer, n_pairs, mean_spatial,
        mean_semantic, mean_gap, slope_spatial, slope_semantic`` (least-squares slope of
        similarity against overlap), ``corr_spatial, corr_semantic`` (Pearson with overlap),
        ``frac_semantic_higher`` and, with several sources, ``mean_spatial_other,
        mean_semantic_other`` (different-source pairs, for reference).
    rsms : dict layer -> RSMPair.
    kernel, matcher : str.
    """

    pairs: Any
    summary: Any
    rsms: dict[str, RSMPair]
    kernel: str
    matcher: str


def translation_analysis(
    image_set: Any,
    layers: Mapping[str, Any],
    kernel: str = "cosine",
    matcher: str = "exact",
    *,
    progress: Progress | None = None,
    device: str = "auto",
    **matcher_params: Any,
) -> TranslationResult:
    """The paper's translation experiment: similarity of same-source crops against their overlap.

    Translated crops of one image show the same content at shifted positions. The
    spatio-semantic RSM only credits content at the same position, so its similarity falls
    with the overlap; the semantic RSM matches positions first and stays high.

    Parameters
    ----------
    image_set : a crops ``ImageSet`` (or its ``meta`` mapping), see :func:`crop_overlaps`.
    layers : mapping layer -> tokens or precomputed RSMs, as in :func:`layer_rsms`.
    kernel, matcher, progress, device, **matcher_params : as in :func:`layer_rsms`.

    Returns
    -------
    TranslationResult

    Raises
    ------
    AnalysisError (ValueError)
        Not a crops set, no same-source pair, or RSMs that do not match the set's size.
    """
    import pandas as pd

    meta = image_set if isinstance(image_set, Mapping) else getattr(image_set, "meta", {})
    overlap, same = crop_overlaps(meta)
    n = overlap.shape[0]
    iu, ju = np.triu_indices(n, 1)
    keep = same[iu, ju]
    if not keep.any():
        raise AnalysisError("translation: needs at least two crops of the same source image")
    rsms = layer_rsms(layers, kernel, matcher, progress=progress, device=device, **matcher_params)
    names = meta.get("source_names")
    sources = [
        str(names[int(s)]) if names is not None and isinstance(s, (int, np.integer)) else str(s)
        for s in meta["sources"]
    ]
    rows, summary = [], []
    for name, pair in rsms.items():
        if pair.spatial.shape[0] != n:
            raise AnalysisError(
                f"translation: layer {name!r} has RSMs over {pair.spatial.shape[0]} images, the set has {n}"
            )
        si, sj = iu[keep], ju[keep]
        ov = overlap[si, sj]
        sp = pair.spatial[si, sj]
        se = pair.semantic[si, sj]
        for a, b, o, x, y in zip(si, sj, ov, sp, se, strict=True):
            rows.append(
                (name, int(a), int(b), sources[a], float(o), float(x), float(y), float(y - x))
            )
        rec = {
            "layer": name,
            "n_pairs": int(si.size),
            "mean_spatial": float(sp.mean()),
            "mean_semantic": float(se.mean()),
            "mean_gap": float((se - sp).mean()),
            "slope_spatial": _slope(ov, sp),
            "slope_semantic": _slope(ov, se),
            "corr_spatial": _correlations(ov, sp)["pearson_r"],
            "corr_semantic": _correlations(ov, se)["pearson_r"],
            "frac_semantic_higher": float(np.mean(se > sp + 1e-12)),
        }
        other = ~same[iu, ju]
        if other.any():
            rec["mean_spatial_other"] = float(pair.spatial[iu[other], ju[other]].mean())
            rec["mean_semantic_other"] = float(pair.semantic[iu[other], ju[other]].mean())
        summary.append(rec)
    cols = ["layer", "i", "j", "source", "overlap", "spatial", "semantic", "gap"]
    return TranslationResult(
        pairs=pd.DataFrame(rows, columns=cols),
        summary=pd.DataFrame(summary),
        rsms=rsms,
        kernel=kernel,
        matcher=matcher,
    )


# --------------------------------------------------------------------------- layers (CKA)


@dataclass
class LayerCKAResult:
    """Result of :func:`layer_cka`.

    Attributes
    ----------
    layers : list of layer names (network order as given).
    diagonal : ndarray (L,), CKA between the semantic and the spatio-semantic RSM of each layer.
    semantic_vs_spatial : ndarray (L, L), ``[i, j]`` = CKA(semantic of layer i, spatial of layer j).
    semantic_vs_semantic, spatial_vs_spatial : ndarray (L, L), layer-to-layer CKA within each kind.
    rsms : dict layer -> RSMPair.
    """

    layers: list[str]
    diagonal: np.ndarray
    semantic_vs_spatial: np.ndarray
    semantic_vs_semantic: np.ndarray
    spatial_vs_spatial: np.ndarray
    rsms: dict[str, RSMPair] = field(repr=False, default_factory=dict)


def layer_cka(
    layers: Mapping[str, Any],
    kernel: str = "cosine",
    matcher: str = "exact",
    *,
    progress: Progress | None = None,
    device: str = "auto",
    **matcher_params: Any,
) -> LayerCKAResult:
    """Linear CKA between the semantic and the spatio-semantic RSM of every layer.

    The paper finds it rises towards 1 in deeper layers, where the spatial extent is small
    and there is little left for the matching to reorder.

    Parameters
    ----------
    layers : mapping layer -> tokens or precomputed RSMs, as in :func:`layer_rsms`.
    kernel, matcher, progress, device, **matcher_params : as in :func:`layer_rsms`.

    Returns
    -------
    LayerCKAResult
    """
    rsms = layer_rsms(layers, kernel, matcher, progress=progress, device=device, **matcher_params)
    sem = {k: v.semantic for k, v in rsms.items()}
    spa = {k: v.spatial for k, v in rsms.items()}
    cross = cka_matrix(sem, spa)
    return LayerCKAResult(
        layers=list(rsms),
        diagonal=np.diag(cross).copy(),
        semantic_vs_spatial=cross,
        semantic_vs_semantic=cka_matrix(sem, sem),
        spatial_vs_spatial=cka_matrix(spa, spa),
        rsms=rsms,
    )


# --------------------------------------------------------------------------- matchers


#: the approximate matchers of the paper with the core library's default parameters
DEFAULT_MATCHERS: tuple[str, ...] = ("greedy", "topk_greedy", "batch_optimal")


def matcher_label(name: str, params: Mapping[str, Any]) -> str:
    """Display name such as ``batch_optimal (window=16)``."""
    if not params:
        return name
    return f"{name} ({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"


def compare_matchers(
    tokens: Any,
    matchers: Sequence[str | tuple[str, Mapping[str, Any]]] = DEFAULT_MATCHERS,
    kernel: str = "cosine",
    *,
    max_pairs: int | None = 2000,
    seed: int = 0,
    progress: Progress | None = None,
) -> Any:
    """How close each approximate matcher comes to the optimum, and how fast it is.

    For every pair ``i < j`` (a random subset of ``max_pairs`` when there are more) the
    exact matcher gives the optimal matched inner product ``v*``; each matcher gives
    ``v <= v*``. The ratio ``v / v*`` is reported over pairs with ``v* > 0`` (a ratio is
    meaningless otherwise; features after a ReLU always qualify). Times cover the
    assignment only (the cost matrices are shared), on the CPU.

    Parameters
    ----------
    tokens : ndarray/Tensor (N, S, C) or ``semrsm.layers.Tokens``, ``N >= 2``.
    matchers : names, or ``(name, params)`` tuples, of :func:`semrsm.matching.solve_batch`.
    kernel : "linear", "cosine" or "rbf"; also reports the mean ratio of this kernel's
        matched value to its optimal value (cosine: same as linear; RBF with σ² from the
        exact matched distances).
    max_pairs : int or None, cap on the number of pairs (None = all).
    seed : int, for the subset of pairs.
    progress : ``progress(done, total)`` over the matchers (exact first).

    Returns
    -------
    pandas.DataFrame, one row per matcher (the exact one first) with columns
    ``matcher, name, params, ratio_mean, ratio_min, kernel_ratio_mean, frac_optimal``
    (pairs within 1e-9 relative of the optimum), ``seconds``, ``pairs_per_second``,
    ``speedup`` (exact seconds / seconds), ``n_pairs``, ``n_pairs_ratio``.

    Raises
    ------
    AnalysisError (ValueError)
        Fewer than 2 images or no matchers; unknown matchers raise the core library's error.
    """
    import pandas as pd
    import torch

    from semrsm.kernels import check_kernels
    from semrsm.matching import solve_batch
    from semrsm.tokens import validate_tokens

    check_kernels(kernel)
    t = validate_tokens(_token_array(tokens)).to("cpu", torch.float64)
    n, s, _ = t.shape
    if n < 2:
        raise AnalysisError("compare_matchers: needs at least 2 images")
    from semrsm.matching import check_matcher

    specs = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in matchers]
    # fill in defaults so the labels say which parameters ran
    specs = [(name, check_matcher(name, params)) for name, params in specs]
    if not specs:
        raise AnalysisError("compare_matchers: give at least one matcher")
    iu, ju = np.triu_indices(n, 1)
    if max_pairs is not None and iu.size > max_pairs:
        pick = np.sort(
            np.random.default_rng(seed).choice(iu.size, size=int(max_pairs), replace=False)
        )
        iu, ju = iu[pick], ju[pick]
    # cost matrices in chunks of ~128 MB; solve each matcher chunk by chunk
    chunk = max(1, int(16_000_000 // (s * s)))
    costs = [
        torch.bmm(t[iu[a : a + chunk]], t[ju[a : a + chunk]].transpose(1, 2)).numpy()
        for a in range(0, iu.size, chunk)
    ]
    norms = (t * t).sum(dim=(1, 2)).numpy()
    na, nb = norms[iu], norms[ju]
    tok_norms = t.norm(dim=2).numpy()  # (N, S), for the norm-sorting matchers
    starts = range(0, iu.size, chunk)

    def run(name: str, params: dict[str, Any]) -> tuple[np.ndarray, float]:
        # one untimed pair first, so JIT compilation does not count as solving time
        solve_batch(
            costs[0][:1],
            matcher=name,
            row_norms=tok_norms[iu[:1]],
            col_norms=tok_norms[ju[:1]],
            **params,
        )
        start = time.perf_counter()
        vals = [
            solve_batch(
                c,
                matcher=name,
                row_norms=tok_norms[iu[a : a + chunk]],
                col_norms=tok_norms[ju[a : a + chunk]],
                **params,
            )[1]
            for a, c in zip(starts, costs, strict=True)
        ]
        return np.concatenate(vals).astype(np.float64), time.perf_counter() - start

    total = len(specs) + 1
    exact, exact_time = run("exact", {})
    if progress is not None:
        progress(1, total)

    def kval(v: np.ndarray, sigma2: float | None) -> np.ndarray:
        if kernel == "linear":
            return v
        if kernel == "cosine":
            d = np.sqrt(na * nb)
            return np.divide(v, d, out=np.zeros_like(v), where=d > 0)
        d2 = np.maximum(na + nb - 2 * v, 0.0)
        return np.exp(-d2 / (2 * sigma2))

    d2_exact = np.maximum(na + nb - 2 * exact, 0.0)
    nz = d2_exact[d2_exact > 0]
    sigma2 = float(np.median(nz)) if nz.size else 1.0
    k_exact = kval(exact, sigma2)
    pos = exact > 0
    rows = []
    for step, (name, params) in enumerate([("exact", {})] + specs):
        if step == 0:
            vals, secs = exact, exact_time
        else:
            vals, secs = run(name, params)
            if progress is not None:
                progress(step + 1, total)
        ratio = vals[pos] / exact[pos]
        kv = kval(vals, sigma2)
        kpos = k_exact > 0
        rows.append(
            {
                "matcher": matcher_label(name, params),
                "name": name,
                "params": dict(params),
                "ratio_mean": float(ratio.mean()) if ratio.size else math.nan,
                "ratio_min": float(ratio.min()) if ratio.size else math.nan,
                "kernel_ratio_mean": float((kv[kpos] / k_exact[kpos]).mean())
                if kpos.any()
                else math.nan,
                "frac_optimal": float(
                    np.mean(vals >= exact - 1e-9 * np.maximum(1.0, np.abs(exact)))
                ),
                "seconds": secs,
                "pairs_per_second": iu.size / secs if secs > 0 else math.inf,
                "speedup": exact_time / secs if secs > 0 else math.inf,
                "n_pairs": int(iu.size),
                "n_pairs_ratio": int(pos.sum()),
            }
        )
    return pd.DataFrame(rows)
