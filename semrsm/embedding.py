"""2-D maps of images from an RSM.

An RSM holds similarities; a map needs distances. We use the distance that the kernel
itself induces between the (matched) representations:

* **linear** (inner products): ``d_ij = sqrt(max(0, s_ii + s_jj - 2 s_ij))``. For the
  spatio-semantic RSM this is ``‖R_i - R_j‖_F``; for the semantic one ``‖R_i - P*R_j‖_F``,
  the distance after the optimal matching.
* **cosine** and **RBF**: the RSM is first normalised to a unit diagonal,
  ``ŝ_ij = s_ij / sqrt(s_ii s_jj)`` (already the case for both kernels), and
  ``d_ij = sqrt(max(0, 2 - 2 ŝ_ij))``: for cosine the Euclidean distance between the
  unit-norm representations, for RBF the distance between the images in the kernel's
  feature space.

With at least :data:`MIN_UMAP_POINTS` images the distances go to UMAP
(``umap-learn``, ``metric="precomputed"``); for fewer images UMAP's neighbour graph is too
small to be meaningful, and classical (Torgerson) MDS on the same distances is used.
Both are deterministic for a given ``seed``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from semrsm.analysis import AnalysisError, _check_rsm

#: below this many images, classical MDS replaces UMAP
MIN_UMAP_POINTS = 15

METHODS = ("auto", "umap", "mds")


def rsm_to_distances(rsm: np.ndarray, kernel: str = "cosine") -> np.ndarray:
    """Distances between images derived from an RSM (see the module docstring for how).

    Parameters
    ----------
    rsm : ndarray (N, N) float, symmetric; a similarity (larger = more alike).
    kernel : "linear", "cosine" or "rbf", the kernel the RSM was built with.

    Returns
    -------
    distances : ndarray (N, N) float64, symmetric, non-negative, zero diagonal.

    Raises
    ------
    AnalysisError (ValueError)
        Non-square or non-finite RSM, an unknown kernel, or (cosine/RBF) a non-positive
        diagonal entry that cannot be normalised.
    """
    s = _check_rsm(rsm)
    s = 0.5 * (s + s.T)
    diag = np.diag(s).copy()
    if kernel == "linear":
        d2 = diag[:, None] + diag[None, :] - 2.0 * s
    elif kernel in ("cosine", "rbf"):
        if np.any(diag <= 0):
            raise AnalysisError(
                f"rsm: a {kernel} RSM needs a positive diagonal (1 for cosine and RBF); "
                "pass kernel='linear' for an inner-product RSM"
            )
        norm = np.sqrt(diag)
        d2 = 2.0 - 2.0 * s / (norm[:, None] * norm[None, :])
    else:
        raise AnalysisError(
            f"kernel: unknown kernel {kernel!r}; choose 'linear', 'cosine' or 'rbf'"
        )
    d = np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(d, 0.0)
    return d


def classical_mds(distances: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS: the top eigenvectors of the double-centred ``-D²/2``.

    Deterministic: the sign of each axis is fixed so that its largest-magnitude coordinate
    is positive. Axes with non-positive eigenvalues (nothing left to show) are zero.

    Parameters
    ----------
    distances : ndarray (N, N) float, symmetric, zero diagonal.
    n_components : int >= 1.

    Returns
    -------
    coords : ndarray (N, n_components) float64.
    """
    d = np.asarray(distances, dtype=np.float64)
    n = d.shape[0]
    d2 = d * d
    b = -0.5 * (d2 - d2.mean(axis=0) - d2.mean(axis=1)[:, None] + d2.mean())
    vals, vecs = np.linalg.eigh(0.5 * (b + b.T))
    order = np.argsort(vals)[::-1][:n_components]
    coords = np.zeros((n, n_components))
    for col, idx in enumerate(order):
        if vals[idx] <= 1e-12 * max(1.0, abs(vals[order[0]])):
            continue
        v = vecs[:, idx] * np.sqrt(vals[idx])
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        coords[:, col] = v
    return coords


@dataclass
class Embedding:
    """A 2-D map of the images.

    Attributes
    ----------
    coords : ndarray (N, 2) float64.
    method : "umap" or "mds", what was run.
    distances : ndarray (N, N) float64, the distances it was computed from.
    note : str, one sentence on how (for the page).
    """

    coords: np.ndarray
    method: str
    distances: np.ndarray
    note: str


def embed_rsm(
    rsm: np.ndarray,
    kernel: str = "cosine",
    *,
    method: str = "auto",
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> Embedding:
    """Place the images of an RSM in 2-D.

    Parameters
    ----------
    rsm : ndarray (N, N) float, N >= 1.
    kernel : "linear", "cosine" or "rbf"; decides how similarities become distances
        (:func:`rsm_to_distances`).
    method : "auto" (UMAP from :data:`MIN_UMAP_POINTS` images on, classical MDS below),
        "umap" or "mds". "umap" with fewer than 4 images falls back to MDS.
    seed : int, UMAP's random state; the same seed gives the same map.
    n_neighbors : int >= 2, UMAP's neighbourhood size (clipped to N - 1).
    min_dist : float >= 0, UMAP's minimum distance between points in the map.

    Returns
    -------
    Embedding

    Raises
    ------
    AnalysisError (ValueError)
        Bad RSM or kernel (see :func:`rsm_to_distances`), unknown method, n_neighbors < 2.
    """
    if method not in METHODS:
        raise AnalysisError(f"method: unknown method {method!r}; choose one of {METHODS}")
    if int(n_neighbors) < 2:
        raise AnalysisError(f"n_neighbors: need at least 2, got {n_neighbors}")
    d = rsm_to_distances(rsm, kernel)
    n = d.shape[0]
    how = (
        "sqrt(s_ii + s_jj - 2 s_ij)"
        if kernel == "linear"
        else "sqrt(2 - 2 s_ij) on the unit-diagonal RSM"
    )
    use_umap = (method == "umap" and n >= 4) or (method == "auto" and n >= MIN_UMAP_POINTS)
    if use_umap and d.max() == 0:
        use_umap = False  # all images identical: nothing for UMAP to separate
    if not use_umap:
        coords = classical_mds(d)
        reason = f"fewer than {MIN_UMAP_POINTS} images" if method == "auto" else "requested"
        note = f"Classical MDS ({reason}) on distances d = {how}."
        return Embedding(coords, "mds", d, note)

    import umap  # imported lazily: pulls in numba and pynndescent (seconds)

    k = min(int(n_neighbors), n - 1)
    reducer = umap.UMAP(
        n_components=2,
        metric="precomputed",
        n_neighbors=k,
        min_dist=float(min_dist),
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        # precomputed metric and a fixed random_state trigger harmless notices
        warnings.simplefilter("ignore")
        coords = np.asarray(reducer.fit_transform(d), dtype=np.float64)
    note = f"UMAP (n_neighbors={k}, min_dist={min_dist}, seed={seed}) on distances d = {how}."
    return Embedding(coords, "umap", d, note)
