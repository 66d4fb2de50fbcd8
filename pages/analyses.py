"""Analyses page: the paper's four analyses on the model chosen in the sidebar."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from pages._controls import param_widget
from pages._progress import fmt_seconds
from pages._projector import fig_scale
from pages._sidebar import get_cache, get_model, show_error, streamlit_progress
from pages._widgets import MATCHER_COLUMNS, csv_download, page_result, readable_columns
from semrsm.analysis import (
    DEFAULT_MATCHERS,
    compare_matchers,
    layer_cka,
    output_agreement,
    translation_analysis,
)
from semrsm.analysis.matchers import comparable_matchers
from semrsm.explorer import estimate_layers, layer_rsms, load_images, resolve_device
from semrsm.explorer.links import ANALYSES_TABS
from semrsm.explorer.summary import signed
from semrsm.explorer.tables import (
    agreement_csv,
    agreement_summary_csv,
    cka_csv,
    matchers_csv,
    translation_pairs_csv,
    translation_summary_csv,
)
from semrsm.figures.analyses import (
    agreement_figure,
    cka_heatmap_figure,
    cka_line_figure,
    matcher_figure,
    translation_figure,
    translation_summary_figure,
)
from semrsm.figures.rsm import SPATIAL_TITLE, semantic_title
from semrsm.images import PHOTO_FILES
from semrsm.matching.registry import REGISTRY, get_matcher

#: layers with more positions than this are not selected by default (matching grows as S³)
DEFAULT_MAX_TOKENS = 256

st.title("Analyses")
st.markdown(
    "The paper's four experiments, on the model and layer chosen in the sidebar. "
    "**Translation**: do shifted crops of one photo look alike? **Layers**: where do the two "
    "RSMs agree? **Output agreement**: which RSM follows the model's predictions? "
    "**Matchers**: how close do the fast approximate matchings come to the optimum? Each "
    "analysis runs when you press its button; results already computed come from the cache."
)

result = page_result()
config = result.config
# rates of the device that will run the analyses (for semrsm.explorer.estimate)
device = resolve_device(config.device)
kernel = result.kernel
layer_info = {li.name: li for li in result.layers}
#: the two RSMs' names; the semantic one names the sidebar's matcher
titles = (SPATIAL_TITLE, semantic_title(config.matcher, result.params))
layer_names = list(layer_info)


def _fmt_layer(name: str) -> str:
    li = layer_info[name]
    return f"{name} ({li.grid[0]}×{li.grid[1]} = {li.num_tokens} positions)"


def _default_layers() -> list[str]:
    small = [n for n in layer_names if layer_info[n].num_tokens <= DEFAULT_MAX_TOKENS]
    return small or layer_names[-1:]


def _pick_layers(key: str) -> list[str]:
    """Layers to analyse; small layers are preselected."""
    return st.multiselect(
        "layers", layer_names, default=_default_layers(), key=key, format_func=_fmt_layer
    )


#: rerunning this page and drawing an analysis' charts, beside the computation (0.8 s
#: in chromium on 2 cores, bench/bench_app.py step 5)
SHOW_SECONDS = 0.8


def _estimate(n_images: int, layers: list[str]) -> float:
    # one forward pass for all layers, each layer's matching, and loading the model when
    # this server has not yet (after a restart the cached pages need none)
    return SHOW_SECONDS + estimate_layers(
        n_images, [layer_info[name].num_tokens for name in layers],
        matcher=config.matcher, device=device,
    )["total"]


def _stored(name: str, params: tuple):
    """The result of analysis ``name`` if it was computed for exactly these parameters."""
    entry = st.session_state.get(f"an_{name}")
    return entry[1] if entry is not None and entry[0] == params else None


def _store(name: str, params: tuple, value) -> None:
    st.session_state[f"an_{name}"] = (params, value)


def _request(name: str) -> None:
    """Button callback: remember the request in the session state. A callback runs before
    the script, and the flag survives a rerun that the shared UI may trigger before this
    page's code runs (a plain button's True would be lost in that rerun)."""
    st.session_state[f"an_request_{name}"] = True


def _requested(name: str) -> bool:
    return bool(st.session_state.pop(f"an_request_{name}", False))


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _solves_exactly(matcher: str, name: str, value, s_tok: int) -> bool:
    """Whether ``matcher`` with this parameter value solves S = s_tok exactly (its exact
    sub-problem is the whole problem), as a window or a k of at least S does."""
    spec = get_matcher(matcher)
    return spec.exact_size(s_tok, {**spec.defaults, name: value}) >= s_tok


def _params_note(specs: list, side: dict, s_tok: int) -> str:
    """Which parameters the comparison used, against the sidebar's (``side``: name → value)."""
    notes = []
    for m, p in specs:
        spec = get_matcher(m)
        for name, value in p.items():
            same = "as in the sidebar" if value == side[name] else (
                f"the sidebar's {spec.label} uses {name} {side[name]}")
            exact = " (≥ the positions: exact)" if _solves_exactly(m, name, value, s_tok) else ""
            notes.append(f"{spec.label} with {name} {value}{exact}, {same}")
    return ("Parameters: " + "; ".join(notes) + ".") if notes else ""


# the open tab is kept in session_state["an_tab"] (a link may carry it: tab=…)
tab_tr, tab_layers, tab_out, tab_match = st.tabs(
    list(ANALYSES_TABS.values()), key="an_tab", on_change="rerun"
)

# ----------------------------------------------------------------------------- translation
with tab_tr:
    st.markdown(
        "Crops of the same photo, shifted against each other, show the same things at "
        "different places. The classic RSM only rewards content at the same position, so the "
        "less two crops overlap, the less similar it finds them; the semantic RSM pairs the "
        "positions first and keeps them similar. This runs on its own set of crops, whatever "
        "the sidebar's image set."
    )
    current = result.meta.get("source_names") if result.meta.get("offsets") else None
    c1, c2 = st.columns([3, 1])
    photos = c1.multiselect(
        "photos to crop",
        list(PHOTO_FILES),
        default=list(current or ["astronaut", "coffee"]),
        key="an_tr_photos",
    )
    per = c2.slider("crops per photo", 4, 16, 9, key="an_tr_per")
    tr_layers = _pick_layers("an_tr_layers")
    params = (config, tuple(photos), per, tuple(tr_layers))
    if photos and tr_layers:
        st.caption(
            f"{len(photos) * per} crops · about "
            f"{fmt_seconds(_estimate(len(photos) * per, tr_layers))} when nothing is cached yet"
        )
    st.button(
        "Run the translation analysis",
        key="an_tr_run",
        type="primary",
        disabled=not photos or not tr_layers,
        on_click=_request,
        args=("translation",),
    )
    if _requested("translation") and photos and tr_layers:
        try:
            cfg = config.replace(images=f"crops:{','.join(photos)}:{per}", layer=None)
            cache = get_cache()
            model = get_model(config)
            images = load_images(cfg, cache)
            with streamlit_progress("translation: RSMs per layer") as progress:
                rs = layer_rsms(
                    cfg, cache, tr_layers, model=model, images=images, progress=progress
                )
            res = translation_analysis(images, rs, kernel=kernel)
            _store("translation", params, (res, list(images.names)))
        except Exception as err:  # noqa: BLE001 - shown as a message; the app keeps running
            show_error(err)
    stored = _stored("translation", params)
    if stored is not None:
        res, crop_names = stored
        summ = res.summary
        pick = st.selectbox(
            "layer shown", list(summ["layer"]), key="an_tr_layer_shown", format_func=_fmt_layer
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            translation_figure(
                res.pairs, pick, names=crop_names, kernel=kernel, titles=titles, scale=fig_scale()
            ),
            key="an_tr_scatter",
        )
        c2.plotly_chart(
            translation_summary_figure(summ, kernel=kernel, titles=titles, scale=fig_scale()),
            key="an_tr_summary",
        )
        row = summ[summ["layer"] == pick].iloc[0]
        st.markdown(
            f"In **{pick}**, same-source crops have a mean {kernel} similarity of "
            f"**{row['mean_semantic']:.3f}** under the semantic RSM and "
            f"**{row['mean_spatial']:.3f}** under the classic one (gap "
            f"{signed(row['mean_gap'])}). From no overlap to full overlap the classic similarity "
            f"changes by {_fmt(row['slope_spatial'])} along its fitted line, the semantic one by "
            f"{_fmt(row['slope_semantic'])}: the flatter the line, the less the RSM cares where "
            "things are."
        )
        with st.expander("numbers per layer"):
            st.dataframe(readable_columns(summ.round(4)), hide_index=True)
        d1, d2 = st.columns(2)
        csv_download(d1, "Crop pairs (.csv)",
                     lambda r=res, n=crop_names: translation_pairs_csv(r, n), result, "translation_pairs", "dl_an_tr_pairs",
                     "Every same-source pair of every layer: overlap, classic and semantic "
                     "similarity.")
        csv_download(d2, "Numbers per layer (.csv)", lambda r=res: translation_summary_csv(r),
                     result, "translation_layers", "dl_an_tr_summary",
                     "The table above: means, slopes against the overlap, correlations.")

# ----------------------------------------------------------------------------- layers
with tab_layers:
    st.markdown(
        "Linear CKA measures how alike two RSMs are (1: the same up to scale). Early layers "
        "have many positions, and matching them changes the similarities a lot; deeper layers "
        "have few positions left, so the two RSMs should agree more and the CKA rise towards 1. "
        "This uses the sidebar's image set."
    )
    cka_layers = _pick_layers("an_cka_layers")
    params = (config, tuple(cka_layers))
    if cka_layers:
        st.caption(
            f"about {fmt_seconds(_estimate(result.n, cka_layers))} when nothing is cached yet"
        )
    st.button(
        "Run the layer analysis",
        key="an_cka_run",
        type="primary",
        disabled=len(cka_layers) < 1,
        on_click=_request,
        args=("cka",),
    )
    if _requested("cka") and cka_layers:
        try:
            cache = get_cache()
            with streamlit_progress("layers: RSMs per layer") as progress:
                rs = layer_rsms(
                    config, cache, cka_layers, model=get_model(config), progress=progress
                )
            _store("cka", params, layer_cka(rs, kernel=kernel))
        except Exception as err:  # noqa: BLE001
            show_error(err)
    cka = _stored("cka", params)
    if cka is not None:
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            cka_line_figure(
                cka.layers,
                cka.diagonal,
                tokens=[layer_info[n].num_tokens for n in cka.layers],
                scale=fig_scale(),
            ),
            key="an_cka_line",
        )
        c2.plotly_chart(
            cka_heatmap_figure(cka.layers, cka.semantic_vs_spatial, scale=fig_scale()),
            key="an_cka_heat",
        )
        st.caption(
            "Right: CKA between the semantic RSM of one layer (row) and the classic RSM of "
            "another (column); the diagonal is the curve on the left."
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "layer": cka.layers,
                    "positions S": [layer_info[n].num_tokens for n in cka.layers],
                    "CKA(semantic, classic)": np.round(cka.diagonal, 4),
                }
            ),
            hide_index=True,
        )
        csv_download(st, "Layer × layer CKA (.csv)",
                     lambda c=cka: cka_csv(c, {n: layer_info[n].num_tokens for n in c.layers}),
                     result, "layer_cka", "dl_an_cka",
                     "Every pair of layers: CKA(semantic of one, classic of the other); "
                     "same_layer = 1 is the curve.")

# ----------------------------------------------------------------------------- output agreement
with tab_out:
    st.markdown(
        "Two images the model classifies alike have a small Jensen-Shannon divergence (JSD, in "
        "bits, 0 to 1) between their predicted class probabilities. An RSM that agrees with the "
        "model's output calls such pairs similar, so its similarity correlates *negatively* "
        "with the JSD; the paper finds the semantic RSM's correlation the stronger one."
    )
    if result.proba is None:
        st.info("This model has no classification head, so there are no predictions to compare.")
    else:
        try:
            ag = {
                "classic (spatio-semantic)": output_agreement(result.spatial_rsm, result.proba),
                "semantic": output_agreement(result.semantic_rsm, result.proba),
            }
        except ValueError as err:
            show_error(err)
            ag = None
        if ag is not None:
            st.plotly_chart(
                agreement_figure(ag, kernel=kernel, scale=fig_scale()), key="an_out_fig"
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "RSM": title,
                            "Pearson r": round(a["pearson_r"], 4),
                            "p (Pearson)": f"{a['pearson_p']:.2g}",
                            "Spearman ρ": round(a["spearman_r"], 4),
                            "p (Spearman)": f"{a['spearman_p']:.2g}",
                            "pairs": a["n_pairs"],
                        }
                        for title, a in ag.items()
                    ]
                ),
                hide_index=True,
            )
            sp, se = (a["spearman_r"] for a in ag.values())
            if not (math.isnan(sp) or math.isnan(se)):
                better = "semantic" if se < sp else "classic"
                st.markdown(
                    f"Here the **{better}** RSM agrees more with the predictions "
                    f"(Spearman ρ {se:.3f} semantic against {sp:.3f} classic; more negative is "
                    "better)."
                )
            # two calls of one helper, as on the translation tab: only the tables differ
            d1, d2 = st.columns(2)
            csv_download(d1, "Pairs: divergence and similarities (.csv)",
                         lambda a=ag: agreement_csv(a, result.names, result.labels),
                         result, "agreement_pairs", "dl_an_agreement",
                         "Every pair of images: JSD of the predictions (bits), classic and "
                         "semantic similarity.")
            csv_download(d2, "Correlations (.csv)", lambda a=ag: agreement_summary_csv(a),
                         result, "agreement", "dl_an_agreement_summary",
                         "The table above: Pearson and Spearman correlation per RSM.")

# ----------------------------------------------------------------------------- matchers
with tab_match:
    st.markdown(
        "The optimal matching costs O(S³) per pair. Approximate matchers are faster; this "
        "compares, on the current layer's tokens, the matched inner product each reaches with "
        "the optimal one (ratio 1 = optimal) and the time of the assignments alone."
    )
    # the multiselect gets a full row: in a quarter column its chips were hidden
    offered = comparable_matchers()
    chosen = st.multiselect(
        "matchers",
        list(offered),
        default=list(DEFAULT_MATCHERS),
        key="an_m_matchers",
    )
    # one box per parameter the app shows, of the matchers offered here (registry order)
    shown = {p.name: (m, p) for m in REGISTRY if m in offered
             for p in get_matcher(m).params if p.in_app}
    *boxes, c4 = st.columns(len(shown) + 1)
    s_tok = result.tokens.shape[1]
    # The sidebar's parameters unless changed here (a box per sidebar value, so a change
    # in the sidebar is followed): the same matcher must mean the same thing on both pages.
    side = {name: p.kind(st.session_state.get(p.key, p.default)) for name, (_, p) in shown.items()}
    chosen_value = {}
    for box, (name, (owner, p)) in zip(boxes, shown.items(), strict=True):
        exact = (f" A {name} of at least the number of positions ({s_tok}) solves each pair "
                 "exactly." if _solves_exactly(owner, name, s_tok, s_tok) else "")
        chosen_value[name] = param_widget(
            box, p, f"an_m_{name}_{side[name]}", label=f"{get_matcher(owner).label} {name}",
            value=side[name], help=f"Starts at the sidebar's {name} ({side[name]}).{exact}")
    total_pairs = result.n * (result.n - 1) // 2
    max_pairs = c4.slider(
        "pairs (random subset)",
        1,
        max(1, total_pairs),
        min(500, max(1, total_pairs)),
        key="an_m_pairs",
    )
    specs = [(m, {p.name: chosen_value[p.name] for p in get_matcher(m).params if p.in_app})
             for m in chosen]
    params = (result.key, tuple((m, tuple(p.items())) for m, p in specs), max_pairs, kernel)
    st.button(
        "Compare the matchers",
        key="an_m_run",
        type="primary",
        disabled=not specs,
        on_click=_request,
        args=("matchers",),
    )
    if _requested("matchers") and specs:
        try:
            with streamlit_progress("matchers") as progress:
                table = compare_matchers(
                    result.tokens,
                    specs,
                    kernel=kernel,
                    max_pairs=max_pairs,
                    progress=lambda d, t: progress("matchers compared", d, t),
                )
            _store("matchers", params, table)
        except Exception as err:  # noqa: BLE001
            show_error(err)
    table = _stored("matchers", params)
    if table is not None:
        st.plotly_chart(matcher_figure(table, scale=fig_scale()), key="an_m_fig")
        show = table[
            [
                "matcher",
                "ratio_mean",
                "ratio_min",
                "frac_optimal",
                "seconds",
                "pairs_per_second",
                "speedup",
                "n_pairs",
            ]
        ].copy()
        st.dataframe(readable_columns(show.round(5), MATCHER_COLUMNS), hide_index=True)
        st.caption(
            f"{int(table['n_pairs'].iloc[0])} pairs of layer {result.layer.name} "
            f"({s_tok} positions), on the CPU; ratios over pairs whose optimum is positive. "
            + _params_note(specs, side, s_tok)
        )
        csv_download(st, "Matcher comparison (.csv)", lambda t=table: matchers_csv(t), result,
                     "matchers", "dl_an_matchers", "The table above, every column.")
