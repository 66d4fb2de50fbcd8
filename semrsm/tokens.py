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


def check_dtype(dtype: np.dtype) -> None:
    """Raise ValueError unless ``dtype`` is a numeric type torch computes with.

    Accepted: booleans, integers and floats up to 64 bits (float16, float32, float64).

    Raises
    ------
    ValueError
        Objects, text, bytes, complex, dates, records, or float128 (long double); the
        message says what to pass instead.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        raise ValueError("tokens: got an object array; pass a numeric (N, S, C) or (N, C, H, W) array")
    if dtype.kind not in "biuf":
        raise ValueError(
            f"tokens: got an array of dtype {dtype} ({_KIND_NAMES.get(dtype.kind, 'not numeric')}); "
            "pass numeric features, e.g. x.astype(np.float32) if the values are numbers "
            "stored as text"
        )
    if dtype.itemsize > 8:
        raise ValueError(
            f"tokens: dtype {dtype} ({dtype.itemsize * 8}-bit extended precision) is not "
            "supported; pass float32 or float64 features, e.g. x.astype(np.float64)"
        )


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    """Convert numpy / torch / a list of per-image arrays to one tensor (no copy when possible)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"tokens: got a complex tensor ({x.dtype}); pass real-valued features")
        # features are data, not a graph to differentiate: never carry autograd along
        return x.detach()
    if isinstance(x, np.ndarray):
        check_dtype(x.dtype)
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
    t = t.contiguous()
    # image blocks bound the scratch memory of the checks (isfinite keeps an |x| copy)
    bad = [int(i) + blk.start for blk in image_blocks(t)
           for i in torch.nonzero(~torch.isfinite(t[blk]).flatten(1).all(dim=1)).flatten()]
    if bad:
        raise ValueError(
            f"tokens: features of {len(bad)} image(s) contain NaN or inf (first: image {bad[0]}); "
            "check the model's weights and the inputs, or drop those images"
        )
    check_magnitude(t)
    return t


#: elements of one block of images in the checks and norms (scratch ≤ 14 bytes each)
BLOCK_ELEMENTS = 1 << 22


def image_blocks(t: torch.Tensor, elements: int = BLOCK_ELEMENTS) -> list[slice]:
    """Slices of consecutive images of ``t`` (N, ...) with about ``elements`` values each
    (at least one image per slice), so that per-block temporaries stay bounded."""
    n = t.shape[0]
    per_image = max(1, t[0].numel()) if n else 1
    step = max(1, elements // per_image)
    return [slice(a, min(n, a + step)) for a in range(0, n, step)]


def squared_norms(t: torch.Tensor) -> np.ndarray:
    """``‖t_i‖²_F`` of every image of ``t`` (N, S, C), (N,) float64 ndarray, computed in
    float64 one block of images at a time (no float64 copy of all tokens)."""
    return np.concatenate([
        torch.linalg.vector_norm(t[blk].flatten(1), dim=1, dtype=torch.float64).pow(2).cpu().numpy()
        for blk in image_blocks(t)
    ]) if t.shape[0] else np.zeros(0)


def token_layout(x: ArrayLike) -> tuple[tuple[int, int, int], int, int] | None:
    """What :func:`validate_tokens` would make of ``x``, read without copying it.

    Parameters
    ----------
    x : as :func:`to_tokens`.

    Returns
    -------
    ((N, S, C), itemsize, copy_bytes) or None: the token shape, the bytes per value it is
    computed in (8 for float64, else 4), and the bytes of the converted copy that
    validation makes on the host (another dtype, another layout, a list of images, not
    contiguous, or on a GPU; 0 when the input is used as it is). None when the layout
    cannot be read this way (:func:`validate_tokens` then says what is wrong).

    Raises
    ------
    ValueError
        A dtype that is not numeric (:func:`check_dtype`).
    """
    if isinstance(x, np.ndarray | torch.Tensor):
        if isinstance(x, np.ndarray):
            check_dtype(x.dtype)
            float64, native = x.dtype == np.float64, x.dtype in (np.float32, np.float64)
            dense = x.flags.c_contiguous
            on_host = True
        else:
            if x.is_complex():
                return None
            float64 = x.dtype == torch.float64
            native = x.dtype in (torch.float32, torch.float64)
            dense, on_host = x.is_contiguous(), x.device.type == "cpu"
        shape, copied = tuple(int(d) for d in x.shape), not (native and dense and on_host)
    elif isinstance(x, Sequence) and not isinstance(x, str | bytes) and len(x) > 0:
        first = x[0]
        if not isinstance(first, np.ndarray | torch.Tensor):
            return None
        inner = token_layout(first[None])
        if inner is None:
            return None
        shape = (len(x), *(int(d) for d in first.shape))
        float64, copied = inner[1] == 8, True
    else:
        return None
    if len(shape) == 4:
        n, c, h, w = shape
        shape, copied = (n, h * w, c), True
    if len(shape) != 3:
        return None
    itemsize = 8 if float64 else 4
    n, s, c = shape
    return (n, s, c), itemsize, (n * s * c * itemsize if copied else 0)


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
    big = max(float(torch.linalg.vector_norm(t[blk], dim=2, dtype=torch.float64).max())
              for blk in image_blocks(t))
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
