"""Embedding page: a 2-D map of the images from each RSM, side by side."""

from __future__ import annotations

import streamlit as st

from pages._widgets import page_result, store_clicked_point
from semrsm.analysis import nearest_neighbours
from semrsm.embedding import MIN_UMAP_POINTS, embed_rsm
from semrsm.figures.embedding import embedding_figure

st.title("Embedding")
st.markdown(
    "Each dot is an image, placed so that images an RSM calls similar land close together: "
    "the classic RSM on the left, the semantic one on the right. With labels, a good map shows "
    "each colour as its own cluster; translated crops of one photo spread out on the left and "
    "gather on the right. The axes have no units: only who sits next to whom matters."
)

result = page_result(3, "A map needs at least three images.")
n = result.n

c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox(
    "method",
    ["auto", "umap", "mds"],
    key="emb_method",
    help=f"auto: UMAP from {MIN_UMAP_POINTS} images on, classical MDS for fewer.",
)
neighbours = c2.slider(
    "UMAP neighbours",
    2,
    max(2, min(50, n - 1)),
    min(15, max(2, n - 1)),
    key="emb_neighbours",
    disabled=method == "mds",
)
seed = int(c3.number_input("seed", 0, 10_000, 0, key="emb_seed"))
thumbs = c4.toggle("thumbnails on the map", value=n <= 150, key="emb_thumbs")


@st.cache_data(show_spinner=False, max_entries=32)
def _embed(key: str, which: str, kernel: str, method: str, seed: int, k: int, _rsm):
    """One map per (RSM cache key, side, kernel, settings); the RSM itself is not hashed."""
    return embed_rsm(_rsm, kernel, method=method, seed=seed, n_neighbors=k)


kernel = result.kernel
with st.spinner("Computing the maps (the first UMAP run of a session compiles for a few seconds)…"):
    emb = {
        "classic (spatio-semantic)": _embed(
            result.key, "spatial", kernel, method, seed, neighbours, result.spatial_rsm
        ),
        "semantic": _embed(
            result.key, "semantic", kernel, method, seed, neighbours, result.semantic_rsm
        ),
    }
if st.session_state.get("emb_selected") not in range(n):
    st.session_state["emb_selected"] = None


def _on_select() -> None:
    store_clicked_point("emb_chart", "emb_selected", n)


selected = st.session_state["emb_selected"]
fig = embedding_figure(
    {k: e.coords for k, e in emb.items()},
    result.names,
    result.labels,
    thumbnails=result.thumbnails if thumbs else None,
    methods={k: e.method for k, e in emb.items()},
    selected=selected,
)
st.plotly_chart(
    fig,
    key="emb_chart",
    on_select=_on_select,
    selection_mode="points",
    config={"displaylogo": False},
)
first = next(iter(emb.values()))
st.caption(
    f"{first.note} Hover a dot for the image's name; click it to see the image below."
    + (" Thumbnails are left off above 150 images." if thumbs and n > 150 else "")
)

if selected is not None:
    st.subheader(f"{result.names[selected]}")
    cols = st.columns([1, 3])
    cols[0].image(result.thumbnails[selected], caption=result.names[selected], width=160)
    with cols[1]:
        k = min(5, n - 1)
        for title, rsm in (("classic", result.spatial_rsm), ("semantic", result.semantic_rsm)):
            idx, sims = nearest_neighbours(rsm, selected, k)
            st.markdown(f"**Closest under the {title} RSM**")
            st.image(
                [result.thumbnails[t] for t in idx],
                caption=[f"{result.names[t]} · {v:.3f}" for t, v in zip(idx, sims, strict=True)],
                width=96,
            )
