"""Backend errors as messages that say what to do; never a bare traceback."""

from __future__ import annotations

import contextlib
import sys
import traceback

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages._resources import confirm_model
from semrsm.explorer.config import ComputeError, ExplorerError
from semrsm.explorer.sources import ModelNeedsConfirmation
from semrsm.images import ImageError

__all__ = ["ask_to_build", "show_error"]


def ask_to_build(need: ModelNeedsConfirmation) -> None:
    """The model's size and a *Build* button; the click confirms it for this session
    (before the rerun that builds it). Drawn once per run and model."""
    st.warning(str(need))
    label = f"Build {need.name}" + (f" ({need.memory})" if need.memory else "")
    with contextlib.suppress(StreamlitAPIException):  # already drawn in this run
        st.button(
            label,
            key=f"semrsm_build_{need.name}",
            type="primary",
            on_click=confirm_model,
            args=(need.name,),
        )


def show_error(err: BaseException) -> None:
    """Show a backend error as ``st.error`` with what to do; never a traceback element.
    A large model waiting for confirmation shows its size and a *Build* button."""
    if isinstance(err, ModelNeedsConfirmation):
        ask_to_build(err)
        return
    # semrsm.models imports torch: only an error raised by it can be a ModelError
    models = sys.modules.get("semrsm.models")
    if models is not None and isinstance(err, models.ModelError):
        st.error(
            f"**The model could not be loaded.** {err}\n\n"
            "Pick a demo model, check the spelling of the timm name, or choose other weights."
        )
    elif isinstance(err, ImageError):
        st.error(f"**The images could not be used.** {err}")
    elif isinstance(err, ComputeError):
        st.error(f"**The computation stopped.** {err}")
    elif isinstance(err, (ExplorerError, ValueError)):
        st.error(f"**This configuration cannot run.** {err}")
    else:
        st.error(
            f"**Something went wrong:** {type(err).__name__}: {err}\n\n"
            "Try another configuration; if it persists, report it with the details below."
        )
        with st.expander("details"):
            st.code("".join(traceback.format_exception(err)), language="text")
