"""Embedding page: a map of the images from each RSM, side by side, explored like
TensorBoard's projector (search, class toggles, nearest-neighbour lines, lasso export)."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from pages._projector import fig_scale, px
from pages._widgets import csv_button, csv_download, page_result
from semrsm.analysis import nearest_neighbours
from semrsm.embedding import MIN_UMAP_POINTS, embed_rsm, neighbour_lines, search_images
from semrsm.explorer.tables import embedding_csv
from semrsm.figures.embedding import MAX_THUMBNAILS, embedding_figure
from semrsm.figures.rsm import breakable_name

st.title("Embedding")
st.markdown(
    "Each dot is an image, placed so that images an RSM calls similar land close together: "
    "the classic RSM on the left, the semantic one on the right. With labels, a good map shows "
    "each colour as its own cluster; translated crops of one photo spread out on the left and "
    "gather on the right. The axes have no units: only who sits next to whom matters. "
    "**Click** a dot to see the image and lines to its nearest neighbours; **search** to "
    "highlight images; draw a **lasso** (toolbar above the map) to list a group of images."
)

result = page_result(3, "A map needs at least three images.")
n = result.n
labels = result.labels

METHOD_HELP = (
    "How the map is drawn from the RSM's distances. UMAP and t-SNE keep each image's "
    "neighbours together (t-SNE exaggerates clusters); PCA shows the directions of largest "
    "variance (kernel PCA of the RSM); MDS tries to keep all distances. "
    f"auto: UMAP from {MIN_UMAP_POINTS} images on, MDS for fewer."
)
# values from a link may not fit a small set: the sliders' largest values
for key, top in (("emb_neighbours", max(2, min(50, n - 1))), ("emb_knn", max(1, min(10, n - 1)))):
    if st.session_state.get(key, 0) > top:
        st.session_state[key] = top
c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 1, 2])
method = c1.selectbox(
    "method",
    ["auto", "umap", "tsne", "pca", "mds"],
    key="emb_method",
    format_func={"auto": "auto", "umap": "UMAP", "tsne": "t-SNE", "pca": "PCA",
                 "mds": "MDS"}.get,
    help=METHOD_HELP,
)
neighbours = c2.slider(
    "UMAP neighbours",
    2,
    max(2, min(50, n - 1)),
    min(15, max(2, n - 1)),
    key="emb_neighbours",
    disabled=method not in ("auto", "umap"),
    help="How many neighbours UMAP looks at per image: small values show local detail, "
    "large values the overall layout.",
)
seed = int(c3.number_input("seed", 0, 10_000, 0, key="emb_seed",
                           help="Random start of UMAP, t-SNE and MDS; the same seed gives "
                           "the same map."))
three_d = c4.toggle("3-D", value=False, key="emb_3d",
                    help="A third axis you can rotate by dragging; thumbnails are 2-D only.")
thumbs = c5.toggle("thumbnails on the map", value=n <= MAX_THUMBNAILS, key="emb_thumbs",
                   disabled=three_d,
                   help=f"Small pictures next to the dots (up to {MAX_THUMBNAILS} images).")

f1, f2, f3 = st.columns([3, 3, 2])
query = f1.text_input(
    "Search by name or label",
    key="emb_search",
    placeholder="e.g. star, shape_0003",
    help="Highlights every image whose name or label contains the text (not case-sensitive); "
    "separate several words with commas. The others are faded.",
)
all_labels = sorted({str(x) for x in labels}) if labels is not None else []
if all_labels:
    if st.session_state.get("emb_classes") is None or not set(
        st.session_state["emb_classes"]
    ) <= set(all_labels):
        st.session_state["emb_classes"] = all_labels
    shown = f2.multiselect(
        "Classes shown",
        all_labels,
        key="emb_classes",
        help="Untick a class to hide its images from both maps (clicking a legend entry "
        "does the same for one view).",
    )
else:
    shown = []
k_lines = f3.slider(
    "neighbour lines",
    0,
    max(1, min(10, n - 1)),
    min(5, n - 1),
    key="emb_knn",
    help="After you click an image: lines to its k most similar images under each RSM "
    "(0 turns them off). Compare where its neighbours are in the two maps.",
)


@st.cache_resource(show_spinner=False)
def _umap_cache_on() -> int:
    """Switch numba's on-disk cache on for UMAP's functions, once per process, before the
    first map: the background warm-up does it too, but a visit right after a restart may
    come first, and UMAP would then compile its uncached functions again (about 10 s)."""
    from semrsm.explorer.warmup import cache_umap

    return cache_umap()


@st.cache_data(show_spinner=False, max_entries=32)
def _embed(key: str, which: str, kernel: str, method: str, seed: int, k: int, dims: int, _rsm):
    """One map per (RSM cache key, side, kernel, settings); the RSM itself is not hashed."""
    return embed_rsm(_rsm, kernel, method=method, seed=seed, n_neighbors=k, n_components=dims)


kernel = result.kernel
dims = 3 if three_d else 2
rsms = {"classic (spatio-semantic)": result.spatial_rsm, "semantic": result.semantic_rsm}
with st.spinner("Computing the maps (the first UMAP run of a session compiles for a few seconds)…"):
    if method in ("auto", "umap"):
        _umap_cache_on()
    emb = {
        title: _embed(result.key, which, kernel, method, seed, neighbours, dims, rsm)
        for (title, rsm), which in zip(rsms.items(), ("spatial", "semantic"), strict=True)
    }
if st.session_state.get("emb_selected") not in range(n):
    st.session_state["emb_selected"] = None


def _on_select() -> None:
    """A click selects one image; a lasso or box lists the images inside it."""
    state = st.session_state.get("emb_chart")
    try:
        sel = state.selection
        points = sel.points
    except (AttributeError, KeyError):
        return
    idx = []
    for p in points:
        cd = p.get("customdata")
        cd = cd[0] if isinstance(cd, (list, tuple)) else cd
        if isinstance(cd, (int, float)) and 0 <= int(cd) < n:
            idx.append(int(cd))
    if sel.get("lasso") or sel.get("box"):
        st.session_state["emb_lasso"] = sorted(set(idx))
    elif idx:
        st.session_state["emb_selected"] = idx[0]


selected = st.session_state["emb_selected"]
found = search_images(query, result.names, labels)
if query.strip():
    f1.caption(f"{len(found)} of {n} images match.")
hidden = [lab for lab in all_labels if lab not in shown]
lines = (
    {title: neighbour_lines(rsms[title], selected, k_lines) for title in rsms}
    if selected is not None and k_lines > 0
    else None
)
fig = embedding_figure(
    {k: e.coords for k, e in emb.items()},
    result.names,
    labels,
    thumbnails=result.thumbnails if thumbs and not three_d else None,
    methods={k: e.method for k, e in emb.items()},
    selected=selected,
    highlight=found,
    hidden=hidden,
    neighbours=lines,
    height=560 if three_d else 520,
    scale=fig_scale(),
)
st.plotly_chart(
    fig,
    key="emb_chart",
    on_select=_on_select,
    selection_mode=("points", "lasso", "box"),
    config={"displaylogo": False},
)
first = next(iter(emb.values()))
st.caption(
    f"{first.note} Hover a dot for the image's name; click it to see the image below."
    + (f" Thumbnails are left off above {MAX_THUMBNAILS} images." if thumbs and n > MAX_THUMBNAILS else "")
)
csv_download(
    st,
    "Coordinates of all images (.csv)",
    lambda maps=emb: embedding_csv(
        {k: e.coords for k, e in maps.items()},
        result.names,
        labels,
        methods={k: e.method for k, e in maps.items()},
    ),
    result,
    f"embedding_{first.method}",
    "emb_dl_coords",
    "Index, name, label and the coordinates of every image in both maps (hidden classes "
    "included).",
)

# ----------------------------------------------------------------------------- lasso
lasso = [k for k in st.session_state.get("emb_lasso", []) if 0 <= k < n]
if lasso:
    st.subheader(f"Lasso selection: {len(lasso)} images")
    table = pd.DataFrame(
        {
            "index": lasso,
            "name": [result.names[k] for k in lasso],
            "label": [labels[k] if labels is not None else "" for k in lasso],
        }
    )
    st.image([result.thumbnails[k] for k in lasso[:60]],
             caption=[breakable_name(result.names[k]) for k in lasso[:60]], width=px(96))
    d1, d2 = st.columns([1, 4])
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    csv_button(d1, "Selection (.csv)", buf.getvalue(), "semrsm_selection_" + result.layer.name,
               "emb_dl_lasso", "Index, name and label of every image inside the lasso.")
    if d2.button("Clear the selection", key="emb_clear_lasso",
                 help="Forget the lasso selection (draw a new one on the map)."):
        st.session_state["emb_lasso"] = []
        st.rerun()

# ----------------------------------------------------------------------------- one image
if selected is not None:
    st.subheader(f"{result.names[selected]}")
    cols = st.columns([1, 3])
    cols[0].image(result.thumbnails[selected], caption=breakable_name(result.names[selected]),
                  width=px(160))
    with cols[1]:
        k = min(5, n - 1)
        for title, rsm in (("classic", result.spatial_rsm), ("semantic", result.semantic_rsm)):
            idx, sims = nearest_neighbours(rsm, selected, k)
            st.markdown(f"**Closest under the {title} RSM**")
            st.image(
                [result.thumbnails[t] for t in idx],
                caption=[f"{breakable_name(result.names[t])} · {v:.3f}"
                         for t, v in zip(idx, sims, strict=True)],
                width=px(96),
            )
