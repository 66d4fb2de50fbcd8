"""This session's memo of the last few results, so moving between pages redraws at once."""

from __future__ import annotations

import streamlit as st

from semrsm.explorer import ExplorerConfig, ExplorerResult

__all__ = ["MEMO_SIZE", "forget", "recall", "remember"]

_RESULTS_KEY = "semrsm_results"
#: results kept per session (each holds its RSMs, tokens and thumbnails)
MEMO_SIZE = 4


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
    """Drop every remembered result."""
    st.session_state[_RESULTS_KEY] = {}
