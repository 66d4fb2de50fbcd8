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

A link is untrusted text: every value that cannot be used is skipped with a note that says
why, never used silently in another form. :func:`params_to_state` checks what the text
alone decides (a layer *name*, a known page, image numbers within :data:`MAX_IMAGES`);
:func:`layer_problem` and :func:`pair_problem` check what needs the model's layer list or
the number of images, once those are known. Names are checked against strict patterns
(letters, digits, ``_``, ``-``, dots between parts), so no value of a link can name a path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "LINK_PARAMS",
    "MAX_IMAGES",
    "PAGE",
    "PAIR",
    "layer_problem",
    "pair_problem",
    "params_to_state",
    "state_to_params",
    "view_url",
]

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


def _last(value: str | Sequence[str]) -> str:
    """The value of a parameter given once or more (the last one counts; none: empty)."""
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def _show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from a link, clipped: a note never repeats kilobytes of URL."""
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _int(value: str, lo: int, hi: int) -> int | None:
    """A whole number in ``lo..hi`` written in ASCII digits, else None.

    Stricter than ``int()``, which also takes ``1_000``, other scripts' digits and
    thousands of digits."""
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", text):
        return None
    v = int(text)
    return v if lo <= v <= hi else None


def _name_ok(value: str, pattern: re.Pattern[str]) -> bool:
    return len(value) <= _NAME_LIMIT and pattern.fullmatch(value) is not None


def _parse_pair(value: str) -> tuple[int, int] | None:
    """``"3,17"`` → ``(3, 17)``; None unless two image numbers below :data:`MAX_IMAGES`."""
    parts = str(value).split(",")
    if len(parts) != 2:
        return None
    i, j = (_int(x, 0, MAX_IMAGES - 1) for x in parts)
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


def _read_shapes(images: str, parts: list[str]) -> _Read:
    n = _int(parts[1], 8, 256) if len(parts) > 1 else 32
    k = _int(parts[2], 1, 3) if len(parts) > 2 else 1
    if n is None or k is None or len(parts) > 3:
        return {}, f"images={_show(images)}: shapes:N[:K] with N in 8..256 and K in 1..3"
    return {"sb_source": "shapes", "sb_shapes_n": n - n % 4 if n % 4 else n, "sb_shapes_k": k}, None


def _read_crops(images: str, parts: list[str], photos: Sequence[str]) -> _Read:
    names = [x for x in (parts[1].split(",") if len(parts) > 1 else []) if x]
    per = _int(parts[2], 4, 25) if len(parts) > 2 else 9
    unknown = [x for x in names if (photos and x not in photos) or not _name_ok(x, _PAGE_RE)]
    if names and not unknown and per is not None and len(parts) <= 3:
        return {"sb_source": "crops", "sb_crops_photos": names, "sb_crops_n": per}, None
    which = f"; unknown photos {_clip_list([_show(x, 30) for x in unknown])}" if unknown else ""
    return {}, f"images={_show(images)}: crops:PHOTO[,PHOTO]:K with K in 4..25{which}"


def _read_images(images: str, photos: Sequence[str]) -> _Read:
    parts = images.split(":")
    if parts[0] == "shapes":
        return _read_shapes(images, parts)
    if images == "photos":
        return {"sb_source": "photos"}, None
    if parts[0] == "crops":
        return _read_crops(images, parts, photos)
    return {}, f"images={_show(images)}: only shapes:N[:K], photos and crops travel in links"


def _read_choice(name: str, value: str, options: Sequence[str], state_key: str) -> _Read:
    if value in options:
        return {state_key: value}, None
    return {}, f"{name}={_show(value)} is not one of {tuple(options)}"


def _read_number(name: str, value: str, lo: int, hi: int, state_key: str) -> _Read:
    number = _int(value, lo, hi)
    if number is None:
        return {}, f"{name}={_show(value)}: a whole number in {lo}..{hi}"
    return {state_key: number}, None


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
        "matcher": lambda v: _read_choice("matcher", v, MATCHERS, "sb_matcher"),
        "window": lambda v: _read_number("window", v, 1, 4096, "sb_window"),
        "k": lambda v: _read_number("k", v, 1, 4096, "sb_topk"),
        "pair": _read_pair,
    }
    state: dict[str, Any] = {}
    problems = [f"{_show(k)}: not a parameter of links ({', '.join(LINK_PARAMS)})"
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
