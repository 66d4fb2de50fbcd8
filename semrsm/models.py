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
import hashlib
import json
import os
import pickle
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch

from .catalog import ASSETS_DIR, DEMO_MODELS, POPULAR_MODELS

__all__ = [
    "ASSETS_DIR",
    "DEMO_MODELS",
    "POPULAR_MODELS",
    "LoadedModel",
    "ModelError",
    "create_model",
    "load_checkpoint",
    "resolve_device",
]

WEIGHT_CHOICES = ("default", "pretrained", "none", "file")
_HUB_HOST = ("huggingface.co", 443)
_ONLINE_TIMEOUT_S = 3.0


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


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; otherwise checked ``torch.device``.

    Raises
    ------
    ModelError
        Unknown device string, or CUDA requested but not available.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ModelError(
                f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:0' or 'auto' ({err})"
            ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(
            f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'"
        )
    return dev


def create_model(
    name: str,
    weights: str = "default",
    checkpoint: str | None = None,
    device: str = "cpu",
    *,
    seed: int = 0,
    checkpoint_name: str | None = None,
) -> LoadedModel:
    """Create a timm model by name with the requested weights, in eval mode.

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

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        Unknown model name (with close names), unknown weights choice, pretrained
        weights that are not cached while offline (with how to get them), a missing
        or unreadable checkpoint, or a checkpoint that does not fit the model (with
        the first missing/unexpected keys and shape mismatches).
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
    dev = resolve_device(device)

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
            state, meta = load_checkpoint(checkpoint)
            if demo is None and meta.get("arch") and meta["arch"] != arch:
                raise ModelError(
                    f"checkpoint {Path(checkpoint).name!r} was saved for {meta['arch']!r}, "
                    f"not {arch!r}; create the model as {meta['arch']!r}"
                )
            n_classes = _checkpoint_classes(arch, name, kwargs, state)
            if n_classes is not None:
                kwargs["num_classes"] = n_classes
            model = _build(name, kwargs, pretrained=False, seed=seed)
            _load_state(model, state, checkpoint, name)
        weights_id = "sha256:" + _sha256(checkpoint)
        class_names = _meta_class_names(meta)
    elif weights == "pretrained":
        model = _pretrained(name, arch)
        weights_id = (
            f"pretrained:{model.pretrained_cfg.get('architecture', arch)}."
            f"{model.pretrained_cfg.get('tag', '')}".rstrip(".")
        )
        class_names = _imagenet_names(model)
    else:  # "none"
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


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file without executing code.

    Parameters
    ----------
    path : str or path-like
        ``.safetensors`` (via safetensors) or ``.pt``/``.pth``/``.bin``/``.ckpt``
        (``torch.load(weights_only=True)``; a state dict or a dict holding one under
        ``"state_dict"`` or ``"model"``). A ``module.`` prefix (DataParallel) is removed.

    Returns
    -------
    state : dict of str to torch.Tensor
    meta : dict of str to str
        safetensors metadata (empty for torch files).

    Raises
    ------
    ModelError
        Missing file, unsupported extension, unreadable content, or no tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"checkpoint {p.name!r} does not exist (looked for {str(p)!r})")
    suffix = p.suffix.lower()
    meta: dict[str, str] = {}
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}
        elif suffix in (".pt", ".pth", ".bin", ".ckpt"):
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
            for key in ("state_dict", "model"):
                if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                    obj = obj[key]
                    break
            state = obj
        else:
            raise ModelError(
                f"checkpoint {p.name!r}: unsupported file type {suffix!r}; "
                "use .safetensors, .pt or .pth"
            )
    except ModelError:
        raise
    except Exception as err:  # noqa: BLE001 - unpickling/safetensors errors have many types
        raise _read_error(p.name, err) from None
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise ModelError(f"checkpoint {p.name!r} holds no state dict of tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state, meta


def _checkpoint_classes(arch: str, name: str, kwargs: dict, state: dict) -> int | None:
    """Number of classes of the checkpoint's classifier when it can be read off."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    classifier = (cfg.classifier if cfg is not None else None) or "head"
    if isinstance(classifier, (list, tuple)):
        classifier = classifier[0]
    weight = state.get(f"{classifier}.weight")
    if weight is None:
        weight = state.get(f"{classifier}.fc.weight")
    if weight is None:
        # A headless checkpoint (features only): build the model without a classifier.
        has_head = any(k.startswith(f"{classifier}.") for k in state)
        return None if has_head else 0
    return int(weight.shape[0]) if weight.ndim >= 1 else None


def _load_state(model: torch.nn.Module, state: dict, path: str, name: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                more = f", ... ({len(items)} in all)" if len(items) > 4 else ""
                parts.append(f"{label}: {', '.join(items[:4])}{more}")
        raise ModelError(
            f"checkpoint {Path(path).name!r} does not fit {name!r}: "
            + "; ".join(parts)
            + f". Check that it was trained with the architecture {name!r}."
        )
    model.load_state_dict(state, strict=True)


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
