"""Cost of comparing two configurations (`semrsm.analysis.compare`): three statistics for
the classic and the semantic RSMs with a 1000-draw bootstrap over images, on RSMs of N
images (random features; the cost does not depend on the values).

    python bench/bench_compare.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semrsm.analysis.compare import compare  # noqa: E402


def main() -> int:
    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'N':>5} {'pairs':>7} {'draws':>6} {'seconds':>8}")
    for n in (32, 64, 128):
        pair = [tuple(np.corrcoef(rng.normal(size=(n, 20))) for _ in range(2)) for _ in range(2)]
        t0 = time.perf_counter()
        compare(pair[0], pair[1], n_boot=1000)
        print(f"{n:>5} {n * (n - 1) // 2:>7} {1000:>6} {time.perf_counter() - t0:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
