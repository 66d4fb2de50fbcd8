"""Search page: a query image (from the set, or uploaded) against the current image set — the
classic pooled top-k beside the semantic re-ranked top-k, and the matching of a chosen pair."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from pages._errors import show_error
from pages._memo import derived
from pages._projector import fig_scale
from pages._resources import get_model
from pages._widgets import image_choices, page_result, store_clicked_point
from semrsm.figures.neighbours import make_thumbnails, neighbours_figure

POOLED = "classic (mean-pooled tokens, cosine)"
SEMANTIC = "semantic (re-ranked)"
UPLOAD_SIDE = 1024  # uploads are decoded at most this large: the model sees far less

st.title("Search")
st.markdown(
    "Search a large gallery the way a retrieval system would: first rank every image by the "
    "cosine of its **mean-pooled** tokens (one matrix product, fast at any size), then "
    "**re-rank** the best *K* candidates by the semantic similarity, which matches the "
    "positions of the two images optimally. Pooling forgets where things are, as the "
    "semantic similarity does, so the semantic top results are usually among the pooled "
    "candidates; the same runs over millions of images with `python -m semrsm search` and "
    "on a Ray cluster. Pick a query from the set or upload one."
)

result = page_result(2, "Search needs at least two images.")
n = result.n
names = image_choices(result)
config = result.config

source = st.radio("query", ["an image of the set", "an uploaded image"], horizontal=True,
                  key="se_source")
from_set = source == "an image of the set"
if from_set:
    if st.session_state.get("se_query") not in range(n):
        st.session_state["se_query"] = 0
    q = int(st.selectbox("query image", range(n), key="se_query", format_func=names.__getitem__))
    query_tokens = result.tokens[q:q + 1]
    query_image = result.model_view(q)
    query_name = result.names[q]
    query_id: object = ("set", q)
    available = n - 1
else:
    upload = st.file_uploader("query image", type=["png", "jpg", "jpeg", "webp", "bmp", "gif",
                                                   "tif", "tiff"], key="se_upload")
    if upload is None:
        st.info("Upload an image to search the set for it.")
        st.stop()
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]

    def _upload_tokens() -> tuple[np.ndarray, object, object]:
        from semrsm.figures.matching import model_view
        from semrsm.images.decode import decode_image
        from semrsm.layers import extract_tokens

        image = decode_image(data, upload.name, max_side=UPLOAD_SIDE)
        model = get_model(config)
        tokens = extract_tokens(model, [image], result.layer.name).tokens
        size = int(model.data_config["input_size"][-1])
        view = model_view(image, size, float(model.data_config.get("crop_pct", 1.0)))
        return tokens, view, image

    try:
        with st.spinner("Extracting the upload's tokens…"):
            query_tokens, query_image, raw = derived("se_upload", result, (digest,), _upload_tokens)
    except Exception as err:  # noqa: BLE001 - a bad upload is a message, not a crash
        show_error(err)
        st.stop()
    q = n  # the upload is drawn after the set's images
    query_name = f"upload: {upload.name}"
    query_id = ("upload", digest)
    available = n

c_k, c_r = st.columns(2)
k = int(c_k.slider("results (k)", 1, min(12, available), min(5, available), key="se_k"))
rerank = int(c_r.slider(
    "candidates re-ranked (K)", k, available, min(max(k, 3 * k), available), key="se_rerank",
    help="The pooled top-K are re-ranked by the semantic similarity: K assignments per query.",
))


def _search():
    from semrsm.scale.search import search

    return search(
        result.tokens, query_tokens, k=k, rerank=rerank, matcher=config.matcher,
        kernel=result.kernel, device="cpu", exclude=[q] if from_set else None, **result.params,
    )


try:
    hits = derived("se_search", result, (query_id, k, rerank), _search)
except ValueError as err:
    show_error(err)
    st.stop()

thumbs = list(result.thumbnails)
shown_names = list(result.names)
labels = result.labels if from_set else None
if not from_set:
    thumbs += make_thumbnails([raw])
    shown_names.append(query_name)
rows = {
    POOLED: (hits.pooled_indices[0], hits.pooled_scores[0]),
    SEMANTIC: (hits.indices[0], hits.scores[0]),
}


scale = fig_scale()  # projector mode: larger figures


def _on_pick() -> None:
    store_clicked_point("se_results", "se_pair", n)


st.subheader(f"Top {hits.k} for {query_name}")
fig = derived(
    "se_results", result, (query_id, k, rerank, scale),
    lambda: neighbours_figure(thumbs, shown_names, labels, q, rows, kernel="score", scale=scale),
)
st.plotly_chart(fig, key="se_results", on_select=_on_pick, selection_mode="points",
                config={"displayModeBar": False})
pooled_in = len(set(hits.indices[0]) & set(hits.pooled_indices[0]))
notes = [
    f"Scores: pooled cosine in the first row, semantic {result.kernel} (the "
    f"{config.matcher} matching) in the second. {pooled_in} of the {hits.k} semantic results "
    f"are also in the pooled top {hits.k}; {hits.rerank} candidates were re-ranked "
    f"({hits.seconds['pooled'] * 1000:.0f} ms pooled, {hits.seconds['rerank'] * 1000:.0f} ms "
    "re-ranking)."
]
if from_set:
    full = np.argsort(-np.where(np.arange(n) == q, -np.inf, result.semantic_rsm[q]),
                      kind="stable")[:hits.k]
    same = len(set(full) & set(hits.indices[0]))
    notes.append(
        f"The full semantic RSM of this set ranks the same images on top in **{same} of "
        f"{hits.k}** places (it needs {n - 1} assignments for this query, re-ranking "
        f"{hits.rerank})."
    )
if labels is not None:
    for title, (idx, _) in rows.items():
        hit = sum(labels[int(j)] == labels[q] for j in idx)
        notes.append(f"{title}: **{hit}/{len(idx)}** of class *{labels[q]}*.")
st.markdown("\n\n".join(notes))

st.subheader("Which tokens match")
choices = [int(j) for j in hits.indices[0]] + [
    int(j) for j in hits.pooled_indices[0] if int(j) not in set(hits.indices[0].tolist())
]
if st.session_state.get("se_pair") not in choices:
    st.session_state["se_pair"] = choices[0]
j = int(st.selectbox("result (or click a thumbnail above)", choices, key="se_pair",
                     format_func=names.__getitem__))


def _overlay():
    from semrsm.analysis import matching_contributions
    from semrsm.figures.matching import matching_overlay
    from semrsm.matching import match_pair

    a = np.asarray(query_tokens[0], dtype=np.float64)
    b = np.asarray(result.tokens[j], dtype=np.float64)
    perm, _ = match_pair(a, b, config.matcher, **result.params)
    contrib = matching_contributions(a, b, perm)
    return matching_overlay(query_image, result.model_view(j), result.grid, perm, contrib,
                            names=(query_name, result.names[j]), display=256, scale=scale)


overlay = derived("se_overlay", result, (query_id, j, scale), _overlay)
st.plotly_chart(overlay, key="se_overlay", config={"displayModeBar": False})
st.caption(
    "Lines join each token of the query with the token of the result it is matched to; the "
    "strongest matches (largest contribution to the matched inner product) are drawn. The "
    "Token matching page explains a pair of the set in detail."
)
