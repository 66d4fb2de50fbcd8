"""What one matching does: per-token contributions, their maps on the token grid, the
alternatives of a token, and the step from inner products to kernel values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm
from semrsm.kernels import (
    kernel_entries,
    median_sigma2,
    pair_squared_distances,
    rbf_entries,
    squared_distances,
)

#: what :func:`kernel_contributions` lists, per kernel, in words (a page follows it with
#: the pair's semantic value)
PART_TEXT = {
    "linear": "inner products ⟨a_s, b_t⟩ of the matched tokens; over all positions they "
    "add up to the linear similarity",
    "cosine": "each pair's share of the cosine similarity, ⟨a_s, b_t⟩ / (‖a‖ ‖b‖); over all "
    "positions they add up to",
    "rbf": "squared distances ‖a_s − b_t‖² of the matched tokens; over all positions they "
    "add up to d², and exp(−d² / (2σ²)) with the semantic RSM's σ² is the RBF similarity",
}


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


def kernel_contributions(
    a: np.ndarray, b: np.ndarray, perm: np.ndarray | None, kernel: str
) -> np.ndarray:
    """Each matched token pair's part in one kernel's value, indexed by the position in ``a``.

    * ``linear``: ``<a_s, b_perm[s]>``, which add up to the linear value;
    * ``cosine``: ``<a_s, b_perm[s]> / (‖a‖ ‖b‖)`` (Frobenius norms of all tokens), which
      add up to the cosine value (0 when a norm is 0);
    * ``rbf``: the squared distance ``‖a_s − b_perm[s]‖²``; they add up to the squared
      distance ``d²`` of ``rbf = exp(−d² / (2σ²))``, which is not a sum of parts (a
      smaller distance is a larger similarity).

    Raises
    ------
    AnalysisError (ValueError)
        As :func:`matching_contributions`, or an unknown kernel.
    """
    aa, bb = _pair_arrays(a, b)
    p = np.arange(aa.shape[0]) if perm is None else _check_perm(perm, aa.shape[0])
    if kernel == "linear":
        return np.einsum("sc,sc->s", aa, bb[p])
    if kernel == "cosine":
        denom = math.sqrt(float(np.sum(aa * aa)) * float(np.sum(bb * bb)))
        inner = np.einsum("sc,sc->s", aa, bb[p])
        return inner / denom if denom > 0 else np.zeros_like(inner)
    if kernel == "rbf":
        return np.sum((aa - bb[p]) ** 2, axis=1)
    raise AnalysisError(f"kernel: {kernel!r} is not one of 'linear', 'cosine', 'rbf'")


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

    ``linear = <a, Pb>``; ``cosine = <a, Pb> / (‖a‖ ‖b‖)`` (0 if one norm is 0, 1 if
    both are); ``rbf = exp(-(‖a‖² + ‖b‖² - 2 <a, Pb>) / (2 σ²))``. The norms do not depend
    on P. The arithmetic is :func:`semrsm.kernels.kernel_entries`, the RSMs' own, so the
    values equal the RSM's entries.

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
    if sigma2 is not None and not sigma2 > 0:
        raise AnalysisError(f"sigma2 must be positive, got {sigma2}")
    args = (float(inner), float(norm_a_sq), float(norm_b_sq))
    d2 = pair_squared_distances(*args)
    out = {k: float(kernel_entries(*args, k)) for k in ("linear", "cosine")}
    out["squared_distance"] = float(d2)
    if sigma2 is not None:
        out["rbf"] = float(rbf_entries(d2, sigma2))
    return out


def rbf_sigma2(linear_rsm: np.ndarray) -> float:
    """The RBF bandwidth σ² the core library uses for an RSM built from this linear one:
    the median of the non-zero off-diagonal squared distances ``‖R_i - P R_j‖²``.

    Pass the spatio-semantic linear RSM for the spatio-semantic RBF kernel and the semantic
    linear RSM for the semantic one.
    """
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
