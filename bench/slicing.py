"""Cost of the fair, cancellable slices of the CPU solver (semrsm/matching/scheduling.py).

    python -m bench.slicing

Times ``semantic_rsm`` end to end with slices of 0.25 s (the default) and with one slice per
chunk (the old single lock), alternating, on random-init resnet18 features.
"""

from __future__ import annotations

import time

import semrsm
from bench.features import resnet18_tokens
from semrsm.matching import scheduling


def main() -> None:
    cases = [(196, 64, "exact"), (196, 64, "batch_optimal"), (49, 128, "exact")]
    print("| S | N | matcher | slices of 0.25 s, pairs/s | one slice per chunk, pairs/s | ratio |")
    print("|---|---|---|---|---|---|")
    for s, n, matcher in cases:
        tokens = resnet18_tokens(n, s)
        pairs = n * (n - 1) // 2
        semrsm.semantic_rsm(tokens[:4], matcher=matcher)  # compile
        best = {}
        for _ in range(2):
            for label, slice_s in (("sliced", 0.25), ("whole", 1e9)):
                scheduling.SLICE_SECONDS = slice_s
                scheduling._RATES.clear()
                t0 = time.perf_counter()
                semrsm.semantic_rsm(tokens, matcher=matcher)
                best[label] = max(best.get(label, 0.0), pairs / (time.perf_counter() - t0))
        scheduling.SLICE_SECONDS = 0.25
        print(f"| {s} | {n} | {matcher} | {best['sliced']:,.0f} | {best['whole']:,.0f} | "
              f"{best['sliced'] / best['whole']:.2f} |")


if __name__ == "__main__":
    main()
