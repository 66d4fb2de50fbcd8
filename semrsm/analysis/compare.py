"""Compare representations: two configurations, two models layer by layer, or a reference.

Each comparison scores, for the classic and for the semantic RSM, how much two RSMs over
the same N images agree, with the statistics of :mod:`semrsm.analysis.statistics` (kernel
CKA, RSA Spearman, RSA Kendall τ_a) and, for A vs B and against a reference, a bootstrap
interval over images (:mod:`semrsm.analysis.bootstrap`). The same draws serve every
statistic and both kinds, so ``semantic − classic`` gets its own (paired) interval.

A *configuration* is anything :meth:`semrsm.analysis.RSMPair.from_any` takes: an
:class:`~semrsm.analysis.RSMPair`, a tuple ``(spatial, semantic)``, a dict with those
keys, an :class:`semrsm.explorer.ExplorerResult`, or tokens ``(N, S, C)`` (both RSMs are
then computed with :func:`semrsm.spatial_rsm` / :func:`semrsm.semantic_rsm`).

A reference is read with :func:`semrsm.analysis.load_reference`
(:mod:`semrsm.analysis.reference`; pickles are refused, see
:mod:`semrsm.analysis.reference_files`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError
from semrsm.analysis.bootstrap import Estimate, _check_boot, _estimates
from semrsm.analysis.reference import Reference
from semrsm.analysis.rsms import RSMPair
from semrsm.analysis.statistics import COMPARE_METHODS, _check_method, _pair_of_rsms, _stat

__all__ = [
    "COMPARE_KINDS",
    "Comparison",
    "LayerComparison",
    "ReferenceComparison",
    "compare",
    "compare_layers",
    "compare_reference",
    "rows_to_csv",
]

#: the two kinds of RSM
COMPARE_KINDS = ("classic", "semantic")


# --------------------------------------------------------------------------- A vs B


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
            _estimate_row(self, {"a": self.names[0], "b": self.names[1], "kind": kind, "method": m}, e)
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




def _estimate_row(res: Any, head: Mapping[str, Any], e: Estimate) -> dict[str, Any]:
    """One table row: ``head``, then the estimate and the settings of ``res`` (a
    :class:`Comparison` or :class:`ReferenceComparison`)."""
    return {
        **head,
        "value": e.value,
        "low": e.low,
        "high": e.high,
        "n": res.n,
        "n_boot": res.n_boot,
        "ci": res.ci,
        "kernel": res.kernel,
    }


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
    pa = RSMPair.from_any(a, kernel, matcher, device=device, **matcher_params)
    pb = RSMPair.from_any(b, kernel, matcher, device=device, **matcher_params)
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


# Keywords as in compare (and compare_reference): each public signature states its own
# defaults (the layer table has no bootstrap and defaults to CKA only).
# The keywords of compare (kernel, methods, names, matcher, device, **matcher_params), on
# purpose: public signatures, each documenting its own defaults; the bodies differ (point
# estimates per layer pair here, bootstrap intervals there).
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
    def _from_any(x: Any) -> RSMPair:
        return RSMPair.from_any(x, kernel, matcher, device=device, **matcher_params)

    pa = {k: _from_any(v) for k, v in layers_a.items()}
    pb = {k: _from_any(v) for k, v in layers_b.items()}
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
        head = {"reference": self.reference}
        return [
            _estimate_row(self, {**head, "layer": layer, "kind": kind, "method": m}, e)
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
    pairs = {
        k: RSMPair.from_any(v, kernel, matcher, device=device, **matcher_params)
        for k, v in layers.items()
    }
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
