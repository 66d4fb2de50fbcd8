"""CPU benchmark of the matchers: exact vs a plain scipy loop, and the approximate matchers.

    python bench/bench_matchers.py            # full table (a few minutes on 2 cores)
    python bench/bench_matchers.py --quick    # smaller N, for a smoke run

Features: ReLU activations of a random-init timm resnet18 on crops of scikit-image's photos
(bench/features.py), at S = 49 (layer4), 196 (layer3), 784 (layer2). Every row is measured
side by side in one run, over the same pairs ``i < j``. Prints markdown.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import semrsm  # noqa: E402
from bench.features import resnet18_tokens  # noqa: E402
from semrsm._platform import machine_description  # noqa: E402
from semrsm.costs import pair_indices  # noqa: E402
from semrsm.matching import solve_batch  # noqa: E402


def machine() -> str:
    return f"{machine_description()}, torch {torch.__version__}, numba {numba.__version__}"


def costs_of(tokens: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The float32 token products of every pair, as float64 (what semantic_rsm solves)."""
    t = torch.from_numpy(tokens)
    idx = torch.from_numpy(pairs)
    return torch.bmm(t[idx[:, 0]], t[idx[:, 1]].transpose(1, 2)).double().numpy()


def scipy_loop(costs: np.ndarray) -> tuple[np.ndarray, float]:
    values = np.empty(len(costs))
    t0 = time.perf_counter()
    for k, c in enumerate(costs):
        r, col = linear_sum_assignment(c, maximize=True)
        values[k] = c[r, col].sum()
    return values, time.perf_counter() - t0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    sizes = {49: 64, 196: 64, 784: 16} if not args.quick else {49: 16, 196: 12, 784: 6}

    print(f"# semrsm CPU matcher benchmark — {datetime.date.today()}\n")
    print(f"Machine: {machine()}; numba threads {numba.get_num_threads()}.\n")
    print("## Exact matcher vs a plain scipy loop (same pairs, pairs/s)\n")
    print("| S × C | N | pairs | scipy loop, 1 thread | semrsm exact, 1 thread (solve) "
          "| semrsm exact, all cores (solve) | semrsm.semantic_rsm end to end | speed-up end to end "
          "| max rel. diff to scipy's optimum |")
    print("|---|---|---|---|---|---|---|---|---|")
    feats = {}
    for s, n in sizes.items():
        tokens = resnet18_tokens(n, s, seed=0)
        feats[s] = tokens
        pairs = pair_indices(n)
        costs = costs_of(tokens, pairs)
        solve_batch(costs[:2], "exact")  # compile outside the timing
        ref, t_scipy = scipy_loop(costs)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        _, t_one = timed(lambda c=costs: solve_batch(c, "exact"))
        numba.set_num_threads(threads)
        (_, values), t_all = timed(lambda c=costs: solve_batch(c, "exact"))
        sem, t_e2e = timed(lambda t=tokens: semrsm.semantic_rsm(t, kernel="linear"))
        rel = np.max(np.abs(values - ref) / np.abs(ref))  # same cost matrices as scipy
        assert sem.shape == (n, n)
        p = len(pairs)
        print(f"| {s} × {tokens.shape[2]} | {n} | {p} | {p / t_scipy:,.0f} | {p / t_one:,.0f} | "
              f"{p / t_all:,.0f} | {p / t_e2e:,.0f} | **{t_scipy / t_e2e:.2f}×** | {rel:.1e} |")

    print("\n## Approximate matchers: share of the optimal value and speed\n")
    print("Ratio = matched inner product / exact optimum per pair (mean and min over pairs); "
          "speed in pairs/s of the solve step on all cores.\n")
    print("| S | matcher | mean ratio | min ratio | pairs/s | speed vs exact |")
    print("|---|---|---|---|---|---|")
    for s, tokens in feats.items():
        n = len(tokens)
        pairs = pair_indices(n)
        costs = costs_of(tokens, pairs)
        norms = np.linalg.norm(tokens.astype(np.float64), axis=2)
        rn, cn = norms[pairs[:, 0]], norms[pairs[:, 1]]
        (_, exact), t_exact = timed(lambda c=costs: solve_batch(c, "exact"))
        runs = [("identity", {}), ("greedy", {}), ("topk_greedy", {"k": 32})]
        windows = (64, 128, 256) if s == 784 else (s // 4, s // 2) if s > 49 else (16,)
        runs += [("batch_optimal", {"window": w}) for w in windows]
        for matcher, params in runs:
            solve_batch(costs[:1], matcher, row_norms=rn[:1], col_norms=cn[:1], **params)
            (_, vals), t = timed(lambda c=costs, m=matcher, p=params, rn=rn, cn=cn: solve_batch(
                c, m, row_norms=rn, col_norms=cn, **p))
            ratio = vals / exact
            label = matcher + "".join(f" {k}={v}" for k, v in params.items())
            print(f"| {s} | {label} | {ratio.mean():.4f} | {ratio.min():.4f} | "
                  f"{len(costs) / t:,.0f} | {t_exact / t:.2f}× |")


if __name__ == "__main__":
    main()
