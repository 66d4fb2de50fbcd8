"""RSM page: the classic and the semantic RSM side by side, their difference, histograms."""

from __future__ import annotations

import streamlit as st

from pages._heatmap_nav import heatmap_navigation
from pages._how_it_works import how_it_works
from pages._memo import derived
from pages._projector import px, scaled
from pages._sidebar import SELECTED_PAIR_KEY, TOKEN_PAGE
from pages._widgets import figure_download, file_stem, gain_delta, image_choices, page_result
from semrsm.explorer import describe_pair, summarize
from semrsm.explorer.summary import pair_explanation
from semrsm.figures.rsm import (
    SPATIAL_TITLE,
    difference_heatmap,
    semantic_title,
    short_name,
    similarity_histograms,
)
from semrsm.figures.schematic import two_rsms_schematic

st.title("Similarity matrices: classic vs semantic")
st.markdown(
    "A network turns each image into a grid of **tokens**, one feature vector per position "
    "of the chosen layer. A representational similarity matrix (RSM) scores every pair of "
    "images: the **classic** (spatio-semantic) RSM compares the two grids position by "
    "position, the **semantic** RSM first pairs up the positions of the two images as well as "
    "possible, so it asks *what* is in the images, not *where*. Try an early layer or the "
    "*translated crops* image set to see them disagree, and click a cell to preview that pair."
)


@st.cache_resource(show_spinner=False)
def _schematic():
    return two_rsms_schematic()


# Until this session has a result: a picture of what the two RSMs compare, to look at
# while the model loads and the first RSMs are computed (the browser also loads the chart
# library meanwhile, instead of after the result came: docs/APP.md).
_WAITED = "rsm_page_had_a_result"
waiting = st.empty()
if not st.session_state.get(_WAITED):
    with waiting.container():
        st.markdown("**While the first result is prepared: what the two RSMs compare**")
        st.plotly_chart(_schematic(), key="rsm_schematic",
                        config={"displaylogo": False, "staticPlot": True})
        st.caption(
            "Two images with the same object (red and orange tokens) at different places. "
            "The classic RSM compares the tokens at the same positions, so the moved object "
            "meets background (dotted red lines) and the images look only partly alike; the "
            "semantic RSM pairs every token with its best partner, so the same content is "
            "found wherever it is. On real images the partners are similar rather than "
            "equal, and the semantic RSM is never below the classic one for the linear and "
            "cosine kernels."
        )

result = page_result()
waiting.empty()
st.session_state[_WAITED] = True
how_it_works()  # the same picture, one click away for good (collapsed, drawn when opened)
if result.skipped:
    st.warning(
        f"{len(result.skipped)} file(s) could not be used and were skipped:\n\n"
        + "\n".join(f"- **{name}**: {why}" for name, why in result.skipped[:20])
        + ("\n- …" if len(result.skipped) > 20 else "")
    )

kernel = result.kernel
spatial, semantic = result.spatial_rsm, result.semantic_rsm
summary = derived("summary", result, (), lambda: summarize(result))

# ----------------------------------------------------------------------------- numbers
if result.labels is not None and summary.get("n_same", 0) > 0:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "same label · classic",
        f"{summary['same_spatial']:.3f}",
        help="mean similarity of pairs of two different images with the same label "
        "(self-similarities, the diagonal, left out; so in every mean on this page)",
    )
    c2.metric(
        "same label · semantic",
        f"{summary['same_semantic']:.3f}",
        **gain_delta(summary["same_gap"]),
    )
    c3.metric("different label · classic", f"{summary['diff_spatial']:.3f}")
    c4.metric(
        "different label · semantic",
        f"{summary['diff_semantic']:.3f}",
        **gain_delta(summary["diff_gap"], color="off"),
    )
else:
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "mean · classic",
        f"{summary['mean_spatial']:.3f}",
        help="mean similarity of pairs of two different images (self-similarities, the "
        "diagonal, left out; so in every mean on this page)",
    )
    c2.metric(
        "mean · semantic",
        f"{summary['mean_semantic']:.3f}",
        **gain_delta(summary["mean_gap"]),
    )
    c3.metric("pairs improved by matching", f"{summary['frac_improved']:.0%}")

# ----------------------------------------------------------------------------- heatmaps
# One figure of both RSMs: ordering, click preview and block selection (pages/_heatmap_nav.py).
# Each selectable heatmap carries a marker per cell, so drawing it once, not twice, is
# what keeps the page quick in the browser.
fig = heatmap_navigation(result)


def _open_pair(pair: tuple[int, int]) -> None:
    st.session_state[SELECTED_PAIR_KEY] = pair
    if TOKEN_PAGE.is_file():
        st.switch_page("pages/token_matching.py")


with st.expander("Open a pair in the token-matching view"):
    names = image_choices(result)
    current = st.session_state.get(SELECTED_PAIR_KEY, (0, 1))
    pc1, pc2, pc3 = st.columns([3, 3, 2])
    i, j = (
        col.selectbox(
            f"{which} image",
            range(result.n),
            index=min(current[k], result.n - 1),
            format_func=names.__getitem__,
            key=f"rsm_pair_{ij}",
        )
        for k, (col, which, ij) in enumerate(((pc1, "first", "i"), (pc2, "second", "j")))
    )
    pc3.markdown(f"classic **{spatial[i, j]:.3f}**  \nsemantic **{semantic[i, j]:.3f}**")
    if TOKEN_PAGE.is_file():
        if st.button("Open in token matching", key="rsm_open_pair"):
            _open_pair((int(i), int(j)))
    else:
        st.session_state[SELECTED_PAIR_KEY] = (int(i), int(j))
        st.caption("The token-matching view will show how the positions of these two are paired.")


# ----------------------------------------------------------------------------- explanation


def _explanation() -> tuple[dict, str, str]:
    """The pair that best explains the difference, with its heading and text."""
    pair_ex = describe_pair(result)
    return (pair_ex, *pair_explanation(result, pair_ex, summary))


ex, heading, text = derived("pair_explanation", result, (), _explanation)
st.subheader(heading)
c_img, c_txt = st.columns([1, 2])
c_img.image(
    [result.images[ex["i"]], result.images[ex["j"]]],
    caption=[short_name(result.names[ex["i"]], 18), short_name(result.names[ex["j"]], 18)],
    width=px(150),
)
c_txt.markdown(text)

# ----------------------------------------------------------------------------- difference
st.subheader("Where the matching matters")
d1, d2 = st.columns(2)
fig_diff = derived(
    "rsm_difference",
    result,
    (),
    lambda: difference_heatmap(
        spatial, semantic, result.names, result.labels, kernel=kernel, height=440
    ),
)
d1.plotly_chart(scaled(fig_diff, ticks=False), key="rsm_difference", config={"displaylogo": False})
fig_hist = derived(
    "rsm_histograms",
    result,
    (),
    lambda: similarity_histograms(
        spatial, semantic, result.labels, kernel=kernel, height=440,
        titles=(SPATIAL_TITLE, semantic_title(result.config.matcher, result.params)),
    ),
)
d2.plotly_chart(scaled(fig_hist), key="rsm_histograms", config={"displaylogo": False})
d2.caption(
    "Off-diagonal similarities, each pair once"
    + (
        ", split into pairs with the same label and pairs with different labels; "
        "dashed lines mark the means."
        if result.labels is not None
        else "."
    )
)

# ----------------------------------------------------------------------------- downloads
st.subheader("Downloads")

stem = file_stem(f"semrsm_{result.model_name}_{result.layer.name}_{kernel}_{result.config.matcher}")
cols = st.columns(4)
cols[0].download_button(
    "Bundle (.npz)",
    data=result.bundle_npz,
    file_name=f"{stem}.npz",
    mime="application/octet-stream",
    on_click="ignore",
    key="dl_bundle",
    help="Both RSMs with image names, labels, model, layer, kernel and matcher "
    "(numpy.load(path, allow_pickle=False)); see the README for rsatoolbox.",
)
_FORMATS = (("npy", result.rsm_npy, "application/octet-stream"), ("csv", result.rsm_csv, "text/csv"))
for col, which, title in ((cols[1], "spatial", "classic"), (cols[2], "semantic", "semantic")):
    for ext, export, mime in _FORMATS:
        col.download_button(
            f"{title} RSM (.{ext})",
            data=lambda w=which, f=export: f(w),
            file_name=f"{stem}_{which}.{ext}",
            mime=mime,
            on_click="ignore",
            key=f"dl_{which}_{ext}",
        )
with cols[3]:
    for key, f, title in (
        ("heatmaps", fig, "Heatmaps"),
        ("difference", fig_diff, "Difference"),
        ("histograms", fig_hist, "Histograms"),
    ):
        figure_download(st, f"{title} (.html)", f, f"{stem}_{key}.html", f"dl_fig_{key}")
