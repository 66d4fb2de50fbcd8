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
matcher    a name of the matcher registry                      sb_matcher
window, k  the matcher's parameters the app shows (the         sb_window, sb_topk
           registry's ``Param.in_app``: batch-optimal window,
           top-k greedy k), in the widget's range
pair       ``i,j``, the selected pair of images                (pair)
=========  ==================================================  ==========================

Uploaded images, server folders and uploaded checkpoints are not carried (a link cannot
hold files); :func:`state_to_params` then leaves the images (or weights) out and says so.

A link is untrusted text: every value that cannot be used is skipped with a note that says
why, never used silently in another form. :func:`params_to_state` checks what the text
alone decides (a layer *name*, a known page, image numbers within :data:`MAX_IMAGES`);
:func:`layer_problem` and :func:`pair_problem` check what needs the model's layer list or
the number of images, once those are known. Names are checked against strict patterns
(letters, digits, ``_``, ``-``, dots between parts), so no value of a link can name a path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from semrsm.explorer.config import WEIGHTS as _CONFIG_WEIGHTS
from semrsm.explorer.image_sources import BUILTIN_SOURCES, whole_number
from semrsm.kernels import KERNELS
from semrsm.matching.registry import REGISTRY, Param, app_params

__all__ = [
    "LINK_PARAMS",
    "MAX_IMAGES",
    "PAGE",
    "PAIR",
    "layer_problem",
    "pair_problem",
    "params_to_state",
    "sidebar_keys",
    "state_to_params",
    "view_url",
]

#: state key of the page and of the selected pair (the sidebar keys are the widgets')
PAGE = "page"
PAIR = "pair"


def _link_params() -> tuple[str, ...]:
    """Query parameters in the order links write them, the matchers' from the registry."""
    return ("page", "model", "weights", "layer", "images", "seed", "kernel", "matcher",
            *app_params(), "pair")


#: query parameters, in the order links write them (matchers registered later add theirs)
LINK_PARAMS = _link_params()
#: weights a link carries (not a checkpoint file)
WEIGHTS = tuple(w for w in _CONFIG_WEIGHTS if w != "file")
#: sidebar keys links carry besides the matcher parameters' (see :func:`sidebar_keys`)
_SIDEBAR_KEYS = ("sb_model_choice", "sb_model_custom", "sb_weights", "sb_layer", "sb_source",
                 *(c.key for s in BUILTIN_SOURCES.values() for c in s.controls), "sb_seed",
                 "sb_kernel", "sb_matcher")
OTHER_MODEL = "Other timm model…"
#: more images than any set holds: a pair beyond it is refused before any set is loaded
MAX_IMAGES = 100_000
#: a module path such as ``layer3`` or ``stages.1.blocks.0``: no slash, no empty part
_LAYER_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
#: a demo or timm registry name such as ``resnet50.a1_in1k`` (no source prefix, no path)
_MODEL_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
#: a page's URL path (``compare``, ``token_matching``)
_PAGE_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME_LIMIT = 200
#: query parameters Streamlit itself reads (embedding options): not ours to report
_STREAMLIT_PARAMS = ("embed", "embed_options")
#: parameters whose empty value means "not given" (the others report an empty value)
_OPTIONAL = ("page", "model", "layer", "images")


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
    if source in BUILTIN_SOURCES:
        p["images"] = BUILTIN_SOURCES[source].spec(state)
        if BUILTIN_SOURCES[source].seeded:
            p["seed"] = str(int(state.get("sb_seed") or 0))
    elif source in ("uploads", "folder"):
        notes.append("uploaded images and server folders (the link opens the default image set)")
    if state.get("sb_kernel") in KERNELS:
        p["kernel"] = str(state["sb_kernel"])
    matcher = state.get("sb_matcher")
    if matcher in REGISTRY:
        p["matcher"] = str(matcher)
        for param in REGISTRY[matcher].params:
            if param.in_app and state.get(param.key) is not None:
                p[param.name] = _param_text(param, state[param.key])
    pair = state.get(PAIR)
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        p["pair"] = f"{int(pair[0])},{int(pair[1])}"
    return {k: p[k] for k in _link_params() if k in p}, notes


def sidebar_keys() -> tuple[str, ...]:
    """The sidebar's session-state keys links carry (the matcher parameters' from the
    registry)."""
    return (*_SIDEBAR_KEYS, *(param.key for param in app_params().values()))


def _param_text(param: Param, value: Any) -> str:
    return str(int(value)) if param.kind is int else str(value)


def _last(value: str | Sequence[str]) -> str:
    """The value of a parameter given once or more (the last one counts; none: empty)."""
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from a link, clipped: a note never repeats kilobytes of URL."""
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _name_ok(value: str, pattern: re.Pattern[str]) -> bool:
    return len(value) <= _NAME_LIMIT and pattern.fullmatch(value) is not None


def _parse_pair(value: str) -> tuple[int, int] | None:
    """``"3,17"`` → ``(3, 17)``; None unless two image numbers below :data:`MAX_IMAGES`."""
    parts = str(value).split(",")
    if len(parts) != 2:
        return None
    i, j = (whole_number(x, 0, MAX_IMAGES - 1) for x in parts)
    return None if i is None or j is None else (i, j)


def layer_problem(layer: str, layers: Sequence[str], model: str = "") -> str | None:
    """Why a link's layer cannot be shown, once the model's layer list is known.

    Parameters
    ----------
    layer : the layer the link asked for.
    layers : the names of the model's layers (empty: not known; the note lists none).
    model : the model's name, for the note.

    Returns
    -------
    str or None
        A note (as :func:`params_to_state` gives), or None when ``layer`` is one of them.
    """
    if layer in layers:
        return None
    of = f" of {_show(model)}" if model else ""
    listed = f" (its layers: {_clip_list(layers)})" if layers else ""
    return f"layer={_show(layer)} is not a layer{of}{listed}"


def pair_problem(pair: Sequence[int], n: int) -> str | None:
    """Why a link's pair cannot be shown on a set of ``n`` images (None when it can)."""
    if len(pair) == 2 and all(0 <= int(x) < n for x in pair):
        return None
    shown = ",".join(str(int(x)) for x in pair)
    return f"pair={_show(shown)}: this set has {n} images, numbered 0..{n - 1}"


def _clip_list(names: Sequence[str], limit: int = 6) -> str:
    head = ", ".join(str(x) for x in list(names)[:limit])
    return head + (f", … ({len(names)} in all)" if len(names) > limit else "")


#: what one parameter of a link gives: sidebar state, and a note when it is skipped
_Read = tuple[dict[str, Any], str | None]


def _read_page(value: str, pages: Sequence[str] | None) -> _Read:
    page = value.strip().strip("/")
    if not page:
        return {}, None  # "/": the default page
    if _name_ok(page, _PAGE_RE) and (pages is None or page in pages):
        return {PAGE: page}, None
    known = f" (pages: {_clip_list([p for p in pages if p])})" if pages else ""
    return {}, f"page={_show(value)} is not a page of the app{known}"


def _read_model(value: str, model_choices: Sequence[str]) -> _Read:
    model = value.strip()
    if model in model_choices:
        return {"sb_model_choice": model}, None
    if _name_ok(model, _MODEL_RE):
        return {"sb_model_choice": OTHER_MODEL, "sb_model_custom": model}, None
    return {}, (f"model={_show(model)}: links carry demo or timm model names "
                "(letters, digits, _, - and .)")


def _read_layer(value: str) -> _Read:
    layer = value.strip()
    if _name_ok(layer, _LAYER_RE):
        return {"sb_layer": layer}, None  # checked against the model's layers once known
    return {}, (f"layer={_show(value)} is not a layer name (parts of letters, digits, _ and "
                "- joined by dots, e.g. layer3 or blocks.1)")


def _read_images(images: str, photos: Sequence[str]) -> _Read:
    parts = images.split(":")
    source = BUILTIN_SOURCES.get(parts[0])
    if source is None:
        forms = ", ".join(s.form.split(":")[0] for s in BUILTIN_SOURCES.values())
        return {}, f"images={_show(images)}: only {forms} travel in links"
    values = source.from_spec(parts, photos)
    if isinstance(values, str):
        why = f"; {values}" if values else ""
        return {}, f"images={_show(images)}: {source.form}{why}"
    return {"sb_source": source.name, **values}, None


def _read_choice(name: str, value: str, options: Sequence[str], state_key: str) -> _Read:
    if value in options:
        return {state_key: value}, None
    return {}, f"{name}={_show(value)} is not one of {tuple(options)}"


def _read_number(name: str, value: str, lo: int, hi: int, state_key: str) -> _Read:
    number = whole_number(value, lo, hi)
    if number is None:
        return {}, f"{name}={_show(value)}: a whole number in {lo}..{hi}"
    return {state_key: number}, None


def _read_param(param: Param, value: str) -> _Read:
    """A matcher parameter in the range of the app's widget (what the sidebar can show)."""
    if param.kind is int:
        return _read_number(param.name, value, int(param.ui_low), int(param.ui_high), param.key)
    if param.kind is str:
        return _read_choice(param.name, value, param.choices, param.key)
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if param.ui_low <= number <= param.ui_high:  # False for NaN
        return {param.key: number}, None
    return {}, f"{param.name}={_show(value)}: a number in {param.ui_low:g}..{param.ui_high:g}"


def _read_pair(value: str) -> _Read:
    pair = _parse_pair(value)
    if pair is None:
        return {}, f"pair={_show(value)}: two image numbers in 0..{MAX_IMAGES - 1}, e.g. 3,17"
    return {PAIR: pair}, None  # checked against the set's size once the images are known


def params_to_state(
    params: Mapping[str, str | Sequence[str]],
    *,
    model_choices: Sequence[str] = (),
    photos: Sequence[str] = (),
    pages: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The view a link asks for, as sidebar state; values that cannot be used are skipped.

    Parameters
    ----------
    params : query parameters (a value may be a list: the last one counts).
    model_choices : the models of the sidebar's list; another name becomes
        "Other timm model…" with that name typed in.
    photos : the photo names a ``crops`` set may use (empty: any).
    pages : the URL paths of the app's pages (None: any well-formed page name).

    Returns
    -------
    state : dict of sidebar keys (and ``page``, ``pair``) to values.
    problems : list of str, one per parameter that was skipped, saying why.
    """
    get = {k: _last(v) for k, v in params.items()}
    readers = {
        "page": lambda v: _read_page(v, pages),
        "model": lambda v: _read_model(v, model_choices),
        "weights": lambda v: _read_choice("weights", v, WEIGHTS, "sb_weights"),
        "layer": _read_layer,
        "images": lambda v: _read_images(v, photos),
        "seed": lambda v: _read_number("seed", v, 0, 10_000, "sb_seed"),
        "kernel": lambda v: _read_choice("kernel", v, KERNELS, "sb_kernel"),
        "matcher": lambda v: _read_choice("matcher", v, tuple(REGISTRY), "sb_matcher"),
        **{name: (lambda v, p=param: _read_param(p, v)) for name, param in app_params().items()},
        "pair": _read_pair,
    }
    state: dict[str, Any] = {}
    problems = [f"{_show(k)}: not a parameter of links ({', '.join(_link_params())})"
                for k in get if k not in readers and k not in _STREAMLIT_PARAMS]
    for name, read in readers.items():
        # an empty page, model, layer or image set means "not given"; other values count
        if name not in get or (name in _OPTIONAL and not get[name].strip()):
            continue
        updates, problem = read(get[name])
        state.update(updates)
        if problem:
            problems.append(problem)
    return state, problems


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

__all__ += ["ANALYSES_TABS", "PAGE_LINK_PARAMS", "PAGE_STATE_KEYS", "link_to_state",
            "page_params_to_state", "page_state_to_params"]

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
        p["b_model"] = str(model).strip()[:_NAME_LIMIT]
    if state.get("cmp_weights_b") in WEIGHTS:
        p["b_weights"] = str(state["cmp_weights_b"])
    if state.get("cmp_layer_b"):
        p["b_layer"] = str(state["cmp_layer_b"])[:_NAME_LIMIT]
    tab = next((k for k, label in ANALYSES_TABS.items() if label == state.get("an_tab")), None)
    if tab is not None:
        p["tab"] = tab
    if state.get("tour_step") in _tour_steps():
        p["step"] = str(state["tour_step"])
    return {k: p[k] for k in PAGE_LINK_PARAMS if k in p}


def _read_flag(name: str, value: str, state_key: str) -> _Read:
    v = value.strip().lower()
    if v in _TRUE or v in _FALSE:
        return {state_key: v in _TRUE}, None
    return {}, f"{name}={_show(value)}: 1 or 0"


def _read_b_model(value: str, model_choices: Sequence[str]) -> _Read:
    state, problem = _read_model(value, model_choices)
    keys = {"sb_model_choice": "cmp_model_b", "sb_model_custom": "cmp_model_b_custom"}
    return {keys[k]: v for k, v in state.items()}, problem and "b_" + problem


def _read_b_layer(value: str) -> _Read:
    state, problem = _read_layer(value)
    return ({"cmp_layer_b": state["sb_layer"]} if state else {}), problem and "b_" + problem


def _read_tab(value: str) -> _Read:
    if value in ANALYSES_TABS:
        return {"an_tab": ANALYSES_TABS[value]}, None
    return {}, f"tab={_show(value)} is not one of {tuple(ANALYSES_TABS)}"


def page_params_to_state(
    params: Mapping[str, str | Sequence[str]], *, model_choices: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """What a link asks the pages to show, as session state; values that cannot be used
    are ignored, each with a note saying why (the notes, and the checks of model and
    layer names, are those of :func:`params_to_state`).

    Parameters
    ----------
    params : query parameters (a value may be a list: the last one counts); parameters
        that are not page state are not looked at (:func:`link_to_state` reads both).
    model_choices : the models of the Compare page's list; another name for B becomes
        "Other timm model…" with that name typed in.

    Returns
    -------
    state : dict of session keys (:data:`PAGE_STATE_KEYS`) to values.
    problems : list of str, one per parameter that was ignored, saying why.
    """
    readers = {
        "order": lambda v: _read_choice("order", v, ORDERS, "nav_order"),
        **{param: (lambda v, p=param, k=key, lo=lo, hi=hi: _read_number(p, v, lo, hi, k))
           for param, (key, lo, hi) in _PAGE_INTS.items()},
        "emb": lambda v: _read_choice("emb", v, EMBEDDING_METHODS, "emb_method"),
        **{param: (lambda v, p=param, k=key: _read_flag(p, v, k))
           for param, key in _PAGE_BOOLS.items()},
        "b_model": lambda v: _read_b_model(v, model_choices),
        "b_weights": lambda v: _read_choice("b_weights", v, WEIGHTS, "cmp_weights_b"),
        "b_layer": _read_b_layer,
        "tab": _read_tab,
        "step": lambda v: _read_choice("step", v, _tour_steps(), "tour_step"),
    }
    state: dict[str, Any] = {}
    problems: list[str] = []
    for name in PAGE_LINK_PARAMS:
        if name in params:
            updates, problem = readers[name](_last(params[name]))
            state.update(updates)
            if problem:
                problems.append(problem)
    return state, problems


# same keywords as params_to_state, which gets them: one signature, not repeated logic
def link_to_state(
    params: Mapping[str, str | Sequence[str]],
    *,
    model_choices: Sequence[str] = (),
    photos: Sequence[str] = (),
    pages: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The whole view a link asks for: the sidebar's (:func:`params_to_state`, which
    reports parameters it does not know) and what the pages show
    (:func:`page_params_to_state`); arguments as :func:`params_to_state`."""
    sidebar = {k: v for k, v in params.items() if k not in PAGE_LINK_PARAMS}
    state, problems = params_to_state(sidebar, model_choices=model_choices, photos=photos,
                                      pages=pages)
    page_state, page_problems = page_params_to_state(params, model_choices=model_choices)
    return {**state, **page_state}, [*problems, *page_problems]
