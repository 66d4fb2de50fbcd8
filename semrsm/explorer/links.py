"""Links that carry the view: the explorer's state ↔ URL query parameters.

Pure functions, no Streamlit: the state is a mapping of the sidebar's widget keys (plus
the page and the selected pair), the parameters a mapping of short names to strings.

=========  ==================================================  ==========================
parameter  meaning                                             sidebar key(s)
=========  ==================================================  ==========================
page       the page's URL path (``compare``, ``embedding``…)   —
model      a demo, listed or any timm model name               sb_model_choice / _custom
weights    default | pretrained | none                         sb_weights
layer      layer name                                          sb_layer
images     ``shapes:N[:K]``, ``photos``, ``crops:a,b:K``       sb_source, sb_shapes_n, …
seed       seed of the shapes set                              sb_seed
kernel     linear | cosine | rbf                               sb_kernel
matcher    exact | batch_optimal | topk_greedy | greedy | …    sb_matcher
window, k  batch-optimal window, top-k greedy k                sb_window, sb_topk
pair       ``i,j``, the selected pair of images                (pair)
=========  ==================================================  ==========================

Uploaded images, server folders and uploaded checkpoints are not carried (a link cannot
hold files); :func:`state_to_params` then leaves the images (or weights) out and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

__all__ = ["LINK_PARAMS", "PAIR", "PAGE", "params_to_state", "state_to_params", "view_url"]

#: state key of the page and of the selected pair (the sidebar keys are the widgets')
PAGE = "page"
PAIR = "pair"
#: query parameters, in the order links write them
LINK_PARAMS = ("page", "model", "weights", "layer", "images", "seed", "kernel", "matcher",
               "window", "k", "pair")
KERNELS = ("linear", "cosine", "rbf")
MATCHERS = ("exact", "batch_optimal", "topk_greedy", "greedy", "identity")
WEIGHTS = ("default", "pretrained", "none")
OTHER_MODEL = "Other timm model…"


def state_to_params(state: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Query parameters for a view.

    Parameters
    ----------
    state : mapping with the sidebar keys (``sb_model_choice``, ``sb_model_custom``,
        ``sb_weights``, ``sb_layer``, ``sb_source``, ``sb_shapes_n``, ``sb_shapes_k``,
        ``sb_seed``, ``sb_crops_photos``, ``sb_crops_n``, ``sb_kernel``, ``sb_matcher``,
        ``sb_window``, ``sb_topk``) and optionally ``page`` and ``pair`` ``(i, j)``;
        missing keys are left out of the link.

    Returns
    -------
    params : dict str -> str, in :data:`LINK_PARAMS` order.
    notes : list of str, what the link cannot carry (uploads, folders, checkpoint files).
    """
    p: dict[str, str] = {}
    notes: list[str] = []
    if state.get(PAGE):
        p["page"] = str(state[PAGE])
    choice = state.get("sb_model_choice")
    model = state.get("sb_model_custom") if choice == OTHER_MODEL else choice
    if model:
        p["model"] = str(model).strip()
    weights = state.get("sb_weights")
    if weights in WEIGHTS:
        p["weights"] = str(weights)
    elif weights == "file":
        notes.append("the uploaded checkpoint (the link opens the model with its default weights)")
    if state.get("sb_layer"):
        p["layer"] = str(state["sb_layer"])
    source = state.get("sb_source")
    if source == "shapes" and state.get("sb_shapes_n") is not None:
        k = int(state.get("sb_shapes_k") or 1)
        p["images"] = f"shapes:{int(state['sb_shapes_n'])}" + (f":{k}" if k > 1 else "")
        p["seed"] = str(int(state.get("sb_seed") or 0))
    elif source == "photos":
        p["images"] = "photos"
    elif source == "crops":
        photos = list(state.get("sb_crops_photos") or ["astronaut"])
        p["images"] = f"crops:{','.join(photos)}:{int(state.get('sb_crops_n') or 9)}"
    elif source in ("uploads", "folder"):
        notes.append("uploaded images and server folders (the link opens the default image set)")
    if state.get("sb_kernel") in KERNELS:
        p["kernel"] = str(state["sb_kernel"])
    matcher = state.get("sb_matcher")
    if matcher in MATCHERS:
        p["matcher"] = str(matcher)
        if matcher == "batch_optimal" and state.get("sb_window") is not None:
            p["window"] = str(int(state["sb_window"]))
        if matcher == "topk_greedy" and state.get("sb_topk") is not None:
            p["k"] = str(int(state["sb_topk"]))
    pair = state.get(PAIR)
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        p["pair"] = f"{int(pair[0])},{int(pair[1])}"
    return {k: p[k] for k in LINK_PARAMS if k in p}, notes


def _int(value: str, lo: int, hi: int) -> int | None:
    try:
        v = int(str(value).strip())
    except ValueError:
        return None
    return v if lo <= v <= hi else None


def params_to_state(
    params: Mapping[str, str | Sequence[str]],
    *,
    model_choices: Sequence[str] = (),
    photos: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The view a link asks for, as sidebar state; values that cannot be used are skipped.

    Parameters
    ----------
    params : query parameters (a value may be a list: the last one counts).
    model_choices : the models of the sidebar's list; another name becomes
        "Other timm model…" with that name typed in.
    photos : the photo names a ``crops`` set may use (empty: any).

    Returns
    -------
    state : dict of sidebar keys (and ``page``, ``pair``) to values.
    problems : list of str, one per parameter that was skipped, saying why.
    """
    get = {k: (v[-1] if isinstance(v, (list, tuple)) else v) for k, v in params.items()}
    s: dict[str, Any] = {}
    bad: list[str] = []
    if get.get("page"):
        s[PAGE] = str(get["page"]).strip("/")
    model = str(get.get("model") or "").strip()
    if model:
        if model in model_choices:
            s["sb_model_choice"] = model
        else:
            s["sb_model_choice"] = OTHER_MODEL
            s["sb_model_custom"] = model
    if "weights" in get:
        if get["weights"] in WEIGHTS:
            s["sb_weights"] = get["weights"]
        else:
            bad.append(f"weights={get['weights']!r} is not one of {WEIGHTS}")
    if get.get("layer"):
        s["sb_layer"] = str(get["layer"])
    images = str(get.get("images") or "")
    if images:
        parts = images.split(":")
        if parts[0] == "shapes":
            n = _int(parts[1], 8, 256) if len(parts) > 1 else 32
            k = _int(parts[2], 1, 3) if len(parts) > 2 else 1
            if n is None or k is None:
                bad.append(f"images={images!r}: shapes:N[:K] with N in 8..256 and K in 1..3")
            else:
                s.update(sb_source="shapes", sb_shapes_n=n - n % 4 if n % 4 else n, sb_shapes_k=k)
        elif parts[0] == "photos":
            s["sb_source"] = "photos"
        elif parts[0] == "crops":
            names = [x for x in (parts[1].split(",") if len(parts) > 1 else []) if x]
            per = _int(parts[2], 4, 25) if len(parts) > 2 else 9
            unknown = [x for x in names if photos and x not in photos]
            if not names or unknown or per is None:
                bad.append(f"images={images!r}: crops:PHOTO[,PHOTO]:K with K in 4..25"
                           + (f"; unknown photos {unknown}" if unknown else ""))
            else:
                s.update(sb_source="crops", sb_crops_photos=names, sb_crops_n=per)
        else:
            bad.append(f"images={images!r}: only shapes, photos and crops travel in links")
    if "seed" in get:
        seed = _int(get["seed"], 0, 10_000)
        if seed is None:
            bad.append(f"seed={get['seed']!r}: a whole number in 0..10000")
        else:
            s["sb_seed"] = seed
    if "kernel" in get:
        if get["kernel"] in KERNELS:
            s["sb_kernel"] = get["kernel"]
        else:
            bad.append(f"kernel={get['kernel']!r} is not one of {KERNELS}")
    if "matcher" in get:
        if get["matcher"] in MATCHERS:
            s["sb_matcher"] = get["matcher"]
        else:
            bad.append(f"matcher={get['matcher']!r} is not one of {MATCHERS}")
    for key, state_key in (("window", "sb_window"), ("k", "sb_topk")):
        if key in get:
            v = _int(get[key], 1, 4096)
            if v is None:
                bad.append(f"{key}={get[key]!r}: a whole number in 1..4096")
            else:
                s[state_key] = v
    if "pair" in get:
        try:
            i, j = (int(x) for x in str(get["pair"]).split(","))
            if i < 0 or j < 0:
                raise ValueError
            s[PAIR] = (i, j)
        except ValueError:
            bad.append(f"pair={get['pair']!r}: two image numbers, e.g. 3,17")
    return s, bad


def view_url(base: str, params: Mapping[str, str]) -> str:
    """``base/page?rest``: the page goes in the path (Streamlit's page URL), the rest in
    the query string; ``base`` is the app's address without a path."""
    rest = {k: v for k, v in params.items() if k != "page"}
    page = params.get("page", "")
    url = base.rstrip("/") + ("/" + page if page else "/")
    return url + ("?" + urlencode(rest, safe=",:") if rest else "")


# --------------------------------------------------------------------------- page state
# What is on a page, beyond the sidebar: new parameters after LINK_PARAMS, each with its
# session_state key; a value a link gets wrong is ignored and listed, as for the sidebar.
#
# =============  =================================================  ==================
# parameter      meaning                                            session key
# =============  =================================================  ==================
# order          heatmap order: loaded | label | cluster_spatial |  nav_order
#                cluster_semantic (RSM page)
# query, nn_k    the neighbours' query image and k                  nn_query, nn_k
# focus          the focus token of Token matching                  tm_focus
# emb, emb_nb,   embedding method (auto | umap | tsne | pca | mds),  emb_method,
# emb_seed,      UMAP neighbours, seed, 3-D (1/0), thumbnails        emb_neighbours, …
# emb_3d,        (1/0), neighbour lines
# emb_thumbs,
# emb_lines
# b_model,       Compare's configuration B                          cmp_model_b (/
# b_weights,                                                        _custom),
# b_layer                                                           cmp_weights_b, …
# tab            the Analyses tab: translation | layers |            an_tab (its label)
#                agreement | matchers
# step           the Tour's step: translation | retrieval |          tour_step
#                agreement | layers
# =============  =================================================  ==================

__all__ += ["ANALYSES_TABS", "PAGE_LINK_PARAMS", "PAGE_STATE_KEYS", "page_params_to_state",
            "page_state_to_params"]

#: page-state query parameters, in the order links write them (after LINK_PARAMS)
PAGE_LINK_PARAMS = ("order", "query", "nn_k", "focus", "emb", "emb_nb", "emb_seed", "emb_3d",
                    "emb_thumbs", "emb_lines", "b_model", "b_weights", "b_layer", "tab", "step")
#: the session_state keys links carry for the pages
PAGE_STATE_KEYS = ("nav_order", "nn_query", "nn_k", "tm_focus", "emb_method", "emb_neighbours",
                   "emb_seed", "emb_3d", "emb_thumbs", "emb_knn", "cmp_model_b",
                   "cmp_model_b_custom", "cmp_weights_b", "cmp_layer_b", "an_tab", "tour_step")
ORDERS = ("loaded", "label", "cluster_spatial", "cluster_semantic")
EMBEDDING_METHODS = ("auto", "umap", "tsne", "pca", "mds")
#: the Analyses page's tabs: link value -> tab label
ANALYSES_TABS = {"translation": "Translation", "layers": "Layers (CKA)",
                 "agreement": "Output agreement", "matchers": "Matchers"}
#: whole-number page parameters: parameter -> (session key, lowest, highest)
_PAGE_INTS = {
    "query": ("nn_query", 0, 100_000),
    "nn_k": ("nn_k", 1, 12),
    "focus": ("tm_focus", 0, 1_000_000),
    "emb_nb": ("emb_neighbours", 2, 50),
    "emb_seed": ("emb_seed", 0, 10_000),
    "emb_lines": ("emb_knn", 0, 10),
}
_PAGE_BOOLS = {"emb_3d": "emb_3d", "emb_thumbs": "emb_thumbs"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
#: longest model or layer name a link carries (timm names are far shorter)
_MAX_NAME = 200


def _tour_steps() -> tuple[str, ...]:
    from semrsm.explorer.tour import TOUR_STEPS

    return TOUR_STEPS


def page_state_to_params(state: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters for what the pages show (see the table above).

    Parameters
    ----------
    state : mapping with some of :data:`PAGE_STATE_KEYS`; missing keys and values that
        are not valid are left out of the link.

    Returns
    -------
    dict str -> str, in :data:`PAGE_LINK_PARAMS` order.
    """
    p: dict[str, str] = {}
    if state.get("nav_order") in ORDERS:
        p["order"] = str(state["nav_order"])
    for param, (key, lo, hi) in _PAGE_INTS.items():
        value = state.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi:
            p[param] = str(int(value))
    if state.get("emb_method") in EMBEDDING_METHODS:
        p["emb"] = str(state["emb_method"])
    for param, key in _PAGE_BOOLS.items():
        if isinstance(state.get(key), bool):
            p[param] = "1" if state[key] else "0"
    choice = state.get("cmp_model_b")
    model = state.get("cmp_model_b_custom") if choice == OTHER_MODEL else choice
    if model and str(model).strip():
        p["b_model"] = str(model).strip()[:_MAX_NAME]
    if state.get("cmp_weights_b") in WEIGHTS:
        p["b_weights"] = str(state["cmp_weights_b"])
    if state.get("cmp_layer_b"):
        p["b_layer"] = str(state["cmp_layer_b"])[:_MAX_NAME]
    tab = next((k for k, label in ANALYSES_TABS.items() if label == state.get("an_tab")), None)
    if tab is not None:
        p["tab"] = tab
    if state.get("tour_step") in _tour_steps():
        p["step"] = str(state["tour_step"])
    return {k: p[k] for k in PAGE_LINK_PARAMS if k in p}


def page_params_to_state(
    params: Mapping[str, str | Sequence[str]], *, model_choices: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """What a link asks the pages to show, as session state; values that cannot be used
    are ignored, each with a note saying why.

    Parameters
    ----------
    params : query parameters (a value may be a list: the last one counts); parameters
        that are not page state are not looked at.
    model_choices : the models of the Compare page's list; another name for B becomes
        "Other timm model…" with that name typed in.

    Returns
    -------
    state : dict of session keys (:data:`PAGE_STATE_KEYS`) to values.
    problems : list of str, one per parameter that was ignored, saying why.
    """
    get = {k: (v[-1] if isinstance(v, (list, tuple)) else v) for k, v in params.items()
           if k in PAGE_LINK_PARAMS}
    s: dict[str, Any] = {}
    bad: list[str] = []
    if "order" in get:
        if get["order"] in ORDERS:
            s["nav_order"] = get["order"]
        else:
            bad.append(f"order={get['order']!r} is not one of {ORDERS}")
    for param, (key, lo, hi) in _PAGE_INTS.items():
        if param in get:
            v = _int(get[param], lo, hi)
            if v is None:
                bad.append(f"{param}={get[param]!r}: a whole number in {lo}..{hi}")
            else:
                s[key] = v
    if "emb" in get:
        if get["emb"] in EMBEDDING_METHODS:
            s["emb_method"] = get["emb"]
        else:
            bad.append(f"emb={get['emb']!r} is not one of {EMBEDDING_METHODS}")
    for param, key in _PAGE_BOOLS.items():
        if param in get:
            v = str(get[param]).strip().lower()
            if v in _TRUE or v in _FALSE:
                s[key] = v in _TRUE
            else:
                bad.append(f"{param}={get[param]!r}: 1 or 0")
    if "b_model" in get:
        model = str(get["b_model"] or "").strip()
        if not model or len(model) > _MAX_NAME:
            bad.append(f"b_model={get['b_model']!r}: a model name")
        elif model in model_choices:
            s["cmp_model_b"] = model
        else:
            s["cmp_model_b"] = OTHER_MODEL
            s["cmp_model_b_custom"] = model
    if "b_weights" in get:
        if get["b_weights"] in WEIGHTS:
            s["cmp_weights_b"] = get["b_weights"]
        else:
            bad.append(f"b_weights={get['b_weights']!r} is not one of {WEIGHTS}")
    if "b_layer" in get:
        layer = str(get["b_layer"] or "").strip()
        if not layer or len(layer) > _MAX_NAME:
            bad.append(f"b_layer={get['b_layer']!r}: a layer name")
        else:
            s["cmp_layer_b"] = layer
    if "tab" in get:
        if get["tab"] in ANALYSES_TABS:
            s["an_tab"] = ANALYSES_TABS[get["tab"]]
        else:
            bad.append(f"tab={get['tab']!r} is not one of {tuple(ANALYSES_TABS)}")
    if "step" in get:
        if get["step"] in _tour_steps():
            s["tour_step"] = get["step"]
        else:
            bad.append(f"step={get['step']!r} is not one of {_tour_steps()}")
    return s, bad
