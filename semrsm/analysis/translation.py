"""The paper's translation experiment: similarity of translated crops against their overlap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, Progress
from semrsm.analysis.agreement import _correlations
from semrsm.analysis.layers import layer_rsms
from semrsm.analysis.rsms import RSMPair


def crop_overlaps(meta: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Overlap fraction of every pair of crops, from a crops image set's ``meta``.

    Parameters
    ----------
    meta : mapping with ``offsets`` (N pairs ``(dy, dx)``, top-left corners in source
        pixels), ``sources`` (N source indices or names) and ``crop_size`` (square side in
        source pixels, or ``(h, w)``, or a list with one side per source when
        ``sources`` are indices), optionally ``crop_sizes`` (one side per source).

    Returns
    -------
    overlap : ndarray (N, N) float64 in [0, 1], area of intersection over the crop area;
        0 between crops of different sources, 1 on the diagonal.
    same_source : ndarray (N, N) bool.

    Raises
    ------
    AnalysisError (ValueError)
        Missing keys or inconsistent lengths (the image set is not a crops set).
    """
    missing = [key for key in ("offsets", "sources", "crop_size") if key not in meta]
    if missing:
        raise AnalysisError(
            f"translation: the image set's meta lacks {missing}; use a crops set such as "
            "'crops:astronaut'"
        )
    off = np.asarray(meta["offsets"], dtype=np.float64).reshape(-1, 2)
    sources = list(meta["sources"])
    n = off.shape[0]
    if len(sources) != n:
        raise AnalysisError(f"translation: {n} offsets but {len(sources)} sources")
    codes = np.unique(np.array([str(s) for s in sources]), return_inverse=True)[1]
    same = codes[:, None] == codes[None, :]
    per_source = meta.get("crop_sizes")
    size = meta["crop_size"]
    if per_source is None and np.ndim(size) == 1 and len(size) != 2:
        per_source = size
    if per_source is not None:
        # one square side per source; sources are indices into that list
        try:
            side = np.array([float(per_source[int(s)]) for s in sources])
        except (IndexError, TypeError, ValueError) as exc:
            raise AnalysisError(f"translation: crop sizes do not fit the sources: {exc}") from exc
        h = w = side
    elif np.ndim(size) == 0:
        h = w = np.full(n, float(size))
    else:
        h, w = np.full(n, float(size[0])), np.full(n, float(size[1]))
    if not (np.all(h > 0) and np.all(w > 0)):
        raise AnalysisError(f"translation: crop sizes must be positive, got {size}")
    oy = np.clip(h[:, None] - np.abs(off[:, None, 0] - off[None, :, 0]), 0, None)
    ox = np.clip(w[:, None] - np.abs(off[:, None, 1] - off[None, :, 1]), 0, None)
    overlap = np.where(same, oy * ox / (h[:, None] * w[:, None]), 0.0)
    return overlap, same


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


@dataclass
class TranslationResult:
    """Result of :func:`translation_analysis`.

    Attributes
    ----------
    pairs : pandas.DataFrame, one row per same-source pair ``i < j`` and layer, columns
        ``layer, i, j, source, overlap, spatial, semantic, gap`` (gap = semantic - spatial).
    summary : pandas.DataFrame, one row per layer: ``layer, n_pairs, mean_spatial,
        mean_semantic, mean_gap, slope_spatial, slope_semantic`` (least-squares slope of
        similarity against overlap), ``corr_spatial, corr_semantic`` (Pearson with overlap),
        ``frac_semantic_higher`` and, with several sources, ``mean_spatial_other,
        mean_semantic_other`` (different-source pairs, for reference).
    rsms : dict layer -> RSMPair.
    kernel, matcher : str.
    """

    pairs: Any
    summary: Any
    rsms: dict[str, RSMPair]
    kernel: str
    matcher: str


# The layer parameters mirror layers.layer_rsms / layer_cka, which it passes them to:
# a public signature, spelled out so that help() and the docs show them.
def translation_analysis(
    image_set: Any,
    layers: Mapping[str, Any],
    kernel: str = "cosine",
    matcher: str = "exact",
    *,
    progress: Progress | None = None,
    device: str = "auto",
    **matcher_params: Any,
) -> TranslationResult:
    """The paper's translation experiment: similarity of same-source crops against their overlap.

    Translated crops of one image show the same content at shifted positions. The
    spatio-semantic RSM only credits content at the same position, so its similarity falls
    with the overlap; the semantic RSM matches positions first and stays high.

    Parameters
    ----------
    image_set : a crops ``ImageSet`` (or its ``meta`` mapping), see :func:`crop_overlaps`.
    layers : mapping layer -> tokens or precomputed RSMs, as in :func:`layer_rsms`.
    kernel, matcher, progress, device, **matcher_params : as in :func:`layer_rsms`.

    Returns
    -------
    TranslationResult

    Raises
    ------
    AnalysisError (ValueError)
        Not a crops set, no same-source pair, or RSMs that do not match the set's size.
    """
    import pandas as pd

    meta = image_set if isinstance(image_set, Mapping) else getattr(image_set, "meta", {})
    overlap, same = crop_overlaps(meta)
    n = overlap.shape[0]
    iu, ju = np.triu_indices(n, 1)
    keep = same[iu, ju]
    if not keep.any():
        raise AnalysisError("translation: needs at least two crops of the same source image")
    rsms = layer_rsms(layers, kernel, matcher, progress=progress, device=device, **matcher_params)
    names = meta.get("source_names")
    sources = [
        str(names[int(s)]) if names is not None and isinstance(s, (int, np.integer)) else str(s)
        for s in meta["sources"]
    ]
    rows, summary = [], []
    for name, pair in rsms.items():
        if pair.spatial.shape[0] != n:
            raise AnalysisError(
                f"translation: layer {name!r} has RSMs over {pair.spatial.shape[0]} images, the set has {n}"
            )
        si, sj = iu[keep], ju[keep]
        ov = overlap[si, sj]
        sp = pair.spatial[si, sj]
        se = pair.semantic[si, sj]
        for a, b, o, x, y in zip(si, sj, ov, sp, se, strict=True):
            rows.append(
                (name, int(a), int(b), sources[a], float(o), float(x), float(y), float(y - x))
            )
        rec = {
            "layer": name,
            "n_pairs": int(si.size),
            "mean_spatial": float(sp.mean()),
            "mean_semantic": float(se.mean()),
            "mean_gap": float((se - sp).mean()),
            "slope_spatial": _slope(ov, sp),
            "slope_semantic": _slope(ov, se),
            "corr_spatial": _correlations(ov, sp)["pearson_r"],
            "corr_semantic": _correlations(ov, se)["pearson_r"],
            "frac_semantic_higher": float(np.mean(se > sp + 1e-12)),
        }
        other = ~same[iu, ju]
        if other.any():
            rec["mean_spatial_other"] = float(pair.spatial[iu[other], ju[other]].mean())
            rec["mean_semantic_other"] = float(pair.semantic[iu[other], ju[other]].mean())
        summary.append(rec)
    cols = ["layer", "i", "j", "source", "overlap", "spatial", "semantic", "gap"]
    return TranslationResult(
        pairs=pd.DataFrame(rows, columns=cols),
        summary=pd.DataFrame(summary),
        rsms=rsms,
        kernel=kernel,
        matcher=matcher,
    )
