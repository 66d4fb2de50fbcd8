"""Links that carry the view: restore a view from the URL, write the current view back.

``app.py`` runs the pages through :func:`run_with_links` instead of
``st.navigation(pages).run()``:

* on a session's first run, before any sidebar widget exists, the URL's query parameters
  are copied into ``st.session_state`` under the sidebar's widget keys (the sidebar then
  draws its widgets with those values), plus the selected pair;
* after every run the current view is written back to ``st.query_params``, so the address
  bar always holds a link to what is on screen, and the sidebar offers it to copy.

The mapping itself is :mod:`semrsm.explorer.links` (pure, tested). Uploads and server
folders are not carried, and the share box says so. Every value of the link that is not
used is listed in the share box ("Ignored from the link you opened"): what the text alone
decides at once, the layer once the model's layer list is known and the pair once the
number of images is (:func:`_settle`), so nothing falls back silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from pages._memo import recall
from pages._sidebar import CONFIG_KEY, SELECTED_PAIR_KEY, get_cache, get_layers
from semrsm.catalog import DEMO_MODELS, POPULAR_MODELS
from semrsm.explorer import links as page_links  # what is on the pages, beyond the sidebar
from semrsm.explorer.config import ExplorerConfig
from semrsm.explorer.links import (
    OTHER_MODEL,
    PAGE,
    PAIR,
    layer_problem,
    pair_problem,
    state_to_params,
    view_url,
)
from semrsm.images import PHOTO_FILES

__all__ = ["run_with_links"]

_RESTORED = "_links_restored"
_PROBLEMS = "_links_problems"
#: what the link asked for that can only be checked later: {"model", "layer", "pair"}
_PENDING = "_links_pending"


def _page_paths(pages: Sequence) -> list[str] | None:
    """The URL paths of ``pages`` (None when they cannot be read: any page name is then
    checked only by its form, and an unknown one reported when it is not found)."""
    try:
        return [str(p.url_path) for p in pages]
    except Exception:  # noqa: BLE001 - only outside a script run
        return None


def _restore(pages: Sequence = ()) -> str | None:
    """Copy the URL's view into session_state once per session; returns the page asked for."""
    if st.session_state.get(_RESTORED):
        return None
    st.session_state[_RESTORED] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    if not params:
        return None
    state, problems = page_links.link_to_state(  # the sidebar's and the pages' parameters
        params, model_choices=[*DEMO_MODELS, *POPULAR_MODELS], photos=list(PHOTO_FILES),
        pages=_page_paths(pages) if pages else None,
    )
    pair = state.pop(PAIR, None)
    page = state.pop(PAGE, None)
    for key, value in state.items():
        st.session_state[key] = value
    if pair is not None:
        st.session_state[SELECTED_PAIR_KEY] = pair
        st.session_state["nav_pair"] = pair
    st.session_state[_PROBLEMS] = problems
    st.session_state[_PENDING] = _pending(state, pair)
    return page


def _pending(state: dict[str, Any], pair: tuple[int, int] | None) -> dict[str, Any]:
    """The checks of a restored view that wait for the model's layers or the image count."""
    pending: dict[str, Any] = {}
    choice = state.get("sb_model_choice")
    pending["model"] = state.get("sb_model_custom") if choice == OTHER_MODEL else choice
    if state.get("sb_layer"):
        pending["layer"] = state["sb_layer"]
    if pair is not None:
        pending["pair"] = pair
    return pending


def _note(problem: str) -> None:
    st.session_state[_PROBLEMS] = [*st.session_state.get(_PROBLEMS, []), problem]


def _layer_names(config: ExplorerConfig) -> list[str]:
    """The layer names of ``config``'s model as the sidebar listed them in this run (a
    cache hit there), or [] when they cannot be had."""
    try:
        layers = get_layers(config.model, config.weights, config.checkpoint, config.device,
                            get_cache())
        return [li.name for li in layers or ()]
    except Exception:  # noqa: BLE001 - the sidebar has already shown why
        return []


def _settle_layer(pending: dict[str, Any], config: ExplorerConfig) -> None:
    """Report the link's layer when the model's layer list, now known, lacks it."""
    if config.layer is None:
        return  # the layer list is not known yet (the model did not load)
    wanted = pending.pop("layer")
    if config.layer == wanted:
        return
    problem = layer_problem(wanted, _layer_names(config), config.model)
    if problem:
        _note(f"{problem}; showing {config.layer}")


def _settle_pair(pending: dict[str, Any], config: ExplorerConfig) -> None:
    """Report the link's pair when the set, now known, has fewer images; drop it where
    no page has replaced it yet."""
    result = recall(config)
    if result is None:
        return  # no result yet (a Compute prompt or an error): the image count is unknown
    pair = pending.pop("pair")
    problem = pair_problem(pair, result.n)
    if problem is None:
        return
    _note(problem)
    if st.session_state.get(SELECTED_PAIR_KEY) == pair:
        st.session_state.pop(SELECTED_PAIR_KEY, None)
    if st.session_state.get("nav_pair") == pair:
        st.session_state.pop("nav_pair", None)


def _settle() -> None:
    """After a page ran: the checks of the restored link that needed what it loaded."""
    pending = st.session_state.get(_PENDING)
    config = st.session_state.get(CONFIG_KEY)
    if not pending or not isinstance(config, ExplorerConfig):
        return
    if pending.get("model") and pending["model"] != config.model:
        pending.clear()  # the model was refused or changed since: nothing left to check
        return
    if "layer" in pending:
        _settle_layer(pending, config)
    if "pair" in pending:
        _settle_pair(pending, config)
    if set(pending) <= {"model"}:
        pending.clear()  # every check is done


def _current_params(page_path: str) -> tuple[dict[str, str], list[str]]:
    state = {k: st.session_state.get(k) for k in page_links.sidebar_keys()}
    state[PAGE] = page_path
    pair = st.session_state.get(SELECTED_PAIR_KEY)
    if pair is not None:
        state[PAIR] = pair
    params, notes = state_to_params(state)
    params.update(page_links.page_state_to_params(
        {k: st.session_state.get(k) for k in page_links.PAGE_STATE_KEYS}
    ))
    return params, notes


def _share_box(params: dict[str, str], notes: list[str]) -> None:
    base = ""
    try:
        url = st.context.url or ""
        base = url.split("?")[0].split("#")[0]
        # keep scheme://host[:port] (and a base path, if any) but not the page's own path
        if params.get("page") and base.rstrip("/").endswith("/" + params["page"]):
            base = base.rstrip("/")[: -len(params["page"]) - 1]
    except Exception:  # noqa: BLE001 - no context (tests): a relative link
        base = ""
    problems = st.session_state.get(_PROBLEMS)
    # open when the link had values that were ignored, so the note is seen, not hidden
    with st.sidebar.expander("Share this view", expanded=bool(problems)):
        st.caption(
            "This link opens the app with the same model, weights, layer, images, kernel, "
            "matcher and selected pair (click it, select all, copy)."
        )
        # a text field, not st.code: st.code loads a 1.5 MB syntax highlighter that the
        # browser parses on every first load of the app, for one line of plain text
        st.text_input("Link to this view", view_url(base, params), key=None)
        if notes:
            st.caption("Not carried by links: " + "; ".join(notes) + ".")
        if problems:
            st.caption("Ignored from the link you opened: " + "; ".join(problems) + ".")


def run_with_links(pages: Sequence) -> None:
    """Restore the view from the URL (first run), run the selected page, write the view back."""
    try:
        wanted = _restore(pages)
    except Exception:  # noqa: BLE001 - a bad link must never stop the app
        wanted = None
    current = st.navigation(pages)
    if wanted and wanted != current.url_path:
        target = next((p for p in pages if p.url_path == wanted), None)
        if target is not None:
            st.switch_page(target)
        _note(f"page={wanted!r} is not a page of the app")
    completed = False
    try:
        current.run()
        completed = True
    finally:
        try:
            _settle()
        except Exception:  # noqa: BLE001 - a link's check must never break a page
            pass
        try:
            params, notes = _current_params(current.url_path)
            st.query_params.from_dict(params)
            if completed:
                _share_box(params, notes)
        except Exception:  # noqa: BLE001 - never break a page for its link
            pass
