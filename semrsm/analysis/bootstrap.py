"""Bootstrap confidence intervals over images for the statistics of
:mod:`semrsm.analysis.statistics`.

Draw N images with replacement, take the sub-matrices of both RSMs, recompute; percentile
interval of ``n_boot`` draws. Pairs of an image with its own copy are left out (they would
be self-similarities off the diagonal): of the RSA statistics, as rsatoolbox does, and of
CKA, where the copies of an image are weighted by their count but not paired with each
other; for τ_a, pairs of entries that are copies of one RSM entry are left out as well
(they would count as ties, so identical RSMs would score below 1). Without this, CKA of a
resample is biased upwards (identical copies agree perfectly in both RSMs) and its
percentile interval can miss the estimate altogether. The same draws serve every
statistic and every pair of RSMs, so ``semantic − classic`` gets its own (paired) interval.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from semrsm.analysis._checks import AnalysisError
from semrsm.analysis.statistics import (
    COMPARE_METHODS,
    _check_method,
    _cka_weighted,
    _pair_of_rsms,
    _stat,
)

__all__ = ["DIFF_KIND", "MAX_BOOT", "Estimate", "bootstrap_similarity"]

#: the key of the paired difference of the semantic and the classic statistic
DIFF_KIND = "semantic − classic"

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


def _estimates(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    methods: Sequence[str],
    n_boot: int,
    ci: float,
    seed: int,
    with_difference: bool,
) -> dict[str, dict[str, Estimate]]:
    """Point estimate and interval of each statistic for each named pair of (N, N) RSMs,
    all from the same draws; ``with_difference`` adds :data:`DIFF_KIND`, the paired
    difference of the pairs named ``"semantic"`` and ``"classic"``."""
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
