"""Links that carry the view: restore a view from the URL, write the current view back.

``app.py`` runs the pages through :func:`run_with_links` instead of
``st.navigation(pages).run()``:

* on a session's first run, before any sidebar widget exists, the URL's query parameters
  are copied into ``st.session_state`` under the sidebar's widget keys (the sidebar then
  draws its widgets with those values), plus the selected pair;
* after every run the current view is written back to ``st.query_params``, so the address
  bar always holds a link to what is on screen, and the sidebar offers it to copy.

The mapping itself is :mod:`semrsm.explorer.links` (pure, tested). Uploads and server
folders are not carried, and the share box says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from pages._sidebar import SELECTED_PAIR_KEY
from semrsm.catalog import DEMO_MODELS, POPULAR_MODELS
from semrsm.explorer import links as page_links  # what is on the pages, beyond the sidebar
from semrsm.explorer.links import PAGE, PAIR, params_to_state, state_to_params, view_url
from semrsm.images import PHOTO_FILES

__all__ = ["run_with_links"]

_RESTORED = "_links_restored"
_PROBLEMS = "_links_problems"
#: keys of the sidebar that links carry
_KEYS = ("sb_model_choice", "sb_model_custom", "sb_weights", "sb_layer", "sb_source",
         "sb_shapes_n", "sb_shapes_k", "sb_seed", "sb_crops_photos", "sb_crops_n",
         "sb_kernel", "sb_matcher", "sb_window", "sb_topk")


def _restore() -> str | None:
    """Copy the URL's view into session_state once per session; returns the page asked for."""
    if st.session_state.get(_RESTORED):
        return None
    st.session_state[_RESTORED] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    if not params:
        return None
    state, problems = params_to_state(
        params, model_choices=[*DEMO_MODELS, *POPULAR_MODELS], photos=list(PHOTO_FILES)
    )
    page_state, page_problems = page_links.page_params_to_state(
        params, model_choices=[*DEMO_MODELS, *POPULAR_MODELS]
    )
    state.update(page_state)
    problems = [*problems, *page_problems]
    pair = state.pop(PAIR, None)
    page = state.pop(PAGE, None)
    for key, value in state.items():
        st.session_state[key] = value
    if pair is not None:
        st.session_state[SELECTED_PAIR_KEY] = pair
        st.session_state["nav_pair"] = pair
    st.session_state[_PROBLEMS] = problems
    return page


def _current_params(page_path: str) -> tuple[dict[str, str], list[str]]:
    state = {k: st.session_state.get(k) for k in _KEYS}
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
    with st.sidebar.expander("Share this view"):
        st.caption(
            "This link opens the app with the same model, weights, layer, images, kernel, "
            "matcher and selected pair (click it, select all, copy)."
        )
        # a text field, not st.code: st.code loads a 1.5 MB syntax highlighter that the
        # browser parses on every first load of the app, for one line of plain text
        st.text_input("Link to this view", view_url(base, params), key=None)
        if notes:
            st.caption("Not carried by links: " + "; ".join(notes) + ".")
        problems = st.session_state.get(_PROBLEMS)
        if problems:
            st.caption("Ignored from the link you opened: " + "; ".join(problems) + ".")


def run_with_links(pages: Sequence) -> None:
    """Restore the view from the URL (first run), run the selected page, write the view back."""
    try:
        wanted = _restore()
    except Exception:  # noqa: BLE001 - a bad link must never stop the app
        wanted = None
    current = st.navigation(pages)
    if wanted and wanted != current.url_path:
        target = next((p for p in pages if p.url_path == wanted), None)
        if target is not None:
            st.switch_page(target)
    completed = False
    try:
        current.run()
        completed = True
    finally:
        try:
            params, notes = _current_params(current.url_path)
            st.query_params.from_dict(params)
            if completed:
                _share_box(params, notes)
        except Exception:  # noqa: BLE001 - never break a page for its link
            pass
