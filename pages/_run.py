"""Running the sidebar's configuration: the estimate and *Compute* prompt before a long
run, progress with a *Cancel* button during it, and the status line after it.

``current_result()`` is what every page calls; the result memo lives in
``pages/_memo.py``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import streamlit as st

from pages._controls import current_config
from pages._errors import show_error
from pages._memo import recall, remember
from pages._progress import fmt_seconds, streamlit_progress
from pages._resources import FIRST_RESULT, WARM_UP_NOW, get_cache, get_images, get_model
from semrsm.analysis.matchers import matcher_phrase
from semrsm.explorer.cached import cached_result
from semrsm.explorer.config import WEIGHTS_TEXT
from semrsm.explorer.result import ExplorerResult

if TYPE_CHECKING:
    from semrsm.explorer.estimate import RunPlan

__all__ = ["current_result", "long_run_advice", "run_prompt", "status_line"]

_CONFIRMED_KEY = "semrsm_confirmed_runs"
_CANCELLED_KEY = "semrsm_cancelled_runs"
_CANCEL_BUTTON = "semrsm_cancel"
_COMPUTE_BUTTON = "semrsm_compute_long"


def long_run_advice(run: RunPlan) -> str:
    """What would make this run faster, for the part that takes longest."""
    est = run.estimate
    part = run.slowest
    if part == "extract" or part == "predict":
        return (
            "Most of the time goes into running the model over the images "
            f"({fmt_seconds(est['extract'] + est['predict'])}): fewer images or a smaller "
            "model is faster; the layer and the matcher change little. The tokens are kept "
            "in the cache, so later runs on these images skip this part."
        )
    if run.config.matcher == "exact":
        return (
            f"Most of the time goes into matching {int(est['pairs']):,} pairs of "
            f"{run.layer.num_tokens} positions: a deeper layer (fewer positions), fewer "
            "images or the batch-optimal matcher is faster."
        )
    return (
        f"Most of the time goes into matching {int(est['pairs']):,} pairs of "
        f"{run.layer.num_tokens} positions: a deeper layer (fewer positions) or fewer "
        "images is faster."
    )


def run_prompt(run: RunPlan) -> str:
    """The text above the *Compute* button: the estimate, its parts, and advice."""
    est = run.estimate
    measured = "measured on this server" if "probe" in run.sources.values() else "estimated"
    parts = [
        f"extracting tokens {fmt_seconds(est['extract'])}" if est["extract"] else "",
        f"matching {fmt_seconds(est['match'])}" if est["match"] else "",
        f"class probabilities {fmt_seconds(est['predict'])}" if est["predict"] else "",
    ]
    return (
        f"This run matches {int(est['pairs']):,} pairs of {run.layer.num_tokens} positions "
        f"with the **{matcher_phrase(run.config.matcher, run.config.params)}** on the "
        f"{run.device.upper()}: about "
        f"**{fmt_seconds(run.seconds)}** ({', '.join(p for p in parts if p)}; rates "
        f"{measured}). " + long_run_advice(run)
    )


def _confirmed(run: RunPlan) -> bool:
    """Whether this run may start: short and not cancelled, or confirmed by a click.

    The prompt is drawn in a placeholder that is emptied as soon as the click arrives,
    so it never stays above the results.
    """
    confirmed: set = st.session_state.setdefault(_CONFIRMED_KEY, set())
    cancelled: set = st.session_state.setdefault(_CANCELLED_KEY, set())
    if run.rsm_key in confirmed or not (run.is_long or run.rsm_key in cancelled):
        return True
    slot = st.empty()
    with slot.container():
        if run.rsm_key in cancelled:
            st.warning("The last run of this configuration was cancelled.")
        st.info(run_prompt(run))
        clicked = st.button(
            f"Compute (about {fmt_seconds(run.seconds)})", type="primary", key=_COMPUTE_BUTTON
        )
    if not clicked:
        return False
    slot.empty()
    confirmed.add(run.rsm_key)
    cancelled.discard(run.rsm_key)
    return True


def current_result() -> ExplorerResult | None:
    """The explorer result for the sidebar's configuration, or None when an error, an
    info or a *Compute* prompt was shown instead.

    From this session's memo, else the on-disk cache (``semrsm.explorer.cached``: no
    model is loaded and torch is not imported), else computed here with progress
    bars (extraction, pairs) and a *Cancel* button. Runs estimated over
    ``semrsm.explorer.LONG_RUN_SECONDS`` wait behind a *Compute* button; a model over
    ``semrsm.explorer.sources.confirm_params()`` parameters is not even built before a
    click on *Build* that states its size (``pages._errors.ask_to_build``), whether it
    came from the sidebar or a link. Errors (unknown model, bad files, out of memory)
    are shown with ``st.error`` saying what to do.
    """
    config = current_config()
    hit = recall(config)
    if hit is not None:
        return hit
    if config.layer is None and config.model:
        # The sidebar could not list layers: show why, in the page.
        try:
            get_model(config)
        except Exception as err:  # noqa: BLE001
            show_error(err)
            return None
    if not config.model:
        st.info("Type a timm model name in the sidebar (for example `resnet18`).")
        return None
    if config.weights == "file" and not config.checkpoint:
        st.info("Upload a checkpoint in the sidebar, or choose other weights.")
        return None
    if config.images == "uploads" and not config.uploads:
        st.info("Upload a few images in the sidebar (PNG, JPEG, …) to compute their RSMs.")
        return None
    cache = get_cache()
    try:
        images = get_images(config, cache)
        hit = cached_result(config, cache, images)
    except Exception:  # noqa: BLE001 - the full path below reports what is wrong
        hit = None
    if hit is not None:
        remember(config, hit)
        FIRST_RESULT.set()
        return hit
    WARM_UP_NOW.set()  # a computation follows: the warm-up then loads the exact matcher first
    try:
        from semrsm.explorer import compute, plan
        from semrsm.explorer.warmup import wait_precompile

        model = get_model(config)
        images = get_images(config, cache)
        wait_precompile()  # a fresh install compiles the exact matcher in another process
        run = plan(config, cache, model=model, images=images)
        # a Cancel click stops the previous run (at its next progress update) and reruns
        # the script; that run must not start the same computation again
        if st.session_state.get(_CANCEL_BUTTON, False):
            st.session_state.setdefault(_CANCELLED_KEY, set()).add(run.rsm_key)
            st.session_state.setdefault(_CONFIRMED_KEY, set()).discard(run.rsm_key)
        if not _confirmed(run):
            return None
        cached = run.tokens_cached and run.rsm_cached
        label = (
            ""
            if cached
            else f"Computing {int(run.estimate['pairs']):,} pairs of {run.layer.num_tokens} "
            f"positions on the {run.device.upper()}: about {fmt_seconds(max(1.0, run.seconds))}"
        )
        cancel_slot = st.empty()
        if not cached and run.seconds > 3:
            cancel_slot.button("Cancel", key=_CANCEL_BUTTON, help="Stop this computation.")
        with streamlit_progress(label) as progress:
            result = compute(config, cache, progress=progress, model=model, images=images)
        cancel_slot.empty()
    except Exception as err:  # noqa: BLE001 - every failure becomes a message, never a crash
        show_error(err)
        return None
    if cache.last_warning:
        st.warning(cache.last_warning)
        cache.last_warning = None
    remember(config, result)
    FIRST_RESULT.set()
    return result


def status_line(result: ExplorerResult) -> str:
    """One line: what was computed and how long it took (or that it came from the cache)."""
    li = result.layer
    hits = result.cache_hits
    source = (
        "served from the cache"
        if hits.get("tokens") and hits.get("rsm")
        else f"computed in {result.timings.get('total', 0):.1f} s"
    )
    weights = WEIGHTS_TEXT.get(result.weights, result.weights)
    return (
        f"{result.n} images · {html.escape(result.model_name)} ({weights}) · layer "
        f"`{li.name}` ({li.grid[0]}×{li.grid[1]} positions × {li.channels} channels) · "
        f"{result.kernel} kernel · {matcher_phrase(result.config.matcher, result.params)}"
        f" · {source}"
    )

