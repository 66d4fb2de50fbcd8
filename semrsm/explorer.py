"""The explorer's backend: one configuration in, both RSMs (and everything the pages draw) out.

The Streamlit pages only collect an :class:`ExplorerConfig` and draw an
:class:`ExplorerResult`; everything in between lives here and is usable from a script::

    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    result = compute(ExplorerConfig(model="demo-resnet", images="shapes:32"), Cache())
    result.spatial["cosine"], result.semantic["cosine"]      # (N, N) float64
    result.matching(0, 5)                                     # (perm, value) of one pair

Flow of :func:`compute`: load the model (or take the one given) → load the image set →
tokens of the layer (cached by model + weights identity, layer, preprocessing and the
image pixels) → both RSMs for *all* kernels with the matchings (cached by the tokens'
key, the matcher and its parameters; one assignment per pair serves every kernel) →
class probabilities (cached) → an :class:`ExplorerResult`.

Everything that determines a cache entry is part of its key (see :func:`tokens_key`,
:func:`rsm_key`), including :data:`semrsm.__version__`; the device is not, because
it does not change the result beyond rounding.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import semrsm
from semrsm.cache import Cache, content_key
from semrsm.images import ImageSet, from_uploads, load_image_set
from semrsm.kernels import KERNELS
from semrsm.matching import MATCHERS, check_matcher, match_pair
from semrsm.rsm import semantic_rsm, spatial_rsm

__all__ = [
    "DATA_ROOT_ENV",
    "DEFAULT_IMAGES",
    "DEFAULT_MODEL",
    "LONG_RUN_SECONDS",
    "ComputeError",
    "ExplorerConfig",
    "ExplorerError",
    "ExplorerResult",
    "RunPlan",
    "compute",
    "data_root",
    "default_layer",
    "estimate_seconds",
    "explain_pair",
    "images_digest",
    "labels_from_file_names",
    "layer_rsms",
    "list_server_folders",
    "load_images",
    "load_model",
    "plan",
    "resolve_device",
    "rsm_key",
    "summarize",
    "tokens_key",
]

DEFAULT_MODEL = "demo-resnet"
DEFAULT_IMAGES = "shapes:32"
DATA_ROOT_ENV = "SEMRSM_DATA_ROOT"
#: runs estimated longer than this (seconds) wait for an explicit click in the app
LONG_RUN_SECONDS = 20.0
#: matchings are kept (and cached) only up to this many bytes; beyond, pairs are re-matched
#: on demand by :meth:`ExplorerResult.matching`
PERMS_MAX_BYTES = 128 * 1024**2
BUILTIN_SETS = ("shapes", "photos", "crops")
DEVICES = ("auto", "cpu", "cuda")

Progress = Callable[[str, int, int], None]


class ExplorerError(ValueError):
    """A configuration the explorer cannot run; the message says what to change."""


class ComputeError(RuntimeError):
    """The computation ran out of a resource (memory); the message says what to try."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ExplorerConfig:
    """Everything that determines an explorer result.

    Attributes
    ----------
    model : str
        ``"demo-resnet"``, ``"demo-vit"`` or any timm model name.
    weights : str
        ``"default"`` (demo weights for demo models, none otherwise), ``"pretrained"``
        (timm's download and cache; needs network the first time), ``"none"`` (random
        initialisation) or ``"file"`` (``checkpoint``).
    checkpoint : str or None
        Path of a local checkpoint when ``weights == "file"``.
    layer : str or None
        Layer name from :func:`semrsm.layers.list_layers`; None picks
        :func:`default_layer`.
    images : str
        A built-in spec (``"shapes:32"``, ``"shapes:32:3"``, ``"photos"``,
        ``"crops:astronaut"``), ``"uploads"`` (then ``uploads`` lists the files) or
        ``"folder:<path relative to $SEMRSM_DATA_ROOT>"``.
    uploads : tuple of (str, str)
        ``(file name, sha256)`` of files stored with :meth:`semrsm.cache.Cache.store_upload`.
    labels_from_names : bool
        For uploads: label each image by the text of its file name before the first
        ``_`` or ``-`` (``cat_01.png`` → ``cat``); ignored when a name has neither.
    seed : int
        Seed of the procedural ``shapes`` set.
    kernel : str
        The kernel shown (all three are computed): "linear", "cosine" or "rbf".
    matcher : str
        A name of :data:`semrsm.matching.MATCHERS`.
    matcher_params : tuple of (str, value)
        The matcher's parameters, e.g. ``(("window", 64),)``.
    device : str
        "auto" (the GPU when there is one), "cpu" or "cuda".
    """

    model: str = DEFAULT_MODEL
    weights: str = "default"
    checkpoint: str | None = None
    layer: str | None = None
    images: str = DEFAULT_IMAGES
    uploads: tuple[tuple[str, str], ...] = ()
    labels_from_names: bool = False
    seed: int = 0
    kernel: str = "cosine"
    matcher: str = "exact"
    matcher_params: tuple[tuple[str, Any], ...] = ()
    device: str = "auto"

    def replace(self, **changes: Any) -> ExplorerConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def params(self) -> dict[str, Any]:
        """The matcher's parameters with defaults filled in."""
        return check_matcher(self.matcher, dict(self.matcher_params))

    def validate(self) -> ExplorerConfig:
        """Check the fields that can be checked without loading anything.

        Returns
        -------
        ExplorerConfig
            ``self``, for chaining.

        Raises
        ------
        ExplorerError
            Unknown kernel, matcher, matcher parameter or device; ``weights="file"``
            without a checkpoint; ``images="uploads"`` without files; an empty model name.
        """
        if not isinstance(self.model, str) or not self.model.strip():
            raise ExplorerError("model: type a model name, e.g. 'demo-resnet' or 'resnet18'")
        if self.weights not in ("default", "pretrained", "none", "file"):
            raise ExplorerError(
                f"weights: {self.weights!r} is not one of 'default', 'pretrained', 'none', 'file'"
            )
        if self.weights == "file" and not self.checkpoint:
            raise ExplorerError(
                "weights='file' needs a checkpoint path; give one or pick other weights"
            )
        if self.kernel not in KERNELS:
            raise ExplorerError(f"kernel: {self.kernel!r} is not one of {KERNELS}")
        try:
            self.params  # noqa: B018 - validates matcher name and parameters
        except ValueError as err:
            raise ExplorerError(str(err)) from None
        if self.device not in DEVICES:
            raise ExplorerError(f"device: {self.device!r} is not one of {DEVICES}")
        if self.images == "uploads" and not self.uploads:
            raise ExplorerError("no uploaded files yet: upload a few images or pick a built-in set")
        return self


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is usable, else ``"cpu"``.

    Raises
    ------
    ExplorerError
        ``"cuda"`` asked on a machine without a usable GPU, or an unknown device.
    """
    import torch

    if device not in DEVICES:
        raise ExplorerError(f"device: {device!r} is not one of {DEVICES}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ExplorerError("device: no CUDA GPU is available on this server; choose CPU or auto")
    return device


# --------------------------------------------------------------------------- inputs


def load_model(config: ExplorerConfig):
    """Create the model of ``config`` on its device.

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

    config.validate()
    return create_model(
        config.model.strip(),
        weights=config.weights,
        checkpoint=config.checkpoint if config.weights == "file" else None,
        device=resolve_device(config.device),
    )


def data_root() -> Path | None:
    """The server folder users may browse (``$SEMRSM_DATA_ROOT``), or None when unset."""
    root = os.environ.get(DATA_ROOT_ENV)
    if not root:
        return None
    path = Path(root).expanduser().resolve()
    return path if path.is_dir() else None


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
        and symbolic links leaving the root are left out; empty when no root is set.
    """
    root = root if root is not None else data_root()
    if root is None:
        return []
    root = Path(root).resolve()
    out = ["."]
    for dirpath, dirnames, _ in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        depth = 0 if str(rel) == "." else len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        for d in dirnames:
            full = (Path(dirpath) / d).resolve()
            if full == root or root in full.parents:
                out.append(str((rel / d).as_posix()) if str(rel) != "." else d)
    return out


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
                files.append((name, cache.read_upload(digest)))
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


def images_digest(imageset: ImageSet) -> str:
    """Content hash of the pixels (mode, size and bytes of every image, in order).

    Names and labels are not part of it: they do not change tokens or RSMs.
    """
    parts = []
    for img in imageset.images:
        parts.append([img.mode, list(img.size), img.tobytes()])
    return content_key("images", parts)


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
    if not layers:
        raise ExplorerError("the model exposes no layer to extract tokens from; pick another model")
    good = [li for li in layers if 16 <= li.num_tokens <= 256]
    if good:
        return good[-1]
    small = [li for li in layers if li.num_tokens <= 256]
    if small:
        return max(small, key=lambda li: li.num_tokens)
    return layers[-1]


def _plain(obj: Any) -> Any:
    """JSON-able, hashable copy of a data config (tuples → lists, other objects → str)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def tokens_key(model: Any, layer: str, digest: str) -> str:
    """Cache key of a layer's tokens: model name + weights identity, layer, data config
    (preprocessing), image pixels and package version."""
    return content_key(
        "tokens",
        semrsm.__version__,
        model.name,
        model.weights_id,
        layer,
        _plain(model.data_config),
        digest,
    )


def rsm_key(tok_key: str, matcher: str, params: Mapping[str, Any]) -> str:
    """Cache key of both RSMs (all kernels) and the matchings computed from some tokens."""
    return content_key("rsm", semrsm.__version__, tok_key, list(KERNELS), matcher, dict(params))


def proba_key(model: Any, digest: str) -> str:
    """Cache key of the class probabilities of a model on some images."""
    return content_key(
        "proba", semrsm.__version__, model.name, model.weights_id, _plain(model.data_config), digest
    )


# --------------------------------------------------------------------------- estimates

# Pairs per second on the 2-core development machine (shared with other jobs, so
# conservative), measured on tokens of the demo CNN over the shapes set: S = 16 ... 1024
# are its layers (C = 192 ... 32); S = 4096 is extrapolated. Keys: positions S.
_CPU_PAIRS_PER_S: dict[str, dict[int, float]] = {
    "exact": {16: 12000.0, 64: 1400.0, 256: 133.0, 1024: 11.0, 4096: 0.17},
    "batch_optimal": {16: 15000.0, 64: 800.0, 256: 235.0, 1024: 36.0, 4096: 6.0},
    "topk_greedy": {16: 10000.0, 64: 1300.0, 256: 400.0, 1024: 20.0, 4096: 2.0},
    "greedy": {16: 100000.0, 64: 1800.0, 256: 400.0, 1024: 24.0, 4096: 2.0},
    "identity": {16: 1e6, 64: 5e5, 256: 1e5, 1024: 2e4, 4096: 2e3},
}
_GPU_SPEEDUP = 20.0  # not measured here (no GPU on the dev machine): a conservative guess
_CPU_SECONDS_PER_IMAGE = 0.004  # demo models; bigger timm models are measured (seconds_per_image)
_measured: dict[tuple[str, str, int], float] = {}  # (matcher, device, S) -> pairs/s seen here


def _interp_rate(table: Mapping[int, float], s: int) -> float:
    keys = sorted(table)
    if s <= keys[0]:
        return table[keys[0]] * (keys[0] / max(s, 1)) ** 2
    if s >= keys[-1]:
        return table[keys[-1]] * (keys[-1] / s) ** 3
    for lo, hi in zip(keys, keys[1:], strict=False):
        if lo <= s <= hi:
            t = (math.log(s) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return math.exp((1 - t) * math.log(table[lo]) + t * math.log(table[hi]))
    return table[keys[-1]]


def estimate_seconds(
    n_images: int,
    num_tokens: int,
    *,
    matcher: str = "exact",
    device: str = "cpu",
    tokens_cached: bool = False,
    rsm_cached: bool = False,
    seconds_per_image: float | None = None,
) -> dict[str, float]:
    """Rough time of a run before it starts.

    Parameters
    ----------
    n_images : int
        Number of images N (``N(N-1)/2`` pairs are matched).
    num_tokens : int
        Positions S of the layer.
    matcher : str
        A name of :data:`semrsm.matching.MATCHERS`.
    device : str
        "cpu" or "cuda" (resolved).
    tokens_cached, rsm_cached : bool
        Parts already in the cache cost nothing.
    seconds_per_image : float, optional
        Measured forward time per image; default a small-model guess.

    Returns
    -------
    dict
        ``extract``, ``match`` and ``total`` seconds and ``pairs`` (the number of pairs).
        Rates come from measurements on the development machine, refined by the
        runs of this process.

    Raises
    ------
    ExplorerError
        Unknown matcher or non-positive sizes.
    """
    if matcher not in MATCHERS:
        raise ExplorerError(f"matcher: {matcher!r} is not one of {tuple(MATCHERS)}")
    if n_images < 1 or num_tokens < 1:
        raise ExplorerError("estimate needs at least one image and one token")
    pairs = n_images * (n_images - 1) // 2
    per_image = _CPU_SECONDS_PER_IMAGE if seconds_per_image is None else seconds_per_image
    extract = 0.0 if tokens_cached else n_images * per_image
    rate = _measured.get((matcher, device, num_tokens))
    if rate is None:
        rate = _interp_rate(_CPU_PAIRS_PER_S[matcher], num_tokens)
        if device == "cuda":
            rate *= _GPU_SPEEDUP
    match = 0.0 if rsm_cached else pairs / rate
    return {"extract": extract, "match": match, "total": extract + match, "pairs": float(pairs)}


def _record_rate(matcher: str, device: str, s: int, pairs: int, seconds: float) -> None:
    if pairs >= 50 and seconds > 0.05:
        _measured[(matcher, device, s)] = pairs / seconds


_forward_seconds: dict[tuple[str, str], float] = {}


def seconds_per_image(model: Any, layer: str) -> float:
    """Forward time per image of ``model``, measured once per model and device on a
    batch of 8 (after one warm-up image), so per-batch overheads are included."""
    key = (f"{model.name}:{model.weights_id}", str(model.device))
    if key not in _forward_seconds:
        from semrsm.layers import extract_tokens

        img = Image.new("RGB", (96, 96), (128, 128, 128))
        extract_tokens(model, [img], layer)  # warm-up
        t0 = time.perf_counter()
        extract_tokens(model, [img] * 8, layer)
        _forward_seconds[key] = (time.perf_counter() - t0) / 8
    return _forward_seconds[key]


# --------------------------------------------------------------------------- plan + compute


@dataclass
class RunPlan:
    """What a run will do before it starts (for the "this will take ..." notice).

    Attributes
    ----------
    config : ExplorerConfig (with ``layer`` resolved)
    layer : semrsm.layers.LayerInfo
    n_images : int
    digest, tokens_key, rsm_key, proba_key : str, the cache keys
    tokens_cached, rsm_cached : bool
    estimate : dict, from :func:`estimate_seconds`
    device : str, resolved ("cpu" or "cuda")
    """

    config: ExplorerConfig
    layer: Any
    n_images: int
    digest: str
    tokens_key: str
    rsm_key: str
    proba_key: str
    tokens_cached: bool
    rsm_cached: bool
    estimate: dict[str, float]
    device: str

    @property
    def seconds(self) -> float:
        """Estimated total seconds."""
        return self.estimate["total"]

    @property
    def is_long(self) -> bool:
        """True when the run should wait for an explicit click."""
        return self.seconds > LONG_RUN_SECONDS


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


def plan(
    config: ExplorerConfig,
    cache: Cache,
    *,
    model: Any = None,
    images: ImageSet | None = None,
    measure_forward: bool = True,
) -> RunPlan:
    """Resolve the layer, the cache keys and the time estimate of a run.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
    model : semrsm.models.LoadedModel, optional
        Default :func:`load_model` (pass one held by the app to avoid reloading).
    images : ImageSet, optional
        Default :func:`load_images`.
    measure_forward : bool
        Time one small forward pass when the tokens are not cached, for the estimate.

    Raises
    ------
    ExplorerError, semrsm.models.ModelError, semrsm.images.ImageError
        As :func:`load_model` and :func:`load_images`; an unknown layer.
    """
    config.validate()
    device = resolve_device(config.device)
    if model is None:
        model = load_model(config)
    if images is None:
        images = load_images(config, cache)
    layer, _ = _find_layer(model, config.layer)
    digest = images_digest(images)
    tk = tokens_key(model, layer.name, digest)
    rk = rsm_key(tk, config.matcher, config.params)
    pk = proba_key(model, digest)
    tokens_cached = tk in cache
    rsm_cached = rk in cache
    spi = None
    if measure_forward and not tokens_cached:
        try:
            spi = seconds_per_image(model, layer.name)
        except Exception:  # noqa: BLE001 - only an estimate; the real run reports errors
            spi = None
    est = estimate_seconds(
        len(images),
        layer.num_tokens,
        matcher=config.matcher,
        device=device,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        seconds_per_image=spi,
    )
    return RunPlan(
        config=config.replace(layer=layer.name),
        layer=layer,
        n_images=len(images),
        digest=digest,
        tokens_key=tk,
        rsm_key=rk,
        proba_key=pk,
        tokens_cached=tokens_cached,
        rsm_cached=rsm_cached,
        estimate=est,
        device=device,
    )


@dataclass
class ExplorerResult:
    """Everything the pages show for one configuration.

    Attributes
    ----------
    config : ExplorerConfig
        With ``layer`` resolved to the layer used.
    images : list of PIL.Image.Image
        The images as loaded (RGB, original size).
    thumbnails : list of PIL.Image.Image
        96×96 RGB thumbnails.
    names : list of str
    labels : list of str or None
    skipped : list of (str, str)
        Inputs that could not be used, with the reason.
    description : str
        Where the images come from.
    meta : dict
        The image set's meta (object boxes for shapes, offsets for crops).
    tokens : ndarray (N, S, C) float32
        The layer's tokens (prefix tokens removed).
    grid : (int, int)
        Token grid (H, W), ``H * W == S``.
    layer : semrsm.layers.LayerInfo
    layers : list of semrsm.layers.LayerInfo
        All layers of the model, in network order.
    spatial, semantic : dict str → ndarray (N, N) float64
        Both RSMs for every kernel of :data:`semrsm.kernels.KERNELS`.
    inner : ndarray (N, N) float64
        Matched inner products ``<R_i, P*_ij R_j>``.
    pairs : ndarray (P, 2) int64 or None
        Pairs ``i < j`` in row-major order; with ``perms``.
    perms : ndarray (P, S) int32 or None
        ``perms[p, s]``: position of image ``pairs[p, 1]`` matched to position ``s`` of
        image ``pairs[p, 0]``; None when too large to keep (see :meth:`matching`).
    proba : ndarray (N, K) float64 or None
        Predicted class probabilities (None when the model has no classifier).
    class_names : list of str or None
    model_name, weights, weights_id : str
    sigma2 : dict
        RBF bandwidths used (``{"spatial": ..., "semantic": ...}``).
    timings : dict str → float
        Seconds per stage (``images``, ``extract``, ``match``, ``predict``, ``total``).
    cache_hits : dict str → bool
        Which stages were served from the cache (``tokens``, ``rsm``, ``proba``).
    key : str
        The RSM cache key (identifies this result).
    """

    config: ExplorerConfig
    images: list[Image.Image]
    thumbnails: list[Image.Image]
    names: list[str]
    labels: list[str] | None
    skipped: list[tuple[str, str]]
    description: str
    meta: dict
    tokens: np.ndarray
    grid: tuple[int, int]
    layer: Any
    layers: list[Any]
    spatial: dict[str, np.ndarray]
    semantic: dict[str, np.ndarray]
    inner: np.ndarray
    pairs: np.ndarray | None
    perms: np.ndarray | None
    proba: np.ndarray | None
    class_names: list[str] | None
    model_name: str
    weights: str
    weights_id: str
    sigma2: dict[str, float]
    timings: dict[str, float]
    cache_hits: dict[str, bool]
    key: str
    _transform: Any = field(default=None, repr=False)
    _mean_std: tuple[Any, Any] | None = field(default=None, repr=False)

    # ----------------------------------------------------------- convenience
    @property
    def n(self) -> int:
        """Number of images."""
        return len(self.names)

    @property
    def kernel(self) -> str:
        """The kernel chosen in the configuration."""
        return self.config.kernel

    @property
    def spatial_rsm(self) -> np.ndarray:
        """Spatio-semantic RSM of the chosen kernel, (N, N) float64."""
        return self.spatial[self.config.kernel]

    @property
    def semantic_rsm(self) -> np.ndarray:
        """Semantic RSM of the chosen kernel, (N, N) float64."""
        return self.semantic[self.config.kernel]

    def matching(self, i: int, j: int) -> tuple[np.ndarray, float]:
        """The matching of image ``j``'s positions to image ``i``'s.

        Returns
        -------
        perm : ndarray (S,) int64
            ``tokens[j][perm[s]]`` is matched to ``tokens[i][s]``.
        value : float
            The matched inner product ``sum_s <tokens[i][s], tokens[j][perm[s]]>``.

        Raises
        ------
        ValueError
            Indices out of range.
        """
        n = self.n
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"pair ({i}, {j}) is out of range for {n} images")
        s = self.tokens.shape[1]
        if i == j:
            return np.arange(s, dtype=np.int64), float(self.inner[i, i])
        a, b = (i, j) if i < j else (j, i)
        if self.perms is not None and self.pairs is not None:
            p = a * n - a * (a + 1) // 2 + (b - a - 1)
            if tuple(self.pairs[p]) == (a, b):
                perm = self.perms[p].astype(np.int64)
                if i > j:
                    perm = np.argsort(perm).astype(np.int64)
                return perm, float(self.inner[i, j])
        perm, value = match_pair(
            self.tokens[i].astype(np.float64),
            self.tokens[j].astype(np.float64),
            matcher=self.config.matcher,
            **self.config.params,
        )
        return np.asarray(perm, dtype=np.int64), float(value)

    def model_view(self, i: int) -> Image.Image:
        """Image ``i`` as the model sees it (after resizing and cropping), RGB.

        The token grid covers this image evenly, so overlays go on it.
        """
        img = self.images[i]
        if self._transform is None or self._mean_std is None:
            return img
        try:
            x = self._transform(img)
            arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
            if arr.ndim != 3 or arr.shape[0] not in (1, 3):
                return img
            mean = np.asarray(self._mean_std[0], dtype=np.float64).reshape(-1, 1, 1)
            std = np.asarray(self._mean_std[1], dtype=np.float64).reshape(-1, 1, 1)
            arr = np.clip((arr * std + mean) * 255.0, 0, 255).round().astype(np.uint8)
            arr = np.repeat(arr, 3, axis=0) if arr.shape[0] == 1 else arr
            return Image.fromarray(arr.transpose(1, 2, 0), mode="RGB")
        except Exception:  # noqa: BLE001 - a display helper must not break a page
            return img

    # ----------------------------------------------------------- downloads
    def descriptors(self) -> dict[str, str]:
        """What the RSMs were computed from, as strings."""
        return {
            "model": self.model_name,
            "weights": self.weights,
            "weights_id": self.weights_id,
            "layer": self.layer.name,
            "grid": f"{self.grid[0]}x{self.grid[1]}",
            "kernel": self.config.kernel,
            "matcher": self.config.matcher,
            "matcher_params": json.dumps(self.config.params, sort_keys=True),
            "images": self.description,
            "semrsm_version": semrsm.__version__,
        }

    def bundle_npz(self) -> bytes:
        """One ``.npz`` with both RSMs of the chosen kernel and their descriptors.

        Arrays: ``spatial``, ``semantic`` (N, N) float64; ``names``, ``labels`` (N,) str
        (labels empty strings when the set has none); and 0-d str arrays ``model``,
        ``weights``, ``weights_id``, ``layer``, ``grid``, ``kernel``, ``matcher``,
        ``matcher_params`` (JSON), ``images``, ``semrsm_version``. Loads with
        ``numpy.load(path, allow_pickle=False)``.
        """
        buf = io.BytesIO()
        arrays: dict[str, np.ndarray] = {
            "spatial": self.spatial_rsm,
            "semantic": self.semantic_rsm,
            "names": np.array(self.names, dtype=str),
            "labels": np.array(
                self.labels if self.labels is not None else [""] * self.n, dtype=str
            ),
        }
        arrays.update({k: np.array(v) for k, v in self.descriptors().items()})
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def rsm_npy(self, which: str) -> bytes:
        """``.npy`` bytes of the ``"spatial"`` or ``"semantic"`` RSM of the chosen kernel."""
        buf = io.BytesIO()
        np.save(buf, self._which(which), allow_pickle=False)
        return buf.getvalue()

    def rsm_csv(self, which: str) -> str:
        """CSV of the ``"spatial"`` or ``"semantic"`` RSM: a header of image names, then one
        row per image starting with its name."""
        m = self._which(which)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["image", *self.names])
        for name, row in zip(self.names, m, strict=True):
            w.writerow([name, *(f"{v:.10g}" for v in row)])
        return out.getvalue()

    def _which(self, which: str) -> np.ndarray:
        if which == "spatial":
            return self.spatial_rsm
        if which == "semantic":
            return self.semantic_rsm
        raise ValueError(f"which must be 'spatial' or 'semantic', got {which!r}")


def _oom_message(device: str) -> str:
    if device == "cuda":
        return (
            "ran out of GPU memory: choose the CPU device, fewer images, or a deeper layer "
            "(fewer positions)"
        )
    return (
        "ran out of memory: use fewer images, a deeper layer (fewer positions) or a smaller model"
    )


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
    )


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, int(done), int(total))


def _tokens(model: Any, imageset: ImageSet, layer: str, progress: Progress | None):
    from semrsm.layers import extract_tokens

    out = extract_tokens(model, imageset.images, layer, progress=_stage(progress, "extract"))
    return {
        "tokens": np.ascontiguousarray(out.tokens, dtype=np.float32),
        "grid": np.asarray(out.grid, dtype=np.int64),
    }


def _rsms(tokens: np.ndarray, config: ExplorerConfig, device: str, progress: Progress | None):
    n, s, _ = tokens.shape
    pairs = n * (n - 1) // 2
    keep = pairs * s * 4 <= PERMS_MAX_BYTES
    t0 = time.perf_counter()
    spatial = spatial_rsm(tokens, kernel=list(KERNELS), device=device)
    res = semantic_rsm(
        tokens,
        kernel=list(KERNELS),
        matcher=config.matcher,
        device=device,
        progress=_stage(progress, "match"),
        return_matchings=keep,
        return_result=True,
        **config.params,
    )
    seconds = time.perf_counter() - t0
    _record_rate(config.matcher, device, s, pairs, seconds)
    arrays = {f"spatial_{k}": spatial[k] for k in KERNELS}
    arrays.update({f"semantic_{k}": res.rsm[k] for k in KERNELS})
    arrays["inner"] = res.inner
    if keep and res.perms is not None:
        arrays["perms"] = res.perms.astype(np.int32)
        arrays["pairs"] = np.asarray(res.pairs, dtype=np.int64)
    from semrsm.kernels import median_sigma2, squared_distances

    meta = {
        "seconds": seconds,
        "sigma2": {
            # the linear spatio-semantic RSM is the matrix of plain inner products
            "spatial": float(median_sigma2(squared_distances(spatial["linear"]))),
            "semantic": float(res.sigma2.get("rbf", float("nan"))),
        },
    }
    return arrays, meta


def compute(
    config: ExplorerConfig,
    cache: Cache,
    *,
    progress: Progress | None = None,
    model: Any = None,
    images: ImageSet | None = None,
    with_proba: bool = True,
) -> ExplorerResult:
    """Run (or fetch from the cache) everything the explorer shows for ``config``.

    Parameters
    ----------
    config : ExplorerConfig
    cache : Cache
        Tokens, RSMs and probabilities are read from / written to it; two sessions
        asking for the same entry compute it once.
    progress : callable, optional
        ``progress(stage, done, total)`` with stage "extract" (images) or "match" (pairs)
        or "predict" (images).
    model : semrsm.models.LoadedModel, optional
        A model already loaded for ``config`` (the app holds them with
        ``st.cache_resource``); default :func:`load_model`.
    images : ImageSet, optional
        The image set of ``config``; default :func:`load_images`.
    with_proba : bool
        Also compute the class probabilities (when the model has a classifier).

    Returns
    -------
    ExplorerResult

    Raises
    ------
    ExplorerError
        Bad configuration (unknown layer, no data root, too few images, ...).
    semrsm.models.ModelError, semrsm.images.ImageError (ValueError)
        Unknown model or unusable weights; a malformed image-set spec or folder.
    ComputeError
        Out of (GPU) memory; the message says what to try.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    config.validate()
    device = resolve_device(config.device)
    if model is None:
        model = load_model(config)
    t0 = time.perf_counter()
    if images is None:
        images = load_images(config, cache)
    timings["images"] = time.perf_counter() - t0
    layer, layers = _find_layer(model, config.layer)
    config = config.replace(layer=layer.name)
    digest = images_digest(images)
    tk = tokens_key(model, layer.name, digest)
    rk = rsm_key(tk, config.matcher, config.params)
    hits: dict[str, bool] = {}
    try:
        t0 = time.perf_counter()
        tok, hits["tokens"] = cache.get_or_compute(
            tk, lambda: (_tokens(model, images, layer.name, progress), {"layer": layer.name})
        )
        timings["extract"] = time.perf_counter() - t0
        tokens = tok["tokens"]
        grid = (int(tok["grid"][0]), int(tok["grid"][1]))
        t0 = time.perf_counter()
        rs, hits["rsm"] = cache.get_or_compute(rk, lambda: _rsms(tokens, config, device, progress))
        timings["match"] = time.perf_counter() - t0
        proba = None
        if with_proba:
            t0 = time.perf_counter()
            proba, hits["proba"] = _proba(model, images, cache, proba_key(model, digest), progress)
            timings["predict"] = time.perf_counter() - t0
    except (ExplorerError, ComputeError):
        raise
    except Exception as err:
        if _is_oom(err):
            _free_gpu()
            raise ComputeError(_oom_message(device)) from err
        raise
    meta = Cache.meta(rs)
    timings["total"] = time.perf_counter() - t_start
    from semrsm.figures.neighbours import make_thumbnails

    return ExplorerResult(
        config=config,
        images=list(images.images),
        thumbnails=make_thumbnails(images.images, 96),
        names=list(images.names),
        labels=list(images.labels) if images.labels is not None else None,
        skipped=list(images.skipped),
        description=images.description,
        meta=dict(images.meta),
        tokens=tokens,
        grid=grid,
        layer=layer,
        layers=list(layers),
        spatial={k: rs[f"spatial_{k}"] for k in KERNELS},
        semantic={k: rs[f"semantic_{k}"] for k in KERNELS},
        inner=rs["inner"],
        pairs=rs.get("pairs"),
        perms=rs.get("perms"),
        proba=proba,
        class_names=list(model.class_names) if getattr(model, "class_names", None) else None,
        model_name=model.name,
        weights=model.weights,
        weights_id=model.weights_id,
        sigma2=dict(meta.get("sigma2", {})),
        timings=timings,
        cache_hits=hits,
        key=rk,
        _transform=getattr(model, "transform", None),
        _mean_std=_mean_std(model),
    )


def _mean_std(model: Any) -> tuple[Any, Any] | None:
    dc = getattr(model, "data_config", None) or {}
    if "mean" in dc and "std" in dc:
        return tuple(dc["mean"]), tuple(dc["std"])
    return None


def _free_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _proba(model: Any, images: ImageSet, cache: Cache, key: str, progress: Progress | None):
    """Class probabilities, or (None, False) when the model has no classifier."""
    from semrsm.layers import predict_proba

    def run():
        p = predict_proba(model, images.images, progress=_stage(progress, "predict"))
        return {"proba": np.asarray(p, dtype=np.float64)}

    try:
        arrays, hit = cache.get_or_compute(key, run)
    except ValueError:
        return None, False  # e.g. a model without a classification head
    return arrays["proba"], hit


def layer_rsms(
    config: ExplorerConfig,
    cache: Cache,
    layers: Sequence[str],
    *,
    model: Any = None,
    images: ImageSet | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Both RSMs (all kernels) for several layers, sharing the cache with :func:`compute`.

    Tokens of the layers not yet cached are extracted in one forward pass per batch
    (:func:`semrsm.layers.extract_layers`); each layer's RSMs are then served from or
    stored in the cache under the same keys :func:`compute` uses.

    Parameters
    ----------
    config : ExplorerConfig (its ``layer`` is ignored)
    cache : Cache
    layers : sequence of str, layer names
    model, images, progress : as :func:`compute` (progress stage "extract" counts images,
        "match" counts pairs of the layer being matched)

    Returns
    -------
    dict layer → {"spatial": {kernel: (N, N)}, "semantic": {kernel: (N, N)},
    "grid": (H, W)}

    Raises
    ------
    As :func:`compute`.
    """
    from semrsm.layers import extract_layers

    config.validate()
    device = resolve_device(config.device)
    if model is None:
        model = load_model(config)
    if images is None:
        images = load_images(config, cache)
    for name in layers:
        _find_layer(model, name)
    digest = images_digest(images)
    keys = {name: tokens_key(model, name, digest) for name in layers}
    tokens: dict[str, np.ndarray] = {}
    grids: dict[str, tuple[int, int]] = {}
    missing = []
    for name in layers:
        arrays = cache.load(keys[name])
        if arrays is None:
            missing.append(name)
        else:
            tokens[name] = arrays["tokens"]
            grids[name] = (int(arrays["grid"][0]), int(arrays["grid"][1]))
    try:
        if missing:
            out = extract_layers(
                model, images.images, list(missing), progress=_stage(progress, "extract")
            )
            for name, tk_ in out.items():
                arrays = {
                    "tokens": np.ascontiguousarray(tk_.tokens, dtype=np.float32),
                    "grid": np.asarray(tk_.grid, dtype=np.int64),
                }
                cache.save(keys[name], arrays, meta={"layer": name})
                tokens[name] = arrays["tokens"]
                grids[name] = tuple(int(g) for g in tk_.grid)
        result = {}
        for name in layers:
            rk = rsm_key(keys[name], config.matcher, config.params)
            t = tokens[name]
            rs, _ = cache.get_or_compute(rk, lambda t=t: _rsms(t, config, device, progress))
            result[name] = {
                "spatial": {k: rs[f"spatial_{k}"] for k in KERNELS},
                "semantic": {k: rs[f"semantic_{k}"] for k in KERNELS},
                "grid": grids[name],
            }
    except (ExplorerError, ComputeError):
        raise
    except Exception as err:
        if _is_oom(err):
            _free_gpu()
            raise ComputeError(_oom_message(device)) from err
        raise
    return result


# --------------------------------------------------------------------------- summaries


def summarize(result: ExplorerResult, kernel: str | None = None) -> dict[str, Any]:
    """Summary numbers of the two RSMs (off-diagonal pairs, each pair once).

    Returns
    -------
    dict
        ``mean_spatial``, ``mean_semantic``, ``mean_gap`` (semantic − spatial) over all
        pairs; with labels also ``same_*`` and ``diff_*`` versions and
        ``separation_spatial`` / ``separation_semantic`` (same-label mean minus
        different-label mean); ``frac_improved`` (pairs where matching added more than
        1e-9); ``n_pairs``, ``n_same``.
    """
    kernel = kernel or result.kernel
    a = result.spatial[kernel]
    b = result.semantic[kernel]
    n = a.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    va, vb = a[iu, ju], b[iu, ju]
    out: dict[str, Any] = {
        "kernel": kernel,
        "n_pairs": int(iu.size),
        "mean_spatial": float(va.mean()) if va.size else math.nan,
        "mean_semantic": float(vb.mean()) if vb.size else math.nan,
        "mean_gap": float((vb - va).mean()) if va.size else math.nan,
        "frac_improved": float(np.mean(vb - va > 1e-9)) if va.size else math.nan,
    }
    if result.labels is not None:
        lab = np.array(result.labels, dtype=object)
        same = lab[iu] == lab[ju]
        out["n_same"] = int(same.sum())

        def m(x: np.ndarray, mask: np.ndarray) -> float:
            return float(x[mask].mean()) if mask.any() else math.nan

        out.update(
            same_spatial=m(va, same),
            same_semantic=m(vb, same),
            diff_spatial=m(va, ~same),
            diff_semantic=m(vb, ~same),
        )
        out["same_gap"] = out["same_semantic"] - out["same_spatial"]
        out["diff_gap"] = out["diff_semantic"] - out["diff_spatial"]
        out["separation_spatial"] = out["same_spatial"] - out["diff_spatial"]
        out["separation_semantic"] = out["same_semantic"] - out["diff_semantic"]
    return out


def explain_pair(
    result: ExplorerResult, i: int | None = None, j: int | None = None
) -> dict[str, Any]:
    """Numbers for the "why does a moved copy look different" explanation.

    Without ``i, j`` the pair is chosen from the data: for crops, the two crops of the
    same photo that are farthest apart; otherwise the same-label pair (any pair without
    labels) whose similarity gains most from the matching.

    Returns
    -------
    dict
        ``i``, ``j``, ``spatial``, ``semantic`` (chosen kernel), ``moved`` (fraction of
        positions not matched to the same position), ``mean_shift`` (mean grid distance,
        in token cells, between matched positions), ``grid``, ``offset`` (pixel offset
        between crops, crops only), ``reason`` (how the pair was chosen).

    Raises
    ------
    ValueError
        Indices out of range or fewer than 2 images.
    """
    n = result.n
    if n < 2:
        raise ValueError("need at least 2 images")
    a, b = result.spatial_rsm, result.semantic_rsm
    reason = "given"
    offset = None
    if i is None or j is None:
        offs = result.meta.get("offsets")
        srcs = result.meta.get("sources")
        if offs is not None and srcs is not None and len(offs) == n:
            best = (-1.0, 0, 1)
            for p in range(n):
                for q in range(p + 1, n):
                    if srcs[p] == srcs[q]:
                        d = math.dist(offs[p], offs[q])
                        if d > best[0]:
                            best = (d, p, q)
            i, j = best[1], best[2]
            reason = "two crops of the same photo, farthest apart"
        else:
            gain = b - a
            np.fill_diagonal(gain, -np.inf)
            if result.labels is not None:
                lab = np.array(result.labels, dtype=object)
                same = lab[:, None] == lab[None, :]
                if (same & ~np.eye(n, dtype=bool)).any():
                    gain = np.where(same, gain, -np.inf)
                    reason = "same-label pair that gains most from the matching"
                else:
                    reason = "pair that gains most from the matching"
            else:
                reason = "pair that gains most from the matching"
            i, j = (int(x) for x in np.unravel_index(np.argmax(gain), gain.shape))
    if not (0 <= i < n and 0 <= j < n):
        raise ValueError(f"pair ({i}, {j}) is out of range for {n} images")
    offs = result.meta.get("offsets")
    if offs is not None and len(offs) == n:
        offset = (offs[j][0] - offs[i][0], offs[j][1] - offs[i][1])
    perm, _ = result.matching(i, j)
    h, w = result.grid
    s = perm.size
    pos = np.arange(s)
    if h * w == s:
        r0, c0 = np.divmod(pos, w)
        r1, c1 = np.divmod(perm, w)
        shift = float(np.mean(np.hypot(r1 - r0, c1 - c0)))
    else:
        shift = math.nan
    return {
        "i": int(i),
        "j": int(j),
        "spatial": float(a[i, j]),
        "semantic": float(b[i, j]),
        "moved": float(np.mean(perm != pos)),
        "mean_shift": shift,
        "grid": (h, w),
        "offset": offset,
        "reason": reason,
    }
