"""The checks every semantic-RSM entry point runs on its arguments, before any token is read.

:func:`semrsm.semantic_rsm`, :func:`semrsm.semantic_block` and
:func:`semrsm.tiled_semantic_rsm` take the same kernel, matcher and chunking arguments;
checking them here, in one order, gives the same message for the same mistake in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from semrsm.costs import check_chunk_pairs
from semrsm.kernels import check_bandwidth, check_kernels, check_sigma2
from semrsm.matching import check_backend, check_matcher

__all__ = ["MatchArguments", "check_match_arguments"]


@dataclass(frozen=True)
class MatchArguments:
    """The checked arguments of one semantic-RSM run.

    Attributes
    ----------
    kernels : list of kernel names (one for a single name).
    sigma2 : float > 0 or None, the RBF bandwidth.
    chunk_pairs : int ≥ 1 or None, pairs per chunk.
    params : dict, the matcher's parameters with its defaults filled in.
    """

    kernels: list[str]
    sigma2: float | None
    chunk_pairs: int | None
    params: dict[str, Any]


def check_match_arguments(
    kernel: str | Sequence[str],
    matcher: str,
    matcher_params: dict[str, Any],
    *,
    sigma2: object,
    chunk_pairs: object,
    backend: str,
    bandwidth: str = "median",
) -> MatchArguments:
    """Check kernel(s), bandwidth recipe, ``sigma2``, ``chunk_pairs``, matcher and backend.

    Raises
    ------
    ValueError
        The first argument found wrong, in that order, with a message naming it.
    """
    kernels = check_kernels(kernel)
    check_bandwidth(bandwidth)
    checked_sigma2 = check_sigma2(sigma2)
    checked_chunks = check_chunk_pairs(chunk_pairs)
    params = check_matcher(matcher, matcher_params)
    check_backend(backend)
    return MatchArguments(kernels, checked_sigma2, checked_chunks, params)
