"""Measured effect of each difference from the paper authors' code (docs/FIDELITY.md).

One command prints the whole table (about a minute on 2 cores):

    python -m bench.fidelity [--n 32] [--s 196]

Features: ReLU activations of a random-init resnet18 on photo crops (bench/features.py).
The authors' choices are re-implemented here from their definitions (no code of theirs is
imported): the RBF bandwidth recipe, ascending Batch-Optimal windows, integer costs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from bench.features import resnet18_tokens
from semrsm.kernels import authors_sigma2, kernel_from_inner, median_sigma2, squared_distances
from semrsm.matching import solve_batch
from semrsm.matching.approximate import batch_optimal_batch
from semrsm.pairs import pair_indices


def _costs(tokens: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(tokens).double()
    return torch.bmm(t[pairs[:, 0]], t[pairs[:, 1]].transpose(1, 2)).numpy()


def _inner(tokens: np.ndarray, pairs: np.ndarray, values: np.ndarray) -> np.ndarray:
    sq = (tokens.astype(np.float64) ** 2).sum(axis=(1, 2))
    inner = np.diag(sq)
    inner[pairs[:, 0], pairs[:, 1]] = values
    inner[pairs[:, 1], pairs[:, 0]] = values
    return inner


def _truncated_value(costs: np.ndarray) -> np.ndarray:
    """Value (on the true costs) of the optimum of integer-truncated costs, per pair."""
    out = np.empty(len(costs))
    for b, c in enumerate(costs):
        rows, cols = linear_sum_assignment(np.trunc(c), maximize=True)
        out[b] = c[rows, cols].sum()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32, help="images")
    parser.add_argument("--s", type=int, default=196, choices=[49, 196, 784], help="positions")
    parser.add_argument("--window", type=int, default=128)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    tokens = resnet18_tokens(args.n, args.s)
    pairs = pair_indices(args.n)
    costs = _costs(tokens, pairs)
    _, opt = solve_batch(costs, "exact")
    rows = []

    # 1. RBF bandwidth recipe (semantic and spatio-semantic RSMs)
    for kind, values in (("semantic", opt), ("spatio-semantic", np.trace(costs, axis1=1, axis2=2))):
        inner = _inner(tokens, pairs, values)
        d2 = squared_distances(inner)
        ours, theirs = median_sigma2(d2), authors_sigma2(d2)
        diff = np.abs(kernel_from_inner(inner, "rbf", ours) - kernel_from_inner(inner, "rbf", theirs))
        rows.append((f"RBF σ² ({kind}): authors / ours − 1", f"{theirs / ours - 1:+.2%}"))
        rows.append((f"RBF RSM ({kind}): max |authors − ours|", f"{diff.max():.2e}"))

    # 2. Batch-Optimal window order
    rn = np.linalg.norm(tokens, axis=2)
    for order in ("descending", "ascending"):
        perms = batch_optimal_batch(costs, rn[pairs[:, 0]], rn[pairs[:, 1]], window=args.window,
                                    order=order)
        val = np.take_along_axis(costs, perms[:, :, None], axis=2)[:, :, 0].sum(axis=1)
        rows.append((f"Batch-Optimal {order}, window {args.window}: mean value / optimum",
                     f"{np.mean(val / opt):.4f}"))

    # 3. Integer-truncated costs (an integer LAP solver fed int(M))
    for scale in (1.0, 0.01):
        trunc = _truncated_value(costs * scale * scale) / (scale * scale)
        inner_t = _inner(tokens, pairs, trunc)
        inner_o = _inner(tokens, pairs, opt)
        cos_t, cos_o = kernel_from_inner(inner_t, "cosine"), kernel_from_inner(inner_o, "cosine")
        off = ~np.eye(args.n, dtype=bool)
        rel = np.abs(cos_t - cos_o)[off] / np.abs(cos_o[off])
        rows.append((f"integer costs, features × {scale:g}: mean value / optimum",
                     f"{np.mean(trunc / opt):.4f}"))
        rows.append((f"integer costs, features × {scale:g}: max relative cosine change",
                     f"{rel.max():.1%}"))

    # 4. self-pairs: our diagonal comes from the squared norms, never from a matching
    inner = _inner(tokens, pairs, opt)
    rows.append(("cosine diagonal, ours: max |1 − d|",
                 f"{np.abs(1 - np.diag(kernel_from_inner(inner, 'cosine'))).max():.1e}"))
    t32 = torch.from_numpy(tokens)
    self_costs = torch.bmm(t32, t32.transpose(1, 2)).numpy()  # float32 products, as theirs
    self_vals = np.array([c[linear_sum_assignment(c, maximize=True)].sum() for c in self_costs])
    norms32 = np.linalg.norm(tokens.reshape(args.n, -1), axis=1).astype(np.float32) ** 2
    rows.append(("cosine diagonal, float32 self-matching: min d",
                 f"{np.min(self_vals.astype(np.float32) / norms32):.7f}"))

    width = max(len(r[0]) for r in rows)
    print(f"N = {args.n}, S = {args.s}, C = {tokens.shape[2]} (random-init resnet18, photo crops); "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"| {'quantity':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
