"""Which layers of a model a user can pick, and their tokens for many images.

Stage outputs come from timm's ``forward_intermediates`` (which already drops a
ViT's prefix tokens and reshapes the patch tokens to their grid); the blocks inside
CNN stages, and every layer of models without ``forward_intermediates``, come from
forward hooks. The layer list is found once per model by a dry forward pass.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .images.base import ImageSet
from .images.decode import to_rgb
from .layer_info import LayerInfo
from .models import LoadedModel, ModelError

__all__ = [
    "LayerInfo",
    "Tokens",
    "list_layers",
    "extract_tokens",
    "extract_layers",
    "predict_proba",
]

Progress = Callable[[int, int], None] | None


@dataclass
class Tokens:
    """Tokens of one layer for a set of images.

    Attributes
    ----------
    tokens : numpy.ndarray
        ``(N, S, C)`` float32; position ``s`` is grid cell ``(s // W, s % W)`` (row-major).
    grid : (int, int)
        ``(H, W)`` with ``H * W == S``.
    layer : str
        The layer name.
    """

    tokens: np.ndarray
    grid: tuple[int, int]
    layer: str


@dataclass(frozen=True)
class _Source:
    via: str  # "inter": forward_intermediates output index; "hook": forward hook on module
    index: int  # intermediate index (for hooks: the stage the module sits in, or -1)
    module: str
    layout: str  # "NCHW", "NHWC" or "NLC" (tokens, prefix included)


class _Plan:
    """Layers of one model and how to get each of them."""

    def __init__(
        self,
        infos: list[LayerInfo],
        sources: dict[str, _Source],
        use_inter: bool,
        inter_kwargs: dict,
    ) -> None:
        self.infos = infos
        self.sources = sources
        self.use_inter = use_inter
        self.inter_kwargs = inter_kwargs


def list_layers(model: LoadedModel) -> list[LayerInfo]:
    """The layers of ``model`` that can be extracted, in network order.

    For CNNs: the stem and every stage (timm's ``feature_info``) plus the blocks
    inside each stage whose output differs from the stage output. For ViTs: every
    transformer block, as the patch-token grid without prefix tokens.

    Parameters
    ----------
    model : LoadedModel

    Returns
    -------
    list of LayerInfo
        Shapes for the model's input size (``model.data_config["input_size"]``).
    """
    return list(_plan(model).infos)


def extract_tokens(
    model: LoadedModel,
    images: Sequence[Image.Image] | ImageSet | torch.Tensor,
    layer: str,
    *,
    batch_size: int = 32,
    progress: Progress = None,
) -> Tokens:
    """Tokens of one layer for every image.

    Parameters
    ----------
    model : LoadedModel
    images : list of PIL.Image.Image, ImageSet, or torch.Tensor
        PIL images are preprocessed with ``model.transform``; a tensor must already be
        preprocessed, shape ``(N, 3, H, W)`` with ``(H, W) == model.input_size``.
    layer : str
        A name from :func:`list_layers`.
    batch_size : int, optional
        Images per forward pass.
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    Tokens
        ``tokens`` of shape ``(N, S, C)``, float32, row-major over ``grid``.

    Raises
    ------
    ValueError
        Unknown layer name (the message lists the valid ones), no images, or bad input.
    """
    return extract_layers(model, images, [layer], batch_size=batch_size, progress=progress)[layer]


def extract_layers(
    model: LoadedModel,
    images: Sequence[Image.Image] | ImageSet | torch.Tensor,
    layers: list[str],
    *,
    batch_size: int = 32,
    progress: Progress = None,
) -> dict[str, Tokens]:
    """Tokens of several layers from one forward pass per batch.

    Parameters
    ----------
    model : LoadedModel
    images : list of PIL.Image.Image, ImageSet, or torch.Tensor
        See :func:`extract_tokens`.
    layers : list of str
        Names from :func:`list_layers`.
    batch_size : int, optional
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    dict of str to Tokens
        One ``(N, S, C)`` float32 array per requested layer.

    Raises
    ------
    ValueError
        Unknown layer names, no layers, no images, or bad input.
    """
    plan = _plan(model)
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise ValueError("no layer requested; pick names from list_layers(model)")
    infos = {info.name: info for info in plan.infos}
    unknown = [name for name in layers if name not in infos]
    if unknown:
        raise ValueError(
            f"unknown layer(s) {', '.join(map(repr, unknown))} for {model.name}; "
            f"choose from: {', '.join(infos)}"
        )
    layers = list(dict.fromkeys(layers))
    n = _count(images)
    out = {
        name: np.empty((n, infos[name].num_tokens, infos[name].channels), dtype=np.float32)
        for name in layers
    }
    done = 0
    for x in _batches(model, images, batch_size):
        feats = _forward(model, plan, x, layers)
        for name in layers:
            arr = _to_tokens(feats[name], plan.sources[name].layout, model.num_prefix_tokens)
            if arr.shape[1:] != out[name].shape[1:]:
                raise ValueError(
                    f"layer {name} gave tokens {tuple(arr.shape[1:])} but "
                    f"{out[name].shape[1:]} were expected; feed images through "
                    "model.transform so they have the model's input size"
                )
            out[name][done : done + len(x)] = arr.numpy()
        done += len(x)
        if progress is not None:
            progress(done, n)
    return {name: Tokens(tokens=out[name], grid=infos[name].grid, layer=name) for name in layers}


def predict_proba(
    model: LoadedModel,
    images: Sequence[Image.Image] | ImageSet | torch.Tensor,
    *,
    batch_size: int = 32,
    progress: Progress = None,
) -> np.ndarray:
    """Class probabilities (softmax of the logits) for every image.

    Parameters
    ----------
    model : LoadedModel
    images : list of PIL.Image.Image, ImageSet, or torch.Tensor
        See :func:`extract_tokens`.
    batch_size : int, optional
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    numpy.ndarray
        ``(N, K)`` float64, rows sum to 1.

    Raises
    ------
    ModelError
        The model has no classifier head.
    ValueError
        No images or bad input.
    """
    if getattr(model.model, "num_classes", 1) == 0:
        raise ModelError(
            f"{model.name} has no classifier head (num_classes=0), so it predicts no "
            "class probabilities"
        )
    n = _count(images)
    chunks, done = [], 0
    for x in _batches(model, images, batch_size):
        with torch.inference_mode():
            logits = model.model(x)
        chunks.append(torch.softmax(logits.double(), dim=-1).cpu().numpy())
        done += len(x)
        if progress is not None:
            progress(done, n)
    return np.concatenate(chunks, axis=0)


# ----------------------------------------------------------------------------- inputs


def _as_list(images) -> list | torch.Tensor:
    if isinstance(images, ImageSet):
        return images.images
    if isinstance(images, torch.Tensor):
        return images
    if isinstance(images, Image.Image):
        return [images]
    return list(images)


def _count(images) -> int:
    items = _as_list(images)
    n = len(items)
    if n == 0:
        raise ValueError("no images given; pass at least one image")
    return n


def _batches(model: LoadedModel, images, batch_size: int):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    items = _as_list(images)
    h, w = model.input_size
    if isinstance(items, torch.Tensor):
        if items.ndim != 4 or items.shape[1] != 3 or tuple(items.shape[2:]) != (h, w):
            raise ValueError(
                f"a tensor input must be preprocessed, shape (N, 3, {h}, {w}); got "
                f"{tuple(items.shape)}; or pass PIL images"
            )
        for start in range(0, len(items), batch_size):
            yield items[start : start + batch_size].to(model.device, torch.float32)
        return
    for start in range(0, len(items), batch_size):
        batch = []
        for img in items[start : start + batch_size]:
            if not isinstance(img, Image.Image):
                raise ValueError(
                    f"images must be PIL images, an ImageSet or a tensor; got {type(img).__name__}"
                )
            batch.append(model.transform(to_rgb(img)))
        yield torch.stack(batch).to(model.device)


# ----------------------------------------------------------------------------- discovery


def _plan(model: LoadedModel) -> _Plan:
    cached = model.cache.get("layer_plan")
    if cached is None:
        cached = model.cache["layer_plan"] = _discover(model)
    return cached


def _is_vit(net: torch.nn.Module) -> bool:
    return (
        hasattr(net, "patch_embed") and hasattr(net, "blocks") and hasattr(net, "num_prefix_tokens")
    )


def _inter_kwargs(net: torch.nn.Module) -> dict | None:
    fn = getattr(net, "forward_intermediates", None)
    if fn is None:
        return None
    params = inspect.signature(fn).parameters
    kwargs = {}
    for key, value in (
        ("intermediates_only", True),
        ("stop_early", True),
        ("output_fmt", "NCHW"),
        ("norm", False),
    ):
        if key in params:
            kwargs[key] = value
    return kwargs


def _stage_blocks(net: torch.nn.Module, stage: str) -> list[str]:
    """Names of the blocks inside a stage (children of its block container)."""
    try:
        module = net.get_submodule(stage)
    except AttributeError:
        return []
    for prefix, container in (
        (stage, module),
        (f"{stage}.blocks", getattr(module, "blocks", None)),
    ):
        if isinstance(container, (torch.nn.Sequential, torch.nn.ModuleList)) and len(container) > 0:
            return [f"{prefix}.{child}" for child, _ in container.named_children()]
    return []


def _discover(model: LoadedModel) -> _Plan:
    net = model.model
    h, w = model.input_size
    # Random (not zero) input so that identical outputs really mean identical layers.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, h, w, generator=gen).to(model.device)
    kind = "vit" if _is_vit(net) else "cnn"
    feature_info = getattr(net, "feature_info", None)
    stages = [f["module"] for f in feature_info] if isinstance(feature_info, list) else []
    kwargs = _inter_kwargs(net)
    layout_hook = "NHWC" if str(getattr(net, "output_fmt", "NCHW")) == "NHWC" else "NCHW"

    if kwargs is not None and stages:
        blocks = {} if kind == "vit" else {i: _stage_blocks(net, s) for i, s in enumerate(stages)}
        sources = {}
        for i, stage in enumerate(stages):
            for block in blocks.get(i, []):
                sources[block] = _Source("hook", i, block, layout_hook)
            sources[stage] = _Source("inter", i, stage, "NCHW")
        try:
            feats = _run(model, _Plan([], sources, True, kwargs), x, list(sources))
        except Exception:  # noqa: BLE001 - fall back to hooks when a model's intermediates misbehave
            feats = None
        if feats is not None:
            infos, kept = [], {}
            for name, src in sources.items():
                t = feats[name]
                if src.via == "hook":
                    if t.ndim != 4:
                        continue  # not a feature map
                    a = _to_tokens(t, src.layout, 0)
                    b = _to_tokens(feats[stages[src.index]], "NCHW", 0)
                    if a.shape == b.shape and torch.equal(a, b):
                        continue  # the same output as its stage
                info = _info(name, kind, t, src.layout, model.num_prefix_tokens)
                if info is not None:
                    infos.append(info)
                    kept[name] = src
            if infos:
                return _Plan(infos, kept, True, kwargs)

    # Hooks only: the feature_info modules, or else the model's top-level children.
    names = stages or [n for n, _ in net.named_children()]
    sources = {n: _Source("hook", -1, n, "NLC" if kind == "vit" else layout_hook) for n in names}
    feats = _run(model, _Plan([], sources, False, {}), x, names, tolerant=True)
    infos, kept = [], {}
    for name in names:
        t = feats.get(name)
        layout = sources[name].layout if t is None or t.ndim == 4 else "NLC"
        info = _info(name, kind, t, layout, model.num_prefix_tokens) if t is not None else None
        if info is not None:
            infos.append(info)
            kept[name] = _Source("hook", -1, name, layout)
    if not infos:
        raise ModelError(f"found no layer with spatial tokens in {model.name}")
    return _Plan(infos, kept, False, {})


def _info(name: str, kind: str, t: torch.Tensor, layout: str, prefix: int) -> LayerInfo | None:
    if not isinstance(t, torch.Tensor) or t.ndim not in (3, 4):
        return None
    try:
        grid = _grid(t, layout, prefix)
    except ValueError:
        return None
    tokens = _to_tokens(t, layout, prefix)
    return LayerInfo(
        name=name,
        kind=kind,
        channels=int(tokens.shape[2]),
        grid=grid,
        num_tokens=int(tokens.shape[1]),
    )


def _grid(t: torch.Tensor, layout: str, prefix: int) -> tuple[int, int]:
    if t.ndim == 4:
        return (
            (int(t.shape[2]), int(t.shape[3]))
            if layout == "NCHW"
            else (int(t.shape[1]), int(t.shape[2]))
        )
    n_patch = t.shape[1] - prefix
    side = math.isqrt(n_patch)
    if n_patch <= 0 or side * side != n_patch:
        raise ValueError(f"cannot lay {n_patch} tokens on a square grid")
    return side, side


def _to_tokens(t: torch.Tensor, layout: str, prefix: int) -> torch.Tensor:
    """``(N, S, C)`` float32 on the CPU, row-major over the grid, prefix tokens dropped."""
    if t.ndim == 4:
        t = t.flatten(2).transpose(1, 2) if layout == "NCHW" else t.flatten(1, 2)
    else:
        _grid(t, layout, prefix)
        t = t[:, prefix:]
    return t.detach().to("cpu", torch.float32).contiguous()


# ----------------------------------------------------------------------------- forward


def _forward(model: LoadedModel, plan: _Plan, x: torch.Tensor, layers: list[str]) -> dict:
    return _run(model, plan, x, layers)


def _run(
    model: LoadedModel, plan: _Plan, x: torch.Tensor, layers: list[str], *, tolerant: bool = False
) -> dict[str, torch.Tensor]:
    """One forward pass that collects the outputs of ``layers``."""
    net = model.model
    feats: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str):
        def hook(_module, _inputs, output):
            if isinstance(output, (tuple, list)) and output:
                output = output[0]
            # Clone: a later in-place op (ReLU(inplace=True), +=) could overwrite the tensor.
            feats[name] = output.clone() if isinstance(output, torch.Tensor) else output

        return hook

    try:
        for name in layers:
            src = plan.sources[name]
            if src.via == "hook":
                handles.append(net.get_submodule(src.module).register_forward_hook(keep(name)))
        with torch.inference_mode():
            if plan.use_inter:
                wanted = sorted({plan.sources[n].index for n in layers})
                outs = net.forward_intermediates(x, indices=wanted, **plan.inter_kwargs)
                if not plan.inter_kwargs.get("intermediates_only", False):
                    outs = outs[1]
                for name in layers:
                    src = plan.sources[name]
                    if src.via == "inter":
                        feats[name] = outs[wanted.index(src.index)]
            elif hasattr(net, "forward_features"):
                net.forward_features(x)
            else:
                net(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in layers if n not in feats]
    if missing and not tolerant:
        raise ModelError(f"layers {', '.join(missing)} produced no output in {model.name}")
    return feats
