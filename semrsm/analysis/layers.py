"""Both RSMs of several layers (computed or precomputed) and the layer-wise CKA between them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, Progress, _check_rsm
from semrsm.analysis.cka import cka_matrix
from semrsm.analysis.rsms import RSMPair

__all__ = ["LayerCKAResult", "layer_cka", "layer_rsms"]


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
        ``semrsm.layers.Tokens``) or already computed RSMs (anything
        :meth:`RSMPair.from_any` takes: an :class:`RSMPair`, a tuple ``(spatial, semantic)``,
        a dict with those keys, an entry of :func:`semrsm.explorer.layer_rsms` whose values
        map kernel -> RSM, an ExplorerResult). Precomputed entries are used as they are, so
        a caller with a cache passes its RSMs and nothing is recomputed.
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
    if not layers:
        raise AnalysisError("layers: give at least one layer")
    out: dict[str, RSMPair] = {}
    names = list(layers)
    for step, name in enumerate(names):
        pair = RSMPair.from_any(
            layers[name],
            kernel,
            matcher,
            device=device,
            progress=_scaled_progress(progress, step, len(names)),
            layer=name,
            **matcher_params,
        )
        _check_rsm(pair.spatial, f"{name}: spatial RSM")
        _check_rsm(pair.semantic, f"{name}: semantic RSM")
        out[name] = pair
        if progress is not None:
            progress((step + 1) * 1000, len(names) * 1000)
    sizes = {p.spatial.shape for p in out.values()} | {p.semantic.shape for p in out.values()}
    if len(sizes) > 1:
        raise AnalysisError(f"layers: RSMs cover different image sets (shapes {sorted(sizes)})")
    return out


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


# Same parameters as layer_rsms (and translation.translation_analysis), which it passes
# on: a public signature, spelled out so that help() and the docs show them.
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
