"""Compare representations: two configurations, two models layer by layer, or a reference.

Three statistics score how much two RSMs over the same N images agree:

* ``cka`` — **kernel CKA with the RSMs as the kernel (Gram) matrices** (Kornblith et al.,
  2019; the biased HSIC estimator): ``<HKH, HLH>_F / (‖HKH‖_F ‖HLH‖_F)`` with the
  centring matrix ``H``. It uses the whole matrix, diagonal included, and is invariant to
  scaling either RSM. Same number as :func:`semrsm.analysis.linear_cka` (which is "linear"
  only in that it takes the RSMs as given kernels).
* ``spearman`` — RSA: Spearman's rank correlation of the upper triangles (``i < j``).
* ``kendall_tau_a`` — RSA: Kendall's τ_a of the upper triangles, ``(concordant −
  discordant) / (m(m−1)/2)`` over the ``m`` pairs of entries; ties count as neither, so
  a model that predicts ties is not rewarded (Nili et al., 2014, the rsatoolbox choice).

Each comes with a **bootstrap confidence interval over images**: draw N images with
replacement, take the sub-matrices of both RSMs, recompute; percentile interval of
``n_boot`` draws. Pairs of an image with its own copy are left out (they would be
self-similarities off the diagonal): of the RSA statistics, as rsatoolbox does, and of CKA,
where the copies of an image are weighted by their count but not paired with each other;
for τ_a, pairs of entries that are copies of one RSM entry are left out as well (they
would count as ties, so identical RSMs would score below 1).
Without this, CKA of a resample is biased upwards (identical copies agree perfectly in
both RSMs) and its percentile interval can miss the estimate altogether. The same draws serve every
statistic and both kinds, so ``semantic − classic`` gets its own (paired) interval.

A *configuration* is anything with a classic and a semantic RSM over the images: an
:class:`~semrsm.analysis.RSMPair`, a tuple ``(spatial, semantic)``, a dict with those
keys, an :class:`semrsm.explorer.ExplorerResult`, or tokens ``(N, S, C)`` (both RSMs are
then computed with :func:`semrsm.spatial_rsm` / :func:`semrsm.semantic_rsm`).

rsatoolbox is not needed at run time: the three statistics are a few lines on top of
scipy and are tested against rsatoolbox's own ``compare``. Its HDF5 RDM files are read as
a reference with h5py (:func:`load_reference`; pickles are refused, see
:mod:`semrsm.analysis.reference_files`).
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm
from semrsm.analysis.cka import _centre
from semrsm.analysis.layers import RSMPair, _as_rsm_pair, layer_rsms
from semrsm.analysis.reference_files import (
    REFERENCE_SUFFIXES,
    read_reference_file,
    reference_source,
)

__all__ = [
    "COMPARE_METHODS",
    "COMPARE_KINDS",
    "Comparison",
    "Estimate",
    "LayerComparison",
    "REFERENCE_SUFFIXES",
    "Reference",
    "ReferenceComparison",
    "bootstrap_similarity",
    "compare",
    "compare_layers",
    "compare_reference",
    "kendall_tau_a",
    "load_reference",
    "rsm_similarity",
    "spearman",
    "upper_triangle",
]

#: statistics, in display order
COMPARE_METHODS = ("cka", "spearman", "kendall_tau_a")
#: the two kinds of RSM
COMPARE_KINDS = ("classic", "semantic")
METHOD_LABELS = {"cka": "kernel CKA", "spearman": "RSA Spearman ρ", "kendall_tau_a": "RSA Kendall τ_a"}
DIFF_KIND = "semantic − classic"


# --------------------------------------------------------------------------- statistics


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


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap confidence interval.

    Attributes
    ----------
    value : float, on all images.
    low, high : float, the percentile interval (nan without bootstrap).
    """

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def width(self) -> float:
        """``high − low``."""
        return self.high - self.low

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        if math.isnan(self.low):
            return format(self.value, spec)
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


#: most bootstrap draws: far beyond what a percentile interval needs (1,000 is the
#: default), and every draw costs every statistic, so more only makes a run take hours
MAX_BOOT = 100_000
#: image indices generated at once (8 MiB): the draws never exist as one (n_boot, N) array
_DRAW_BLOCK = 1 << 20


class _Draws:
    """``n_boot`` resamples of ``n`` image indices, generated block by block.

    Iterating yields (n,) int64 rows equal to the rows of
    ``np.random.default_rng(seed).integers(0, n, size=(n_boot, n))`` (the generator's
    stream does not depend on the block size), without ever holding that array.
    """

    def __init__(self, n: int, n_boot: int, seed: int):
        self.n, self.n_boot, self.seed = n, n_boot, seed

    def __len__(self) -> int:
        return self.n_boot

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_boot, self.n

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        rows = max(1, _DRAW_BLOCK // max(1, self.n))
        for start in range(0, self.n_boot, rows):
            yield from rng.integers(0, self.n, size=(min(rows, self.n_boot - start), self.n))


def _draws(n: int, n_boot: int, seed: int) -> _Draws:
    return _Draws(n, n_boot, seed)


def _interval(values: np.ndarray, ci: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [(1 - ci) / 2, (1 + ci) / 2])
    return float(lo), float(hi)


def _check_boot(n_boot: int, ci: float) -> None:
    """Check the bootstrap settings before anything is computed.

    Raises
    ------
    AnalysisError (ValueError)
        ``n_boot`` not a whole number from 0 (no interval) to :data:`MAX_BOOT`, or ``ci``
        not a number in (0, 1); the message says what to use.
    """
    want = f"n_boot: the bootstrap draws must be a whole number from 0 (no interval) to {MAX_BOOT:,}"
    if isinstance(n_boot, bool | np.bool_) or not isinstance(n_boot, numbers.Real) or not (
        math.isfinite(n_boot) and float(n_boot).is_integer()
    ):
        raise AnalysisError(f"{want}; got {str(n_boot)[:40]!r}")
    if int(n_boot) < 0:
        raise AnalysisError(f"{want}; got {int(n_boot)}")
    if int(n_boot) > MAX_BOOT:
        raise AnalysisError(
            f"{want}; got {int(n_boot):,}. 1,000 draws (the default) give a stable 95 % "
            "interval; more only lengthen the run"
        )
    if isinstance(ci, bool | np.bool_) or not isinstance(ci, numbers.Real) or not 0 < ci < 1:
        raise AnalysisError(
            f"ci: the confidence level must lie in (0, 1), e.g. 0.95; got {str(ci)[:40]!r}"
        )


def _boot_values(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    methods: Sequence[str],
    draws: np.ndarray,
) -> dict[tuple[str, str], np.ndarray]:
    """Statistic per (key, method) for every draw; the same draws for every key."""
    out = {(k, m): np.empty(len(draws)) for k in pairs for m in methods}
    iu, ju = np.triu_indices(draws.shape[1], k=1)
    n = draws.shape[1]
    for b, idx in enumerate(draws):
        keep = idx[iu] != idx[ju]  # a pair of an image with its own copy is a diagonal entry
        lo_, hi_ = np.minimum(idx[iu], idx[ju])[keep], np.maximum(idx[iu], idx[ju])[keep]
        copies = lo_ * n + hi_  # which entry of the full RSM each kept entry copies
        sub = np.ix_(idx, idx)
        w = np.bincount(idx, minlength=n).astype(np.float64)
        uniq = np.flatnonzero(w)
        usub = np.ix_(uniq, uniq)
        for key, (x, y) in pairs.items():
            xs, ys = x[sub], y[sub]
            for m in methods:
                if m == "cka":
                    out[key, m][b] = _cka_weighted(x[usub], y[usub], w[uniq])
                else:
                    out[key, m][b] = _stat(m, xs, ys, keep, copies)
    return out


def bootstrap_similarity(
    a: np.ndarray,
    b: np.ndarray,
    methods: Sequence[str] = COMPARE_METHODS,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Each statistic of two RSMs with a bootstrap interval over images.

    Parameters
    ----------
    a, b : ndarray (N, N) float, N >= 3, the same images in the same order.
    methods : statistics of :data:`COMPARE_METHODS`.
    n_boot : int, bootstrap draws (0: no interval).
    ci : float in (0, 1), the confidence level.
    seed : int, the draws' seed (the same seed gives the same interval).

    Returns
    -------
    dict method -> :class:`Estimate`

    Raises
    ------
    AnalysisError (ValueError)
        As :func:`rsm_similarity`; ``n_boot < 0``; ``ci`` outside (0, 1).
    """
    for m in methods:
        _check_method(m)
    _check_boot(n_boot, ci)
    a, b = _pair_of_rsms(a, b)
    boot = _boot_values({"x": (a, b)}, methods, _draws(a.shape[0], int(n_boot), seed))
    return {m: Estimate(_stat(m, a, b), *_interval(boot["x", m], ci)) for m in methods}


# --------------------------------------------------------------------------- A vs B


def _as_pair(x: Any, kernel: str, matcher: str, device: str, params: dict) -> RSMPair:
    """Both RSMs of a configuration (see the module docstring for what it may be)."""
    if hasattr(x, "spatial") and hasattr(x, "semantic") and isinstance(x.spatial, Mapping):
        try:  # an ExplorerResult: all kernels are there
            return RSMPair(np.asarray(x.spatial[kernel], float), np.asarray(x.semantic[kernel], float))
        except KeyError as exc:
            raise AnalysisError(f"the result lacks the kernel {kernel!r}") from exc
    pair = _as_rsm_pair(x, kernel)
    if pair is not None:
        return pair
    return layer_rsms({"x": x}, kernel, matcher, device=device, **params)["x"]


@dataclass
class Comparison:
    """Result of :func:`compare`: A vs B, classic and semantic, with intervals.

    Attributes
    ----------
    names : (str, str), what A and B are.
    n : int, images.
    kernel : str.
    n_boot : int; ci : float; seed : int.
    estimates : dict kind -> dict method -> :class:`Estimate`, kinds ``"classic"``,
        ``"semantic"`` and ``"semantic − classic"`` (paired difference).
    rsms : dict ``"A"``/``"B"`` -> :class:`RSMPair`.
    """

    names: tuple[str, str]
    n: int
    kernel: str
    n_boot: int
    ci: float
    seed: int
    estimates: dict[str, dict[str, Estimate]]
    rsms: dict[str, RSMPair] = field(repr=False, default_factory=dict)

    def value(self, kind: str, method: str) -> float:
        """The point estimate of one statistic."""
        return self.estimates[kind][method].value

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (kind, method): a, b, kind, method, value, low, high, n, n_boot, ci, kernel."""
        return [
            {
                "a": self.names[0],
                "b": self.names[1],
                "kind": kind,
                "method": m,
                "value": e.value,
                "low": e.low,
                "high": e.high,
                "n": self.n,
                "n_boot": self.n_boot,
                "ci": self.ci,
                "kernel": self.kernel,
            }
            for kind, per in self.estimates.items()
            for m, e in per.items()
        ]

    def to_csv(self) -> str:
        """:meth:`rows` as CSV text with a header."""
        return rows_to_csv(self.rows())


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of dict rows (floats with 10 significant digits); empty string for no rows."""
    if not rows:
        return ""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: f"{v:.10g}" if isinstance(v, float) else v for k, v in r.items()})
    return out.getvalue()


def _estimates(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    methods: Sequence[str],
    n_boot: int,
    ci: float,
    seed: int,
    with_difference: bool,
) -> dict[str, dict[str, Estimate]]:
    n = next(iter(pairs.values()))[0].shape[0]
    boot = _boot_values(pairs, methods, _draws(n, int(n_boot), seed))
    point = {(k, m): _stat(m, *pairs[k]) for k in pairs for m in methods}
    out = {k: {m: Estimate(point[k, m], *_interval(boot[k, m], ci)) for m in methods} for k in pairs}
    if with_difference:
        out[DIFF_KIND] = {
            m: Estimate(
                point["semantic", m] - point["classic", m],
                *_interval(boot["semantic", m] - boot["classic", m], ci),
            )
            for m in methods
        }
    return out


def compare(
    a: Any,
    b: Any,
    *,
    kernel: str = "cosine",
    methods: Sequence[str] = COMPARE_METHODS,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
    matcher: str = "exact",
    device: str = "auto",
    **matcher_params: Any,
) -> Comparison:
    """Compare configuration A with configuration B, for the classic and the semantic RSM.

    Parameters
    ----------
    a, b : configurations over the same N >= 3 images (module docstring): RSMPair, tuple
        ``(spatial, semantic)``, dict, ExplorerResult, or tokens (N, S, C).
    kernel : "linear", "cosine" or "rbf"; picks the RSMs of an ExplorerResult and is used
        to compute RSMs from tokens.
    methods : statistics of :data:`COMPARE_METHODS`.
    n_boot, ci, seed : the bootstrap over images (:func:`bootstrap_similarity`).
    names : labels of A and B in :meth:`Comparison.rows`.
    matcher, device, **matcher_params : used only when RSMs are computed from tokens.

    Returns
    -------
    Comparison

    Raises
    ------
    AnalysisError (ValueError)
        Different image counts, N < 3, unknown method, bad bootstrap settings.
    """
    for m in methods:
        _check_method(m)
    _check_boot(n_boot, ci)
    pa = _as_pair(a, kernel, matcher, device, matcher_params)
    pb = _as_pair(b, kernel, matcher, device, matcher_params)
    classic = _pair_of_rsms(pa.spatial, pb.spatial)
    semantic = _pair_of_rsms(pa.semantic, pb.semantic)
    if classic[0].shape != semantic[0].shape:
        raise AnalysisError("the classic and semantic RSMs cover different image sets")
    est = _estimates(
        {"classic": classic, "semantic": semantic}, methods, n_boot, ci, seed, True
    )
    return Comparison(
        names=(str(names[0]), str(names[1])),
        n=classic[0].shape[0],
        kernel=kernel,
        n_boot=int(n_boot),
        ci=float(ci),
        seed=int(seed),
        estimates=est,
        rsms={"A": pa, "B": pb},
    )


# --------------------------------------------------------------------------- layer x layer


@dataclass
class LayerComparison:
    """Result of :func:`compare_layers`.

    Attributes
    ----------
    layers_a, layers_b : list of str, rows and columns.
    matrices : dict method -> dict kind (``"classic"``, ``"semantic"``) -> ndarray
        (len(layers_a), len(layers_b)) float64; ``[i, j]`` compares layer i of A with
        layer j of B.
    names : (str, str), what A and B are.
    """

    layers_a: list[str]
    layers_b: list[str]
    matrices: dict[str, dict[str, np.ndarray]]
    names: tuple[str, str] = ("A", "B")

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (layer of A, layer of B, method): classic, semantic, difference."""
        out = []
        for m, per in self.matrices.items():
            for i, la in enumerate(self.layers_a):
                for j, lb in enumerate(self.layers_b):
                    c, s = float(per["classic"][i, j]), float(per["semantic"][i, j])
                    out.append(
                        {
                            "a": self.names[0],
                            "layer_a": la,
                            "b": self.names[1],
                            "layer_b": lb,
                            "method": m,
                            "classic": c,
                            "semantic": s,
                            "semantic_minus_classic": s - c,
                        }
                    )
        return out

    def to_csv(self) -> str:
        """:meth:`rows` as CSV text."""
        return rows_to_csv(self.rows())


def compare_layers(
    layers_a: Mapping[str, Any],
    layers_b: Mapping[str, Any],
    *,
    kernel: str = "cosine",
    methods: Sequence[str] = ("cka",),
    names: tuple[str, str] = ("A", "B"),
    matcher: str = "exact",
    device: str = "auto",
    **matcher_params: Any,
) -> LayerComparison:
    """Every layer of A against every layer of B, classic next to semantic.

    Parameters
    ----------
    layers_a, layers_b : mappings layer name -> configuration (as in :func:`compare`;
        an entry of :func:`semrsm.explorer.layer_rsms` works as it is), all over the same images.
    kernel, methods, names, matcher, device, **matcher_params : as in :func:`compare`.

    Returns
    -------
    LayerComparison (point estimates; use :func:`compare` on one pair for intervals)

    Raises
    ------
    AnalysisError (ValueError)
        An empty mapping, different image sets, an unknown method.
    """
    if not layers_a or not layers_b:
        raise AnalysisError("compare_layers: give at least one layer on each side")
    for m in methods:
        _check_method(m)
    pa = {k: _as_pair(v, kernel, matcher, device, matcher_params) for k, v in layers_a.items()}
    pb = {k: _as_pair(v, kernel, matcher, device, matcher_params) for k, v in layers_b.items()}
    mats: dict[str, dict[str, np.ndarray]] = {}
    for m in methods:
        mats[m] = {}
        for kind, attr in (("classic", "spatial"), ("semantic", "semantic")):
            out = np.empty((len(pa), len(pb)))
            for i, x in enumerate(pa.values()):
                for j, y in enumerate(pb.values()):
                    out[i, j] = _stat(m, *_pair_of_rsms(getattr(x, attr), getattr(y, attr)))
            mats[m][kind] = out
    return LayerComparison(list(pa), list(pb), mats, (str(names[0]), str(names[1])))


# --------------------------------------------------------------------------- reference


@dataclass
class Reference:
    """A reference RSM or RDM read by :func:`load_reference`.

    Attributes
    ----------
    matrix : ndarray (N, N) float64, as stored.
    kind : "similarity" or "dissimilarity".
    names : list of str or None, the images' names when the file has them.
    source : str, where it came from.
    """

    matrix: np.ndarray
    kind: str
    names: list[str] | None
    source: str

    @property
    def similarity(self) -> np.ndarray:
        """The matrix as a similarity: an RDM is negated (every statistic here then keeps
        its sign convention: higher = the RSM agrees with the reference)."""
        return -self.matrix if self.kind == "dissimilarity" else self.matrix

    def aligned(self, names: Sequence[str]) -> np.ndarray:
        """The similarity in the order of ``names`` (the file's own order without names).

        Raises
        ------
        AnalysisError (ValueError)
            A size mismatch, or names in the file that are not the images'.
        """
        s = self.similarity
        n = len(names)
        if s.shape[0] != n:
            raise AnalysisError(
                f"the reference is {s.shape[0]}×{s.shape[0]} but there are {n} images; "
                "give an N×N matrix in the image order of this set"
            )
        if self.names is None or list(self.names) == list(names):
            return s
        pos = {nm: k for k, nm in enumerate(self.names)}
        missing = [nm for nm in names if nm not in pos]
        if missing or len(pos) != n:
            raise AnalysisError(
                f"the reference names its images, but {len(missing)} of this set's images are "
                f"not among them (e.g. {missing[:3]}); use the same images, or a file without names"
            )
        idx = np.array([pos[nm] for nm in names])
        return s[np.ix_(idx, idx)]


def _detect_kind(m: np.ndarray, kind: str) -> str:
    if kind in ("similarity", "dissimilarity"):
        return kind
    if kind != "auto":
        raise AnalysisError(f"kind: {kind!r} is not 'auto', 'similarity' or 'dissimilarity'")
    # an RDM has a zero diagonal; an RSM has each image's self-similarity there
    return "dissimilarity" if np.allclose(np.diag(m), 0.0) else "similarity"


def load_reference(
    source: str | Path | bytes,
    file_name: str | None = None,
    *,
    kind: str = "auto",
    index: int = 0,
) -> Reference:
    """Read a reference RSM/RDM without running code and within a memory bound.

    Formats: ``.npy`` (an (N, N) or (1, N, N) array of real numbers; read with
    ``allow_pickle=False``), ``.csv``/``.txt`` (N×N numbers separated by commas or
    whitespace, optionally a header row and a first column of image names, as semrsm's
    own CSV export), or rsatoolbox's ``RDMs.save(path, file_type='hdf5')`` file
    (``.hdf5``/``.h5``, read with h5py; rsatoolbox is not needed). Pickles (``.pkl``, or
    pickle bytes under any name) are refused: reading one can run code. The size is
    checked before the data is read: at most
    :func:`~semrsm.analysis.reference_files.max_reference_images` images (10,000, or
    ``$SEMRSM_MAX_REFERENCE_IMAGES``) and, for text, 64 MiB.

    Parameters
    ----------
    source : a path, or the file's bytes (then ``file_name`` gives the format).
    file_name : the name of the file, for its suffix (default: ``source``'s name).
    kind : "auto" (a zero diagonal means an RDM), "similarity" or "dissimilarity".
        rsatoolbox files always hold dissimilarities.
    index : which RDM of an rsatoolbox file holding several.

    Returns
    -------
    Reference
        ``matrix`` (N, N) float64, finite, N ≥ 3.

    Raises
    ------
    AnalysisError (ValueError)
        A pickle, an unknown suffix; an empty, damaged, binary or truncated file; complex
        or non-numeric values; a matrix that is not N×N, holds NaN/inf or is over the size
        limit. The message says what to do.
    """
    src = reference_source(source, file_name)
    m, names, desc, is_rdm = read_reference_file(src, index)
    if is_rdm:
        kind = "dissimilarity"
    m = _check_rsm(m, src.name, min_n=3)
    if names is not None and len(names) != m.shape[0]:
        names = None
    return Reference(m, _detect_kind(m, kind), names, f"{src.name} ({desc})")


@dataclass
class ReferenceComparison:
    """Result of :func:`compare_reference`.

    Attributes
    ----------
    layers : list of str.
    estimates : dict layer -> dict kind -> dict method -> :class:`Estimate` (kinds
        ``"classic"``, ``"semantic"``, ``"semantic − classic"``).
    n, n_boot, ci, kernel : as in :class:`Comparison`; reference : str, its source.
    """

    layers: list[str]
    estimates: dict[str, dict[str, dict[str, Estimate]]]
    n: int
    n_boot: int
    ci: float
    kernel: str
    reference: str

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (layer, kind, method)."""
        return [
            {
                "reference": self.reference,
                "layer": layer,
                "kind": kind,
                "method": m,
                "value": e.value,
                "low": e.low,
                "high": e.high,
                "n": self.n,
                "n_boot": self.n_boot,
                "ci": self.ci,
                "kernel": self.kernel,
            }
            for layer, per_kind in self.estimates.items()
            for kind, per in per_kind.items()
            for m, e in per.items()
        ]

    def to_csv(self) -> str:
        """:meth:`rows` as CSV text."""
        return rows_to_csv(self.rows())


def compare_reference(
    reference: Any,
    layers: Mapping[str, Any],
    *,
    kernel: str = "cosine",
    methods: Sequence[str] = COMPARE_METHODS,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    names: Sequence[str] | None = None,
    matcher: str = "exact",
    device: str = "auto",
    **matcher_params: Any,
) -> ReferenceComparison:
    """Each layer's classic and semantic RSM against a reference, with intervals.

    Parameters
    ----------
    reference : a :class:`Reference` (an RDM is negated, see :attr:`Reference.similarity`)
        or an (N, N) similarity matrix.
    layers : mapping layer -> configuration, as in :func:`compare_layers`.
    names : the images' names, to put a reference that names its images in this order.
    kernel, methods, n_boot, ci, seed, matcher, device, **matcher_params : as in :func:`compare`.

    Returns
    -------
    ReferenceComparison

    Raises
    ------
    AnalysisError (ValueError)
        A reference of another size (or other image names), no layers, bad settings.
    """
    if not layers:
        raise AnalysisError("compare_reference: give at least one layer")
    for m in methods:
        _check_method(m)
    _check_boot(n_boot, ci)
    pairs = {k: _as_pair(v, kernel, matcher, device, matcher_params) for k, v in layers.items()}
    if isinstance(reference, Reference):
        source = reference.source
        ref = reference.aligned(list(names)) if names is not None else reference.similarity
    else:
        source = "reference"
        ref = np.asarray(reference, dtype=np.float64)
    est = {}
    for layer, p in pairs.items():
        classic = _pair_of_rsms(p.spatial, ref)
        semantic = _pair_of_rsms(p.semantic, ref)
        est[layer] = _estimates(
            {"classic": classic, "semantic": semantic}, methods, n_boot, ci, seed, True
        )
    n = next(iter(pairs.values())).spatial.shape[0]
    return ReferenceComparison(list(pairs), est, n, int(n_boot), float(ci), kernel, source)
