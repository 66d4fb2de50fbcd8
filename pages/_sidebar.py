"""Shared UI of the explorer: the sidebar, the cached computation, progress, errors.

Every page of the app uses this module the same way::

    import streamlit as st
    from pages._sidebar import current_result, SELECTED_PAIR_KEY

    st.title("...")
    st.markdown("two or three plain sentences for a newcomer")
    result = current_result()   # -> semrsm.explorer.ExplorerResult | None
    if result is None:          # an error or a "compute" button was shown instead
        st.stop()

Public names
------------
``current_result() -> ExplorerResult | None``
    The result for the sidebar's configuration: from this session's memory, else the
    on-disk cache, else computed here with progress bars (extraction, pairs). Long runs
    (estimated over ``semrsm.explorer.LONG_RUN_SECONDS``) wait behind a button. Errors
    (unknown model, bad files, out of memory) are shown with ``st.error`` saying what
    to do, and None is returned; the app keeps running.
``render_sidebar() -> ExplorerConfig``
    Draws the sidebar (once per run; later calls return the same configuration) and
    stores the configuration under ``st.session_state[CONFIG_KEY]``.
    :func:`current_result` calls it, so a page normally never does. Every page draws
    its own copy of the sidebar: widget values travel between pages through
    ``st.session_state`` (this also keeps the app working when Streamlit runs a page
    of the ``pages/`` folder directly, as ``AppTest`` does on reruns).
``current_config() -> ExplorerConfig``
    The configuration the sidebar produced in this run (drawing it if needed).
``SELECTED_PAIR_KEY``
    ``st.session_state[SELECTED_PAIR_KEY]`` holds ``(i, j)``, the image indices of a
    pair chosen on the RSM page (a heatmap cell, or its pair picker); the
    token-matching page reads it.
``get_cache() -> Cache``, ``get_model(config) -> LoadedModel``
    The process-wide cache and the models, held with ``st.cache_resource``.
``streamlit_progress(label)``
    Context manager yielding a ``progress(stage, done, total)`` callback that draws one
    progress bar per stage, for long analyses on other pages.
``show_error(err)``
    ``st.error`` with what to do for the errors the backend raises.
"""

from __future__ import annotations

import contextlib
import html
import traceback
from collections.abc import Iterator
from pathlib import Path

import streamlit as st
import torch
from streamlit.errors import StreamlitAPIException

from semrsm.cache import Cache, default_cache_dir
from semrsm.explorer import (
    ComputeError,
    ExplorerConfig,
    ExplorerError,
    ExplorerResult,
    compute,
    data_root,
    default_layer,
    list_server_folders,
    load_images,
    load_model,
    plan,
)
from semrsm.images import PHOTO_FILES, ImageError
from semrsm.kernels import KERNELS
from semrsm.matching import MATCHERS
from semrsm.models import DEMO_MODELS, POPULAR_MODELS, ModelError

__all__ = [
    "CONFIG_KEY",
    "SELECTED_PAIR_KEY",
    "TOKEN_PAGE",
    "current_config",
    "current_result",
    "get_cache",
    "get_model",
    "render_sidebar",
    "show_error",
    "streamlit_progress",
]

#: session_state key of the (i, j) pair chosen on the RSM page for the token-matching page
SELECTED_PAIR_KEY = "semrsm_selected_pair"
#: session_state key of the configuration the sidebar produced in this run
CONFIG_KEY = "semrsm_config"
_RESULTS_KEY = "semrsm_results"
_CONFIRMED_KEY = "semrsm_confirmed_runs"
_MEMO_SIZE = 4
#: the token-matching page (issue 5), linked when the file exists
TOKEN_PAGE = Path(__file__).resolve().parent / "token_matching.py"

OTHER_MODEL = "Other timm model…"
SOURCES = {
    "shapes": "Shapes (procedural, labelled)",
    "photos": "Photos (scikit-image)",
    "crops": "Translated crops of photos",
    "uploads": "Upload images",
    "folder": "Folder on the server",
}
WEIGHT_LABELS = {
    "default": "demo weights (shipped)",
    "pretrained": "pretrained (timm; downloads when online)",
    "none": "none (random init)",
    "file": "local checkpoint",
}
MATCHER_LABELS = {
    "exact": "exact (optimal)",
    "batch_optimal": "batch-optimal (paper's trade-off)",
    "topk_greedy": "top-k greedy",
    "greedy": "greedy",
    "identity": "identity (no matching)",
}
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]


# --------------------------------------------------------------------------- resources


@st.cache_resource(show_spinner=False)
def _cache(root: str) -> Cache:
    return Cache(root)


def get_cache() -> Cache:
    """The on-disk cache shared by all sessions of the process (``$SEMRSM_CACHE_DIR``)."""
    return _cache(str(default_cache_dir()))


@st.cache_resource(show_spinner=False, max_entries=3)
def _model(name: str, weights: str, checkpoint: str | None, device: str):
    return load_model(
        ExplorerConfig(model=name, weights=weights, checkpoint=checkpoint, device=device)
    )


def get_model(config: ExplorerConfig):
    """The model of ``config``, loaded once per process (``st.cache_resource``).

    Raises
    ------
    semrsm.models.ModelError, semrsm.explorer.ExplorerError
        As :func:`semrsm.explorer.load_model` (errors are not cached).
    """
    return _model(config.model.strip(), config.weights, config.checkpoint, config.device)


@st.cache_resource(show_spinner=False, max_entries=8)
def _builtin_images(spec: str, seed: int):
    # Built-in sets are pure functions of (spec, seed): generate them once per process.
    return load_images(ExplorerConfig(images=spec, seed=seed), get_cache())


def _images(config: ExplorerConfig, cache: Cache):
    """The image set of ``config``; built-in sets are shared by all sessions (read only),
    uploads and server folders are read each time (a folder may change)."""
    if config.images.partition(":")[0] in ("shapes", "photos", "crops"):
        return _builtin_images(config.images, config.seed)
    return load_images(config, cache)


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(name: str, weights: str, checkpoint: str | None, device: str):
    from semrsm.layers import list_layers

    return list_layers(_model(name, weights, checkpoint, device))


# --------------------------------------------------------------------------- errors


def show_error(err: BaseException) -> None:
    """Show a backend error as ``st.error`` with what to do; never a traceback element."""
    if isinstance(err, ModelError):
        st.error(
            f"**The model could not be loaded.** {err}\n\n"
            "Pick a demo model, check the spelling of the timm name, or choose other weights."
        )
    elif isinstance(err, ImageError):
        st.error(f"**The images could not be used.** {err}")
    elif isinstance(err, ComputeError):
        st.error(f"**The computation stopped.** {err}")
    elif isinstance(err, (ExplorerError, ValueError)):
        st.error(f"**This configuration cannot run.** {err}")
    else:
        st.error(
            f"**Something went wrong:** {type(err).__name__}: {err}\n\n"
            "Try another configuration; if it persists, report it with the details below."
        )
        with st.expander("details"):
            st.code("".join(traceback.format_exception(err)), language="text")


# --------------------------------------------------------------------------- sidebar

#: widget keys of the sidebar and their initial values; their values are carried from
#: page to page (each page draws its own copy of the sidebar, see render_sidebar)
SIDEBAR_DEFAULTS: dict[str, object] = {
    "sb_model_choice": next(iter(DEMO_MODELS)),
    "sb_model_custom": "",
    "sb_ckpt_path": "",
    "sb_source": "shapes",
    "sb_shapes_n": 32,
    "sb_shapes_k": 1,
    "sb_seed": 0,
    "sb_crops_photos": ["astronaut", "coffee"],
    "sb_crops_n": 9,
    "sb_upload_labels": False,
    "sb_kernel": "cosine",
    "sb_matcher": "exact",
    "sb_window": int(MATCHERS["batch_optimal"]["params"]["window"]),
    "sb_topk": int(MATCHERS["topk_greedy"]["params"]["k"]),
    "sb_device": "auto",
}
#: keys whose valid values depend on other choices (validated where they are drawn)
_DEPENDENT_KEYS = ("sb_weights", "sb_layer", "sb_folder")
_KEPT_UPLOADS = "_sb_kept_uploads"
_KEPT_CHECKPOINT = "_sb_kept_checkpoint"


def _fmt_layer(li) -> str:
    h, w = li.grid
    return f"{li.name} — {li.channels}×{h}×{w} · {li.num_tokens} tokens"


def _keep_uploads(cache: Cache) -> None:
    """on_change of the image uploader: store the files and remember them (a widget on
    another page starts empty, so the uploaded set lives in session_state)."""
    files = st.session_state.get("sb_uploads") or []
    st.session_state[_KEPT_UPLOADS] = tuple(
        (f.name, cache.store_upload(f.name, f.getvalue())) for f in files
    )


def _keep_checkpoint(cache: Cache) -> None:
    up = st.session_state.get("sb_ckpt_upload")
    if up is None:
        st.session_state[_KEPT_CHECKPOINT] = None
    else:
        digest = cache.store_upload(up.name, up.getvalue())
        st.session_state[_KEPT_CHECKPOINT] = (up.name, str(cache.upload_path(digest)))


def _model_section(cache: Cache, choice: str) -> tuple[str, str, str | None]:
    sb = st.sidebar
    if choice == OTHER_MODEL:
        name = sb.text_input(
            "timm model name", key="sb_model_custom", placeholder="e.g. resnet18.a1_in1k"
        ).strip()
    else:
        name = choice
    demo = name in DEMO_MODELS
    options = ["default", "none", "file"] if demo else ["pretrained", "none", "file"]
    if st.session_state.get("sb_weights") not in options:
        st.session_state["sb_weights"] = options[0]
    weights = sb.radio("Weights", options, key="sb_weights", format_func=WEIGHT_LABELS.get)
    checkpoint = None
    if weights == "file":
        sb.file_uploader(
            "Checkpoint (.safetensors, .pt, .pth)",
            type=["safetensors", "pt", "pth", "bin"],
            key="sb_ckpt_upload",
            on_change=_keep_checkpoint,
            args=(cache,),
        )
        kept = st.session_state.get(_KEPT_CHECKPOINT)
        if kept:
            checkpoint = kept[1]
            sb.caption(f"Using the uploaded checkpoint **{kept[0]}**.")
        root = data_root()
        if root is not None:
            rel = sb.text_input(f"…or a path inside {root}", key="sb_ckpt_path").strip()
            if rel:
                path = (root / rel).resolve()
                if path == root or root in path.parents:
                    checkpoint = str(path)
                else:
                    sb.error(f"{rel!r} lies outside {root}; give a path inside it")
    return name, weights, checkpoint


def _image_section(cache: Cache) -> tuple[str, tuple[tuple[str, str], ...], int, bool]:
    sb = st.sidebar
    root = data_root()
    sources = [k for k in SOURCES if k != "folder" or root is not None]
    if st.session_state.get("sb_source") not in sources:
        st.session_state["sb_source"] = "shapes"
    source = sb.selectbox("Image set", sources, key="sb_source", format_func=SOURCES.get)
    uploads: tuple[tuple[str, str], ...] = ()
    seed = 0
    labels_from_names = False
    if source == "shapes":
        n = sb.slider("Images", 8, 256, step=4, key="sb_shapes_n")
        k = sb.slider(
            "Objects per image",
            1,
            3,
            key="sb_shapes_k",
            help="With several objects the label is the largest object's class.",
        )
        seed = int(sb.number_input("Seed", 0, 10_000, key="sb_seed"))
        spec = f"shapes:{n}" + (f":{k}" if k > 1 else "")
    elif source == "photos":
        spec = "photos"
    elif source == "crops":
        photos = sb.multiselect("Photos", list(PHOTO_FILES), key="sb_crops_photos")
        per = sb.slider("Crops per photo", 4, 25, key="sb_crops_n")
        spec = f"crops:{','.join(photos)}:{per}" if photos else "crops:astronaut"
    elif source == "uploads":
        sb.file_uploader(
            "Images",
            type=IMAGE_TYPES,
            accept_multiple_files=True,
            key="sb_uploads",
            on_change=_keep_uploads,
            args=(cache,),
            help="Stored only inside the app's cache folder. Files that do not decode are "
            "listed and skipped.",
        )
        uploads = st.session_state.get(_KEPT_UPLOADS, ())
        if uploads and not st.session_state.get("sb_uploads"):
            sb.caption(f"Using the {len(uploads)} files uploaded earlier.")
        labels_from_names = sb.checkbox(
            "Labels from file names (text before the first _ or -)", key="sb_upload_labels"
        )
        spec = "uploads"
    else:
        folders = list_server_folders(root)
        if st.session_state.get("sb_folder") not in folders:
            st.session_state["sb_folder"] = folders[0]
        rel = sb.selectbox(f"Folder in {root}", folders, key="sb_folder")
        spec = f"folder:{rel}"
    return spec, uploads, seed, labels_from_names


def _ensure_navigation() -> None:
    """Leave Streamlit's legacy ``pages/`` folder mode if this run is in it.

    A ``pages/`` folder next to the entrypoint makes Streamlit run a requested page
    script directly, without ``app.py``, until some session has called
    ``st.navigation`` (for example the first visit after a server start opening
    ``/neighbours``; ``AppTest`` on every rerun). The docs say ``st.navigation``
    turns that mode off for all sessions; this does it at once and reruns, so
    ``app.py`` registers the pages and runs the requested one. (Under ``AppTest``
    there is no rerun: it would reset on every run anyway.)
    """
    try:
        from streamlit import config as st_config
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without these internals: nothing to do
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        # AppTest resets the mode before every run, and a rerun would drop button clicks;
        # there the page simply runs on (it draws its own sidebar either way).
        if not st_config.get_option("global.appTest"):
            st.rerun()


def render_sidebar() -> ExplorerConfig:
    """Draw the sidebar (once per run) and return its configuration.

    Each page draws the sidebar (through :func:`current_result`); the widget values are
    carried between pages through ``st.session_state``. Calling it again in the same
    run returns the configuration of the first call without drawing anything.

    Returns
    -------
    ExplorerConfig
        ``layer`` is None when the model could not be loaded (:func:`current_result`
        then shows the error on the page); also stored under
        ``st.session_state[CONFIG_KEY]``.
    """
    _ensure_navigation()
    cache = get_cache()
    sb = st.sidebar
    try:
        # Re-assigning a widget's key turns its value into plain session state, which the
        # same widget on another page picks up (Streamlit's documented way to keep widget
        # values across pages). It raises if the widget already exists in this run.
        for key, default in SIDEBAR_DEFAULTS.items():
            st.session_state[key] = st.session_state.get(key, default)
        for key in _DEPENDENT_KEYS:
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]
        choices = [*DEMO_MODELS, *POPULAR_MODELS, OTHER_MODEL]
        if st.session_state["sb_model_choice"] not in choices:
            st.session_state["sb_model_choice"] = choices[0]
        choice = sb.selectbox(
            "Model",
            choices,
            key="sb_model_choice",
            help="Demo models run offline. Popular timm models need pretrained weights "
            "(downloaded by timm when online, or from its local cache); 'Other' takes any "
            "timm name.",
        )
    except StreamlitAPIException:
        cfg = st.session_state.get(CONFIG_KEY)
        if isinstance(cfg, ExplorerConfig):
            return cfg  # already drawn in this run
        raise
    name, weights, checkpoint = _model_section(cache, choice)

    cuda = torch.cuda.is_available()
    devices = ["auto", "cpu", "cuda"] if cuda else ["auto", "cpu"]
    if st.session_state.get("sb_device") not in devices:
        st.session_state["sb_device"] = "auto"
    device = st.session_state["sb_device"]

    # The layer list needs the model: load it here (held by st.cache_resource).
    layer = None
    layers = None
    if name and not (weights == "file" and checkpoint is None):
        try:
            with st.spinner(f"Loading {name}…"):
                layers = _layers(name, weights, checkpoint, device)
        except Exception as err:  # noqa: BLE001 - current_result() shows it on the page
            sb.caption(f"⚠️ {type(err).__name__}: see the message on the page")
    if layers:
        by_name = {li.name: li for li in layers}
        if st.session_state.get("sb_layer") not in by_name:
            st.session_state["sb_layer"] = default_layer(layers).name
        layer = sb.selectbox(
            "Layer",
            list(by_name),
            key="sb_layer",
            format_func=lambda n: _fmt_layer(by_name[n]),
            help="Channels × height × width of the feature map; tokens = positions S. "
            "Early layers have many positions: slower exact matching, bigger effect.",
        )

    spec, uploads, seed, labels_from_names = _image_section(cache)

    if st.session_state.get("sb_kernel") not in KERNELS:
        st.session_state["sb_kernel"] = "cosine"
    kernel = sb.radio(
        "Kernel",
        list(KERNELS),
        key="sb_kernel",
        horizontal=True,
        help="All three are computed at once; this picks the one shown.",
    )
    if st.session_state.get("sb_matcher") not in MATCHERS:
        st.session_state["sb_matcher"] = "exact"
    matcher = sb.selectbox(
        "Matcher",
        list(MATCHERS),
        key="sb_matcher",
        format_func=MATCHER_LABELS.get,
        help="How the positions of two images are paired. 'exact' is optimal; the others "
        "are faster approximations (the paper recommends batch-optimal for large layers).",
    )
    params: tuple = ()
    if matcher == "batch_optimal":
        w = sb.number_input("Window", 2, 4096, key="sb_window")
        params = (("window", int(w)),)
    elif matcher == "topk_greedy":
        k = sb.number_input("k (exact among the k largest tokens)", 1, 4096, key="sb_topk")
        params = (("k", int(k)),)
    sb.radio(
        "Device",
        devices,
        key="sb_device",
        horizontal=True,
        format_func={"auto": "auto", "cpu": "CPU", "cuda": "GPU"}.get,
    )
    if not cuda:
        sb.caption("GPU: not available on this server (no CUDA device); computing on the CPU.")
    config = ExplorerConfig(
        model=name,
        weights=weights,
        checkpoint=checkpoint,
        layer=layer,
        images=spec,
        uploads=uploads,
        labels_from_names=labels_from_names,
        seed=seed,
        kernel=kernel,
        matcher=matcher,
        matcher_params=params,
        device=st.session_state["sb_device"],
    )
    st.session_state[CONFIG_KEY] = config
    return config


def current_config() -> ExplorerConfig:
    """The sidebar's configuration in this run (draws the sidebar if not drawn yet)."""
    return render_sidebar()


# --------------------------------------------------------------------------- progress

_STAGE_TEXT = {
    "extract": "Extracting tokens: {done}/{total} images",
    "match": "Matching positions: {done}/{total} pairs",
    "predict": "Class probabilities: {done}/{total} images",
}


@contextlib.contextmanager
def streamlit_progress(label: str = "") -> Iterator:
    """Yield ``progress(stage, done, total)`` drawing one bar per stage; bars vanish after."""
    box = st.empty()
    bars: dict[str, object] = {}
    with box.container():
        if label:
            st.caption(label)
        holder = st.container()

    def progress(stage: str, done: int, total: int) -> None:
        text = _STAGE_TEXT.get(stage, stage + ": {done}/{total}").format(done=done, total=total)
        frac = min(1.0, done / total) if total else 1.0
        if stage not in bars:
            bars[stage] = holder.progress(frac, text=text)
        else:
            bars[stage].progress(frac, text=text)

    try:
        yield progress
    finally:
        box.empty()


# --------------------------------------------------------------------------- result


def _fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def current_result() -> ExplorerResult | None:
    """The explorer result for the sidebar's configuration (see the module docstring)."""
    config = current_config()
    memo: dict = st.session_state.setdefault(_RESULTS_KEY, {})
    if config in memo:
        return memo[config]
    if config.layer is None and config.model:
        # The sidebar could not list layers: show why, in the page.
        try:
            get_model(config)
        except Exception as err:  # noqa: BLE001
            show_error(err)
            return None
    if not config.model:
        st.info("Type a timm model name in the sidebar (for example `resnet18`).")
        return None
    if config.weights == "file" and not config.checkpoint:
        st.info("Upload a checkpoint in the sidebar, or choose other weights.")
        return None
    if config.images == "uploads" and not config.uploads:
        st.info("Upload a few images in the sidebar (PNG, JPEG, …) to compute their RSMs.")
        return None
    cache = get_cache()
    try:
        model = get_model(config)
        images = _images(config, cache)
        run = plan(config, cache, model=model, images=images)
        confirmed: set = st.session_state.setdefault(_CONFIRMED_KEY, set())
        if run.is_long and run.rsm_key not in confirmed:
            est = run.estimate
            st.info(
                f"This run matches {int(est['pairs']):,} pairs of {run.layer.num_tokens} "
                f"positions with the **{config.matcher}** matcher: about "
                f"**{_fmt_seconds(run.seconds)}** here (extraction {_fmt_seconds(est['extract'])}, "
                f"matching {_fmt_seconds(est['match'])}). A deeper layer, fewer images or the "
                "batch-optimal matcher is faster."
            )
            if st.button(
                f"Compute (about {_fmt_seconds(run.seconds)})",
                type="primary",
                key="semrsm_compute_long",
            ):
                confirmed.add(run.rsm_key)
            else:
                return None
        label = (
            ""
            if run.tokens_cached and run.rsm_cached
            else f"Computing {int(run.estimate['pairs']):,} pairs of {run.layer.num_tokens} "
            f"positions on the {run.device.upper()}: about {_fmt_seconds(max(1.0, run.seconds))}"
        )
        with streamlit_progress(label) as progress:
            result = compute(config, cache, progress=progress, model=model, images=images)
    except Exception as err:  # noqa: BLE001 - every failure becomes a message, never a crash
        show_error(err)
        return None
    if cache.last_warning:
        st.warning(cache.last_warning)
        cache.last_warning = None
    memo[config] = result
    while len(memo) > _MEMO_SIZE:
        memo.pop(next(iter(memo)))
    return result


def status_line(result: ExplorerResult) -> str:
    """One line: what was computed and how long it took (or that it came from the cache)."""
    li = result.layer
    hits = result.cache_hits
    source = (
        "served from the cache"
        if hits.get("tokens") and hits.get("rsm")
        else f"computed in {result.timings.get('total', 0):.1f} s"
    )
    params = ", ".join(f"{k}={v}" for k, v in result.config.params.items() if k != "rtol")
    return (
        f"{result.n} images · {html.escape(result.model_name)} ({result.weights}) · layer "
        f"`{li.name}` ({li.grid[0]}×{li.grid[1]} positions × {li.channels} channels) · "
        f"{result.kernel} kernel · {result.config.matcher} matcher"
        + (f" ({params})" if params else "")
        + f" · {source}"
    )


if __name__ == "__main__":  # run as a page (legacy mode): hand over to app.py's navigation
    _ensure_navigation()
