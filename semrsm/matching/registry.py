"""The matcher registry: one entry per matcher with its parameters, implementations and rule.

Each :class:`MatcherSpec` declares

* its parameters (:class:`Param`: default, type, range; a bad value raises ``ValueError``
  saying what to use) and a one-line description;
* ``cpu``: the numba implementation, ``(costs (B,S,S) float64 ndarray, row_norms,
  col_norms, params) → perms (B,S) int64 ndarray``;
* ``gpu``: the batched torch implementation, ``(costs tensor, row_norms, col_norms,
  params, exact, stats) → perms (B,S) int64 tensor`` on the costs' device, where ``exact``
  is the batched exact solver it hands its exact sub-problems to (whole problems for
  ``exact``, norm-sorted windows for ``batch_optimal``, the top-k block for ``topk_greedy``);
* ``exact_size(S, params)``: the size of those exact sub-problems (0: none).

Which implementation runs (:func:`select_implementation`): on the CPU the numba one; on
CUDA, for a matcher with exact sub-problems of size m, the first row of
:data:`CUDA_EXACT_TABLE` with ``m ≤ max_s`` names the exact solver (``"tla"``,
``"triton"``, ``"torch"`` or ``"numba"``: the whole matcher on the CPU); a GPU solver not
usable on this device falls back to ``"numba"``. Matchers without exact sub-problems run
the torch implementation on CUDA.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semrsm.matching import gpu
from semrsm.matching.approximate import (
    ORDERS,
    batch_optimal_batch,
    greedy_batch,
    topk_greedy_batch,
)
from semrsm.matching.exact import DEFAULT_RTOL, exact_batch

#: Implementation names: "numba" (CPU), "torch" (batched torch ops, the ε-scaling auction
#: for exact problems), "tla" (torch-linear-assignment's Triton kernel), "triton" (this
#: project's Triton kernel, semrsm/matching/triton_lap.py).
IMPLEMENTATIONS = ("numba", "torch", "tla", "triton")

#: Exact solver that ``backend="auto"`` uses on CUDA, by exact sub-problem size:
#: rows ``(largest size covered, implementation)``, first match wins. Measured with
#: ``python bench/bench_gpu.py`` (docs/BENCHMARKS.md) and updated from its output: a
#: solver goes here only when the benchmark shows it correct and faster than the row it
#: replaces, and never one slower than the CPU. torch-linear-assignment: 49,780 pairs/s at
#: S = 196 and ≈ 660 at S = 784 on an H100, against ≈ 350 pairs/s for the numba CPU solver
#: at S = 256 on a 2-core machine; the project's Triton kernel is not yet measured on a GPU.
CUDA_EXACT_TABLE: tuple[tuple[int, str], ...] = ((1 << 30, "tla"),)

#: Implementation of matchers without exact sub-problems (greedy, identity) on CUDA.
CUDA_PLAIN = "torch"


#: largest integer parameter (window, k): far above any S, far below int64 overflow
INT_PARAM_MAX = 2**31 - 1


def _short(value: int | float) -> str:
    """A number in a message; a huge integer as its first digits and its size."""
    text = repr(value)
    return text if len(text) <= 12 else f"{text[:4]}… ({len(text)} digits)"


@dataclass(frozen=True)
class Param:
    """One matcher parameter: default, type (int, float or str) and closed range [low, high]
    for numbers, or the allowed ``choices`` for strings."""

    name: str
    default: int | float | str
    kind: type
    low: float = -math.inf
    high: float = math.inf
    doc: str = ""
    choices: tuple[str, ...] = ()

    def check(self, matcher: str, value: Any) -> int | float | str:
        """The validated value; ``ValueError`` saying what to use otherwise."""
        if self.kind is str:
            if value not in self.choices:
                raise ValueError(
                    f"{matcher}: {self.name} must be one of {self.choices} ({self.doc}); "
                    f"got {value!r}"
                )
            return value
        rng = f"≥ {self.low:g}" if self.high == math.inf else f"in [{self.low:g}, {self.high:g}]"
        want = f"{matcher}: {self.name} must be {'an integer' if self.kind is int else 'a number'} {rng}"
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise ValueError(f"{want} ({self.doc}); got {value!r}")
        if self.kind is int:
            if not isinstance(value, numbers.Integral) and not float(value).is_integer():
                raise ValueError(f"{want} ({self.doc}); got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{want} ({self.doc}); got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"{want} ({self.doc}); got {_short(value)}")
        if self.kind is int and value > INT_PARAM_MAX:  # the numba solvers use 64-bit indices
            raise ValueError(f"{want} and at most {INT_PARAM_MAX:,} ({self.doc}); got {_short(value)}")
        return value


ExactFn = Callable[[torch.Tensor, dict], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class MatcherSpec:
    """A matcher: description, parameters and its implementations (see the module doc)."""

    name: str
    description: str
    params: tuple[Param, ...]
    cpu: Callable[..., np.ndarray]
    gpu: Callable[..., torch.Tensor]
    exact_size: Callable[[int, dict], int]

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters with defaults filled in."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"matcher {self.name!r} takes parameters {tuple(known) or '()'}; "
                f"got unknown {unknown}"
            )
        return {n: p.check(self.name, params.get(n, p.default)) for n, p in known.items()}


def _identity_np(costs: np.ndarray) -> np.ndarray:
    b, s, _ = costs.shape
    return np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)).copy()


def _rtol() -> Param:
    return Param("rtol", DEFAULT_RTOL, float, 1e-13, 1e-2,
                 "certified relative duality gap; below 1e-13 float64 rounding dominates")


REGISTRY: dict[str, MatcherSpec] = {
    spec.name: spec
    for spec in (
        MatcherSpec(
            "exact",
            "optimal permutation (maximum over all S! matchings; certified to rtol where the solver certifies)",
            (_rtol(),),
            cpu=lambda c, rn, cn, p: exact_batch(c, rtol=p["rtol"])[0],
            gpu=lambda c, rn, cn, p, exact, st: exact(c, st)[0],
            exact_size=lambda s, p: s,
        ),
        MatcherSpec(
            "batch_optimal",
            "tokens sorted by norm, exact within consecutive windows (paper's trade-off)",
            (Param("window", 128, int, 1, doc="tokens per exactly solved window"),
             Param("order", "descending", str, choices=ORDERS,
                   doc="norm order of the windows; 'ascending' is the paper authors' code")),
            cpu=lambda c, rn, cn, p: batch_optimal_batch(
                c, rn, cn, window=p["window"], order=p["order"]),
            gpu=lambda c, rn, cn, p, exact, st: gpu.batch_optimal_torch(
                c, window=p["window"], order=p["order"], row_norms=rn, col_norms=cn, stats=st,
                exact=exact),
            exact_size=lambda s, p: min(p["window"], s),
        ),
        MatcherSpec(
            "topk_greedy",
            "exact among the k highest-norm tokens of each side, greedy for the rest",
            (Param("k", 32, int, 0, doc="tokens matched exactly; 0 is plain greedy"),),
            cpu=lambda c, rn, cn, p: topk_greedy_batch(c, rn, cn, k=p["k"]),
            gpu=lambda c, rn, cn, p, exact, st: gpu.topk_greedy_torch(
                c, k=p["k"], row_norms=rn, col_norms=cn, stats=st, exact=exact),
            exact_size=lambda s, p: min(p["k"], s),
        ),
        MatcherSpec(
            "greedy",
            "repeatedly take the highest remaining inner product",
            (),
            cpu=lambda c, rn, cn, p: greedy_batch(c),
            gpu=lambda c, rn, cn, p, exact, st: gpu.greedy_torch(c),
            exact_size=lambda s, p: 0,
        ),
        MatcherSpec(
            "identity",
            "no matching: reproduces the spatio-semantic RSM",
            (),
            cpu=lambda c, rn, cn, p: _identity_np(c),
            gpu=lambda c, rn, cn, p, exact, st: torch.arange(
                c.shape[1], device=c.device).expand(c.shape[0], c.shape[1]).contiguous(),
            exact_size=lambda s, p: 0,
        ),
    )
}


def get_matcher(name: str) -> MatcherSpec:
    """The registry entry of ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"matcher: unknown matcher {name!r}; choose one of {tuple(REGISTRY)}"
        ) from None


def gpu_usable(impl: str, device: torch.device) -> bool:
    """Whether implementation ``impl`` runs natively on ``device`` (no silent CPU fallback)."""
    if impl == "torch":
        return True
    if impl == "tla":
        from semrsm.matching.tla import available

        return available(device)
    if impl == "triton":
        from semrsm.matching.triton_lap import available

        return available(device)
    return device.type == "cpu"


def cuda_exact_choice(size: int) -> str:
    """The row of :data:`CUDA_EXACT_TABLE` for exact sub-problems of ``size``."""
    for max_s, impl in CUDA_EXACT_TABLE:
        if size <= max_s:
            return impl
    return "numba"


def select_implementation(
    matcher: str,
    device: str | torch.device,
    s: int,
    params: dict[str, Any] | None = None,
    backend: str = "auto",
) -> str:
    """Name of the implementation that solves ``matcher`` on ``device`` at ``S = s``.

    Parameters
    ----------
    matcher : a registry name; ``params`` its parameters (defaults filled in).
    device : "cpu", "cuda", "cuda:1", a torch.device, or "auto" (CUDA when present).
    s : tokens per image (problem size).
    backend : "auto" applies the rule of the module doc; an explicit implementation
        name (see :data:`IMPLEMENTATIONS`) is returned as is.

    Returns
    -------
    One of :data:`IMPLEMENTATIONS`. Rates for time estimates can be keyed by it (with the
    device kind and S).

    Raises
    ------
    ValueError
        Unknown matcher, parameter or backend.
    """
    spec = get_matcher(matcher)
    params = spec.check(params or {})
    if backend != "auto":
        if backend not in IMPLEMENTATIONS:
            raise ValueError(
                f"backend: unknown backend {backend!r}; use one of {('auto', *IMPLEMENTATIONS)}"
            )
        return backend
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda":
        return "numba"
    size = spec.exact_size(int(s), params)
    if size == 0:
        return CUDA_PLAIN
    impl = cuda_exact_choice(size)
    if impl != "numba" and not gpu_usable(impl, device):
        return "numba"
    return impl


__all__ = [
    "CUDA_EXACT_TABLE",
    "CUDA_PLAIN",
    "IMPLEMENTATIONS",
    "REGISTRY",
    "MatcherSpec",
    "Param",
    "cuda_exact_choice",
    "get_matcher",
    "gpu_usable",
    "select_implementation",
]
