"""How close the approximate matchers come to the exact optimum, and how fast they are."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from semrsm.analysis._checks import AnalysisError, Progress, _token_array
from semrsm.matching.registry import REGISTRY, app_params


def default_matchers() -> tuple[str, ...]:
    """The matchers the Analyses page compares by default, in its order (the registry's
    ``analyses_order``)."""
    ranked = [(s.analyses_order, n) for n, s in REGISTRY.items() if s.analyses_order is not None]
    return tuple(n for _, n in sorted(ranked))


def comparable_matchers() -> tuple[str, ...]:
    """The approximate matchers (compared with the exact one): the defaults first."""
    first = default_matchers()
    return (*first, *(n for n, s in REGISTRY.items() if s.approximate and n not in first))


#: the approximate matchers of the paper with the core library's default parameters
DEFAULT_MATCHERS: tuple[str, ...] = default_matchers()


class _Names(Mapping):
    """name → the matcher's name as people read it (the registry's ``label``), live."""

    def __getitem__(self, name: str) -> str:
        return REGISTRY[name].label

    def __iter__(self):
        return iter(list(REGISTRY))

    def __len__(self) -> int:
        return len(REGISTRY)


#: the matchers' names as people read them (the app's sidebar uses the same words)
MATCHER_NAMES: Mapping[str, str] = _Names()


def _always_shown() -> tuple[str, ...]:
    """Parameters named even at their default value: those the app lets a user set
    (they are what a reader compares)."""
    return tuple(app_params())


def matcher_text(name: str, params: Mapping[str, Any] | None = None) -> str:
    """The matcher as a person reads it, with its window or k: ``batch-optimal, window
    128``, ``top-k greedy, k 32``, ``exact``. Needs no torch (the registry is metadata)."""
    shown = [f"{k} {params[k]}" for k in _always_shown() if params and k in params]
    return ", ".join([MATCHER_NAMES.get(name, name), *shown])


def matcher_phrase(name: str, params: Mapping[str, Any] | None = None) -> str:
    """The matcher in a sentence: ``batch-optimal matcher (window 128)``, ``exact
    matcher``. Needs no torch (the registry is metadata)."""
    shown = [f"{k} {params[k]}" for k in _always_shown() if params and k in params]
    return f"{MATCHER_NAMES.get(name, name)} matcher" + (f" ({', '.join(shown)})" if shown else "")


def matcher_label(name: str, params: Mapping[str, Any]) -> str:
    """Display name such as ``batch-optimal (window 16)``: the name people read
    (:data:`MATCHER_NAMES`), a window or k always, other parameters only when they
    differ from the registry's default (``rtol``, the batch-optimal ``order``)."""
    defaults = REGISTRY[name].defaults if name in REGISTRY else {}
    always = _always_shown()
    shown = [f"{k} {v}" for k, v in sorted(params.items())
             if k in always or defaults.get(k) != v]
    text = MATCHER_NAMES.get(name, name)
    return f"{text} ({', '.join(shown)})" if shown else text


def compare_matchers(
    tokens: Any,
    matchers: Sequence[str | tuple[str, Mapping[str, Any]]] = DEFAULT_MATCHERS,
    kernel: str = "cosine",
    *,
    max_pairs: int | None = 2000,
    seed: int = 0,
    progress: Progress | None = None,
) -> Any:
    """How close each approximate matcher comes to the optimum, and how fast it is.

    For every pair ``i < j`` (a random subset of ``max_pairs`` when there are more) the
    exact matcher gives the optimal matched inner product ``v*``; each matcher gives
    ``v <= v*``. The ratio ``v / v*`` is reported over pairs with ``v* > 0`` (a ratio is
    meaningless otherwise; features after a ReLU always qualify). Times cover the
    assignment only (the cost matrices are shared), on the CPU.

    Parameters
    ----------
    tokens : ndarray/Tensor (N, S, C) or ``semrsm.layers.Tokens``, ``N >= 2``.
    matchers : names, or ``(name, params)`` tuples, of :func:`semrsm.matching.solve_batch`.
    kernel : "linear", "cosine" or "rbf"; also reports the mean ratio of this kernel's
        matched value to its optimal value (cosine: same as linear; RBF with σ² from the
        exact matched distances).
    max_pairs : int or None, cap on the number of pairs (None = all).
    seed : int, for the subset of pairs.
    progress : ``progress(done, total)`` over the matchers (exact first).

    Returns
    -------
    pandas.DataFrame, one row per matcher (the exact one first) with columns
    ``matcher, name, params, ratio_mean, ratio_min, kernel_ratio_mean, frac_optimal``
    (pairs within 1e-9 relative of the optimum), ``seconds``, ``pairs_per_second``,
    ``speedup`` (exact seconds / seconds), ``n_pairs``, ``n_pairs_ratio``.

    Raises
    ------
    AnalysisError (ValueError)
        Fewer than 2 images or no matchers; unknown matchers raise the core library's error.
    """
    import pandas as pd
    import torch

    from semrsm.kernels import check_kernels, kernel_entries, pair_squared_distances
    from semrsm.matching import solve_batch
    from semrsm.tokens import validate_tokens

    check_kernels(kernel)
    t = validate_tokens(_token_array(tokens)).to("cpu", torch.float64)
    n, s, _ = t.shape
    if n < 2:
        raise AnalysisError("compare_matchers: needs at least 2 images")
    from semrsm.matching import check_matcher

    specs = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1])) for m in matchers]
    # fill in defaults so the labels say which parameters ran
    specs = [(name, check_matcher(name, params)) for name, params in specs]
    if not specs:
        raise AnalysisError("compare_matchers: give at least one matcher")
    iu, ju = np.triu_indices(n, 1)
    if max_pairs is not None and iu.size > max_pairs:
        pick = np.sort(
            np.random.default_rng(seed).choice(iu.size, size=int(max_pairs), replace=False)
        )
        iu, ju = iu[pick], ju[pick]
    # cost matrices in chunks of ~128 MB; solve each matcher chunk by chunk
    chunk = max(1, int(16_000_000 // (s * s)))
    costs = [
        torch.bmm(t[iu[a : a + chunk]], t[ju[a : a + chunk]].transpose(1, 2)).numpy()
        for a in range(0, iu.size, chunk)
    ]
    norms = (t * t).sum(dim=(1, 2)).numpy()
    na, nb = norms[iu], norms[ju]
    tok_norms = t.norm(dim=2).numpy()  # (N, S), for the norm-sorting matchers
    starts = range(0, iu.size, chunk)

    def run(name: str, params: dict[str, Any]) -> tuple[np.ndarray, float]:
        # one untimed pair first, so JIT compilation does not count as solving time
        solve_batch(
            costs[0][:1],
            matcher=name,
            row_norms=tok_norms[iu[:1]],
            col_norms=tok_norms[ju[:1]],
            **params,
        )
        start = time.perf_counter()
        vals = [
            solve_batch(
                c,
                matcher=name,
                row_norms=tok_norms[iu[a : a + chunk]],
                col_norms=tok_norms[ju[a : a + chunk]],
                **params,
            )[1]
            for a, c in zip(starts, costs, strict=True)
        ]
        return np.concatenate(vals).astype(np.float64), time.perf_counter() - start

    total = len(specs) + 1
    exact, exact_time = run("exact", {})
    if progress is not None:
        progress(1, total)

    d2_exact = pair_squared_distances(exact, na, nb)
    nz = d2_exact[d2_exact > 0]
    sigma2 = float(np.median(nz)) if nz.size else 1.0
    k_exact = kernel_entries(exact, na, nb, kernel, sigma2)
    pos = exact > 0
    rows = []
    for step, (name, params) in enumerate([("exact", {})] + specs):
        if step == 0:
            vals, secs = exact, exact_time
        else:
            vals, secs = run(name, params)
            if progress is not None:
                progress(step + 1, total)
        ratio = vals[pos] / exact[pos]
        kv = kernel_entries(vals, na, nb, kernel, sigma2)
        kpos = k_exact > 0
        rows.append(
            {
                "matcher": matcher_label(name, params),
                "name": name,
                "params": dict(params),
                "ratio_mean": float(ratio.mean()) if ratio.size else math.nan,
                "ratio_min": float(ratio.min()) if ratio.size else math.nan,
                "kernel_ratio_mean": float((kv[kpos] / k_exact[kpos]).mean())
                if kpos.any()
                else math.nan,
                "frac_optimal": float(
                    np.mean(vals >= exact - 1e-9 * np.maximum(1.0, np.abs(exact)))
                ),
                "seconds": secs,
                "pairs_per_second": iu.size / secs if secs > 0 else math.inf,
                "speedup": exact_time / secs if secs > 0 else math.inf,
                "n_pairs": int(iu.size),
                "n_pairs_ratio": int(pos.sum()),
            }
        )
    return pd.DataFrame(rows)
