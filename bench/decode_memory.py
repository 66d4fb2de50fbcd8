"""Peak memory of decoding large uploads (docs/FAULTS.md §3).

    python -m bench.decode_memory [--n 6] [--side 7900]

Writes one solid-colour PNG of side × side pixels (about 200 KB at 7900) in a child process,
then decodes it ``n`` times as uploads and prints the growth of the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--side", type=int, default=7900)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.png"
        subprocess.run(
            [sys.executable, "-c",
             f"from PIL import Image; Image.new('RGB', ({args.side}, {args.side}), (120, 30, 200))"
             f".save({str(path)!r})"],
            check=True,
        )
        data = path.read_bytes()
    from semrsm.images import from_uploads

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    s = from_uploads([(f"{i}.png", data) for i in range(args.n)])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{args.n} PNGs of {args.side}x{args.side} ({len(data) / 1e3:.0f} kB each) -> "
          f"{s.images[0].size}; peak RSS growth {(peak - base) / 1e3:.0f} MB; "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
