"""This session's memo of the last few results, and of what the pages derive from them
(figures, summaries), so moving between pages redraws at once."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

from semrsm.explorer.config import ExplorerConfig
from semrsm.explorer.result import ExplorerResult

__all__ = ["DERIVED_SIZE", "MEMO_SIZE", "derived", "forget", "recall", "remember"]

_RESULTS_KEY = "semrsm_results"
_DERIVED_KEY = "semrsm_derived"
#: results kept per session (each holds its RSMs, tokens and thumbnails)
MEMO_SIZE = 4
#: figures and other derived values kept per session
DERIVED_SIZE = 48

T = TypeVar("T")


def recall(config: ExplorerConfig) -> ExplorerResult | None:
    """The result of ``config`` computed earlier in this session, or None."""
    return st.session_state.setdefault(_RESULTS_KEY, {}).get(config)


def remember(config: ExplorerConfig, result: ExplorerResult) -> None:
    """Keep ``result`` (the oldest of more than :data:`MEMO_SIZE` is dropped)."""
    memo: dict = st.session_state.setdefault(_RESULTS_KEY, {})
    memo.pop(config, None)
    memo[config] = result
    while len(memo) > MEMO_SIZE:
        memo.pop(next(iter(memo)))


def forget() -> None:
    """Drop every remembered result and derived value."""
    st.session_state[_RESULTS_KEY] = {}
    st.session_state[_DERIVED_KEY] = {}


def derived(
    name: str, result: ExplorerResult, options: tuple[Hashable, ...], build: Callable[[], T]
) -> T:
    """``build()``, kept in this session per result, kernel, ``name`` and ``options``.

    A revisit of a page then only sends what it drew before, without building its
    figures again. ``result.key`` identifies the RSMs (model, weights, layer, pixels,
    matcher and its parameters), ``result.config`` (kernel shown, image set) and the
    names and labels the rest; ``options`` must hold every other value ``build`` reads
    (a selected image, k, an order, ...). The value is shared, not copied: callers must
    not change it (plotly figures are drawn, never updated, by the pages).

    Raises
    ------
    TypeError
        When ``options`` is not hashable.
    """
    memo: dict = st.session_state.setdefault(_DERIVED_KEY, {})
    labels = tuple(result.labels) if result.labels is not None else None
    key = (name, result.key, result.config, tuple(result.names), labels, options)
    if key in memo:
        value = memo.pop(key)
    else:
        value = build()
    memo[key] = value  # most recently used last
    while len(memo) > DERIVED_SIZE:
        memo.pop(next(iter(memo)))
    return value
