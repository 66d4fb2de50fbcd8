"""Where a run's inputs come from: the model, the image set (built in, uploads, server
folders below the data root) and the layer."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semrsm.cache import Cache
from semrsm.catalog import DEMO_MODELS
from semrsm.explorer.config import (
    BUILTIN_SETS,
    DATA_ROOT_ENV,
    ExplorerConfig,
    ExplorerError,
    resolve_device,
)
from semrsm.images import ImageSet, from_uploads, load_image_set

#: Environment variable holding :func:`confirm_params`' threshold.
CONFIRM_PARAMS_ENV = "SEMRSM_CONFIRM_PARAMS"
#: Default threshold: 500 million parameters, 2 GB of float32 weights. Every popular
#: model of the sidebar is below it (the largest, ConvNeXt-V2 base, has 89 million);
#: ViT-L/14 (304 million) too; ViT-g/14 (1.1 billion, 4.2 GiB) is above.
DEFAULT_CONFIRM_PARAMS = 500_000_000
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}


class ModelNeedsConfirmation(ExplorerError):
    """A model too large to build without the user's click; ``str(err)`` says its size.

    Attributes
    ----------
    name : str
    size : semrsm.models.ModelSize or None
        None when the size could not be estimated.
    limit : int
        The threshold it is above (:func:`confirm_params`).
    memory : str or None
        The weights' memory in words (``"4.2 GiB"``), None when unknown.
    """

    def __init__(self, name: str, size, limit: int) -> None:
        from semrsm.memory import format_bytes

        self.name, self.size, self.limit = name, size, limit
        self.memory = format_bytes(size.nbytes) if size is not None else None
        super().__init__(confirmation_text(name, size, limit))


def confirmation_text(name: str, size, limit: int) -> str:
    """What the app says before building a large model (or one of unknown size)."""
    from semrsm.memory import format_bytes
    from semrsm.models import format_count

    if size is None:
        what = (
            f"The size of **{name}** cannot be estimated before it is built, and building "
            "a timm model can take gigabytes of memory and minutes of this server's time."
        )
    else:
        what = (
            f"**{name}** has {format_count(size.params)} parameters: building it takes "
            f"about {format_bytes(size.nbytes)} of memory for its weights alone, plus what "
            "its activations need, and can take minutes of this server's time."
        )
    return (
        f"{what} Models over {format_count(limit)} parameters are built only after a "
        f"click (the server's {CONFIRM_PARAMS_ENV} sets this limit)."
    )


def parse_count(text: str) -> int:
    """``"500M"`` -> 500_000_000; also ``"2G"``, ``"1.5B"``, ``"800k"``, ``"2000000000"``.

    Raises
    ------
    ValueError
        Not a non-negative number with an optional k/M/G/B suffix.
    """
    t = text.strip().lower().replace("_", "").replace(",", "")
    suffix = t[-1:] if t[-1:] in _SUFFIXES else ""
    value = float(t[: len(t) - len(suffix)])
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"not a non-negative number: {text!r}")
    return int(value * _SUFFIXES[suffix])


def confirm_params() -> int:
    """Parameter count above which the app asks before building a model.

    ``$SEMRSM_CONFIRM_PARAMS`` (``2G``, ``800M``, ``1500000000``; ``0`` asks for every
    timm model) or :data:`DEFAULT_CONFIRM_PARAMS`. A value that does not parse gives a
    warning and the default.
    """
    raw = os.environ.get(CONFIRM_PARAMS_ENV, "").strip()
    if not raw:
        return DEFAULT_CONFIRM_PARAMS
    try:
        return parse_count(raw)
    except ValueError:
        warnings.warn(
            f"{CONFIRM_PARAMS_ENV}={raw!r} is not a parameter count (use e.g. 2000000000, "
            f"800M or 2G); using {DEFAULT_CONFIRM_PARAMS:,}",
            stacklevel=2,
        )
        return DEFAULT_CONFIRM_PARAMS


def needs_confirmation(model: str) -> ModelNeedsConfirmation | None:
    """Whether building ``model`` should wait for the user's click, and why.

    Cheap: the model is created on the meta device (no memory, under a second even
    for a billion parameters; kept per process). Demo models never wait; a model of
    unknown size waits; an unknown name does not (building it reports the name).

    Returns
    -------
    ModelNeedsConfirmation or None
        The exception to raise or show (it carries the size), or None to build at once.
    """
    from semrsm.models import ModelError, estimate_model_size

    name = model.strip()
    if not name or name in DEMO_MODELS:
        return None
    try:
        size = estimate_model_size(name)
    except ModelError:
        return None
    limit = confirm_params()
    if size is not None and size.params <= limit:
        return None
    return ModelNeedsConfirmation(name, size, limit)


def load_model(config: ExplorerConfig, *, max_params: int | None = None):
    """Create the model of ``config`` on its device.

    Builds whatever size is asked for (``max_params`` caps it, as in
    :func:`semrsm.models.create_model`); the app asks first through
    :func:`needs_confirmation`.

    Returns
    -------
    semrsm.models.LoadedModel

    Raises
    ------
    semrsm.models.ModelError (ValueError)
        Unknown model name, weights that cannot be loaded (for example pretrained
        weights while offline), a bad checkpoint; the message says what to do.
    ExplorerError
        A device that is not available.
    """
    from semrsm.models import create_model
    from semrsm.uploads import upload_name

    config.validate()
    checkpoint = config.checkpoint if config.weights == "file" else None
    return create_model(
        config.model.strip(),
        weights=config.weights,
        checkpoint=checkpoint,
        device=resolve_device(config.device),
        # an uploaded checkpoint is stored under its hash: messages name the user's file
        checkpoint_name=upload_name(checkpoint) if checkpoint else None,
        max_params=max_params,
    )


def data_root() -> Path | None:
    """The server folder users may browse (``$SEMRSM_DATA_ROOT``), or None when unset."""
    root = os.environ.get(DATA_ROOT_ENV)
    if not root:
        return None
    path = Path(root).expanduser().resolve()
    return path if path.is_dir() else None


#: Most folders :func:`list_server_folders` lists, and the longest it may look (seconds).
MAX_SERVER_FOLDERS = 2000
MAX_LIST_SECONDS = 5.0


def list_server_folders(root: Path | None = None, max_depth: int = 2) -> list[str]:
    """Sub-folders of the data root that hold files, as paths relative to it.

    Parameters
    ----------
    root : Path, optional
        Default :func:`data_root`.
    max_depth : int
        How deep to look below the root.

    Returns
    -------
    list of str
        ``"."`` for the root itself first, then sorted relative paths; hidden folders
        and symbolic links leaving the root are left out (links are never descended);
        at most :data:`MAX_SERVER_FOLDERS`, found within :data:`MAX_LIST_SECONDS`;
        empty when no root is set.
    """
    root = root if root is not None else data_root()
    if root is None:
        return []
    root = Path(root).resolve()
    out = ["."]
    deadline = time.monotonic() + MAX_LIST_SECONDS
    for dirpath, dirnames, _ in os.walk(root):  # followlinks=False: links are listed, not walked
        if len(out) >= MAX_SERVER_FOLDERS or time.monotonic() > deadline:
            break
        rel = Path(dirpath).relative_to(root)
        depth = 0 if str(rel) == "." else len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        for d in dirnames:
            full = (Path(dirpath) / d).resolve()
            if full == root or root in full.parents:
                out.append(str((rel / d).as_posix()) if str(rel) != "." else d)
    return out[:MAX_SERVER_FOLDERS]


def load_images(config: ExplorerConfig, cache: Cache) -> ImageSet:
    """The image set of ``config``.

    Built-in specs go to :func:`semrsm.images.load_image_set`; ``"uploads"`` reads the
    uploaded files back from the cache folder (files that do not decode end up in
    ``ImageSet.skipped``); ``"folder:<rel>"`` reads below ``$SEMRSM_DATA_ROOT`` only.

    Raises
    ------
    ExplorerError
        A folder while no data root is configured, a spec that is not built in, an
        upload no longer stored, or fewer than 2 usable images.
    semrsm.images.ImageError (ValueError)
        A malformed built-in spec or an unusable folder.
    """
    spec = config.images.strip()
    head = spec.partition(":")[0]
    if spec == "uploads":
        files = []
        for name, digest in config.uploads:
            try:
                files.append((name, cache.uploads.read(digest)))
            except (FileNotFoundError, ValueError):
                raise ExplorerError(
                    f"the upload {name!r} is no longer stored; upload the files again"
                ) from None
        imageset = from_uploads(files)
        if config.labels_from_names:
            labels = labels_from_file_names(imageset.names)
            if labels is not None:
                imageset.labels = labels
    elif head == "folder":
        root = data_root()
        if root is None:
            raise ExplorerError(
                f"server folders are off: set {DATA_ROOT_ENV} to a folder of images on the "
                "server to enable them, or upload images"
            )
        rel = spec.partition(":")[2] or "."
        imageset = load_image_set(str(root / rel), seed=config.seed, data_root=str(root))
    elif head in BUILTIN_SETS:
        imageset = load_image_set(spec, seed=config.seed)
    else:
        raise ExplorerError(
            f"image set {spec!r} is not built in: use 'shapes:N', 'photos', 'crops:NAME', "
            "'uploads' or 'folder:PATH'"
        )
    if len(imageset) < 2:
        why = "; ".join(f"{n}: {r}" for n, r in imageset.skipped[:5])
        raise ExplorerError(
            f"need at least 2 usable images, got {len(imageset)}"
            + (f" ({why})" if why else "")
            + "; add more images"
        )
    return imageset


def labels_from_file_names(names: Sequence[str]) -> list[str] | None:
    """Labels from file names: the text before the first ``_`` or ``-`` of the base name.

    Returns
    -------
    list of str, or None when some name has no such separator (then no labels at all).
    """
    out = []
    for name in names:
        stem = Path(name).stem
        cut = min((p for p in (stem.find("_"), stem.find("-")) if p > 0), default=-1)
        if cut <= 0:
            return None
        out.append(stem[:cut])
    return out


def default_layer(layers: Sequence[Any]) -> Any:
    """A layer that shows the difference between the two RSMs and computes quickly.

    The deepest layer whose token grid has between 16 and 256 positions (4×4 to
    16×16); else the layer with the most positions up to 256; else the last layer.

    Parameters
    ----------
    layers : sequence of semrsm.layers.LayerInfo, in network order

    Raises
    ------
    ExplorerError
        If ``layers`` is empty.
    """
    # (a docstring and guard of the same shape as retrieval_figure's in
    # figures/neighbours.py; unrelated code, nothing to share)
    if not layers:
        raise ExplorerError("the model exposes no layer to extract tokens from; pick another model")
    good = [li for li in layers if 16 <= li.num_tokens <= 256]
    if good:
        return good[-1]
    small = [li for li in layers if li.num_tokens <= 256]
    if small:
        return max(small, key=lambda li: li.num_tokens)
    return layers[-1]


def _find_layer(model: Any, name: str | None):
    from semrsm.layers import list_layers

    layers = list_layers(model)
    if name is None:
        return default_layer(layers), layers
    for li in layers:
        if li.name == name:
            return li, layers
    raise ExplorerError(
        f"layer {name!r} does not exist in {model.name}; choose one of "
        + ", ".join(li.name for li in layers[:12])
        + (" ..." if len(layers) > 12 else "")
    )


def _inputs(
    config: ExplorerConfig,
    cache: Cache,
    model: Any,
    images: ImageSet | None,
    timings: dict[str, float] | None = None,
) -> tuple[str, Any, ImageSet]:
    """Validate ``config`` and fill in what the caller did not pass: the resolved device,
    the model and the image set (seconds spent loading images go to ``timings["images"]``)."""
    config.validate()
    device = resolve_device(config.device)
    if model is None:
        model = load_model(config)
    t0 = time.perf_counter()
    if images is None:
        images = load_images(config, cache)
    if timings is not None:
        timings["images"] = time.perf_counter() - t0
    return device, model, images
