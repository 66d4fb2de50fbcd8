"""timm models by name with their weights and preprocessing.

Weights come from one of four places: the demo weights shipped in ``assets/``
(``demo-resnet``, ``demo-vit``), timm's own pretrained mechanism (Hugging Face hub
cache, downloaded when online), a local checkpoint file, or a seeded random init.
Every failure a user can cause (unknown name, weights not cached while offline, a
checkpoint that does not fit) raises :class:`ModelError` with what to do about it.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import itertools
import json
import math
import os
import pickle
import re
import socket
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch

from ._reasons import path_error_reason
from .catalog import ASSETS_DIR, DEMO_MODELS, POPULAR_MODELS
from .devices import resolve_device
from .memory import available_memory, format_bytes

__all__ = [
    "ASSETS_DIR",
    "DEMO_MODELS",
    "POPULAR_MODELS",
    "CheckpointHeader",
    "LoadedModel",
    "ModelError",
    "ModelSize",
    "create_model",
    "estimate_model_size",
    "load_checkpoint",
    "read_checkpoint_header",
]

WEIGHT_CHOICES = ("default", "pretrained", "none", "file")
_HUB_HOST = ("huggingface.co", 443)
_ONLINE_TIMEOUT_S = 3.0
#: Longest checkpoint path accepted (characters); longer ones are refused before the file
#: system sees them.
MAX_PATH_CHARS = 1024
#: Largest safetensors header (the JSON before the data); the format's own limit.
MAX_HEADER_BYTES = 100_000_000


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class ModelError(ValueError):
    """A model or its weights could not be set up; ``str(err)`` says what to change.

    Terminal colour codes that some libraries put in their messages are removed.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(_ANSI.sub("", str(message)))


def _read_error(label: str, err: BaseException) -> ModelError:
    """A short, safe message for a weights file that torch or safetensors cannot read."""
    text = _ANSI.sub("", str(err))
    if isinstance(err, pickle.UnpicklingError) or "Weights only load failed" in text:
        # torch's own text advises weights_only=False, i.e. running the file's code: never
        # repeat that; keep only the reason.
        reason = next(
            (line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith(("Weights only", "Check the doc", "Please file"))),
            "",
        )
        return ModelError(
            f"checkpoint {label!r} is not a plain weights file: it is corrupt, or loading it "
            f"would run code stored in it, which is refused ({reason[:200]}). Save the weights "
            "with torch.save(model.state_dict(), path) or as .safetensors"
        )
    return ModelError(
        f"checkpoint {label!r} could not be read ({type(err).__name__}: {text[:300]})"
    )


@dataclass
class LoadedModel:
    """A timm model in eval mode with everything needed to feed it images.

    Attributes
    ----------
    name : str
        The name it was created by (``"demo-resnet"``, ``"resnet50.a1_in1k"``, ...).
    model : torch.nn.Module
        The timm model, eval mode, on ``device``.
    weights : str
        Where the weights came from: ``"demo"``, ``"pretrained"``, ``"file"`` or ``"none"``.
    weights_id : str
        Identifies the weights' content for caching: ``"sha256:<hex>"`` of the weights
        file, ``"pretrained:<name.tag>"``, or ``"random-init:<seed>"``.
    data_config : dict
        timm data config (``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``...).
    transform : callable
        PIL image -> float32 tensor ``(3, H, W)`` normalised for the model.
    num_prefix_tokens : int
        CLS/register/distillation tokens before the patch tokens (0 for CNNs).
    class_names : list of str or None
        Names of the output classes when known.
    device : torch.device
    """

    name: str
    model: torch.nn.Module
    weights: str
    weights_id: str
    data_config: dict
    transform: Callable
    num_prefix_tokens: int
    class_names: list[str] | None
    device: torch.device
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` of the tensors the transform produces."""
        _, h, w = self.data_config["input_size"]
        return int(h), int(w)


def create_model(
    name: str,
    weights: str = "default",
    checkpoint: str | None = None,
    device: str = "cpu",
    *,
    seed: int = 0,
    checkpoint_name: str | None = None,
    max_params: int | None = None,
) -> LoadedModel:
    """Create a timm model by name with the requested weights, in eval mode.

    Its size is known before anything is allocated: the model is first created on the
    ``meta`` device (:func:`estimate_model_size`), and a checkpoint's header is compared
    with it, so a file that claims a huge classifier or does not fit is refused before
    the model exists.

    Parameters
    ----------
    name : str
        A demo model (``"demo-resnet"``, ``"demo-vit"``) or any timm model name,
        optionally with a pretrained tag (``"resnet50.a1_in1k"``).
    weights : {"default", "pretrained", "none", "file"}, optional
        ``"default"``: the shipped demo weights for demo models, the checkpoint when
        one is given, else ``"none"``. ``"pretrained"``: timm's pretrained weights
        (local Hugging Face cache first; downloaded only when online). ``"none"``:
        random init from ``seed``. ``"file"``: ``checkpoint``.
    checkpoint : str or None, optional
        ``.safetensors`` or ``.pt``/``.pth``/``.bin`` file (a state dict, or a dict with a
        ``"state_dict"`` or ``"model"`` entry), loaded without executing code.
        A classifier of another size than the model's is accepted: the model is
        rebuilt with the checkpoint's number of classes.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    seed : int, optional
        Seed of the random init (``weights="none"``).
    checkpoint_name : str, optional
        The name the user knows the checkpoint by (for example an uploaded file's own
        name, while ``checkpoint`` is where it is stored); used in error messages.
    max_params : int, optional
        Refuse models with more parameters than this (None: no limit). Whatever it is,
        a model whose weights alone exceed the memory the system reports available is
        refused, since building it could only end in swapping or the OOM killer.

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        Unknown model name (with close names), unknown weights choice, pretrained
        weights that are not cached while offline (with how to get them), a missing
        or unreadable checkpoint (see :func:`read_checkpoint_header`), a checkpoint that
        does not fit the model (with the first missing/unexpected keys and shape
        mismatches), or a model over ``max_params`` or over the available memory.
    """
    import timm

    if not isinstance(name, str) or not name.strip():
        raise ModelError(
            "model name is empty; use e.g. 'demo-resnet' or a timm name such as 'resnet18'"
        )
    name = name.strip()
    if weights not in WEIGHT_CHOICES:
        raise ModelError(f"unknown weights {weights!r}; choose one of {', '.join(WEIGHT_CHOICES)}")
    if checkpoint is not None and weights in ("pretrained", "none"):
        raise ModelError(
            f"a checkpoint was given together with weights={weights!r}; use weights='file'"
        )
    if weights == "file" and checkpoint is None:
        raise ModelError("weights='file' needs a checkpoint path")
    try:
        dev = resolve_device(device)
    except ValueError as err:  # the library's device rules, as this module's error
        raise ModelError(str(err)) from None

    demo = DEMO_MODELS.get(name)
    if demo is not None:
        arch, kwargs = demo["arch"], dict(demo["kwargs"])
        if weights == "pretrained":
            raise ModelError(
                f"{name} is trained by this project and has no pretrained tag; "
                "use weights='default' for its shipped weights"
            )
        if weights == "default" and checkpoint is None:
            weights, checkpoint = "demo", str(ASSETS_DIR / demo["file"])
            if not Path(checkpoint).is_file():
                raise ModelError(
                    f"demo weights {checkpoint} are missing; run "
                    "'python scripts/train_demo_models.py' to train them"
                )
    else:
        arch, kwargs = _check_timm_name(name, weights), {}
    if weights == "default":
        weights = "file" if checkpoint is not None else "none"

    class_names: list[str] | None = None
    if weights in ("demo", "file"):
        with _named_errors(str(checkpoint), checkpoint_name):
            model, meta = _from_checkpoint(
                name, arch, kwargs, checkpoint, demo is not None, seed, max_params
            )
        weights_id = "sha256:" + _sha256(checkpoint)
        class_names = _meta_class_names(meta)
    elif weights == "pretrained":
        _check_budget(estimate_model_size(name), max_params)
        model = _pretrained(name, arch)
        weights_id = (
            f"pretrained:{model.pretrained_cfg.get('architecture', arch)}."
            f"{model.pretrained_cfg.get('tag', '')}".rstrip(".")
        )
        class_names = _imagenet_names(model)
    else:  # "none"
        _check_budget(estimate_model_size(name), max_params)
        model = _build(name, kwargs, pretrained=False, seed=seed)
        weights_id = f"random-init:{seed}"

    data_config = timm.data.resolve_data_config({}, model=model)
    if demo is not None:
        # Demo models see whole generated images: no centre crop, their own input size.
        s = demo["img_size"]
        data_config.update(input_size=(3, s, s), crop_pct=1.0, interpolation="bicubic")
    transform = timm.data.create_transform(**data_config, is_training=False)
    if class_names is not None and len(class_names) != getattr(model, "num_classes", -1):
        class_names = None
    model.eval().to(dev)
    return LoadedModel(
        name=name,
        model=model,
        weights=weights,
        weights_id=weights_id,
        data_config=dict(data_config),
        transform=transform,
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0) or 0),
        class_names=class_names,
        device=dev,
    )


@contextlib.contextmanager
def _named_errors(stored: str, label: str | None) -> Iterator[None]:
    """Say ``label`` (the user's file name) where a message names the stored file."""
    try:
        yield
    except ModelError as err:
        if not label:
            raise
        text = str(err).replace(stored, label).replace(Path(stored).name, label)
        raise ModelError(text) from None


def _from_checkpoint(
    name: str,
    arch: str,
    kwargs: dict,
    checkpoint: str,
    demo: bool,
    seed: int,
    max_params: int | None,
) -> tuple[torch.nn.Module, dict[str, str]]:
    """Build ``name`` with a checkpoint's weights, checking the header before allocating.

    The classifier size is read off the header, the model is created on the meta device
    with it and compared key by key, shape by shape; only a checkpoint that fits exactly
    and a model within the budget are built and read.
    """
    header = read_checkpoint_header(checkpoint)
    meta = header.meta
    if not demo and meta.get("arch") and meta["arch"] != arch:
        raise ModelError(
            f"checkpoint {_short(Path(checkpoint).name)!r} was saved for {meta['arch']!r}, "
            f"not {arch!r}; create the model as {meta['arch']!r}"
        )
    n_classes = _checkpoint_classes(arch, header.shapes)
    if n_classes is not None:
        kwargs = {**kwargs, "num_classes": n_classes}
    skeleton = _meta_model(name, kwargs)
    if skeleton is not None:
        _check_fit(skeleton, header.shapes, checkpoint, name)
        _check_budget(_size_of(name, skeleton), max_params)
    else:
        # No meta build for this architecture: at least no class without stored weights.
        _check_classes_stored(header, n_classes, arch, checkpoint)
    state = header.load()
    model = _build(name, kwargs, pretrained=False, seed=seed)
    _check_fit(model, header.shapes, checkpoint, name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(
            f"checkpoint {_short(Path(checkpoint).name)!r} could not be loaded into {name!r} "
            f"({_short(str(err), 300)})"
        ) from None
    return model, meta


def _check_classes_stored(
    header: CheckpointHeader, n_classes: int | None, arch: str, checkpoint: str
) -> None:
    """Refuse a class count read off a classifier tensor that stores less than one
    number per class (a ``(6000000, 0)`` weight costs nothing in the file)."""
    if not n_classes:
        return
    rows = [math.prod(s) for s in header.shapes.values() if s and s[0] == n_classes]
    if min(rows, default=0) < n_classes:
        raise ModelError(
            f"checkpoint {_short(Path(checkpoint).name)!r} claims {n_classes:,} classes for "
            f"{arch!r} but stores no weights for them"
        )


@dataclass(frozen=True)
class ModelSize:
    """A model's size, known before it is built.

    Attributes
    ----------
    name : str
    params : int
        Parameters (tied ones counted once).
    nbytes : int
        Bytes of its parameters and buffers as built (float32 for timm models): the
        memory its weights take before any image goes through it.
    """

    name: str
    params: int
    nbytes: int

    def __str__(self) -> str:
        return f"{format_count(self.params)} parameters, {format_bytes(self.nbytes)} of weights"


def format_count(n: int) -> str:
    """``1136479232`` -> ``"1.14 billion"``, ``88717800`` -> ``"88.7 million"``."""
    if n >= 10**9:
        return f"{n / 1e9:.2f} billion"
    if n >= 10**6:
        return f"{n / 1e6:.1f} million"
    return f"{n:,}"


def _meta_model(name: str, kwargs: dict) -> torch.nn.Module | None:
    """``name`` created on the meta device (shapes only, nothing allocated), or None
    when the architecture computes values at init that meta tensors cannot give."""
    import timm

    arch = DEMO_MODELS[name]["arch"] if name in DEMO_MODELS else name
    try:
        # thread-local: other threads keep allocating real tensors meanwhile
        with torch.device("meta"):
            return timm.create_model(arch, pretrained=False, **kwargs)
    except Exception:  # noqa: BLE001 - any failure only means "size unknown"
        return None


def _size_of(name: str, model: torch.nn.Module) -> ModelSize:
    params = list(model.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in itertools.chain(params, model.buffers()))
    return ModelSize(name, sum(p.numel() for p in params), nbytes)


@functools.lru_cache(maxsize=128)
def _cached_size(name: str, kwargs: tuple) -> ModelSize | None:
    model = _meta_model(name, dict(kwargs))
    return None if model is None else _size_of(name, model)


def estimate_model_size(name: str, num_classes: int | None = None) -> ModelSize | None:
    """Parameters and weight memory of a model, without building it.

    The model is created on PyTorch's ``meta`` device: modules and shapes exist, no
    memory is allocated and nothing is initialised (0.3 s and no memory for the
    1.1-billion-parameter ``vit_giant_patch14_dinov2``). Results are kept per process.

    Parameters
    ----------
    name : str
        A demo model or a timm name, with or without a pretrained tag (the tag's class
        count is used, as ``create_model(..., weights="pretrained")`` builds it).
    num_classes : int, optional
        Classifier size, when not the default.

    Returns
    -------
    ModelSize or None
        None when the architecture cannot be created on the meta device.

    Raises
    ------
    ModelError
        An unknown model name (with close names).
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelError("model name is empty")
    name = name.strip()
    demo = DEMO_MODELS.get(name)
    if demo is None:
        _check_timm_name(name, "none")
    kwargs = dict(demo["kwargs"]) if demo is not None else {}
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    return _cached_size(name, tuple(sorted(kwargs.items())))


def _check_budget(size: ModelSize | None, max_params: int | None) -> None:
    """Refuse a model over ``max_params`` or whose weights exceed the available memory."""
    if size is None:
        return
    if max_params is not None and size.params > max_params:
        raise ModelError(
            f"{size.name} has {size}, above max_params={max_params:,}; pass a larger "
            "max_params (or None) to build it"
        )
    available = available_memory()
    if available is not None and size.nbytes > available:
        raise ModelError(
            f"{size.name} needs {format_bytes(size.nbytes)} for its weights alone ({size}) "
            f"but only {format_bytes(available)} of memory is available; free memory or pick "
            "a smaller model"
        )


def _check_timm_name(name: str, weights: str) -> str:
    import timm
    from timm.models import split_model_name_tag

    arch, tag = split_model_name_tag(name)
    if not timm.is_model(arch):
        options = list(DEMO_MODELS) + timm.list_models() + timm.list_pretrained()
        close = difflib.get_close_matches(name, options, n=5, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else "; see timm.list_models() for the names timm knows"
        )
        raise ModelError(f"unknown model {name!r}{hint}")
    if weights == "pretrained":
        available = timm.list_pretrained(f"{arch}.*")
        if not available:
            raise ModelError(
                f"timm has no pretrained weights for {arch!r}; use weights='none' or a "
                "checkpoint file"
            )
        if tag and name not in available:
            raise ModelError(
                f"timm has no pretrained tag {tag!r} for {arch!r}; available: "
                f"{', '.join(available[:8])}"
            )
    return arch


def _build(name: str, kwargs: dict, pretrained: bool, seed: int) -> torch.nn.Module:
    import timm

    arch = DEMO_MODELS[name]["arch"] if name in DEMO_MODELS else name
    # Forked RNG: the same seed gives the same random init without touching the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return timm.create_model(arch, pretrained=pretrained, **kwargs)
        except (RuntimeError, TypeError, ValueError, AssertionError) as err:
            raise ModelError(f"cannot build {name!r} with {kwargs}: {err}") from None


def _hub_cache_dir() -> Path:
    """Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home) / "hub"


def _cached_pretrained_file(cfg: dict) -> str | None:
    """Path of already-downloaded pretrained weights for a timm pretrained cfg, or None."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        names = (
            [cfg["hf_hub_filename"]]
            if cfg.get("hf_hub_filename")
            else ["model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"]
        )
        for filename in names:
            found = try_to_load_from_cache(
                repo, filename, cache_dir=_hub_cache_dir(), revision=revision or None
            )
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if path.is_file():
            return str(path)
    return None


def _offline() -> bool:
    """True when HF_HUB_OFFLINE is set or the hub cannot be reached within a few seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    reached: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(_HUB_HOST, timeout=_ONLINE_TIMEOUT_S):
                reached.append(True)
        except OSError:
            reached.append(False)

    # A thread bounds the wait: name resolution itself has no timeout of its own.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_ONLINE_TIMEOUT_S + 0.5)
    return not (reached and reached[0])


def _pretrained(name: str, arch: str) -> torch.nn.Module:
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name) or get_pretrained_cfg(timm.list_pretrained(f"{arch}.*")[0])
    cfg = cfg.to_dict()
    full = f"{cfg.get('architecture', arch)}.{cfg.get('tag', '')}".rstrip(".")
    cached = _cached_pretrained_file(cfg)
    if cached is not None:
        overlay = {"file": cached, "source": "", "hf_hub_id": None, "url": None}
        try:
            return timm.create_model(full, pretrained=True, pretrained_cfg_overlay=overlay)
        except Exception as err:  # noqa: BLE001 - a broken cache file must not be a traceback
            raise ModelError(
                f"cached weights of {full} at {cached} could not be loaded ({err}); "
                "delete the file and download again"
            ) from None
    if _offline():
        raise ModelError(
            f"pretrained weights of {full} are not in the local cache ({_hub_cache_dir()}) and this "
            "machine is offline. To use them: run once with network access (they are then cached), "
            "or copy a Hugging Face cache that holds them and point HF_HOME at it, or download the "
            "weights file elsewhere and use it as a local checkpoint (weights='file' in Python). "
            "The demo models (demo-resnet, demo-vit) work offline."
        )
    try:
        return timm.create_model(full, pretrained=True)
    except Exception as err:  # noqa: BLE001 - network and hub errors come in many types
        raise ModelError(
            f"downloading pretrained weights of {full} failed ({type(err).__name__}: "
            f"{err}); check the network, or pass a checkpoint file"
        ) from None


#: Bytes per element of the safetensors dtypes torch can load.
_ST_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}


@dataclass
class CheckpointHeader:
    """What a weights file holds, read without reading its tensors' data.

    Attributes
    ----------
    path : Path
    shapes : dict of str to tuple of int
        Every tensor's shape, ``module.`` prefixes removed.
    meta : dict of str to str
        safetensors metadata (empty for torch files).
    nbytes : int
        Bytes of tensor data the file stores (what reading it costs at most).
    """

    path: Path
    shapes: dict[str, tuple[int, ...]]
    meta: dict[str, str]
    nbytes: int
    _tensors: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    _prefix: str = field(default="", repr=False)

    def load(self) -> dict[str, torch.Tensor]:
        """The tensors (safetensors: read now; torch files: memory-mapped views)."""
        if self._tensors is not None:
            return self._tensors
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(self._prefix + k) for k in self.shapes}
        except Exception as err:  # noqa: BLE001 - safetensors errors have many types
            raise _read_error(self.path.name, err) from None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint as a Path to an existing regular file.

    Raises
    ------
    ModelError
        A path over :data:`MAX_PATH_CHARS` characters, a missing file, a folder, or a
        path the file system refuses (a name over 255 bytes, no permission).
    """
    text = os.fspath(path)
    shown = _short(str(text))
    if len(text) > MAX_PATH_CHARS:
        raise ModelError(
            f"checkpoint path {shown!r} is {len(text):,} characters long (limit "
            f"{MAX_PATH_CHARS:,}); give a shorter path"
        )
    p = Path(text)
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ModelError(
            f"checkpoint {_short(p.name)!r} does not exist (looked for {shown!r})"
        ) from None
    except (OSError, ValueError) as err:
        raise ModelError(f"checkpoint {shown!r} cannot be opened ({path_error_reason(err)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"checkpoint {shown!r} is not a file")
    return p


def _fail(p: Path, reason: str) -> ModelError:
    return ModelError(f"checkpoint {_short(p.name)!r} could not be read ({reason})")


def _safetensors_header(p: Path) -> CheckpointHeader:
    """Parse and verify a safetensors header without reading tensor data.

    Every tensor's declared shape and dtype must take exactly the bytes its
    ``data_offsets`` span, the spans must lie in the file without overlapping: a small
    file cannot claim a large tensor.
    """
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(p, "shorter than a safetensors header")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, MAX_HEADER_BYTES):
            raise _fail(p, f"its header claims {n:,} bytes, the file has {size:,}")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise _fail(p, f"the header is not JSON: {_short(str(err))}") from None
    if not isinstance(header, dict):
        raise _fail(p, "the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        raise _fail(p, "its metadata is not a JSON object")
    data_size = size - 8 - n
    shapes: dict[str, tuple[int, ...]] = {}
    spans: list[tuple[int, int, str]] = []
    for key, info in header.items():
        shape, begin, end = _tensor_entry(p, key, info)
        itemsize = _ST_ITEMSIZE[info["dtype"]]
        if math.prod(shape) * itemsize != end - begin or end > data_size:
            raise _fail(
                p,
                f"tensor {_short(key)!r} claims shape {shape} of {info['dtype']} "
                f"({math.prod(shape) * itemsize:,} bytes) but stores {end - begin:,} bytes "
                f"at {begin:,} of {data_size:,}",
            )
        shapes[key] = shape
        spans.append((begin, end, key))
    spans.sort()
    for (_, end, a), (begin, _, b) in itertools.pairwise(spans):
        if begin < end:
            raise _fail(p, f"tensors {_short(a)!r} and {_short(b)!r} overlap")
    return CheckpointHeader(
        p, shapes, {str(k): str(v) for k, v in meta.items()}, sum(e - b for b, e, _ in spans)
    )


def _tensor_entry(p: Path, key: str, info: object) -> tuple[tuple[int, ...], int, int]:
    """(shape, begin, end) of one safetensors header entry, checked for types."""
    ok = (
        isinstance(info, dict)
        and info.get("dtype") in _ST_ITEMSIZE
        and isinstance(info.get("shape"), list)
        and all(isinstance(d, int) and d >= 0 for d in info["shape"])
        and isinstance(info.get("data_offsets"), list)
        and len(info["data_offsets"]) == 2
        and all(isinstance(o, int) and o >= 0 for o in info["data_offsets"])
    )
    if not ok:
        dtype = info.get("dtype") if isinstance(info, dict) else None
        unknown = isinstance(dtype, str) and dtype not in _ST_ITEMSIZE
        hint = f"unsupported dtype {dtype!r}" if unknown else "malformed entry"
        raise _fail(p, f"tensor {_short(str(key))!r}: {hint}")
    begin, end = info["data_offsets"]
    if end < begin:
        raise _fail(p, f"tensor {_short(key)!r}: data offsets end before they begin")
    return tuple(info["shape"]), begin, end


def _check_torch_zip(p: Path) -> None:
    """Refuse torch files whose data could take more memory than the file's size.

    ``torch.save`` writes an uncompressed zip: every entry stored, so what torch reads
    is at most the file's size. A compressed entry (a 400 KB file can hold 400 MB of
    zeros) or the legacy pre-1.6 format, whose storage sizes cannot be checked before
    torch allocates them, is refused.
    """
    if not zipfile.is_zipfile(p):
        raise ModelError(
            f"checkpoint {_short(p.name)!r} is not a plain weights file: it is not in the zip "
            "format torch.save writes (since torch 1.6), so what it holds cannot be checked "
            "before it is read. It is corrupt, or in the legacy format: load it with a current "
            "torch and save it again with torch.save(model.state_dict(), path) or as .safetensors"
        )
    size = p.stat().st_size
    with zipfile.ZipFile(p) as z:
        infos = z.infolist()
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    total = sum(i.file_size for i in infos)
    if packed or total > size:
        what = f"compressed entries ({_short(packed[0])!r})" if packed else (
            f"entries of {total:,} bytes in {size:,}"
        )
        raise ModelError(
            f"checkpoint {_short(p.name)!r} is not a plain weights file: it has {what}, which "
            "torch.save never writes (its data could expand beyond the file's size when read). "
            "Save the weights with torch.save(model.state_dict(), path) or as .safetensors"
        )


def _torch_header(p: Path) -> CheckpointHeader:
    """Load a torch zip file memory-mapped and check that no tensor claims more elements
    than the data stored for it (a zero-stride view of one number can claim any shape)."""
    _check_torch_zip(p)
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors have many types
        raise _read_error(p.name, err) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise ModelError(f"checkpoint {_short(p.name)!r} holds no state dict of tensors")
    storages: dict[int, int] = {}
    for key, t in obj.items():
        stored = t.untyped_storage().nbytes()
        if t.numel() * t.element_size() > stored:
            raise ModelError(
                f"checkpoint {_short(p.name)!r} is not a plain weights file: tensor "
                f"{_short(str(key))!r} claims shape {tuple(t.shape)} ({t.numel():,} elements) "
                f"but only {stored // max(t.element_size(), 1):,} are stored. Save the weights "
                "with torch.save(model.state_dict(), path) or as .safetensors"
            )
        storages[t.untyped_storage().data_ptr()] = stored
    state = {str(k): v for k, v in obj.items()}
    return CheckpointHeader(
        p, {k: tuple(v.shape) for k, v in state.items()}, {}, sum(storages.values()), state
    )


def read_checkpoint_header(path: str | os.PathLike) -> CheckpointHeader:
    """Read what a weights file holds, checked, without reading its tensors' data.

    Parameters
    ----------
    path : str or path-like
        ``.safetensors`` (the JSON header is parsed here: shapes, dtypes and data offsets
        must agree with each other and the file's size) or ``.pt``/``.pth``/``.bin``/
        ``.ckpt`` (the zip ``torch.save`` writes, entries uncompressed, loaded with
        ``torch.load(weights_only=True, mmap=True)``: storages stay on disk until used;
        no tensor may claim more elements than it stores). A state dict or a dict holding
        one under ``"state_dict"`` or ``"model"``; a ``module.`` prefix is removed.

    Returns
    -------
    CheckpointHeader
        Shapes and metadata; ``load()`` gives the tensors. The data a file can make
        torch read is at most the file's size.

    Raises
    ------
    ModelError
        A path over :data:`MAX_PATH_CHARS` characters or one the file system refuses, a
        missing file, an unsupported extension, a header that does not match the file,
        compressed or legacy torch files, objects other than tensors (never unpickled),
        tensors claiming more data than stored, or no tensors.
    """
    p = _checkpoint_path(path)
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        header = _safetensors_header(p)
    elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
        header = _torch_header(p)
    else:
        raise ModelError(
            f"checkpoint {_short(p.name)!r}: unsupported file type {suffix!r}; "
            "use .safetensors, .pt or .pth"
        )
    if not header.shapes:
        raise ModelError(f"checkpoint {_short(p.name)!r} holds no state dict of tensors")
    if all(k.startswith("module.") for k in header.shapes):
        header.shapes = {k[len("module.") :]: v for k, v in header.shapes.items()}
        header._prefix = "module."
        if header._tensors is not None:
            header._tensors = {k[len("module.") :]: v for k, v in header._tensors.items()}
    return header


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file without executing code (:func:`read_checkpoint_header`, then
    its tensors).

    Returns
    -------
    state : dict of str to torch.Tensor
        Torch files' tensors are memory-mapped from the file.
    meta : dict of str to str
        safetensors metadata (empty for torch files).

    Raises
    ------
    ModelError
        As :func:`read_checkpoint_header`, or unreadable tensor data.
    """
    header = read_checkpoint_header(path)
    return header.load(), header.meta


def _checkpoint_classes(arch: str, shapes: dict[str, tuple[int, ...]]) -> int | None:
    """Number of classes of the checkpoint's classifier when it can be read off."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    classifier = (cfg.classifier if cfg is not None else None) or "head"
    if isinstance(classifier, (list, tuple)):
        classifier = classifier[0]
    weight = shapes.get(f"{classifier}.weight")
    if weight is None:
        weight = shapes.get(f"{classifier}.fc.weight")
    if weight is None:
        # A headless checkpoint (features only): build the model without a classifier.
        has_head = any(k.startswith(f"{classifier}.") for k in shapes)
        return None if has_head else 0
    return int(weight[0]) if len(weight) >= 1 else None


def _fit_problems(
    own: dict[str, tuple[int, ...]], theirs: dict[str, tuple[int, ...]]
) -> list[str]:
    """What keeps a checkpoint of shapes ``theirs`` from a model of shapes ``own``."""
    missing = [k for k in own if k not in theirs]
    unexpected = [k for k in theirs if k not in own]
    mismatched = [
        f"{k}: checkpoint {theirs[k]} vs model {v}"
        for k, v in own.items()
        if k in theirs and theirs[k] != v
    ]
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", mismatched),
    ):
        if items:
            more = f", ... ({len(items)} in all)" if len(items) > 4 else ""
            parts.append(f"{label}: {', '.join(items[:4])}{more}")
    return parts


def _check_fit(
    model: torch.nn.Module, shapes: dict[str, tuple[int, ...]], path: str, name: str
) -> None:
    """Raise unless the checkpoint's keys and shapes are exactly the model's (a model on
    the meta device works: nothing is allocated)."""
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    parts = _fit_problems(own, shapes)
    if parts:
        raise ModelError(
            f"checkpoint {_short(Path(path).name)!r} does not fit {name!r}: "
            + "; ".join(parts)
            + f". Check that it was trained with the architecture {name!r}."
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _meta_class_names(meta: dict) -> list[str] | None:
    try:
        names = json.loads(meta["class_names"])
    except (KeyError, TypeError, ValueError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None


def _imagenet_names(model: torch.nn.Module) -> list[str] | None:
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(model)
        return list(ImageNetInfo(subset).label_descriptions()) if subset else None
    except Exception:  # noqa: BLE001 - class names are a nicety, never a failure
        return None
