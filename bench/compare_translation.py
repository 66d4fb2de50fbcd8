"""Do semantic RSMs make two layers, or two models, agree more than classic ones?

A measurement on the *translated crops* set (overlapping crops of photos, the paper's
translation experiment) with the offline demo models. Prints, for every pair of layers of
demo-resnet and for every (demo-resnet layer, demo-vit layer) pair, the agreement of the
classic RSMs and of the semantic RSMs (kernel CKA, RSA Spearman, RSA Kendall τ_a), with
the paired bootstrap interval of the difference semantic − classic.

    python bench/compare_translation.py                      # crops:astronaut,coffee,chelsea:9
    python bench/compare_translation.py --images shapes:32   # the same on the shapes set

One command, a few minutes on two cores (exact matcher, cosine kernel).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semrsm.analysis.compare import compare  # noqa: E402
from semrsm.analysis.statistics import COMPARE_METHODS  # noqa: E402
from semrsm.cache import Cache  # noqa: E402
from semrsm.explorer import ExplorerConfig, layer_rsms  # noqa: E402

SHORT = {"cka": "CKA", "spearman": "Spearman", "kendall_tau_a": "tau_a"}


def _row(name: str, res) -> str:
    cells = []
    for m in COMPARE_METHODS:
        c = res.estimates["classic"][m].value
        s = res.estimates["semantic"][m].value
        d = res.estimates["semantic − classic"][m]
        cells.append(f"{c:6.3f} {s:6.3f} {d.value:+6.3f} [{d.low:+.3f},{d.high:+.3f}]")
    return f"{name:<26}" + " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", default="crops:astronaut,coffee,chelsea:9")
    p.add_argument("--kernel", default="cosine")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--cache-dir", default=None, help="default: a temporary folder")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory() if args.cache_dir is None else None
    cache = Cache(args.cache_dir or tmp.name)
    base = ExplorerConfig(images=args.images, kernel=args.kernel)
    res_layers = ["layer1", "layer2", "layer3", "layer4"]
    vit_layers = ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]
    ra = layer_rsms(base.replace(model="demo-resnet"), cache, res_layers)
    rb = layer_rsms(base.replace(model="demo-vit"), cache, vit_layers)
    n = next(iter(ra.values()))["spatial"][args.kernel].shape[0]
    print(f"images {args.images} (N = {n}), {args.kernel} kernel, exact matcher, "
          f"{args.n_boot} bootstrap draws, 95% intervals; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    head = " | ".join(f"{SHORT[m] + ': classic semantic diff [95% CI]':<37}" for m in COMPARE_METHODS)
    wins = {"layers": [], "models": []}

    def run(title: str, pairs) -> None:
        print(f"\n{title}\n{'pair':<26}{head}")
        for (na, xa), (nb, xb) in pairs:
            res = compare(xa, xb, kernel=args.kernel, n_boot=args.n_boot)
            print(_row(f"{na} vs {nb}", res))
            key = "layers" if title.startswith("Two layers") else "models"
            wins[key].append(res)

    run("Two layers of demo-resnet",
        [((f"R.{a}", ra[a]), (f"R.{b}", ra[b])) for a, b in itertools.combinations(res_layers, 2)])
    run("Two layers of demo-vit",
        [((f"V.{a}", rb[a]), (f"V.{b}", rb[b])) for a, b in itertools.combinations(vit_layers, 2)])
    run("Two models: demo-resnet layer vs demo-vit layer",
        [((f"R.{a}", ra[a]), (f"V.{b}", rb[b])) for a in res_layers for b in vit_layers])
    print("\nSummary: share of pairs where semantic > classic, and where the interval of the "
          "difference lies above 0 / below 0")
    for key, results in wins.items():
        for m in COMPARE_METHODS:
            diffs = [r.estimates["semantic − classic"][m] for r in results]
            up = sum(d.value > 0 for d in diffs)
            sig_up = sum(d.low > 0 for d in diffs)
            sig_down = sum(d.high < 0 for d in diffs)
            print(f"{key:<7} {SHORT[m]:<9} semantic higher in {up}/{len(diffs)}; "
                  f"CI above 0: {sig_up}, below 0: {sig_down}; "
                  f"mean difference {sum(d.value for d in diffs) / len(diffs):+.3f}")
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
