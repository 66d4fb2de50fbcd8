"""The matcher registry: everything about a matcher except its code, in one place.

Pure metadata: importing this module imports neither torch nor numba nor the
implementations, so the app's first paint, the command line's ``--help`` and the
estimates read it for free. Each :class:`MatcherSpec` declares

* its name, the words people read (``label``, ``hint``) and a one-line description;
* its parameters (:class:`Param`: default, type and the range the library accepts (a bad
  value raises ``ValueError`` saying what to use), and where it differs the range, step
  and label of the app's widgets, the link parameter and the command-line option);
* ``needs_norms``: whether it sorts tokens by norm (the callers then pass both sides' norms);
* ``cpu``: the numba implementation, ``(costs (B,S,S) float64 ndarray, row_norms,
  col_norms, **params) → perms (B,S) int64 ndarray``;
* ``gpu``: the batched torch implementation (None: none, the CPU one runs everywhere),
  ``(costs tensor, row_norms, col_norms, exact, stats, **params) → perms (B,S) int64
  tensor`` on the costs' device, where ``exact`` is the batched exact solver it hands
  its exact sub-problems to (whole problems for ``exact``, norm-sorted windows for
  ``batch_optimal``, the top-k block for ``topk_greedy``);
* ``exact_size(S, params)``: the size of those exact sub-problems (0: none);
* the CPU rates of time estimates, the colour of charts, the parameters of the warm-up
  and its place in the Analyses page's comparison.

Implementations are named by dotted path (``"semrsm.matching.approximate:greedy_batch"``)
and imported on first use (:meth:`MatcherSpec.cpu_impl`, :meth:`MatcherSpec.gpu_impl`);
a callable is accepted too. A new matcher is one :func:`register_matcher` call (or one
entry of :data:`REGISTRY` below): the command line, the sidebar, links, estimates,
warm-up and charts read it from here.

Which implementation runs (:func:`select_implementation`): on the CPU the numba one; on
CUDA, for a matcher with exact sub-problems of size m, the first row of
:data:`CUDA_EXACT_TABLE` with ``m ≤ max_s`` names the exact solver (``"tla"``,
``"triton"``, ``"torch"`` or ``"numba"``: the whole matcher on the CPU); a GPU solver not
usable on this device falls back to ``"numba"``. Matchers without exact sub-problems run
the torch implementation on CUDA.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: certified relative duality gap of the exact solvers (CPU and torch); float64 rounding
#: dominates below 1e-13
DEFAULT_RTOL = 1e-10

#: norm orders of batch_optimal's windows
ORDERS = ("descending", "ascending")

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

#: chart colour of a matcher that declares none
DEFAULT_COLOR = "#66a61e"


def _short(value: int | float) -> str:
    """A number in a message; a huge integer as its first digits and its size."""
    text = repr(value)
    return text if len(text) <= 12 else f"{text[:4]}… ({len(text)} digits)"


@dataclass(frozen=True)
class Param:
    """One matcher parameter.

    Attributes
    ----------
    name : the keyword of :func:`semrsm.matching.solve_batch` and ``semantic_rsm``.
    default : its value when not given.
    kind : int, float or str.
    low, high : the closed range the library accepts (numbers).
    doc : what it means, for messages and ``--help``.
    choices : the allowed values of a str parameter.
    label : the widget's label in the app ("" : the name).
    ui_low, ui_high, ui_step : the range and step of the app's widget; links accept
        exactly this range. ``ui_low`` None: the app shows no widget and links do not
        carry it (the library default is used there).
    state_key : the sidebar's session-state key ("" : ``sb_<name>``).
    option : the command-line option ("" : ``--<name>``); ``aliases`` more spellings,
        one of which takes over where a command already uses ``option`` for something
        else (search's ``--k`` is its number of results).
    cli : whether the command line offers it.
    """

    name: str
    default: int | float | str
    kind: type
    low: float = -math.inf
    high: float = math.inf
    doc: str = ""
    choices: tuple[str, ...] = ()
    label: str = ""
    ui_low: int | float | None = None
    ui_high: int | float | None = None
    ui_step: int | float | None = None
    state_key: str = ""
    option: str = ""
    aliases: tuple[str, ...] = ()
    cli: bool = True

    @property
    def in_app(self) -> bool:
        """Whether the app shows a widget for it (and links carry it)."""
        return self.ui_low is not None

    @property
    def key(self) -> str:
        """The sidebar's session-state key."""
        return self.state_key or f"sb_{self.name}"

    @property
    def widget_label(self) -> str:
        return self.label or self.name

    @property
    def options(self) -> tuple[str, ...]:
        """Command-line options, the main one first."""
        return (self.option or f"--{self.name.replace('_', '-')}", *self.aliases)

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


def _no_exact(s: int, params: Mapping[str, Any]) -> int:
    return 0


def _resolve(impl: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"package.module:function"`` imported, or a callable as it is."""
    if callable(impl):
        return impl
    module, _, name = impl.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MatcherSpec:
    """A matcher: its words, parameters, implementations and facts (see the module doc).

    Attributes
    ----------
    name : the registry name (``matcher=`` of the library, ``--matcher``, links).
    label : the name people read (``"top-k greedy"``); ``hint`` a few words the sidebar
        adds in brackets (``"paper's trade-off"``).
    description : one line, for ``python -m semrsm matchers``.
    params : its parameters.
    cpu, gpu : implementations, a dotted path ``"module:function"`` or a callable (the
        calling conventions are in the module doc); ``gpu`` None: the CPU one everywhere.
    exact_size : ``(S, params) → size`` of its exact sub-problems (0: none).
    needs_norms : whether it sorts tokens by norm (needs both sides' token norms).
    cpu_rates : pairs per second of ``semantic_rsm`` on the development machine's CPU by
        positions S (see :mod:`semrsm.explorer.estimate`); None: the exact matcher's, an
        upper bound of the time.
    color : its colour in charts.
    warmup : parameters of the warm-up run (4 images, S = 16); None: not warmed up.
    approximate : whether it approximates the optimum (the Analyses page compares those
        with the exact matcher).
    analyses_order : its place in the Analyses page's default comparison (None: offered,
        not preselected).
    """

    name: str
    label: str
    description: str
    params: tuple[Param, ...] = ()
    cpu: str | Callable[..., Any] = ""
    gpu: str | Callable[..., Any] | None = None
    exact_size: Callable[[int, Mapping[str, Any]], int] = _no_exact
    needs_norms: bool = False
    hint: str = ""
    cpu_rates: Mapping[int, float] | None = None
    color: str = DEFAULT_COLOR
    warmup: Mapping[str, Any] | None = None
    approximate: bool = True
    analyses_order: int | None = None
    _impls: dict[str, Callable[..., Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def choice_label(self) -> str:
        """The sidebar's option text: ``batch-optimal (paper's trade-off)``."""
        return f"{self.label} ({self.hint})" if self.hint else self.label

    def check(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated parameters with defaults filled in."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"matcher {self.name!r} takes parameters {tuple(known) or '()'}; "
                f"got unknown {unknown}"
            )
        return {n: p.check(self.name, params.get(n, p.default)) for n, p in known.items()}

    def cpu_impl(self) -> Callable[..., Any]:
        """The CPU implementation, imported on first use."""
        if "cpu" not in self._impls:
            self._impls["cpu"] = _resolve(self.cpu)
        return self._impls["cpu"]

    def gpu_impl(self) -> Callable[..., Any] | None:
        """The torch implementation, imported on first use (None: the matcher has none)."""
        if self.gpu is None:
            return None
        if "gpu" not in self._impls:
            self._impls["gpu"] = _resolve(self.gpu)
        return self._impls["gpu"]


def _rtol() -> Param:
    return Param("rtol", DEFAULT_RTOL, float, 1e-13, 1e-2,
                 "certified relative duality gap; below 1e-13 float64 rounding dominates")


# cpu_rates: pairs per second of ``semantic_rsm`` (all three kernels, as the app runs it)
# on the 2-core development machine, measured on the demo CNN's tokens of 32 shapes (16 at
# S = 1,024) at load 0.6 (2026-12-04), times 0.6: a busy machine (load 4-7 from other
# users) ran 2-3x slower, so the table is within 2x of both. S = 16 ... 1,024 are the
# demo CNN's layers (C = 192 ... 32); S = 4,096 is extrapolated with the old table's
# ratios. The old table (2026-11-26) had the exact matcher 4x too slow at S = 256 and
# the identity 100x too fast at S = 1,024 (its cost there is the kernels, not a
# matching). ``bench/bench_app.py`` prints estimate against measured time.
# The entries share their shape (one MatcherSpec each): declarations, not repeated logic.
_BUILTIN = (
    MatcherSpec(
        "exact", "exact",
        "optimal permutation (maximum over all S! matchings; certified to rtol where the solver certifies)",
        (_rtol(),),
        cpu="semrsm.matching.exact:exact_perms",
        gpu="semrsm.matching.torch_batched:exact_matcher_torch",
        exact_size=lambda s, p: s,
        hint="optimal",
        cpu_rates={16: 22000.0, 64: 6000.0, 256: 900.0, 1024: 38.0, 4096: 0.58},
        color="#1b9e77",
        warmup={},
        approximate=False,
    ),
    MatcherSpec(
        "batch_optimal", "batch-optimal",
        "tokens sorted by norm, exact within consecutive windows (paper's trade-off)",
        (Param("window", 128, int, 1, doc="tokens per exactly solved window",
               label="Window", ui_low=2, ui_high=4096),
         Param("order", "descending", str, choices=ORDERS,
               doc="norm order of the windows; 'ascending' is the paper authors' code")),
        cpu="semrsm.matching.approximate:batch_optimal_batch",
        gpu="semrsm.matching.torch_batched:batch_optimal_matcher_torch",
        exact_size=lambda s, p: min(p["window"], s),
        needs_norms=True,
        hint="paper's trade-off",
        cpu_rates={16: 37000.0, 64: 6300.0, 256: 1200.0, 1024: 115.0, 4096: 19.0},
        color="#e7298a",
        warmup={"window": 4},
        analyses_order=2,
    ),
    MatcherSpec(
        "topk_greedy", "top-k greedy",
        "exact among the k highest-norm tokens of each side, greedy for the rest",
        (Param("k", 32, int, 0, doc="tokens matched exactly; 0 is plain greedy",
               label="k (exact among the k largest tokens)", ui_low=1, ui_high=4096,
               state_key="sb_topk", aliases=("--topk",)),),
        cpu="semrsm.matching.approximate:topk_greedy_batch",
        gpu="semrsm.matching.torch_batched:topk_greedy_matcher_torch",
        exact_size=lambda s, p: min(p["k"], s),
        needs_norms=True,
        cpu_rates={16: 41000.0, 64: 12700.0, 256: 1060.0, 1024: 42.0, 4096: 4.2},
        color="#7570b3",
        warmup={"k": 4},
        analyses_order=1,
    ),
    MatcherSpec(
        "greedy", "greedy",
        "repeatedly take the highest remaining inner product",
        cpu="semrsm.matching.approximate:greedy_batch",
        gpu="semrsm.matching.torch_batched:greedy_matcher_torch",
        cpu_rates={16: 30000.0, 64: 19000.0, 256: 1130.0, 1024: 60.0, 4096: 5.0},
        color="#d95f02",
        warmup={},
        analyses_order=0,
    ),
    MatcherSpec(
        "identity", "identity",
        "no matching: reproduces the spatio-semantic RSM",
        cpu="semrsm.matching.approximate:identity_batch",
        gpu="semrsm.matching.torch_batched:identity_torch",
        hint="no matching",
        cpu_rates={16: 108000.0, 64: 49000.0, 256: 4500.0, 1024: 110.0, 4096: 28.0},
        color="#999999",
    ),
)

#: name → :class:`MatcherSpec`, in the order the app and ``--help`` list them
REGISTRY: dict[str, MatcherSpec] = {spec.name: spec for spec in _BUILTIN}


def register_matcher(spec: MatcherSpec, *, replace: bool = False) -> MatcherSpec:
    """Add a matcher; the library, the command line, the app, links and estimates offer it.

    How to add a matcher:

    1. write its implementation(s): a CPU function ``(costs (B,S,S) float64 ndarray,
       row_norms, col_norms, **params) → perms (B,S) int64 ndarray`` (e.g. in
       ``semrsm/matching/approximate.py``) and optionally a torch one (in
       ``semrsm/matching/torch_batched.py``, conventions in the module doc);
    2. declare it: a :class:`MatcherSpec` with its label, description, parameters
       (:class:`Param`, with ``ui_low``/``ui_high`` for a widget in the app) and the
       implementations' dotted paths, as an entry of ``_BUILTIN`` in this module for a
       built-in matcher, or with this function from your own code.

    Parameters
    ----------
    spec : the matcher.
    replace : allow replacing a matcher of the same name.

    Returns
    -------
    The spec (so it can serve as a decorator-free one-liner).

    Raises
    ------
    ValueError
        A matcher of that name exists (and not ``replace``), a name that is not a Python
        identifier, or a parameter whose default fails its own check.
    """
    if not spec.name.isidentifier():
        raise ValueError(f"matcher name {spec.name!r}: use letters, digits and _")
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"matcher {spec.name!r} is registered already; pass replace=True")
    spec.check({})  # the defaults must pass their own checks
    REGISTRY[spec.name] = spec
    return spec


def unregister_matcher(name: str) -> None:
    """Remove a matcher added with :func:`register_matcher` (KeyError when unknown)."""
    del REGISTRY[name]


def get_matcher(name: str) -> MatcherSpec:
    """The registry entry of ``name``; ``ValueError`` listing the names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"matcher: unknown matcher {name!r}; choose one of {tuple(REGISTRY)}"
        ) from None


def matcher_names() -> tuple[str, ...]:
    """The registered names, in the registry's order."""
    return tuple(REGISTRY)


def _params_by_name(keep: Callable[[Param], bool]) -> dict[str, Param]:
    """The parameters ``keep`` accepts, by name, in the registry's order; a name several
    matchers share appears once (the first matcher's)."""
    out: dict[str, Param] = {}
    for spec in REGISTRY.values():
        for p in spec.params:
            if keep(p):
                out.setdefault(p.name, p)
    return out


def app_params() -> dict[str, Param]:
    """Parameters the app shows (and links carry), by name; matchers sharing a name share
    its widget."""
    return _params_by_name(lambda p: p.in_app)


def cli_params() -> dict[str, Param]:
    """Parameters the command line offers, by name (one option per name)."""
    return _params_by_name(lambda p: p.cli)


def owners(param: str) -> list[str]:
    """Names of the matchers that take parameter ``param``."""
    return [m for m, spec in REGISTRY.items() if param in spec.defaults]


class MatchersView(Mapping):
    """``name → {"params": {name: default}, "description": str}``, read live from
    :data:`REGISTRY` (a matcher registered later appears too)."""

    def __getitem__(self, name: str) -> dict[str, Any]:
        spec = REGISTRY[name]
        return {"params": spec.defaults, "description": spec.description}

    def __iter__(self) -> Iterator[str]:
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)

    def __repr__(self) -> str:
        return f"MatchersView({dict(self)!r})"


def gpu_usable(impl: str, device: Any) -> bool:
    """Whether implementation ``impl`` runs natively on ``device`` (a torch.device; no
    silent CPU fallback)."""
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
    device: Any,
    s: int,
    params: dict[str, Any] | None = None,
    backend: str = "auto",
) -> str:
    """Name of the implementation that solves ``matcher`` on ``device`` at ``S = s``.

    Parameters
    ----------
    matcher : a registry name; ``params`` its parameters (defaults filled in).
    device : "cpu", "cuda", "cuda:1", a torch.device, or "auto" (CUDA when present);
        anything but "cpu" imports torch.
    s : tokens per image (problem size).
    backend : "auto" applies the rule of the module doc; an explicit implementation
        name (see :data:`IMPLEMENTATIONS`) is returned as is.

    Returns
    -------
    One of :data:`IMPLEMENTATIONS`. Rates for time estimates can be keyed by it (with the
    device kind and S). A matcher without a torch implementation is "numba" everywhere.

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
    if isinstance(device, str) and device == "cpu":
        return "numba"
    import torch

    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda" or spec.gpu is None:
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
    "DEFAULT_RTOL",
    "IMPLEMENTATIONS",
    "ORDERS",
    "REGISTRY",
    "MatcherSpec",
    "MatchersView",
    "Param",
    "app_params",
    "cli_params",
    "cuda_exact_choice",
    "get_matcher",
    "gpu_usable",
    "matcher_names",
    "owners",
    "register_matcher",
    "select_implementation",
    "unregister_matcher",
]
