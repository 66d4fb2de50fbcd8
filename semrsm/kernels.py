"""Kernels from inner products and norms.

Every kernel of the paper is a function of ``<R_i, R_j>`` and the two squared
Frobenius norms, and the norms do not change under a permutation of positions.
So one matrix of (matched or identity) inner products serves all kernels.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike

KERNELS = ("linear", "cosine", "rbf")
#: RBF bandwidth recipes: "median" (this project: σ² = median of the non-zero off-diagonal
#: squared distances) and "authors" (the paper's code: σ = √(lower median of the non-zero
#: squared distances, self-pairs included) + 1e-3). docs/FIDELITY.md compares them.
BANDWIDTHS = ("median", "authors")
AUTHORS_SIGMA_OFFSET = 1e-3


def check_kernels(kernel: str | list[str] | tuple[str, ...]) -> list[str]:
    """Normalise a kernel name or a list/tuple of names.

    Raises
    ------
    ValueError
        Not a name nor a list of names (None, a number), an empty list or an unknown name;
        the message lists :data:`KERNELS`.
    """
    if isinstance(kernel, str):
        names = [kernel]
    elif isinstance(kernel, list | tuple):
        names = list(kernel)
    else:
        raise ValueError(
            f"kernel: give one of {KERNELS} or a list of them; got {type(kernel).__name__} "
            f"{str(kernel)[:40]!r}"
        )
    if not names:
        raise ValueError(f"kernel: give at least one of {KERNELS}")
    for name in names:
        if not isinstance(name, str) or name not in KERNELS:
            raise ValueError(f"kernel: unknown kernel {str(name)[:40]!r}; choose one of {KERNELS}")
    return names


def check_sigma2(sigma2: object) -> float | None:
    """The RBF bandwidth σ² as a positive finite float, or None (use the recipe).

    Raises
    ------
    ValueError
        Anything else (text, a boolean, 0, a negative number, NaN, inf), naming ``sigma2``.
    """
    if sigma2 is None:
        return None
    want = "sigma2: the RBF bandwidth σ² must be a positive finite number, or None for the " \
           "bandwidth recipe"
    if isinstance(sigma2, bool | np.bool_) or not isinstance(sigma2, numbers.Real):
        raise ValueError(f"{want}; got {type(sigma2).__name__} {str(sigma2)[:40]!r}")
    value = float(sigma2)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{want}; got {value!r}")
    return value


def pair_squared_distances(inner: ArrayLike, sq_a: ArrayLike, sq_b: ArrayLike) -> np.ndarray:
    """``‖a‖² + ‖b‖² − 2⟨a, P b⟩`` entry for entry, clipped at 0 against rounding.

    Parameters
    ----------
    inner, sq_a, sq_b : float arrays (or numbers) that broadcast to one shape: the inner
        products and both sides' squared norms.

    Returns
    -------
    ndarray of the broadcast shape and the inputs' result dtype (float64 for numbers).
    """
    # no dtype forced: float32 inputs stay float32, as they always did in squared_distances
    d2 = np.asarray(np.asarray(sq_a) + sq_b - 2.0 * np.asarray(inner))
    np.maximum(d2, 0.0, out=d2)
    return d2


def squared_distances(inner: np.ndarray) -> np.ndarray:
    """``‖R_i − P R_j‖² = ‖R_i‖² + ‖R_j‖² − 2⟨R_i, P R_j⟩`` from an inner-product matrix.

    ``inner`` is (N, N) with the squared norms on its diagonal. Clipped at 0 against rounding.
    """
    sq = np.diag(inner)
    d2 = pair_squared_distances(inner, sq[:, None], sq[None, :])
    np.fill_diagonal(d2, 0.0)
    return d2


def kernel_entries(
    inner: ArrayLike, sq_a: ArrayLike, sq_b: ArrayLike, kernel: str, sigma2: float | None = None
) -> np.ndarray:
    """Each kernel's value from inner products and squared norms, entry for entry.

    The one place of the step from ``⟨a, P b⟩`` to a kernel value: ``linear = ⟨a, P b⟩``;
    ``cosine = ⟨a, P b⟩ / (‖a‖ ‖b‖)`` clipped to [−1, 1], 0 against a zero representation
    and 1 between two zero representations (they are identical);
    ``rbf = exp(−‖a − P b‖² / (2 σ²))``. RSMs, blocks, pair explanations and the matcher
    comparison all go through here, so they agree to the bit.

    Parameters
    ----------
    inner, sq_a, sq_b : float arrays (or numbers) that broadcast to one shape.
    kernel : "linear", "cosine" or "rbf".
    sigma2 : float > 0, the RBF bandwidth σ²; needed for ``"rbf"`` only.

    Returns
    -------
    ndarray float64 of the broadcast shape (a new array).

    Raises
    ------
    ValueError
        Unknown kernel, or ``"rbf"`` without a positive ``sigma2``.
    """
    check_kernels(kernel)
    inner = np.asarray(inner, dtype=np.float64)
    if kernel == "linear":
        return inner.copy()
    if kernel == "rbf":
        return rbf_entries(pair_squared_distances(inner, sq_a, sq_b), sigma2)
    na = np.sqrt(np.maximum(np.asarray(sq_a, dtype=np.float64), 0.0))
    nb = np.sqrt(np.maximum(np.asarray(sq_b, dtype=np.float64), 0.0))
    denom = na * nb
    shape = np.broadcast_shapes(inner.shape, denom.shape)
    out = np.divide(inner, denom, out=np.zeros(shape), where=denom != 0)
    out[np.broadcast_to((na == 0) & (nb == 0), shape)] = 1.0
    np.clip(out, -1.0, 1.0, out=out)
    return out


def rbf_entries(d2: np.ndarray, sigma2: float | None) -> np.ndarray:
    """``exp(−d2 / (2 σ²))`` of squared distances; ValueError unless ``sigma2`` > 0."""
    if sigma2 is None or not sigma2 > 0:
        raise ValueError(f"rbf: sigma2 must be positive, got {sigma2}")
    return np.exp(-d2 / (2.0 * sigma2))


def median_sigma2(d2: np.ndarray) -> float:
    """Median heuristic: median of the non-zero off-diagonal squared distances (1.0 if none)."""
    n = d2.shape[0]
    off = d2[~np.eye(n, dtype=bool)]
    off = off[off > 0]
    return float(np.median(off)) if off.size else 1.0


def authors_sigma2(d2: np.ndarray) -> float:
    """The paper authors' bandwidth: ``σ = √m + 1e-3`` with ``m`` the *lower* median (the
    smaller middle value, as ``torch.median``) of all non-zero entries of the full (N, N)
    squared-distance matrix, self-pairs included; returns ``σ²``.

    Self-distances are exactly 0 here (:func:`squared_distances` sets them), so they only
    count where the authors' float32 matching left them non-zero.
    """
    vals = np.asarray(d2, dtype=np.float64).ravel()
    vals = vals[vals != 0]
    if not vals.size:
        return (1.0 + AUTHORS_SIGMA_OFFSET) ** 2
    m = float(np.partition(vals, (vals.size - 1) // 2)[(vals.size - 1) // 2])
    return (np.sqrt(m) + AUTHORS_SIGMA_OFFSET) ** 2


def bandwidth_sigma2(d2: np.ndarray, bandwidth: str = "median") -> float:
    """σ² for the RBF kernel from (N, N) squared distances by the recipe ``bandwidth``.

    Raises
    ------
    ValueError
        Unknown recipe.
    """
    check_bandwidth(bandwidth)
    return median_sigma2(d2) if bandwidth == "median" else authors_sigma2(d2)


def check_bandwidth(bandwidth: str) -> str:
    """Raise ValueError unless ``bandwidth`` is one of :data:`BANDWIDTHS`."""
    if bandwidth not in BANDWIDTHS:
        raise ValueError(f"bandwidth: unknown RBF bandwidth recipe {bandwidth!r}; use one of {BANDWIDTHS}")
    return bandwidth


def kernel_from_inner(inner: np.ndarray, kernel: str, sigma2: float | None = None,
                      bandwidth: str = "median") -> np.ndarray:
    """Turn an (N, N) inner-product matrix (squared norms on the diagonal) into an RSM.

    Parameters
    ----------
    inner : ndarray (N, N) float64, symmetric, ``inner[i, i] = ‖R_i‖²``.
    kernel : "linear", "cosine" or "rbf".
    sigma2 : RBF bandwidth σ²; None uses the recipe ``bandwidth`` on this matrix's distances.
    bandwidth : "median" (default) or "authors" (see :data:`BANDWIDTHS`).

    Returns
    -------
    rsm : ndarray (N, N) float64. Zero-norm representations never give NaN: cosine
        similarity with a zero representation is 0, and 1 between two zero representations
        (they are identical), so the diagonal is always 1 for cosine and RBF.
    """
    check_kernels(kernel)
    inner = np.asarray(inner, dtype=np.float64)
    if kernel == "rbf":
        d2 = squared_distances(inner)
        s2 = bandwidth_sigma2(d2, bandwidth) if sigma2 is None else check_sigma2(sigma2)
        out = rbf_entries(d2, s2)
    else:
        sq = np.diag(inner)
        out = kernel_entries(inner, sq[:, None], sq[None, :], kernel)
        if kernel == "cosine":
            np.fill_diagonal(out, 1.0)
    return 0.5 * (out + out.T)


def kernel_from_block(
    inner: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray, kernel: str, sigma2: float | None = None
) -> tuple[np.ndarray, float | None]:
    """A kernel of a rectangular block of inner products (images of A against images of B).

    Entry for entry the same arithmetic as :func:`kernel_from_inner`, so a block cut from a
    square RSM gives the same values (RBF with the same ``sigma2``).

    Parameters
    ----------
    inner : (N_a, N_b) float64 inner products ``⟨R_a, P R_b⟩``.
    sq_a : (N_a,) float64 squared norms ``‖R_a‖²``.
    sq_b : (N_b,) float64 squared norms of B's images, or (N_a, N_b): the norm of the image
        in each entry (a list of candidates per row).
    kernel : "linear", "cosine" or "rbf".
    sigma2 : RBF bandwidth; None: the median of the block's non-zero squared distances
        (1.0 if there is none).

    Returns
    -------
    values : (N_a, N_b) float64 ndarray; sigma2 : the RBF bandwidth used (None for the
        other kernels).

    Raises
    ------
    ValueError
        Unknown kernel, or a non-positive ``sigma2``.
    """
    check_kernels(kernel)
    inner = np.asarray(inner, dtype=np.float64)
    sq_a = np.asarray(sq_a, dtype=np.float64)[:, None]
    sq_b = np.asarray(sq_b, dtype=np.float64)
    sq_b = sq_b[None, :] if sq_b.ndim == 1 else sq_b
    if kernel != "rbf":
        return kernel_entries(inner, sq_a, sq_b, kernel), None
    d2 = pair_squared_distances(inner, sq_a, sq_b)
    if sigma2 is None:
        nz = d2[d2 > 0]
        s2 = float(np.median(nz)) if nz.size else 1.0
    else:
        s2 = float(sigma2)
    return rbf_entries(d2, s2), s2
