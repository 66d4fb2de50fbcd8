"""Matchings: one linear assignment per pair of images, maximising ``Σ_s M[s, perm[s]]``.

A matcher takes cost matrices ``M[b] = A_b B_bᵀ`` (B, S, S) and returns permutations
``perms[b, s] = t`` (position ``t`` of the second image matched to position ``s`` of the
first) and their values. Every matcher is declared once in
:mod:`semrsm.matching.registry` (parameters with defaults and validation, description,
CPU and GPU implementations, the rule that picks one); :data:`MATCHERS` is its public view
and :func:`register_matcher` adds one.

Importing this package imports neither torch nor numba: the solvers
(:func:`solve_batch`, :func:`match_pair`, in :mod:`semrsm.matching.solve`) are imported
on first use (PEP 562), the names here need only the registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from semrsm.matching.registry import (
    IMPLEMENTATIONS,
    MatchersView,
    get_matcher,
    owners,
    register_matcher,
    select_implementation,
    unregister_matcher,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from semrsm.matching.solve import match_pair, solve_batch

#: public names imported on first use -> their module
_LAZY = {"solve_batch": "semrsm.matching.solve", "match_pair": "semrsm.matching.solve"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: name → {"params": {name: default}, "description": str}, read live from the registry.
MATCHERS: MatchersView = MatchersView()

#: "auto" (the registry's rule), "numba" (CPU, float64), "torch" (batched torch ops on the
#: costs' device, the ε-scaling auction for exact problems: how CI runs the GPU code path),
#: "tla" (torch-linear-assignment for the exact problems; its scipy loop on CPU tensors),
#: "triton" (this project's Triton kernel; CUDA, or CPU under TRITON_INTERPRET=1).
BACKENDS = ("auto", *IMPLEMENTATIONS)


def check_backend(backend: str) -> str:
    """Raise ValueError unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown backend {backend!r}; use one of {BACKENDS}")
    return backend


def check_matcher(matcher: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate a matcher name and its parameters; return the parameters with defaults filled in.

    Raises
    ------
    ValueError
        Unknown matcher, unknown parameter, or a value of the wrong type or out of range
        (the message says what to use).
    """
    return get_matcher(matcher).check(params)


def split_matcher_options(
    matcher: str, options: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """Sort options given for "whichever matcher takes them" (the command line's
    ``--window``, ``--k``) into ``matcher``'s parameters and the ignored ones.

    Parameters
    ----------
    matcher : a name of :data:`MATCHERS`.
    options : parameter name → value; None means "not given" and is dropped.

    Returns
    -------
    params : the options ``matcher`` takes (not yet validated, see :func:`check_matcher`).
    ignored : ``(name, matchers that take it)`` for each given option ``matcher`` does not take.

    Raises
    ------
    ValueError
        Unknown matcher.
    """
    takes = set(get_matcher(matcher).defaults)
    params, ignored = {}, []
    for name, value in options.items():
        if value is None:
            continue
        if name in takes:
            params[name] = value
        else:
            ignored.append((name, owners(name)))
    return params, ignored


__all__ = [
    "BACKENDS",
    "MATCHERS",
    "check_backend",
    "check_matcher",
    "match_pair",
    "register_matcher",
    "select_implementation",
    "solve_batch",
    "split_matcher_options",
    "unregister_matcher",
]
