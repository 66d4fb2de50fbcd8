"""Heatmap navigation for the RSM page: reorder both heatmaps (as loaded, by label, by
clustering either RSM), select a block to see its images, click a cell for an inline
preview of the pair (both images, both values, the strongest matches) with a link to the
Token matching page.

``pages/rsm.py`` calls :func:`heatmap_navigation` once. Plotly's hover box holds text only
(and Streamlit reports no hover events), so the hover names the two images and gives the
value; the pictures appear in the preview on click.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from pages._memo import derived
from pages._projector import fig_scale, px, scaled
from pages._sidebar import SELECTED_PAIR_KEY, TOKEN_PAGE
from semrsm.analysis import kernel_contributions, matcher_text, matching_contributions
from semrsm.analysis.contributions import PART_TEXT
from semrsm.analysis.ordering import image_order
from semrsm.explorer import ExplorerResult
from semrsm.explorer.exports import kernels_npz, matchings_csv, tokens_npy, tokens_npz
from semrsm.explorer.summary import block_means, signed
from semrsm.figures.matching import matching_overlay
from semrsm.figures.navigation import heatmap_panels, selected_cells
from semrsm.figures.rsm import SPATIAL_TITLE, breakable_name, semantic_title

__all__ = ["ORDER_LABELS", "heatmap_navigation"]

#: order key -> label shown in the select box
ORDER_LABELS = {
    "loaded": "as loaded",
    "label": "by label",
    "cluster_spatial": "cluster the classic RSM",
    "cluster_semantic": "cluster the semantic RSM",
}
#: thumbnails of a selected block, px (captions wrap at ``_``: ``shape_0000_`` / ``cross``)
THUMB_WIDTH = 96
PAIR_KEY = "nav_pair"
#: the chosen order (the select box's own key loses its value when the box is not drawn)
ORDER_KEY = "nav_order_choice"
BLOCK_KEY = "nav_block"


@st.cache_data(show_spinner=False, max_entries=16)
def _order(key: str, how: str, n: int, labels: tuple | None, _rsms: dict) -> list[int]:
    if how.startswith("cluster_"):
        return image_order("cluster", n, rsm=_rsms[how.removeprefix("cluster_")]).tolist()
    return image_order(how, n, labels=labels).tolist()


def _remember_order() -> None:
    st.session_state[ORDER_KEY] = st.session_state.get("nav_order")


def _on_select() -> None:
    """A click picks a pair; a box picks a block of rows and columns."""
    state = st.session_state.get("nav_heatmaps")
    try:
        sel = state.selection
        cells = selected_cells(sel.points)
    except (AttributeError, KeyError):
        return
    if not cells:
        return
    if sel.get("box") or sel.get("lasso"):
        st.session_state[BLOCK_KEY] = (
            sorted({i for i, _ in cells}),
            sorted({j for _, j in cells}),
        )
    else:
        st.session_state[PAIR_KEY] = cells[0]
        st.session_state[SELECTED_PAIR_KEY] = cells[0]


def _block(result: ExplorerResult, rows: list[int], cols: list[int]) -> None:
    mean_a, mean_b, cells = block_means(result.spatial_rsm, result.semantic_rsm, rows, cols)
    if cells:
        means = (
            f"mean classic **{mean_a:.3f}**, mean semantic **{mean_b:.3f}** over its {cells} "
            "cells of two different images (self-similarities left out, as in the numbers "
            "above)"
        )
    else:
        means = "only self-similarities: no pair of two different images to average"
    st.markdown(f"**Selected block:** {len(rows)} rows × {len(cols)} columns · {means}")
    imgs = sorted(set(rows) | set(cols))
    st.image(
        [result.thumbnails[k] for k in imgs[:64]],
        caption=[breakable_name(result.names[k]) for k in imgs[:64]],
        width=px(THUMB_WIDTH),
    )
    if len(imgs) > 64:
        st.caption(f"… and {len(imgs) - 64} more.")
    if st.button("Clear the block", key="nav_clear_block",
                 help="Forget the selected block (drag a new box on a heatmap)."):
        st.session_state.pop(BLOCK_KEY, None)
        st.rerun()


def _pair_preview(result: ExplorerResult, i: int, j: int) -> None:
    kernel = result.kernel
    st.markdown(
        f"**{result.names[i]}** × **{result.names[j]}** · {kernel} similarity: classic "
        f"**{result.spatial_rsm[i, j]:.4f}**, semantic **{result.semantic_rsm[i, j]:.4f}** "
        f"({signed(result.semantic_rsm[i, j] - result.spatial_rsm[i, j], 4)} from matching)"
    )
    matcher = result.config.matcher
    pairing = "optimal pairing" if matcher == "exact" else f"{matcher_text(matcher)} pairing"
    perm, _ = result.matching(i, j)
    contrib = matching_contributions(result.tokens[i], result.tokens[j], perm)
    # the values of the kernel shown: cosine shares rank as the inner products do; the
    # RBF has no shares (its listed distances say so), its lines show inner products
    parts = kernel_contributions(result.tokens[i], result.tokens[j], perm, kernel)
    shown, label = ((parts, "share of the<br>cosine similarity") if kernel == "cosine"
                    else (contrib, "contribution<br>⟨a_s, b_π(s)⟩"))
    top = min(10, contrib.size)
    fig = matching_overlay(
        result.model_view(i),
        result.model_view(j),
        result.grid,
        perm,
        shown,
        top_n=top,
        names=(result.names[i], result.names[j]),
        display=200,
        scale=fig_scale(),
        value_label=label,
    )
    st.plotly_chart(fig, key="nav_pair_overlay", config={"displaylogo": False})
    w = result.grid[1]
    best = np.argsort(-contrib)[:5]
    # the listed values are those of the kernel shown (the ranking is the drawing's)
    st.caption(
        f"The {top} strongest matches of the {pairing} are drawn (brighter = larger "
        "share of the similarity). Top five: "
        + "; ".join(
            f"({s // w}, {s % w}) ↔ ({perm[s] // w}, {perm[s] % w}): {parts[s]:.3g}"
            for s in best
        )
        + f" (row, column of the token grid; {PART_TEXT[kernel]} {result.semantic_rsm[i, j]:.4f})."
    )
    if TOKEN_PAGE.is_file():
        st.page_link(
            "pages/token_matching.py",
            label="Open this pair in Token matching",
            help="The full view of the matching: every line, contribution maps, the S×S "
            "inner products.",
        )


def heatmap_navigation(result: ExplorerResult) -> go.Figure:
    """Draw both RSMs with their navigation for ``result`` (see the module docstring);
    returns the figure (for its download)."""
    n = result.n
    options = [k for k in ORDER_LABELS if k != "label" or result.labels is not None]
    # The choice is kept under its own key and given to the box as its default: a box
    # missing from one screen (a Compute prompt) is mounted again by the browser at its
    # default, which must then be the order drawn (setting the widget's key did not do it).
    # A value under the box's key (the box's own, or a link's) wins; one this set cannot
    # show (e.g. "label" without labels) is dropped.
    if st.session_state.get("nav_order") in options:
        st.session_state[ORDER_KEY] = st.session_state["nav_order"]
    else:
        st.session_state.pop("nav_order", None)
    wanted = st.session_state.get(ORDER_KEY)
    if wanted not in options:
        wanted = "label" if result.labels is not None else "loaded"
    c1, c2 = st.columns([2, 5])
    how = c1.selectbox(
        "Order the images",
        options,
        index=options.index(wanted),
        key="nav_order",
        on_change=_remember_order,
        format_func=ORDER_LABELS.get,
        help="The same order is used for both heatmaps. Clustering groups images that the "
        "chosen RSM calls similar (average linkage, optimal leaf ordering), so blocks along "
        "the diagonal show what that RSM sees as groups.",
    )
    st.session_state[ORDER_KEY] = how
    c2.markdown(
        "Click a cell to preview that pair below; drag a box (box tool in the chart's "
        "toolbar) over a block to see its images. Hover names the two images."
    )
    order = _order(
        result.key, how, n, tuple(result.labels) if result.labels is not None else None,
        {"spatial": result.spatial_rsm, "semantic": result.semantic_rsm},
    )
    pair = st.session_state.get(PAIR_KEY)
    if pair is not None and not (0 <= pair[0] < n and 0 <= pair[1] < n):
        pair = None
    fig = derived(
        "nav_heatmaps",
        result,
        (tuple(order), tuple(pair) if pair is not None else None),
        lambda: heatmap_panels(
            {SPATIAL_TITLE: result.spatial_rsm,
             semantic_title(result.config.matcher, result.params): result.semantic_rsm},
            result.names,
            result.labels,
            order=order,
            kernel=result.kernel,
            selected=pair,
            height=460,
        ),
    )
    st.plotly_chart(
        scaled(fig, ticks=False),
        key="nav_heatmaps",
        on_select=_on_select,
        selection_mode=("points", "box"),
        config={"displaylogo": False},
    )
    block = st.session_state.get(BLOCK_KEY)
    if block is not None and not all(0 <= k < n for k in block[0] + block[1]):
        block = None  # from another image set
    if block is not None:
        _block(result, *block)
    if pair is not None:
        _pair_preview(result, int(pair[0]), int(pair[1]))
    else:
        st.caption("No pair selected yet: click a cell of either heatmap.")
    _exports(result, pair, block)
    return fig


def _exports(result: ExplorerResult, pair, block) -> None:
    """Downloads for scripts: tokens, all kernels, matchings of the selected pair/block."""
    with st.expander("Downloads for scripts: tokens, all kernels, matchings"):
        stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in
                       f"semrsm_{result.model_name}_{result.layer.name}")[:60]
        c1, c2, c3 = st.columns(3)
        arrays = (
            (c1, "Tokens + grid + names (.npz)", tokens_npz, "tokens.npz", "nav_dl_tokens_npz",
             "tokens (N, S, C) float32, grid (H, W), names, labels, model and layer; "
             "numpy.load(path, allow_pickle=False)."),
            (c1, "Tokens only (.npy)", tokens_npy, "tokens.npy", "nav_dl_tokens_npy",
             "The (N, S, C) float32 array alone, e.g. for python -m semrsm rsm --tokens."),
            (c2, "All kernels, both RSMs (.npz)", kernels_npz, "kernels.npz", "nav_dl_kernels",
             "spatial_/semantic_ × linear, cosine, rbf (N, N), the RBF bandwidths, "
             "names and labels."),
        )
        for col, label, export, suffix, key, tip in arrays:
            col.download_button(
                label, data=lambda f=export: f(result), file_name=f"{stem}_{suffix}",
                mime="application/octet-stream", on_click="ignore", key=key, help=tip,
            )
        chosen = []
        if pair is not None:
            chosen.append((int(pair[0]), int(pair[1])))
        if block is not None:
            chosen += [(i, j) for i in block[0] for j in block[1] if i != j][:2000]
        if chosen:
            c3.download_button(
                f"Matchings of {len(chosen)} selected pair(s) (.csv)",
                data=lambda: matchings_csv(result, chosen),
                file_name=f"{stem}_matchings.csv", mime="text/csv", on_click="ignore",
                key="nav_dl_matchings",
                help="For each pair (the clicked cell and the cells of the selected block): "
                "every position of one image, the position of the other matched to it, and "
                "their inner product.",
            )
        else:
            c3.caption("Click a cell or select a block to download the matchings of those pairs.")

