"""The paper's analyses on RSMs: retrieval, CKA, agreement with the output, translation,
matcher comparison, and the per-token contributions of a matching.

Pure functions on numpy arrays (and the core library for RSMs and matchings); no
Streamlit. Every function that needs RSMs per layer accepts either tokens (then it
computes them with :func:`semrsm.spatial_rsm` / :func:`semrsm.semantic_rsm`) or RSMs
computed elsewhere (for example served from the app's cache), see :func:`layer_rsms`.

One job per module:

========================  ====================================================================
``retrieval``             nearest neighbours, precision@k / F1@1 / mAP against labels
``cka``                   linear CKA of two RSMs, CKA table of two collections
``rsms``                  :class:`RSMPair`: both RSMs of a configuration with their descriptors
``statistics``            RSA statistics of two RSMs: kernel CKA, Spearman ρ, Kendall τ_a
``bootstrap``             bootstrap intervals over images for those statistics
``compare``               A vs B, layer x layer, vs a reference (classic and semantic)
``reference``             a reference RSM/RDM (:class:`Reference`), :func:`load_reference`
``reference_files``       reading reference RSM/RDM files: no pickles, size bounded before reading
``agreement``             Jensen-Shannon divergence of predictions, agreement with an RSM
``contributions``         per-token contributions of one matching, kernel values, explain a pair
``layers``                both RSMs per layer (computed or precomputed), CKA across layers
``translation``           similarity of translated crops against their overlap
``matchers``              approximate matchers against the exact optimum, with timings
``_checks``               the error type and shared input validation
========================  ====================================================================
"""

from semrsm.analysis._checks import AnalysisError, Progress, _check_rsm
from semrsm.analysis.agreement import jensen_shannon, output_agreement
from semrsm.analysis.bootstrap import Estimate, bootstrap_similarity
from semrsm.analysis.cka import cka_matrix, linear_cka
from semrsm.analysis.compare import (
    Comparison,
    LayerComparison,
    ReferenceComparison,
    compare,
    compare_layers,
    compare_reference,
)
from semrsm.analysis.contributions import (
    PairExplanation,
    contribution_maps,
    explain_pair,
    kernel_contributions,
    kernel_values,
    matching_contributions,
    rbf_sigma2,
    token_alternatives,
)
from semrsm.analysis.layers import LayerCKAResult, layer_cka, layer_rsms
from semrsm.analysis.matchers import (
    DEFAULT_MATCHERS,
    MATCHER_NAMES,
    compare_matchers,
    matcher_label,
    matcher_phrase,
    matcher_text,
)
from semrsm.analysis.reference import Reference, load_reference
from semrsm.analysis.retrieval import nearest_neighbours, retrieval_metrics
from semrsm.analysis.rsms import RSMPair
from semrsm.analysis.statistics import COMPARE_METHODS, kendall_tau_a, rsm_similarity
from semrsm.analysis.translation import TranslationResult, crop_overlaps, translation_analysis

__all__ = [
    "COMPARE_METHODS",
    "DEFAULT_MATCHERS",
    "Comparison",
    "Estimate",
    "LayerComparison",
    "Reference",
    "ReferenceComparison",
    "bootstrap_similarity",
    "compare",
    "compare_layers",
    "compare_reference",
    "kendall_tau_a",
    "load_reference",
    "rsm_similarity",
    "AnalysisError",
    "LayerCKAResult",
    "PairExplanation",
    "Progress",
    "RSMPair",
    "TranslationResult",
    "_check_rsm",
    "cka_matrix",
    "compare_matchers",
    "contribution_maps",
    "crop_overlaps",
    "explain_pair",
    "jensen_shannon",
    "kernel_values",
    "layer_cka",
    "layer_rsms",
    "linear_cka",
    "matcher_label",
    "matcher_phrase",
    "matcher_text",
    "MATCHER_NAMES",
    "kernel_contributions",
    "matching_contributions",
    "nearest_neighbours",
    "output_agreement",
    "rbf_sigma2",
    "retrieval_metrics",
    "token_alternatives",
    "translation_analysis",
]
