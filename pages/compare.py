"""Compare page: configuration A (the sidebar) against configuration B (chosen here) on the
same images, both RSM kinds; a layer × layer table of two models; a reference RSM/RDM."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages._projector import fig_scale, scaled
from pages._sidebar import (
    OTHER_MODEL,
    WEIGHT_LABELS,
    get_cache,
    get_model,
    show_error,
    streamlit_progress,
)
from pages._widgets import csv_button, file_stem, page_result
from semrsm.analysis import AnalysisError
from semrsm.analysis.ordering import image_order
from semrsm.analysis.reference import load_reference
from semrsm.analysis.reference_files import (
    MAX_REFERENCE_TEXT_BYTES,
    REFERENCE_SUFFIXES,
    max_reference_images,
)
from semrsm.analysis.statistics import COMPARE_METHODS, METHOD_LABELS
from semrsm.explorer import compute, default_layer
from semrsm.explorer.comparison import (
    compare_layer_grid,
    compare_results,
    compare_with_reference,
    config_label,
    same_representation,
    shared_config,
)
from semrsm.figures.compare import comparison_figure, layer_grid_figure, reference_figure
from semrsm.figures.navigation import heatmap_panels
from semrsm.layers import list_layers
from semrsm.models import DEMO_MODELS, POPULAR_MODELS

st.title("Compare representations")
st.markdown(
    "Do two networks (or two layers) see the same images as alike? **A** is the configuration "
    "in the sidebar, **B** is chosen below; both use the sidebar's images, kernel and matcher. "
    "Each pair of RSMs is scored three ways — **kernel CKA** (the RSMs used as kernel "
    "matrices), and **RSA** with Spearman's ρ and Kendall's τ_a over the pairs of images — for "
    "the classic RSMs and for the semantic ones, with a bootstrap interval over images. If "
    "semantic scores are higher, the two representations hold similar content at different "
    "places."
)

ra = page_result(3, "Comparing needs at least three images.")
a = ra.config

# ----------------------------------------------------------------------------- B
st.subheader("Configuration B")
choices = [*DEMO_MODELS, *POPULAR_MODELS, OTHER_MODEL]
default_b = next((m for m in DEMO_MODELS if m != a.model), choices[0])
if st.session_state.get("cmp_model_b") not in choices:
    st.session_state["cmp_model_b"] = default_b
c1, c2, c3 = st.columns([3, 2, 3])
choice = c1.selectbox(
    "Model of B",
    choices,
    key="cmp_model_b",
    help="The network to compare with A. Pick the same model as A to compare two of its "
    "layers; pick the other demo model to compare two networks.",
)
model_b = (
    c1.text_input("timm name of B", key="cmp_model_b_custom", help="Any timm model name.").strip()
    if choice == OTHER_MODEL
    else choice
)
w_options = ["default", "none"] if model_b in DEMO_MODELS else ["pretrained", "none"]
if st.session_state.get("cmp_weights_b") not in w_options:
    st.session_state["cmp_weights_b"] = w_options[0]
weights_b = c2.radio(
    "Weights of B",
    w_options,
    key="cmp_weights_b",
    format_func=WEIGHT_LABELS.get,
    help="'none' is the same architecture with random weights: a baseline that shows how "
    "much of the agreement comes from training.",
)
if not model_b:
    st.info("Type a timm model name for B.")
    st.stop()
b0 = shared_config(a, a.replace(model=model_b, weights=weights_b, checkpoint=None, layer=None))
try:
    model_obj_b = get_model(b0)
    layers_b = list_layers(model_obj_b)
except Exception as err:  # noqa: BLE001 - shown as a message
    show_error(err)
    st.stop()
names_b = [li.name for li in layers_b]
if st.session_state.get("cmp_layer_b") not in names_b:
    st.session_state["cmp_layer_b"] = default_layer(layers_b).name
by_name_b = {li.name: li for li in layers_b}
layer_b = c3.selectbox(
    "Layer of B",
    names_b,
    key="cmp_layer_b",
    format_func=lambda nm: f"{nm} — {by_name_b[nm].grid[0]}×{by_name_b[nm].grid[1]} positions",
    help="Layers with many positions take longer to match exactly.",
)
b = b0.replace(layer=layer_b)
if same_representation(a, b):
    st.warning(
        "B is the same as A (same model, weights and layer), so every score below is a "
        "trivial 1.000: the two RSMs are identical. Pick another layer or model for B, or "
        "the weights *none* to see how much of the agreement comes from training."
    )

s1, s2, s3 = st.columns(3)
n_boot = int(
    s1.number_input(
        "Bootstrap draws",
        0,
        10_000,
        1000,
        step=100,
        key="cmp_nboot",
        help="How many times the images are re-drawn (with replacement) to get the interval. "
        "More draws: a steadier interval, slower. 0: no interval.",
    )
)
ci = s2.select_slider(
    "Confidence level",
    [0.8, 0.9, 0.95, 0.99],
    value=0.95,
    key="cmp_ci",
    format_func=lambda v: f"{v:.0%}",
    help="The share of bootstrap results the interval spans.",
)
seed = int(
    s3.number_input(
        "Bootstrap seed",
        0,
        10_000,
        0,
        key="cmp_seed",
        help="The same seed gives the same interval; the library and the command line use 0.",
    )
)

try:
    with streamlit_progress(f"Computing B: {config_label(b)}") as progress:
        rb = compute(b, get_cache(), progress=progress, model=model_obj_b, with_proba=False)
except Exception as err:  # noqa: BLE001
    show_error(err)
    st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def _compare(key_a: str, key_b: str, kernel: str, n_boot: int, ci: float, seed: int, _ra, _rb):
    return compare_results(_ra, _rb, n_boot=n_boot, ci=ci, seed=seed)


with st.spinner("Bootstrapping over images…"):
    res = _compare(ra.key, rb.key, ra.kernel, n_boot, float(ci), seed, ra, rb)

# ----------------------------------------------------------------------------- A vs B
st.subheader(f"A = {res.names[0]}  vs  B = {res.names[1]}")
table = pd.DataFrame(
    {
        kind: [format(res.estimates[kind][m], ".4f") for m in COMPARE_METHODS]
        for kind in res.estimates
    },
    index=[METHOD_LABELS[m] for m in COMPARE_METHODS],
)
st.table(table)
st.caption(
    f"{res.n} images, {ra.kernel} kernel. Value on all images, then the {res.ci:.0%} bootstrap "
    f"interval over {res.n_boot} re-draws of the images (pairs of an image with its own copy are "
    "left out). 1 = the two RSMs agree perfectly; the last column is the gain from matching, "
    "with its own (paired) interval."
)
st.plotly_chart(comparison_figure(res, scale=fig_scale()), key="cmp_summary", config={"displaylogo": False})
st.dataframe(pd.DataFrame(res.rows()), key="cmp_rows", hide_index=True)
stem = file_stem(f"semrsm_compare_{res.names[0]}_vs_{res.names[1]}")
csv_button(
    st, "Comparison results (.csv)", res.to_csv(), stem, "cmp_dl_csv",
    "One row per kind and statistic: value, interval, images, draws, kernel.",
)

st.markdown("**The four RSMs** (one colour scale; images grouped by label)")
order = image_order("label", ra.n, labels=ra.labels)
fig4 = heatmap_panels(
    {
        f"A classic · {res.names[0]}": ra.spatial_rsm,
        f"A semantic · {res.names[0]}": ra.semantic_rsm,
        f"B classic · {res.names[1]}": rb.spatial_rsm,
        f"B semantic · {res.names[1]}": rb.semantic_rsm,
    },
    ra.names,
    ra.labels,
    order=order,
    cols=2,
    kernel=ra.kernel,
    selectable=False,
    height=420,
)
st.plotly_chart(scaled(fig4, ticks=False), key="cmp_heatmaps", config={"displaylogo": False})

# ----------------------------------------------------------------------------- layer x layer
st.subheader("Layer × layer")
st.markdown(
    f"Every layer of **{a.model}** (rows) against every layer of **{model_b}** (columns): "
    "where do the two networks agree, and does matching positions make them agree more?"
)
model_obj_a = get_model(a)
layers_a = list_layers(model_obj_a)
quick = lambda ls: [li.name for li in ls if li.num_tokens <= 256]  # noqa: E731
l1, l2, l3 = st.columns([3, 3, 2])
pick_a = l1.multiselect(
    f"Layers of A ({a.model})",
    [li.name for li in layers_a],
    default=quick(layers_a) or [layers_a[-1].name],
    key="cmp_layers_a",
    help="Layers with up to 256 positions are picked at first; larger ones take longer.",
)
pick_b = l2.multiselect(
    f"Layers of B ({model_b})",
    names_b,
    default=quick(layers_b) or [names_b[-1]],
    key="cmp_layers_b",
    help="Columns of the table.",
)
method = l3.selectbox(
    "Statistic",
    list(COMPARE_METHODS),
    format_func=METHOD_LABELS.get,
    key="cmp_method",
    help="CKA compares the whole matrices; Spearman and τ_a only the order of the pairs.",
)
grid_key = (ra.key, rb.key, tuple(pick_a), tuple(pick_b))
if st.button(
    "Compute the layer table",
    key="cmp_grid_go",
    help="Computes both RSMs of every picked layer (cached for next time), then the table.",
):
    try:
        with streamlit_progress("Layers") as progress:
            st.session_state["cmp_grid"] = (
                grid_key,
                compare_layer_grid(a, b, pick_a, pick_b, get_cache(), methods=COMPARE_METHODS,
                                   progress=progress, models=(model_obj_a, model_obj_b)),
            )
    except Exception as err:  # noqa: BLE001
        show_error(err)
grid = st.session_state.get("cmp_grid")
if grid is not None and grid[0] == grid_key:
    lc = grid[1]
    st.plotly_chart(layer_grid_figure(lc, method, scale=fig_scale()), key="cmp_grid_fig",
                    config={"displaylogo": False})
    per = lc.matrices[method]
    st.caption(
        f"Mean over the table: classic {per['classic'].mean():.3f}, semantic "
        f"{per['semantic'].mean():.3f}; semantic higher in "
        f"{(per['semantic'] > per['classic']).mean():.0%} of the cells."
    )
    st.download_button("Layer table (.csv)", data=lc.to_csv(), file_name=f"{stem}_layers.csv",
                       mime="text/csv", on_click="ignore", key="cmp_dl_layers",
                       help="Every pair of layers and statistic: classic, semantic, difference.")
elif grid is not None:
    st.caption("The layers changed: compute the table again.")

# ----------------------------------------------------------------------------- reference
st.subheader("Against a reference")
st.markdown(
    "Upload an RSM or RDM of the same images — human similarity judgements, another model, "
    "brain data — as `.npy` or `.csv`/`.txt` (N×N in the image order of this set; a CSV may "
    "name its images in a header row, as this app's CSV download does) or as rsatoolbox's "
    "HDF5 file (`rdms.save(path, file_type='hdf5')`, `.hdf5`/`.h5`). Pickles (`.pkl`) are "
    "not accepted: reading one can run code. Each picked layer of A is compared with it. "
    "Uploads are not carried by links."
)
r1, r2 = st.columns([3, 2])
up = r1.file_uploader(
    "Reference RSM/RDM",
    type=[s.lstrip(".") for s in REFERENCE_SUFFIXES],
    key="cmp_reference",
    help=f"An N×N matrix for the N images of the sidebar's set, in the same order: .npy, "
    f".csv/.txt (at most {MAX_REFERENCE_TEXT_BYTES // 2**20} MiB) or rsatoolbox's .hdf5/.h5; "
    f"at most {max_reference_images():,} images.",
)
kind = r2.radio(
    "It holds",
    ["auto", "similarity", "dissimilarity"],
    key="cmp_ref_kind",
    horizontal=True,
    help="auto: a zero diagonal means dissimilarities (an RDM), which are negated so that "
    "higher always means more agreement.",
)
ref = None
if up is not None:
    try:
        ref = load_reference(up.getvalue(), up.name, kind=kind)
    except AnalysisError as err:  # a bad file: what is wrong and what to do, no traceback
        st.error(f"**The reference file cannot be used.** {err}")
if ref is not None:
    try:
        with streamlit_progress("Layers") as progress:
            rc = compare_with_reference(ref, a, pick_a or [ra.layer.name], get_cache(),
                                        n_boot=n_boot, ci=float(ci), seed=seed,
                                        progress=progress, model=model_obj_a)
    except Exception as err:  # noqa: BLE001
        show_error(err)
    else:
        st.caption(f"{ref.source}, read as a {ref.kind}.")
        st.plotly_chart(reference_figure(rc, method, scale=fig_scale()), key="cmp_ref_fig",
                        config={"displaylogo": False})
        st.dataframe(pd.DataFrame(rc.rows()), key="cmp_ref_rows", hide_index=True)
        st.download_button("Reference comparison (.csv)", data=rc.to_csv(),
                           file_name=f"{stem}_reference.csv", mime="text/csv",
                           on_click="ignore", key="cmp_dl_ref",
                           help="One row per layer, kind and statistic.")
