"""The tour of the paper's four findings on the offline default (the Tour page).

Wald et al. (NeurIPS 2024) report four findings; the tour shows each with a live figure
computed on the app's offline default (``demo-resnet`` with its shipped weights,
``shapes:32``, cosine kernel, exact matching; translated crops of two photos for the
first step) and says in one sentence what to look for:

1. **translation**: overlapping crops of one image look alike under the semantic RSM
   and not under the spatio-semantic one, most clearly in early layers;
2. **retrieval**: nearest neighbours under the semantic RSM share the query's content
   more often (precision@k with labels);
3. **agreement with the output**: the semantic similarity correlates more negatively
   with the Jensen-Shannon divergence of the predicted class probabilities;
4. **layers**: the CKA between the two RSMs of a layer rises towards 1 in deeper layers.

Each step also gets a *verdict*: one sentence with this run's numbers that says whether
the finding shows here (the demo model is small; the sentence never claims what the
numbers do not show). Pure functions: numbers in, text out; no Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semrsm.explorer.config import ExplorerConfig

__all__ = [
    "TOUR",
    "TOUR_CONFIG",
    "TOUR_CROPS",
    "TOUR_K",
    "TOUR_MAX_POSITIONS",
    "TOUR_STEPS",
    "TourStep",
    "agreement_verdict",
    "layers_verdict",
    "retrieval_verdict",
    "showcase_query",
    "tour_layers",
    "translation_verdict",
]


@dataclass(frozen=True)
class TourStep:
    """One step of the tour: ``key`` (used in links), ``title``, the paper's ``finding``
    and what to ``look_for`` in the step's figure (one sentence each)."""

    key: str
    title: str
    finding: str
    look_for: str


TOUR = (
    TourStep(
        "translation",
        "Translation",
        "Crops of one photo, shifted against each other, look alike under the semantic RSM "
        "but not under the classic one, most clearly in early layers.",
        "Left, follow the fitted lines from right (full overlap) to left (little overlap): "
        "the classic one (purple) drops while the semantic one (pink) stays high; right, the "
        "two solid lines are further apart in the early layers than in the deepest.",
    ),
    TourStep(
        "retrieval",
        "Retrieval",
        "An image's nearest neighbours under the semantic RSM share its content more often.",
        "The semantic bars stand above the classic ones: more of each image's nearest "
        "neighbours have its shape class, as in the example below (green frames: same "
        "class).",
    ),
    TourStep(
        "agreement",
        "Agreement with the output",
        "The semantic similarity follows the model's own predictions more closely: it "
        "correlates more negatively with the divergence between predicted class "
        "probabilities.",
        "The semantic cloud (right) runs more clearly from top left to bottom right than "
        "the classic one (left): the pairs it calls similar, the model classifies alike.",
    ),
    TourStep(
        "layers",
        "Layers",
        "The two RSMs of a layer agree more the deeper the layer: their CKA rises towards 1.",
        "The curve climbs to the right and nears 1 in the deepest layer, where only a few "
        "positions are left to rearrange.",
    ),
)
#: the step keys, in order (links carry one as ``step=``)
TOUR_STEPS = tuple(s.key for s in TOUR)
#: the offline default the tour runs on, whatever the sidebar says
TOUR_CONFIG = ExplorerConfig()
#: the image set of the translation step: translated crops of two photos
TOUR_CROPS = "crops:astronaut,coffee:9"
#: layers with more positions are left out (exact matching grows as S³; act1 has 1,024)
TOUR_MAX_POSITIONS = 256
#: neighbours per query in the retrieval step
TOUR_K = 5


def tour_layers(layers: Sequence[Any]) -> list[str]:
    """Names of the layers the tour analyses: those with at most
    :data:`TOUR_MAX_POSITIONS` positions, in network order (the last layer if none)."""
    names = [li.name for li in layers if li.num_tokens <= TOUR_MAX_POSITIONS]
    return names or [layers[-1].name]


def _col(summary: Any, name: str) -> np.ndarray:
    return np.asarray(summary[name], dtype=np.float64)


def translation_verdict(summary: Any) -> str:
    """One sentence on :attr:`semrsm.analysis.TranslationResult.summary` (rows in network
    order): the same-source means in the first layer, and the gap there against the gap in
    the last layer."""
    layers = [str(x) for x in summary["layer"]]
    sp, se = _col(summary, "mean_spatial"), _col(summary, "mean_semantic")
    gap = se - sp
    text = (
        f"Here, in {layers[0]}, same-source crops score {se[0]:.2f} under the semantic RSM "
        f"and {sp[0]:.2f} under the classic one"
    )
    if len(layers) == 1:
        return text + "."
    how = (
        "the difference is clearest early, as in the paper"
        if gap[0] > gap[-1]
        else "here the difference is not clearest early, unlike in the paper"
    )
    return text + f" (gap {gap[0]:+.2f}; {gap[-1]:+.2f} in {layers[-1]}): {how}."


def retrieval_verdict(classic: Mapping[str, Any], semantic: Mapping[str, Any]) -> str:
    """One sentence on two :func:`semrsm.analysis.retrieval_metrics` results."""
    k = int(semantic["k"])
    pc, ps = float(classic["precision_at_k"]), float(semantic["precision_at_k"])
    if ps > pc:
        how = "the semantic RSM retrieves more of the query's class"
    elif ps < pc:
        how = "here the classic RSM retrieves more of the query's class, unlike in the paper"
    else:
        how = "both retrieve the query's class equally often here"
    return (
        f"Here precision@{k} is {ps:.0%} semantic against {pc:.0%} classic, and the mean "
        f"average precision {float(semantic['mean_average_precision']):.2f} against "
        f"{float(classic['mean_average_precision']):.2f}: {how}."
    )


def agreement_verdict(classic: Mapping[str, Any], semantic: Mapping[str, Any]) -> str:
    """One sentence on two :func:`semrsm.analysis.output_agreement` results."""
    rc, rs = float(classic["spearman_r"]), float(semantic["spearman_r"])
    if np.isnan(rc) or np.isnan(rs):
        return "Here a correlation is undefined (the predictions or similarities are constant)."
    how = (
        "the semantic RSM agrees more with the model's predictions"
        if rs < rc
        else "here the classic RSM agrees more with the predictions, unlike in the paper"
    )
    return (
        f"Here Spearman's ρ is {rs:.2f} semantic against {rc:.2f} classic over "
        f"{int(semantic['n_pairs'])} pairs: {how}."
    )


def layers_verdict(layers: Sequence[str], cka: Sequence[float]) -> str:
    """One sentence on the CKA of the two RSMs per layer (network order)."""
    c = np.asarray(cka, dtype=np.float64)
    if c.size == 1:
        return f"Here the one layer, {layers[0]}, has a CKA of {c[0]:.2f}."
    rises = c[-1] > c[0]
    how = (
        "it rises towards 1 in depth" + ("" if np.all(np.diff(c) >= 0) else ", not at every step")
        if rises
        else "it does not rise with depth here, unlike in the paper"
    )
    return (
        f"Here the CKA goes from {c[0]:.2f} in {layers[0]} to {c[-1]:.2f} in {layers[-1]}: "
        f"{how}."
    )


def showcase_query(
    classic: Mapping[str, Any], semantic: Mapping[str, Any]
) -> int:
    """The query whose precision@k gains most from the semantic RSM (the lowest index
    among ties): the retrieval step's example."""
    gain = np.asarray(semantic["per_query"]["precision_at_k"], dtype=np.float64) - np.asarray(
        classic["per_query"]["precision_at_k"], dtype=np.float64
    )
    return int(np.argmax(np.round(gain, 9)))  # ties up to rounding: the lowest index
