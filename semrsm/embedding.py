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

Methods, all on these distances, in 2-D or 3-D, deterministic for a given ``seed``:

* ``umap`` — UMAP (``umap-learn``, ``metric="precomputed"``): keeps neighbourhoods.
* ``tsne`` — t-SNE (scikit-learn, precomputed distances, perplexity ``min(30, (N−1)/3)``):
  keeps neighbourhoods, exaggerates clusters.
* ``pca`` — kernel PCA of the RSM: the top eigenvectors of the double-centred
  ``−D²/2 = H S H`` (classical, Torgerson, MDS). For the linear kernel and the classic RSM
  this is exactly PCA of the flattened representations; axes keep the largest variance.
* ``mds`` — metric MDS (SMACOF stress minimisation, scikit-learn) started from the
  kernel-PCA map: keeps the distances themselves as well as the plane allows.
* ``auto`` — UMAP from :data:`MIN_UMAP_POINTS` images on; below that UMAP's neighbour
  graph is too small to mean much, and ``mds`` is used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from semrsm.analysis import AnalysisError, _check_rsm

#: below this many images, classical MDS replaces UMAP
MIN_UMAP_POINTS = 15

METHODS = ("auto", "umap", "tsne", "pca", "mds")
METHOD_TITLES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA", "mds": "MDS"}


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
    coords : ndarray (N, 2) or (N, 3) float64.
    method : "umap", "tsne", "pca" or "mds", what was run.
    distances : ndarray (N, N) float64, the distances it was computed from.
    note : str, one sentence on how (for the page).
    """

    coords: np.ndarray
    method: str
    distances: np.ndarray
    note: str


def _metric_mds(d: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """SMACOF from the classical-MDS start (deterministic; exact where that start is)."""
    start = classical_mds(d, n_components)
    if d.shape[0] < 3 or d.max() == 0:
        return start
    from sklearn.manifold import smacof

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords, _ = smacof(d, n_components=n_components, init=start, n_init=1,
                           random_state=int(seed), normalized_stress=False)
    return np.asarray(coords, dtype=np.float64)


def _tsne(d: np.ndarray, n_components: int, seed: int) -> tuple[np.ndarray, float]:
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (d.shape[0] - 1) / 3)))
    # exact gradients up to a few hundred images: plain numpy, no OpenMP threads (which
    # crawl on an oversubscribed machine); Barnes-Hut (2-D only) for larger sets
    exact = n_components == 3 or d.shape[0] <= 300
    tsne = TSNE(n_components=n_components, metric="precomputed", init="random",
                perplexity=perplexity, random_state=int(seed),
                method="exact" if exact else "barnes_hut")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords = tsne.fit_transform(d)
    return np.asarray(coords, dtype=np.float64), perplexity


def embed_rsm(
    rsm: np.ndarray,
    kernel: str = "cosine",
    *,
    method: str = "auto",
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_components: int = 2,
) -> Embedding:
    """Place the images of an RSM in 2-D (or 3-D).

    Parameters
    ----------
    rsm : ndarray (N, N) float, N >= 1.
    kernel : "linear", "cosine" or "rbf"; decides how similarities become distances
        (:func:`rsm_to_distances`).
    method : "auto" (UMAP from :data:`MIN_UMAP_POINTS` images on, metric MDS below),
        "umap", "tsne", "pca" or "mds" (module docstring). "umap" with fewer than 4
        images and "tsne" with fewer than 5 fall back to "mds".
    seed : int, the random state of UMAP, t-SNE and SMACOF; the same seed gives the same map.
    n_neighbors : int >= 2, UMAP's neighbourhood size (clipped to N - 1).
    min_dist : float >= 0, UMAP's minimum distance between points in the map.
    n_components : 2 or 3.

    Returns
    -------
    Embedding

    Raises
    ------
    AnalysisError (ValueError)
        Bad RSM or kernel (see :func:`rsm_to_distances`), unknown method, n_neighbors < 2,
        n_components not 2 or 3.
    """
    if method not in METHODS:
        raise AnalysisError(f"method: unknown method {method!r}; choose one of {METHODS}")
    if int(n_neighbors) < 2:
        raise AnalysisError(f"n_neighbors: need at least 2, got {n_neighbors}")
    if n_components not in (2, 3):
        raise AnalysisError(f"n_components: 2 or 3, got {n_components}")
    d = rsm_to_distances(rsm, kernel)
    n = d.shape[0]
    how = (
        "sqrt(s_ii + s_jj - 2 s_ij)"
        if kernel == "linear"
        else "sqrt(2 - 2 s_ij) on the unit-diagonal RSM"
    )
    if method == "auto":
        method = "umap" if n >= MIN_UMAP_POINTS else "mds"
        reason = f"fewer than {MIN_UMAP_POINTS} images" if method == "mds" else ""
    else:
        reason = "requested"
    if (method == "umap" and n < 4) or (method == "tsne" and n < 5) or (
        method in ("umap", "tsne") and d.max() == 0  # all images identical: nothing to separate
    ):
        method, reason = "mds", "too few distinct images for " + method
    dims = f"{n_components}-D "
    if method == "pca":
        coords = classical_mds(d, n_components)
        note = f"{dims}kernel PCA (classical MDS) of the RSM, distances d = {how}."
        return Embedding(coords, "pca", d, note)
    if method == "mds":
        coords = _metric_mds(d, n_components, seed)
        note = f"{dims}metric MDS ({reason}; SMACOF from the PCA map) on distances d = {how}."
        return Embedding(coords, "mds", d, note)
    if method == "tsne":
        coords, perplexity = _tsne(d, n_components, seed)
        note = f"{dims}t-SNE (perplexity {perplexity:.0f}, seed={seed}) on distances d = {how}."
        return Embedding(coords, "tsne", d, note)

    import umap  # imported lazily: pulls in numba and pynndescent (seconds)

    k = min(int(n_neighbors), n - 1)
    reducer = umap.UMAP(
        n_components=n_components,
        metric="precomputed",
        n_neighbors=k,
        min_dist=float(min_dist),
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        # precomputed metric and a fixed random_state trigger harmless notices
        warnings.simplefilter("ignore")
        coords = np.asarray(reducer.fit_transform(d), dtype=np.float64)
    note = f"{dims}UMAP (n_neighbors={k}, min_dist={min_dist}, seed={seed}) on distances d = {how}."
    return Embedding(coords, "umap", d, note)


def search_images(
    query: str, names: list[str], labels: list[str] | None = None
) -> list[int]:
    """Indices of the images whose name or label contains ``query`` (case-insensitive;
    several words separated by commas match any of them); empty query: no image."""
    words = [w.strip().lower() for w in str(query).split(",") if w.strip()]
    if not words:
        return []
    out = []
    for k, nm in enumerate(names):
        text = str(nm).lower() + " " + (str(labels[k]).lower() if labels is not None else "")
        if any(w in text for w in words):
            out.append(k)
    return out


def neighbour_lines(rsm: np.ndarray, i: int, k: int) -> list[int]:
    """The ``k`` images most similar to image ``i`` under ``rsm`` (itself excluded), most
    similar first; ties broken by index."""
    s = np.asarray(rsm, dtype=np.float64)[i].copy()
    s[i] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))
    return [int(t) for t in order[: max(0, min(int(k), s.size - 1))]]
