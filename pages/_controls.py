"""The sidebar's widgets: model, weights, layer, image set, kernel, matcher, device.

Every page draws its own copy of the sidebar (through ``pages._run.current_result``);
the widget values travel between pages through ``st.session_state`` under the keys of
:data:`SIDEBAR_DEFAULTS` and ``sb_weights``, ``sb_layer``, ``sb_folder`` (these names are
part of the app's interface: links may set them).
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from pages._navigation import leave_legacy_pages_mode
from pages._resources import cuda_available, get_cache, get_layers
from semrsm.cache import Cache
from semrsm.catalog import DEMO_MODELS, POPULAR_MODELS
from semrsm.explorer.config import CONFIG_DEFAULTS, DEVICES, ExplorerConfig
from semrsm.explorer.image_sources import BUILTIN_SOURCES
from semrsm.explorer.links import OTHER_MODEL
from semrsm.explorer.sources import (
    ModelNeedsConfirmation,
    data_root,
    default_layer,
    list_server_folders,
)
from semrsm.kernels import KERNELS
from semrsm.matching.registry import REGISTRY, Param, app_params, get_matcher

__all__ = [
    "CONFIG_KEY",
    "SIDEBAR_DEFAULTS",
    "SOURCES",
    "WEIGHT_LABELS",
    "current_config",
    "render_sidebar",
]

#: session_state key of the configuration the sidebar produced in this run
CONFIG_KEY = "semrsm_config"

SOURCES = {
    **{name: source.label for name, source in BUILTIN_SOURCES.items()},
    "uploads": "Upload images",
    "folder": "Folder on the server",
}
WEIGHT_LABELS = {
    "default": "demo weights (shipped)",
    "pretrained": "pretrained (timm; downloads when online)",
    "none": "none (random init)",
    "file": "local checkpoint",
}
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]


# --------------------------------------------------------------------------- sidebar

#: widget keys of the sidebar and their initial values; their values are carried from
#: page to page (each page draws its own copy of the sidebar, see render_sidebar)
SIDEBAR_DEFAULTS: dict[str, object] = {
    "sb_model_choice": next(iter(DEMO_MODELS)),
    "sb_model_custom": "",
    "sb_ckpt_path": "",
    "sb_source": "shapes",
    **{k: v for source in BUILTIN_SOURCES.values() for k, v in source.defaults().items()},
    "sb_seed": CONFIG_DEFAULTS["seed"],
    "sb_upload_labels": False,
    "sb_kernel": CONFIG_DEFAULTS["kernel"],
    "sb_matcher": CONFIG_DEFAULTS["matcher"],
    "sb_device": CONFIG_DEFAULTS["device"],
}


def _defaults() -> dict[str, object]:
    """:data:`SIDEBAR_DEFAULTS` and the matcher parameters' (from the registry, read at
    each run: a matcher registered later has its widget's default too)."""
    return {**SIDEBAR_DEFAULTS, **{p.key: p.default for p in app_params().values()}}
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
        (f.name, cache.uploads.store(f.name, f.getvalue())) for f in files
    )


def _keep_checkpoint(cache: Cache) -> None:
    up = st.session_state.get("sb_ckpt_upload")
    if up is None:
        st.session_state[_KEPT_CHECKPOINT] = None
    else:
        digest = cache.uploads.store(up.name, up.getvalue())
        st.session_state[_KEPT_CHECKPOINT] = (up.name, str(cache.uploads.path(digest)))


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
    if source in BUILTIN_SOURCES:
        builtin = BUILTIN_SOURCES[source]
        for c in builtin.controls:
            if c.kind == "multiselect":
                sb.multiselect(c.label, list(c.options), key=c.key, help=c.help)
            else:
                sb.slider(c.label, c.low, c.high, step=c.step, key=c.key, help=c.help)
        if builtin.seeded:
            seed = int(sb.number_input("Seed", 0, 10_000, key="sb_seed"))
        spec = builtin.spec(st.session_state)
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


def _choice(widget, label: str, options: tuple[str, ...], key: str, **kwargs) -> str:
    """A choice widget whose state, when not one of ``options`` (an old session, a
    matcher no longer registered), falls back to the configuration's default."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = CONFIG_DEFAULTS[key.removeprefix("sb_")]
    return widget(label, list(options), key=key, **kwargs)


def param_widget(container, param: Param, key: str, label: str | None = None,
                 value: object = None, **kwargs) -> int | float | str:
    """The widget of a matcher parameter (``Param.in_app``) in its declared range and step;
    ``value`` the start value of a widget whose state is not yet set (None: the state's).

    Returns the value as the parameter's type.
    """
    label = label or param.widget_label
    if param.kind is str:
        return container.selectbox(label, list(param.choices), key=key, **kwargs)
    start = {} if value is None else {"value": param.kind(value)}
    step = {} if param.ui_step is None else {"step": param.kind(param.ui_step)}
    return param.kind(container.number_input(label, param.kind(param.ui_low),
                                             param.kind(param.ui_high), key=key,
                                             **start, **step, **kwargs))


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
    leave_legacy_pages_mode()
    cache = get_cache()
    sb = st.sidebar
    try:
        # Re-assigning a widget's key turns its value into plain session state, which the
        # same widget on another page picks up (Streamlit's documented way to keep widget
        # values across pages). It raises if the widget already exists in this run.
        for key, default in _defaults().items():
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

    cuda = cuda_available()
    devices = [d for d in DEVICES if cuda or d != "cuda"]
    if st.session_state.get("sb_device") not in devices:
        st.session_state["sb_device"] = CONFIG_DEFAULTS["device"]
    device = st.session_state["sb_device"]

    # The layer list needs the model: load it here (held by st.cache_resource).
    layer = None
    layers = None
    if name and not (weights == "file" and checkpoint is None):
        try:
            with st.spinner(f"Loading {name}…"):
                layers = get_layers(name, weights, checkpoint, device, cache)
        except ModelNeedsConfirmation as need:  # a large model waits for a click
            sb.caption(
                f"⚠️ {name}: {need.memory or 'size unknown'}; not built until you click "
                "*Build* on the page"
            )
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

    kernel = _choice(sb.radio, "Kernel", KERNELS, "sb_kernel", horizontal=True,
                     help="All three are computed at once; this picks the one shown.")
    matcher = _choice(
        sb.selectbox, "Matcher", tuple(REGISTRY), "sb_matcher",
        format_func=lambda m: get_matcher(m).choice_label,
        help="How the positions of two images are paired. 'exact' is optimal; the others "
        "are faster approximations (the paper recommends batch-optimal for large layers).",
    )
    params = tuple((p.name, param_widget(sb, p, p.key)) for p in REGISTRY[matcher].params
                   if p.in_app)
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


