"""Tour page: the paper's four findings, one step each, with a live figure on the offline
default and one sentence of what to look for (texts and verdicts: semrsm/explorer/tour.py)."""

from __future__ import annotations

import streamlit as st

from pages._projector import fig_scale
from pages._sidebar import (
    current_config,
    get_cache,
    get_images,
    get_model,
    show_error,
    streamlit_progress,
)
from semrsm.analysis import (
    layer_cka,
    nearest_neighbours,
    output_agreement,
    retrieval_metrics,
    translation_analysis,
)
from semrsm.explorer import compute, layer_rsms
from semrsm.explorer.tour import (
    TOUR,
    TOUR_CONFIG,
    TOUR_CROPS,
    TOUR_K,
    TOUR_STEPS,
    agreement_verdict,
    layers_verdict,
    retrieval_verdict,
    showcase_query,
    tour_layers,
    translation_verdict,
)
from semrsm.figures.analyses import (
    agreement_figure,
    cka_line_figure,
    translation_figure,
    translation_summary_figure,
)
from semrsm.figures.neighbours import neighbours_figure, retrieval_figure

CLASSIC, SEMANTIC = "classic (spatio-semantic)", "semantic"
_DATA = "tour_data"  # session_state: step -> what its figures need (the config is fixed)
_KEPT = "_tour_step_kept"  # the step, kept while other pages run (their runs drop the widget's)

st.title("Tour: the paper's four findings")
st.markdown(
    "Wald et al. compare two ways of scoring how alike two images are for a network: the "
    "**classic** (spatio-semantic) RSM compares their token grids position by position, the "
    "**semantic** RSM pairs the positions up first. Four steps show what the paper found, "
    "each with its figure computed live on the offline default — the demo CNN "
    f"(`{TOUR_CONFIG.model}`), 32 procedural shapes, cosine kernel, exact matching — whatever "
    "the sidebar says, and one sentence of what to look for."
)
current_config()  # the sidebar, so its choices stay as they are for the other pages

if st.session_state.get("tour_step") not in TOUR_STEPS:
    kept = st.session_state.get(_KEPT)
    st.session_state["tour_step"] = kept if kept in TOUR_STEPS else TOUR_STEPS[0]


def _go(delta: int) -> None:
    """Back / Next (a callback: runs before the step selector is drawn)."""
    k = TOUR_STEPS.index(st.session_state["tour_step"]) + delta
    st.session_state["tour_step"] = TOUR_STEPS[max(0, min(len(TOUR_STEPS) - 1, k))]


titles = {s.key: f"{n}. {s.title}" for n, s in enumerate(TOUR, start=1)}
key = st.radio("Step", TOUR_STEPS, key="tour_step", horizontal=True, format_func=titles.get,
               label_visibility="collapsed")
index = TOUR_STEPS.index(key)
st.session_state[_KEPT] = key
step = TOUR[index]


def _stored(name: str, build):
    """``build()`` once per session (the tour's configuration never changes)."""
    data: dict = st.session_state.setdefault(_DATA, {})
    if name not in data:
        data[name] = build()
    return data[name]


def _base():
    """The offline default's result (RSMs, labels, class probabilities)."""

    def build():
        cache = get_cache()
        with streamlit_progress("The offline default: demo CNN on 32 shapes") as progress:
            return compute(TOUR_CONFIG, cache, progress=progress, model=get_model(TOUR_CONFIG),
                           images=get_images(TOUR_CONFIG, cache))

    return _stored("base", build)


def _layer_rsms(config, label: str):
    base = _base()
    names = tour_layers(base.layers)
    cache = get_cache()
    images = get_images(config, cache)
    with streamlit_progress(label) as progress:
        rs = layer_rsms(config, cache, names, model=get_model(TOUR_CONFIG), images=images,
                        progress=progress)
    return names, images, rs


st.subheader(f"Step {index + 1} of {len(TOUR)} · {step.title}")
st.markdown(f"**The paper:** {step.finding}")
st.info(f"**Look for:** {step.look_for}")
scale = fig_scale()
kernel = TOUR_CONFIG.kernel
try:
    if key == "translation":

        def _translation():
            cfg = TOUR_CONFIG.replace(images=TOUR_CROPS)
            names, images, rs = _layer_rsms(cfg, "Translated crops: both RSMs per layer")
            return translation_analysis(images, rs, kernel=kernel), list(images.names), names

        res, crop_names, names = _stored("translation", _translation)
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            translation_figure(res.pairs, names[0], names=crop_names, kernel=kernel, scale=scale),
            key="tour_translation_pairs",
        )
        c2.plotly_chart(translation_summary_figure(res.summary, kernel=kernel, scale=scale),
                        key="tour_translation_layers")
        st.markdown(translation_verdict(res.summary))
        more = ("pages/analyses.py", "More photos, crops and layers: the Analyses page")
    elif key == "retrieval":
        base = _base()
        metrics = _stored("retrieval", lambda: {
            CLASSIC: retrieval_metrics(base.spatial_rsm, base.labels, k=TOUR_K),
            SEMANTIC: retrieval_metrics(base.semantic_rsm, base.labels, k=TOUR_K),
        })
        c1, c2 = st.columns([3, 2])
        c1.plotly_chart(retrieval_figure(metrics, scale=scale), key="tour_retrieval")
        c2.markdown(
            f"Each of the {base.n} images queries all the others. **precision@{TOUR_K}**: the "
            f"share of its {TOUR_K} nearest neighbours with its label; **F1@1**: whether the "
            "nearest one has it; **mAP**: mean average precision of the whole ranking."
        )
        q = showcase_query(metrics[CLASSIC], metrics[SEMANTIC])
        rows = {CLASSIC: nearest_neighbours(base.spatial_rsm, q, TOUR_K),
                SEMANTIC: nearest_neighbours(base.semantic_rsm, q, TOUR_K)}
        st.markdown(f"For example, the neighbours of **{base.names[q]}** ({base.labels[q]}):")
        st.plotly_chart(
            neighbours_figure(base.thumbnails, base.names, base.labels, q, rows, kernel=kernel,
                              scale=scale),
            key="tour_neighbours", config={"displayModeBar": False},
        )
        st.markdown(retrieval_verdict(metrics[CLASSIC], metrics[SEMANTIC]))
        more = ("pages/neighbours.py", "Pick any query: the Nearest neighbours page")
    elif key == "agreement":
        base = _base()
        ag = _stored("agreement", lambda: {
            CLASSIC: output_agreement(base.spatial_rsm, base.proba),
            SEMANTIC: output_agreement(base.semantic_rsm, base.proba),
        })
        st.plotly_chart(agreement_figure(ag, kernel=kernel, scale=scale), key="tour_agreement")
        st.caption(
            "Each dot is a pair of images: its similarity (x) and the Jensen-Shannon "
            "divergence between the model's predicted class probabilities for the two (y, in "
            "bits: 0 = the same prediction); the black line is the least-squares fit."
        )
        st.markdown(agreement_verdict(ag[CLASSIC], ag[SEMANTIC]))
        more = ("pages/analyses.py", "The numbers: the Analyses page, Output agreement")
    else:

        def _layers():
            names, _, rs = _layer_rsms(TOUR_CONFIG, "Shapes: both RSMs per layer")
            return names, layer_cka(rs, kernel=kernel)

        names, cka = _stored("layers", _layers)
        positions = {li.name: li.num_tokens for li in _base().layers}
        st.plotly_chart(
            cka_line_figure(cka.layers, cka.diagonal,
                            tokens=[positions[n] for n in cka.layers], scale=scale),
            key="tour_layers",
        )
        st.caption(
            "Linear CKA of the classic and the semantic RSM of each layer (1: the same up to "
            "scale), for the layers with at most 256 positions; S is the number of positions."
        )
        st.markdown(layers_verdict(cka.layers, cka.diagonal))
        more = ("pages/analyses.py", "Any layers and the layer × layer table: the Analyses page")
except Exception as err:  # noqa: BLE001 - shown as a message; the app keeps running
    show_error(err)
    more = None

b1, b2, b3 = st.columns([1, 1, 4])
b1.button("← Back", key="tour_back", on_click=_go, args=(-1,), disabled=index == 0)
b2.button("Next →", key="tour_next", on_click=_go, args=(1,), type="primary",
          disabled=index == len(TOUR) - 1)
if more is not None:
    b3.page_link(more[0], label=more[1])
