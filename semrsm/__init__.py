"""semrsm: semantic representational similarity matrices (Wald et al., NeurIPS 2024).

>>> import semrsm
>>> tokens = semrsm.to_tokens(x)                      # (N,C,H,W) -> (N, H*W, C)
>>> B = semrsm.spatial_rsm(tokens, kernel="cosine")   # (N, N) float64
>>> R = semrsm.semantic_rsm(tokens, kernel="cosine", matcher="exact")
>>> perm, value = semrsm.match_pair(a, b)             # b[perm[s]] is matched to a[s]
>>> X = semrsm.semantic_block(tokens_a, tokens_b)     # (N_a, N_b): A against B
>>> R = semrsm.tiled_semantic_rsm(tokens, tile=512, ray=True, store="rsm.tiles")
>>> hits = semrsm.search(gallery, queries, k=10, rerank=200)

The public names are imported on first use (PEP 562), so ``import semrsm.cache`` or
``import semrsm.images`` does not import torch, numba or timm: the app draws a cached
result without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_LAZY = {
    "BlockResult": "semrsm.blocks",
    "KERNELS": "semrsm.kernels",
    "MATCHERS": "semrsm.matching",
    "match_pair": "semrsm.matching",
    "Cancelled": "semrsm.matching.scheduling",
    "SearchResult": "semrsm.scale.search",
    "SemanticResult": "semrsm.rsm",
    "TiledResult": "semrsm.scale.tiled",
    "search": "semrsm.scale.search",
    "semantic_block": "semrsm.blocks",
    "semantic_rsm": "semrsm.rsm",
    "spatial_rsm": "semrsm.rsm",
    "tiled_semantic_rsm": "semrsm.scale.tiled",
    "to_tokens": "semrsm.tokens",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from semrsm.blocks import BlockResult, semantic_block
    from semrsm.kernels import KERNELS
    from semrsm.matching import MATCHERS, match_pair
    from semrsm.matching.scheduling import Cancelled
    from semrsm.rsm import SemanticResult, semantic_rsm, spatial_rsm
    from semrsm.scale.search import SearchResult, search
    from semrsm.scale.tiled import TiledResult, tiled_semantic_rsm
    from semrsm.tokens import to_tokens

__all__ = [
    "BlockResult",
    "Cancelled",
    "KERNELS",
    "MATCHERS",
    "SearchResult",
    "SemanticResult",
    "TiledResult",
    "__version__",
    "match_pair",
    "search",
    "semantic_block",
    "semantic_rsm",
    "spatial_rsm",
    "tiled_semantic_rsm",
    "to_tokens",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (``semrsm.semantic_rsm`` etc.).

    Raises
    ------
    AttributeError
        ``name`` is neither a public name nor a submodule.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'semrsm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
