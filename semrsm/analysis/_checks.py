"""Validation and small helpers shared by the analysis modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Progress = Callable[[int, int], None]


class AnalysisError(ValueError):
    """Bad input to an analysis function; the message says what to change."""


def _check_rsm(rsm: Any, name: str = "rsm", *, min_n: int = 1) -> np.ndarray:
    """Return ``rsm`` as a finite square float64 array or raise :class:`AnalysisError`."""
    arr = np.asarray(rsm, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise AnalysisError(f"{name}: expected a square (N, N) matrix, got shape {arr.shape}")
    if arr.shape[0] < min_n:
        raise AnalysisError(f"{name}: needs at least {min_n} images, got N = {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise AnalysisError(f"{name}: contains NaN or inf; recompute it from finite features")
    return arr


def _token_array(x: Any) -> Any:
    """Tokens from a ``semrsm.layers.Tokens`` object, an ndarray or a tensor."""
    return x.tokens if hasattr(x, "tokens") and hasattr(x, "grid") else x
