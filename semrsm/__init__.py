"""semrsm: semantic representational similarity matrices (Wald et al., NeurIPS 2024).

>>> import semrsm
>>> tokens = semrsm.to_tokens(x)                      # (N,C,H,W) -> (N, H*W, C)
>>> B = semrsm.spatial_rsm(tokens, kernel="cosine")   # (N, N) float64
>>> R = semrsm.semantic_rsm(tokens, kernel="cosine", matcher="exact")
>>> perm, value = semrsm.match_pair(a, b)             # b[perm[s]] is matched to a[s]
"""

__version__ = "0.1.0"

from semrsm.kernels import KERNELS
from semrsm.matching import MATCHERS, match_pair
from semrsm.matching.scheduling import Cancelled
from semrsm.rsm import SemanticResult, semantic_rsm, spatial_rsm
from semrsm.tokens import to_tokens

__all__ = [
    "Cancelled",
    "KERNELS",
    "MATCHERS",
    "SemanticResult",
    "__version__",
    "match_pair",
    "semantic_rsm",
    "spatial_rsm",
    "to_tokens",
]
