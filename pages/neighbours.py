"""Nearest-neighbours page: a query from the gallery, its top-k under each RSM, retrieval metrics."""

from __future__ import annotations

import streamlit as st

from pages._memo import derived
from pages._projector import fig_scale
from pages._widgets import (
    figure_download,
    file_stem,
    image_choices,
    page_result,
    store_clicked_point,
)
from semrsm.analysis import nearest_neighbours, retrieval_metrics
from semrsm.figures.neighbours import gallery_figure, neighbours_figure, retrieval_figure

st.title("Nearest neighbours")
st.markdown(
    "Pick a query image: below it are the images each RSM calls most similar to it. The "
    "**classic** RSM favours images with similar things *at the same places*; the **semantic** "
    "RSM favours images with similar things *anywhere*. With labels, each neighbour is marked "
    "as having the query's class or not, and the scores at the bottom measure, over every "
    "query, how often each RSM retrieves the right class."
)

result = page_result()
n = result.n
labels = result.labels
names = image_choices(result)
if st.session_state.get("nn_query") not in range(n):
    st.session_state["nn_query"] = 0


def _on_gallery_select() -> None:
    """A click on a thumbnail sets the query (runs before the widgets are drawn)."""
    store_clicked_point("nn_gallery", "nn_query", n)


st.subheader("Choose a query")
c_q, c_k = st.columns([3, 1])
query = c_q.selectbox(
    "query image (or click a thumbnail)", range(n), key="nn_query", format_func=names.__getitem__
)
if n > 2 and st.session_state.get("nn_k", 1) > min(12, n - 1):  # a link's k, for a small set
    st.session_state["nn_k"] = min(12, n - 1)
k = c_k.slider("neighbours (k)", 1, min(12, n - 1), min(5, n - 1), key="nn_k") if n > 2 else 1
scale = fig_scale()
gallery = derived(
    "nn_gallery",
    result,
    (query, scale),
    lambda: gallery_figure(
        result.thumbnails, result.names, labels, selected=query, columns=16, scale=scale
    ),
)
st.plotly_chart(
    gallery,
    key="nn_gallery",
    on_select=_on_gallery_select,
    selection_mode="points",
    config={"displayModeBar": False},
)
if gallery.layout.meta["shown"] < n:
    st.caption(
        f"The gallery shows the first {gallery.layout.meta['shown']} of {n} images; "
        "pick the others in the list above."
    )

st.subheader(f"Top {k} neighbours of {result.names[query]}")
rows = {
    "classic (spatio-semantic)": nearest_neighbours(result.spatial_rsm, query, k),
    "semantic": nearest_neighbours(result.semantic_rsm, query, k),
}
fig_nn = derived(
    "nn_neighbours",
    result,
    (query, k, scale),
    lambda: neighbours_figure(
        result.thumbnails, result.names, labels, query, rows, kernel=result.kernel, scale=scale
    ),
)
st.plotly_chart(fig_nn, key="nn_neighbours", config={"displayModeBar": False})
if labels is not None:
    st.caption(
        "Frames: **✓ solid green**: same label as the query; **✗ dotted orange**: another "
        "label; **solid blue**: the query."
    )
if labels is not None:
    hits = {t: sum(labels[j] == labels[query] for j in idx) for t, (idx, _) in rows.items()}
    st.markdown(" · ".join(f"{t}: **{h}/{k}** of class *{labels[query]}*" for t, h in hits.items()))
with st.expander("as a table"):
    table = []
    for rank in range(k):
        row = {"rank": rank + 1}
        for title, (idx, sims) in rows.items():
            if rank < len(idx):
                row[f"{title}: image"] = names[int(idx[rank])]
                row[f"{title}: similarity"] = round(float(sims[rank]), 4)
        table.append(row)
    st.dataframe(table, hide_index=True)

st.subheader("Retrieval over the whole set")
if labels is None or len(set(labels)) < 2:
    st.info(
        "Retrieval scores need labels with at least two classes: use the shapes or crops set, "
        "a server folder with one sub-folder per class, or uploads labelled by file name."
    )
    fig_ret = None
else:
    metrics = derived(
        "nn_metrics",
        result,
        (k,),
        lambda: {
            "classic (spatio-semantic)": retrieval_metrics(result.spatial_rsm, labels, k=k),
            "semantic": retrieval_metrics(result.semantic_rsm, labels, k=k),
        },
    )
    m_c, m_s = metrics["classic (spatio-semantic)"], metrics["semantic"]
    r1, r2 = st.columns([2, 1])
    fig_ret = derived(
        "nn_retrieval", result, (k, scale), lambda: retrieval_figure(metrics, scale=scale)
    )
    r1.plotly_chart(fig_ret, key="nn_retrieval", config={"displayModeBar": False})
    r2.markdown(
        f"Every image queries all the others. **precision@{m_s['k']}**: share of the top "
        f"{m_s['k']} with the query's label. **F1@1**: whether the single nearest neighbour "
        "has the query's label (top-1 accuracy here). **mAP**: mean average precision of the "
        "full ranking.\n\n"
        f"Top-1 accuracy: classic **{m_c['f1_at_1']:.1%}**, semantic **{m_s['f1_at_1']:.1%}**."
    )
    if m_s["n_queries_without_relevant"]:
        r2.caption(
            f"{m_s['n_queries_without_relevant']} image(s) are alone in their class "
            "and are left out of mAP."
        )

stem = file_stem(f"semrsm_{result.model_name}_{result.layer.name}_{result.kernel}")
dl1, dl2 = st.columns(2)
figure_download(
    dl1, "Neighbours figure (.html)", fig_nn, f"{stem}_neighbours_{query}.html", "dl_nn_fig"
)
if fig_ret is not None:
    figure_download(
        dl2, "Retrieval figure (.html)", fig_ret, f"{stem}_retrieval.html", "dl_nn_retrieval"
    )
