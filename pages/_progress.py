"""Progress bars for long computations and durations in words."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

__all__ = ["fmt_seconds", "streamlit_progress"]

_STAGE_TEXT = {
    "extract": "Extracting tokens: {done}/{total} images",
    "match": "Matching positions: {done}/{total} pairs",
    "predict": "Class probabilities: {done}/{total} images",
}


def fmt_seconds(s: float) -> str:
    """``4.2 s``, ``42 s``, ``12 min``, ``1.5 h`` (a tenth of a second below 10 s: "about
    1 s" for 0.6 s was twice the time)."""
    if s < 9.95:
        return f"{s:.1f} s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


@contextlib.contextmanager
def streamlit_progress(label: str = "") -> Iterator:
    """Yield ``progress(stage, done, total)`` drawing one bar per stage; bars vanish after.

    Each update sends a message to the browser, which is where Streamlit stops a script
    whose user pressed *Stop*, changed a widget or clicked *Cancel*: a long computation
    ends at its next progress update.
    """
    box = st.empty()
    bars: dict[str, object] = {}
    with box.container():
        if label:
            st.caption(label)
        holder = st.container()

    def progress(stage: str, done: int, total: int) -> None:
        text = _STAGE_TEXT.get(stage, stage + ": {done}/{total}").format(done=done, total=total)
        frac = min(1.0, done / total) if total else 1.0
        if stage not in bars:
            bars[stage] = holder.progress(frac, text=text)
        else:
            bars[stage].progress(frac, text=text)

    try:
        yield progress
    finally:
        box.empty()
