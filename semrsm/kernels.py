"""Kernels from inner products and norms.

Every kernel of the paper is a function of ``<R_i, R_j>`` and the two squared
Frobenius norms, and the norms do not change under a permutation of positions.
So one matrix of (matched or identity) inner products serves all kernels.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

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


def squared_distances(inner: np.ndarray) -> np.ndarray:
    """``‖R_i − P R_j‖² = ‖R_i‖² + ‖R_j‖² − 2⟨R_i, P R_j⟩`` from an inner-product matrix.

    ``inner`` is (N, N) with the squared norms on its diagonal. Clipped at 0 against rounding.
    """
    sq = np.diag(inner)
    d2 = sq[:, None] + sq[None, :] - 2.0 * inner
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


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
    if kernel == "linear":
        out = inner.copy()
    elif kernel == "cosine":
        norms = np.sqrt(np.maximum(np.diag(inner), 0.0))
        denom = norms[:, None] * norms[None, :]
        zero = denom == 0
        out = np.divide(inner, denom, out=np.zeros_like(inner), where=~zero)
        both_zero = (norms[:, None] == 0) & (norms[None, :] == 0)
        out[both_zero] = 1.0
        np.clip(out, -1.0, 1.0, out=out)
        np.fill_diagonal(out, 1.0)
    else:
        d2 = squared_distances(inner)
        s2 = bandwidth_sigma2(d2, bandwidth) if sigma2 is None else check_sigma2(sigma2)
        if not s2 > 0:
            raise ValueError(f"rbf: sigma2 must be positive, got {s2}")
        out = np.exp(-d2 / (2.0 * s2))
    return 0.5 * (out + out.T)
