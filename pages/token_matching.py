"""Token-matching page: which positions of two images the matching pairs up, and why the
semantic similarity is what it is."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import streamlit as st

from pages._projector import fig_scale
from pages._sidebar import SELECTED_PAIR_KEY
from pages._widgets import (
    csv_download,
    gain_delta,
    image_choices,
    page_result,
    store_clicked_point,
)
from semrsm.analysis import MATCHER_NAMES, explain_pair, matcher_text, token_alternatives
from semrsm.explorer import describe_pair
from semrsm.explorer.tables import pair_matching_csv
from semrsm.figures.matching import (
    alternatives_figure,
    contribution_maps_figure,
    contribution_range,
    inner_product_figure,
    matching_overlay,
)

#: the S x S matrix is drawn up to this many positions (beyond, it is too heavy for a browser)
MAX_MATRIX_TOKENS = 400
DISPLAY_PX = 320

st.title("Token matching")
st.markdown(
    "A layer describes each image as a grid of **tokens**, one feature vector per position. "
    "The classic RSM compares token *s* of one image only with token *s* of the other; the "
    "semantic RSM first pairs every token with its best partner anywhere in the other image "
    "(the optimal matching). Pick two images (or click a cell on the RSM page) to see the "
    "pairs, how much each contributes, and where the extra similarity comes from."
)

result = page_result(2, "This view needs at least two images.")
n = result.n
names = image_choices(result)
h, w = result.grid
s_tokens = h * w
config = result.config

# a pair chosen elsewhere (the RSM page) wins over this page's previous choice, once
picked = st.session_state.get(SELECTED_PAIR_KEY)
if (
    isinstance(picked, (tuple, list))
    and len(picked) == 2
    and all(isinstance(k, Integral) and 0 <= k < n for k in picked)  # out of range: noted, no stand-in
    and tuple(picked) != st.session_state.get("tm_seen_pair")
):
    st.session_state["tm_seen_pair"] = tuple(picked)
    st.session_state["tm_i"], st.session_state["tm_j"] = int(picked[0]), int(picked[1])
if st.session_state.get("tm_i") not in range(n) or st.session_state.get("tm_j") not in range(n):
    # first visit: a pair that shows the point (two crops far apart, or the same-label
    # pair that gains most from the matching)
    try:
        tip = describe_pair(result)
        st.session_state["tm_i"], st.session_state["tm_j"] = int(tip["i"]), int(tip["j"])
    except ValueError:
        st.session_state["tm_i"], st.session_state["tm_j"] = 0, 1

c1, c2, c3 = st.columns([3, 3, 2])
i = c1.selectbox("first image (a)", range(n), key="tm_i", format_func=names.__getitem__)
j = c2.selectbox("second image (b)", range(n), key="tm_j", format_func=names.__getitem__)
top_n = c3.slider(
    "matches to draw",
    0,
    s_tokens,
    min(30, s_tokens),
    key="tm_lines",
    help="The strongest pairs (largest contribution) are drawn first.",
)
st.session_state[SELECTED_PAIR_KEY] = (int(i), int(j))
st.session_state["tm_seen_pair"] = (int(i), int(j))

perm_cached, _ = result.matching(int(i), int(j))
tok = result.tokens
# the matcher as the sidebar names it: in sentences (``batch-optimal``) and in legends,
# with its window or k (``batch-optimal, window 128``)
matcher_word = MATCHER_NAMES.get(config.matcher, config.matcher)
matcher_name = matcher_text(config.matcher, result.params)
ex = explain_pair(tok[i], tok[j], config.matcher, grid=(h, w), perm=perm_cached, **result.params)
crange = contribution_range(ex.inner)
img_a, img_b = result.model_view(int(i)), result.model_view(int(j))
kern = result.kernel

m1, m2, m3 = st.columns(3)
m1.metric(f"classic ({kern})", f"{result.spatial_rsm[i, j]:.4f}")
m2.metric(
    f"semantic ({kern})",
    f"{result.semantic_rsm[i, j]:.4f}",
    **gain_delta(result.semantic_rsm[i, j] - result.spatial_rsm[i, j], 4, suffix=""),
)
moved = float(np.mean(ex.perm != np.arange(s_tokens)))
m3.metric("tokens matched elsewhere", f"{moved:.0%}")
if config.matcher != "exact":
    ratio = ex.ratio_to_optimal
    st.info(
        f"The **{matcher_word}** matcher reaches **{ratio:.2%}** of the optimal matched inner "
        f"product for this pair (Σ = {ex.value:.4g} against the optimum {ex.exact_value:.4g}, "
        f"a gap of {ex.gap_to_optimal:.3g})."
        if np.isfinite(ratio)
        else f"The **{matcher_word}** matcher gives Σ = {ex.value:.4g}; the optimum is "
        f"{ex.exact_value:.4g}."
    )
if i == j:
    st.caption("Both sides are the same image: every token is matched to itself.")

# ----------------------------------------------------------------------------- focus token
order = np.argsort(-ex.contributions, kind="stable")


def _cell(s: int) -> str:
    r, c = divmod(int(s), w)
    return f"row {r}, col {c}"


# The focus token belongs to one pair of one layer's grid: when the layer, the images or
# the pair change, it moves to the strongest match of the new pair (a stale index would
# name another cell, often on the background, than the one the text explains).
focus_context = (result.key, int(i), int(j), s_tokens)
if st.session_state.get("tm_focus_context") is None and st.session_state.get("tm_focus") in range(
    s_tokens
):
    # the session's first visit with a focus token already set (by a link): keep it
    st.session_state["tm_focus_context"] = focus_context
elif (
    st.session_state.get("tm_focus_context") != focus_context
    or st.session_state.get("tm_focus") not in range(s_tokens)
):
    st.session_state["tm_focus_context"] = focus_context
    st.session_state["tm_focus"] = int(order[0])


def _on_overlay_select() -> None:
    """A click on a match centre focuses that token (runs before the widgets are drawn)."""
    store_clicked_point("tm_overlay", "tm_focus", s_tokens)


st.subheader("The matching")
overlay_slot = st.container()
caption_slot = st.container()
fc1, fc2 = st.columns([1, 2])
with fc1:
    # drawn before the figure that uses it, so the box, the figure and the text all show
    # the value of this run
    focus = int(
        st.selectbox(
            "focus token of image a",
            range(s_tokens),
            key="tm_focus",
            format_func=_cell,
        )
    )
    partner = int(ex.perm[focus])
    rank = int(np.sum(ex.inner[focus] > ex.inner[focus, partner])) + 1
    st.markdown(
        f"Token **{_cell(focus)}** of a is matched to **{_cell(partner)}** of b, contributing "
        f"**{ex.contributions[focus]:.4g}**. Its same-position partner would give "
        f"{ex.identity_contributions[focus]:.4g}. The partner is its no. {rank} candidate"
        + (
            "."
            if rank == 1
            else ": a token cannot always get its favourite, because every token of b is "
            "used once."
        )
    )
alt_pos, alt_val = token_alternatives(ex.inner, focus, top=6)
with fc2:
    st.plotly_chart(
        alternatives_figure(
            alt_pos, alt_val, partner, grid_w=w, partner_value=float(ex.inner[focus, partner]),
            scale=fig_scale(),
        ),
        key="tm_alts",
        config={"displayModeBar": False},
    )
fig = matching_overlay(
    img_a,
    img_b,
    (h, w),
    ex.perm,
    ex.contributions,
    top_n=top_n,
    names=(result.names[i], result.names[j]),
    display=DISPLAY_PX,
    focus=focus,
    alternatives=alt_pos.tolist(),
    crange=crange,
    scale=fig_scale(),
)
overlay_slot.plotly_chart(
    fig,
    key="tm_overlay",
    width="content",
    on_select=_on_overlay_select,
    selection_mode="points",
    config={"displaylogo": False},
)
caption_slot.caption(
    f"Each line joins token centres the matching pairs up, coloured by its contribution "
    f"⟨a_s, b_π(s)⟩ (the inner product of the two feature vectors; a white outline keeps "
    f"dark lines visible); the {top_n} strongest of {s_tokens} are drawn. The cyan boxes "
    "show the focused token and its partner, the yellow dashed boxes its next-best "
    "candidates. Click a dot to focus its token."
)
csv_download(
    st,
    "Matching and contributions (.csv)",
    lambda e=ex, pair=(result.names[i], result.names[j]): pair_matching_csv(e, pair),
    result,
    f"matching_{i}_{j}",
    "dl_tm_matching",
    "One row per position of image a: the position of b matched to it, its contribution, "
    "the same-position contribution, the partner's rank among its candidates and the "
    "optimal partner.",
)

st.subheader("Where the similarity comes from")
st.markdown(
    "Each token's contribution drawn on the image: top row with the identity alignment "
    "(what the classic RSM adds up), bottom row with the matching (what the semantic RSM adds "
    "up). On image b the bottom row shows each token's contribution to the pair it belongs to."
)
st.plotly_chart(
    contribution_maps_figure(
        img_a,
        img_b,
        ex.maps("identity"),
        ex.maps("matched"),
        matched_label=f"{matcher_name} matching (semantic)",
        crange=crange,
        scale=fig_scale(),
    ),
    key="tm_maps",
    width="content",
    config={"displaylogo": False},
)

# ----------------------------------------------------------------------------- how it works
st.subheader("How it works")
st.markdown(
    f"Put the {s_tokens} tokens of each image in rows: the matrix below holds the inner product "
    "of every token of a (rows) with every token of b (columns). The **classic** similarity adds "
    "up the diagonal (token s with token s). The **semantic** similarity picks one entry in every "
    "row and every column so that the sum is as large as possible: a linear assignment problem, "
    "solved exactly by the Hungarian/auction method. Any other choice, the diagonal included, "
    "sums to less, which is why, with the exact matcher, the linear and cosine semantic "
    "similarities are never below the classic ones. The RBF kernel is the exception: each RSM "
    "has its own bandwidth σ² (the median squared distance of its own pairs), and the semantic "
    "RSM's is smaller, so an RBF semantic value can be lower than the classic one."
)
if s_tokens <= MAX_MATRIX_TOKENS:
    st.plotly_chart(
        inner_product_figure(
            ex.inner,
            ex.exact_perm,
            None if config.matcher == "exact" else ex.perm,
            matcher=matcher_name,
            grid_w=w,
            crange=crange,
            scale=fig_scale(),
        ),
        key="tm_matrix",
        width="content",
        config={"displaylogo": False},
    )
else:
    st.info(
        f"This layer has {s_tokens} positions, so the matrix has {s_tokens**2:,} entries, too many "
        "to draw here. Pick a deeper layer in the sidebar to see it."
    )

s1, s2 = st.columns(2)
s1.metric("Σ along the diagonal (identity)", f"{ex.identity_value:.5g}")
s2.metric(
    f"Σ along the {'optimal' if config.matcher == 'exact' else matcher_word} assignment",
    f"{ex.value:.5g}",
    delta=f"{ex.value - ex.identity_value:+.5g}",
)
sig = result.sigma2 or {}
k = ex.kernels(sig.get("spatial"), sig.get("semantic"))
na, nb = np.sqrt(ex.norm_a_sq), np.sqrt(ex.norm_b_sq)
st.markdown(
    "From the sum Σ to each kernel's value (the norms do not depend on the matching):\n\n"
    f"* **linear** = Σ\n"
    f"* **cosine** = Σ / (‖a‖ ‖b‖), with ‖a‖ = {na:.4g}, ‖b‖ = {nb:.4g}\n"
    "* **RBF** = exp(−(‖a‖² + ‖b‖² − 2 Σ) / (2σ²)), σ² the median squared distance over the set, "
    "for each RSM its own: of the position-by-position distances for the classic RSM"
    + (f" (σ² = {sig['spatial']:.4g})" if sig.get("spatial") else "")
    + ", of the matched distances for the semantic RSM"
    + (f" (σ² = {sig['semantic']:.4g})" if sig.get("semantic") else "")
)
rows = []
for kernel, label in (("linear", "linear"), ("cosine", "cosine"), ("rbf", "RBF")):
    row = {"kernel": label}
    for kind, rsms, col in (
        ("spatial", result.spatial, "classic (identity)"),
        ("semantic", result.semantic, "semantic (matching)"),
    ):
        val = k[kind].get(kernel)
        row[col] = "—" if val is None else f"{val:.5g}"
        row[f"{col}: in the RSM"] = f"{rsms[kernel][i, j]:.5g}"
    rows.append(row)
st.dataframe(rows, hide_index=True)
st.caption(
    "The values computed here from the two sums match the RSM entries (up to rounding; "
    "on a GPU the features are multiplied in single precision)."
)
