"""The RSM container of the analyses: both RSMs of one configuration with their descriptors.

:class:`RSMPair` holds the spatio-semantic ("spatial", the classic RSM) and the semantic RSM
of one layer over the same images, and what they were computed with (kernel, matcher and
its parameters, layer, model, image names and labels), as rsatoolbox's ``RDMs`` carry
their descriptors. :meth:`RSMPair.from_any` is the one place that turns what a caller
has into it:

* an :class:`RSMPair` (returned as it is);
* a tuple ``(spatial, semantic)`` of two (N, N) matrices;
* a dict with the keys ``"spatial"`` and ``"semantic"``, each an (N, N) matrix or, as
  :func:`semrsm.explorer.layer_rsms` gives them, a dict kernel -> (N, N) matrix;
* an :class:`semrsm.explorer.ExplorerResult` (all kernels are there);
* tokens (ndarray/Tensor (N, S, C) or a ``semrsm.layers.Tokens``): both RSMs are then
  computed with :func:`semrsm.spatial_rsm` / :func:`semrsm.semantic_rsm`.

The two RSMs are a pair because every analysis sets the semantic RSM against the classic
one over the same images; a single RSM of a pair is :meth:`RSMPair.rsm`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, _token_array

__all__ = ["RSM_KINDS", "RSMPair"]

#: the two kinds of RSM of a pair, as its attribute names
RSM_KINDS = ("spatial", "semantic")


@dataclass
class RSMPair:
    """The two RSMs of one layer over the same images, with their descriptors.

    Attributes
    ----------
    spatial : ndarray (N, N) float64, the spatio-semantic (classic) RSM.
    semantic : ndarray (N, N) float64, the semantic RSM (positions matched first).
    kernel : str or None, "linear", "cosine" or "rbf" (None when not known).
    matcher : str or None, the matcher of the semantic RSM.
    matcher_params : dict, the matcher's parameters.
    layer, model : str or None, where the tokens come from.
    names, labels : list of str or None, the images' names and labels, in RSM order.
    """

    spatial: np.ndarray
    semantic: np.ndarray
    kernel: str | None = None
    matcher: str | None = None
    matcher_params: dict[str, Any] = field(default_factory=dict)
    layer: str | None = None
    model: str | None = None
    names: list[str] | None = field(default=None, repr=False)
    labels: list[str] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Number of images."""
        return int(np.shape(self.spatial)[0])

    def rsm(self, kind: str) -> np.ndarray:
        """The RSM of one kind, ``"spatial"`` (also ``"classic"``) or ``"semantic"``.

        Raises
        ------
        AnalysisError (ValueError)
            Another kind.
        """
        if kind == "classic":
            kind = "spatial"
        if kind not in RSM_KINDS:
            raise AnalysisError(f"kind: unknown {kind!r}; choose 'spatial' or 'semantic'")
        return getattr(self, kind)

    @classmethod
    def _precomputed(cls, x: Any, kernel: str) -> RSMPair | None:
        """``x`` as a pair when it holds RSMs already (see the module docstring), else None.

        Raises
        ------
        AnalysisError (ValueError)
            A result or a dict of kernels without ``kernel``.
        """
        if isinstance(x, RSMPair):
            return x
        if hasattr(x, "spatial") and hasattr(x, "semantic") and isinstance(x.spatial, Mapping):
            try:  # an ExplorerResult: all kernels are there
                sp, se = x.spatial[kernel], x.semantic[kernel]
            except KeyError as exc:
                raise AnalysisError(f"the result lacks the kernel {kernel!r}") from exc
            config = getattr(x, "config", None)
            layer = getattr(x, "layer", None)
            return cls(
                np.asarray(sp, float),
                np.asarray(se, float),
                kernel=kernel,
                matcher=getattr(config, "matcher", None),
                matcher_params=dict(getattr(x, "params", None) or {}),
                layer=getattr(layer, "name", layer),
                model=getattr(x, "model_name", None),
                names=_list_or_none(getattr(x, "names", None)),
                labels=_list_or_none(getattr(x, "labels", None)),
            )
        if isinstance(x, Mapping) and set(RSM_KINDS) <= set(x):
            # semrsm.explorer.layer_rsms gives {"spatial": {kernel: rsm}, "semantic": {...}}
            sp, se = x["spatial"], x["semantic"]
            known = None
            if isinstance(sp, Mapping) or isinstance(se, Mapping):
                try:
                    sp, se = sp[kernel], se[kernel]
                except KeyError as exc:
                    raise AnalysisError(f"precomputed RSMs lack the kernel {kernel!r}") from exc
                known = kernel
            return cls(np.asarray(sp, float), np.asarray(se, float), kernel=known)
        if isinstance(x, tuple) and len(x) == 2 and all(np.ndim(m) == 2 for m in x):
            return cls(np.asarray(x[0], float), np.asarray(x[1], float))
        return None

    @classmethod
    def from_any(
        cls,
        x: Any,
        kernel: str = "cosine",
        matcher: str = "exact",
        *,
        device: str = "auto",
        progress: Callable[[int, int], None] | None = None,
        layer: str | None = None,
        **matcher_params: Any,
    ) -> RSMPair:
        """Both RSMs of ``x``: taken as they are when precomputed, else computed from tokens.

        Parameters
        ----------
        x : anything of the module docstring's list.
        kernel : "linear", "cosine" or "rbf"; picks the RSMs of a result or a dict of
            kernels, and is used to compute RSMs from tokens.
        matcher, device, progress, **matcher_params : passed to :func:`semrsm.semantic_rsm`
            when RSMs are computed from tokens.
        layer : the layer's name, kept as a descriptor of computed RSMs.

        Returns
        -------
        RSMPair (matrices as float64; not checked for shape or finiteness here).

        Raises
        ------
        AnalysisError (ValueError)
            A result or a dict of kernels without ``kernel``; what :func:`semrsm.semantic_rsm` raises for tokens.
        """
        pair = cls._precomputed(x, kernel)
        if pair is not None:
            return pair
        import semrsm  # here: reading precomputed RSMs needs neither torch nor the matchers

        tok = _token_array(x)
        spatial = semrsm.spatial_rsm(tok, kernel=kernel)
        semantic = semrsm.semantic_rsm(
            tok, kernel=kernel, matcher=matcher, device=device, progress=progress, **matcher_params
        )
        return cls(
            np.asarray(spatial, np.float64),
            np.asarray(semantic, np.float64),
            kernel=kernel,
            matcher=matcher,
            matcher_params=dict(matcher_params),
            layer=layer,
        )


def _list_or_none(x: Any) -> list[str] | None:
    return None if x is None else list(x)
