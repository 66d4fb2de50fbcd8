"""Token layouts and input validation: everything the math needs is ``(N, S, C)``.

``N`` images, ``S`` spatial positions (tokens), ``C`` channels. CNN feature maps
``(N, C, H, W)`` become ``(N, H*W, C)`` in row-major grid order, so token ``s`` sits at
grid cell ``(s // W, s % W)``. Token sequences ``(N, T, D)`` are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # numpy array, torch tensor, or a sequence of per-image arrays

_KIND_NAMES = {"U": "text", "S": "bytes", "c": "complex", "M": "dates", "m": "time spans", "V": "raw records"}

#: Head-room kept below the float maximum: the GPU solver sums up to S matched products
#: and its prices grow by a few cost ranges, so ``S · max‖token‖²`` must stay this far below.
_OVERFLOW_MARGIN = 64.0


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    """Convert numpy / torch / a list of per-image arrays to one tensor (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"tokens: got a complex tensor ({x.dtype}); pass real-valued features")
        # features are data, not a graph to differentiate: never carry autograd along
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise ValueError("tokens: got an object array; pass a numeric (N, S, C) or (N, C, H, W) array")
        if x.dtype.kind not in "biuf":
            raise ValueError(
                f"tokens: got an array of dtype {x.dtype} ({_KIND_NAMES.get(x.dtype.kind, 'not numeric')}); "
                "pass numeric features, e.g. x.astype(np.float32) if the values are numbers "
                "stored as text"
            )
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        if len(x) == 0:
            raise ValueError("tokens: the image set is empty; pass at least one image's features")
        items = [_as_tensor(item) for item in x]
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise ValueError(
                f"tokens: images have different feature shapes {sorted(shapes)}; every image must "
                "give the same number of positions S and channels C (same model, layer and input size)"
            )
        return torch.stack(items)
    raise ValueError(f"tokens: expected a numpy array or torch tensor, got {type(x).__name__}")


def to_tokens(x: ArrayLike) -> np.ndarray | torch.Tensor:
    """Bring features into the token layout ``(N, S, C)``.

    Parameters
    ----------
    x : ndarray or Tensor, shape (N, C, H, W) or (N, T, D); or a sequence of per-image
        arrays of shape (C, H, W) or (T, D).
        4-D input is a CNN feature map and becomes ``(N, H*W, C)`` (row-major grid);
        3-D input is already a token sequence and is returned unchanged.

    Returns
    -------
    tokens : same kind as the input (numpy stays numpy, a tensor stays on its device),
        shape (N, S, C), dtype unchanged.

    Raises
    ------
    ValueError
        Wrong rank, an empty set, zero positions or channels, or images of different shapes.
    """
    is_numpy = isinstance(x, np.ndarray) or (
        not isinstance(x, torch.Tensor) and isinstance(x, Sequence) and len(x) > 0
        and isinstance(x[0], np.ndarray)
    )
    t = _as_tensor(x)
    if t.ndim == 4:
        n, c, h, w = t.shape
        t = t.reshape(n, c, h * w).transpose(1, 2)
    elif t.ndim != 3:
        raise ValueError(
            f"tokens: expected shape (N, C, H, W) for a CNN feature map or (N, T, D) for tokens, "
            f"got {t.ndim}-D shape {tuple(t.shape)}; for a single image add a leading axis (x[None])"
        )
    n, s, c = t.shape
    if n == 0:
        raise ValueError("tokens: the image set is empty (N = 0); pass at least one image")
    if s == 0 or c == 0:
        raise ValueError(f"tokens: shape {tuple(t.shape)} has no positions or no channels")
    if is_numpy:
        return np.ascontiguousarray(t.numpy())
    return t


def validate_tokens(x: ArrayLike, *, device: torch.device | None = None) -> torch.Tensor:
    """Return features as a finite floating ``(N, S, C)`` tensor on ``device``.

    Integer and half inputs become float32; float64 stays float64 (the exact path).

    Raises
    ------
    ValueError
        As :func:`to_tokens`, plus NaN or inf values (naming the first bad image).
    """
    t = to_tokens(x)
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t)
    if not torch.is_floating_point(t) or t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    if device is not None:
        t = t.to(device)
    finite = torch.isfinite(t).flatten(1).all(dim=1)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite).flatten().tolist()
        raise ValueError(
            f"tokens: features of {len(bad)} image(s) contain NaN or inf (first: image {bad[0]}); "
            "check the model's weights and the inputs, or drop those images"
        )
    check_magnitude(t)
    return t.contiguous()


class FeatureOverflowError(ValueError):
    """Features so large that their float products overflow (see :func:`check_magnitude`).

    Attributes
    ----------
    max_norm : float, the largest token norm found.
    """

    def __init__(self, message: str, max_norm: float):
        super().__init__(message)
        self.max_norm = max_norm


def check_magnitude(t: torch.Tensor) -> None:
    """Raise ValueError when inner products of ``t``'s tokens could overflow its dtype.

    Cheap bound (Cauchy–Schwarz): every inner product of two tokens, and every partial sum
    inside it, is at most ``max_s ‖t_s‖²`` in absolute value; the solvers add ``S`` of them.
    So ``S · max‖t_s‖² · margin`` must stay below the dtype's largest finite value, otherwise
    cost matrices hold inf/NaN and every matcher (identity included) returns garbage.

    Parameters
    ----------
    t : (N, S, C) floating tensor, already finite.

    Raises
    ------
    FeatureOverflowError (a ValueError)
        Saying how large the features are and what to do (rescale, float64, another layer).
    """
    if t.numel() == 0:
        return
    big = float(torch.linalg.vector_norm(t, dim=2, dtype=torch.float64).max())
    limit = float(torch.finfo(t.dtype).max)
    s = t.shape[1]
    if not (big * big * s * _OVERFLOW_MARGIN < limit):
        raise FeatureOverflowError(
            f"tokens: features too large for {str(t.dtype).replace('torch.', '')} arithmetic: the "
            f"largest token norm is {big:.3g}, so inner products of {s} positions would overflow "
            f"(need S·norm² below {limit / _OVERFLOW_MARGIN:.3g}). The layer's activations "
            "overflow: rescale the features (divide by their largest norm; the cosine kernel "
            "does not change), pass float64 features, or pick another layer or checkpoint",
            big,
        )
