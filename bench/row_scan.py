"""The exact auction's row scan: the vector scan (semrsm.matching.row_scan) against the
scalar four-lane scan it replaced, side by side in one run.

    python bench/row_scan.py

Rows: products of the benchmark's features (bench/features.py: random-init resnet18 on
crops of scikit-image photos) at S = 49, 196, 784 and 1,024 (layer4, layer3, layer2; act1-
sized random rows), float64 and float32, with random prices. Prints ns per row scan and
checks that both scans return the same (best, second best, column) on every row.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path

import numba as nb
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.features import resnet18_tokens  # noqa: E402
from semrsm._platform import machine_description  # noqa: E402
from semrsm.matching.row_scan import row_top2  # noqa: E402


@nb.njit(inline="always")
def _lane(b1, b2, j1, v, j):
    b2 = max(b2, min(b1, v))
    gt = v > b1
    return (v if gt else b1), b2, (j if gt else j1)


@nb.njit
def scalar_top2(a, i, prices):
    """The scan the solver used before: four branch-free scalar lanes."""
    n = a.shape[1]
    x1 = y1 = z1 = w1 = -np.inf
    x2 = y2 = z2 = w2 = -np.inf
    xj = yj = zj = wj = 0
    j = 0
    while j + 4 <= n:
        x1, x2, xj = _lane(x1, x2, xj, a[i, j] - prices[j], j)
        y1, y2, yj = _lane(y1, y2, yj, a[i, j + 1] - prices[j + 1], j + 1)
        z1, z2, zj = _lane(z1, z2, zj, a[i, j + 2] - prices[j + 2], j + 2)
        w1, w2, wj = _lane(w1, w2, wj, a[i, j + 3] - prices[j + 3], j + 3)
        j += 4
    while j < n:
        x1, x2, xj = _lane(x1, x2, xj, a[i, j] - prices[j], j)
        j += 1
    for c1, c2, cj in ((y1, y2, yj), (z1, z2, zj), (w1, w2, wj)):
        if c1 > x1:
            x2 = max(x1, c2)
            x1 = c1
            xj = cj
        else:
            x2 = max(x2, c1)
    return x1, x2, xj


@nb.njit
def _sweep(scan, a, prices, reps):
    acc = 0.0
    for _ in range(reps):
        for i in range(a.shape[0]):
            b1, b2, j1 = scan(a, i, prices)
            acc += b1 - b2 + j1
    return acc


def _ns_per_scan(scan, a: np.ndarray, prices: np.ndarray) -> float:
    reps = max(5, 40_000 // a.shape[0])
    _sweep(scan, a, prices, 1)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _sweep(scan, a, prices, reps)
        best = min(best, time.perf_counter() - t0)
    return best / (reps * a.shape[0]) * 1e9


def main() -> None:
    print(f"# Row scan of the exact auction — {datetime.date.today()}\n")
    print(f"Machine: {machine_description()}; load before: `{os.popen('uptime').read().strip()}`\n")
    print("| S | dtype | scalar scan (ns) | vector scan (ns) | speed-up |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for s in (49, 196, 784, 1024):
        if s == 1024:
            a64 = rng.standard_normal((s, s)).astype(np.float32).astype(np.float64)
        else:
            t = torch.from_numpy(resnet18_tokens(2, s, seed=0))
            a64 = (t[0] @ t[1].T).double().numpy()
        prices = rng.random(s) * 0.1 * float(a64.max() - a64.min())
        for a in (np.ascontiguousarray(a64), np.ascontiguousarray(a64.astype(np.float32))):
            for i in range(s):
                assert scalar_top2(a, i, prices) == row_top2(a, i, prices), (s, i)
            old, new = _ns_per_scan(scalar_top2, a, prices), _ns_per_scan(row_top2, a, prices)
            print(f"| {s} | {a.dtype} | {old:.0f} | {new:.0f} | **{old / new:.1f}×** |", flush=True)
    print(f"\nLoad after: `{os.popen('uptime').read().strip()}`")


if __name__ == "__main__":
    main()
