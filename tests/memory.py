"""Peak memory growth of a piece of code, measured in a fresh interpreter.

The hostile-input tests assert that a small file or a bad argument is refused (or
processed) *within a stated budget*, not merely "without a crash". A fresh process keeps
the measurement free of what earlier tests allocated: ``setup`` runs first (imports, files),
then the resident set size is read, then ``code`` runs and the peak resident set size
(the process's own high-water mark, ``VmHWM``) is read. The growth is ``peak - before``.

``VmHWM`` and not ``ru_maxrss``: Linux carries a parent's peak into ``ru_maxrss`` of a
child it starts (across fork and exec), so under pytest (torch imported: ~0.7 GB)
even ``x = 1`` "grew" by 0.7 GB. The high-water mark is reset after ``setup`` where the
kernel allows it (``/proc/self/clear_refs``), so the peak of the imports is not counted;
where it cannot be reset the figure can only overstate the growth, so a bound that holds
is a true bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_TEMPLATE = """
import json, resource, sys, traceback
def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def _peak_mb():
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
{setup}
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
except OSError:
    pass
_before = _rss_mb()
_error = None
try:
{code}
except BaseException as _exc:  # the caller asserts on the kind and text
    _error = f"{{type(_exc).__name__}}: {{_exc}}"
_peak = _peak_mb()
print("MEMORY-RESULT " + json.dumps({{"before": _before, "peak": _peak, "error": _error}}))
"""


def peak_growth(code: str, setup: str = "", timeout: float = 180.0) -> tuple[float, str | None]:
    """Run ``setup`` then ``code`` in a fresh Python; return (peak growth in MB, error).

    ``error`` is ``"ExceptionType: message"`` of whatever ``code`` raised, or None.
    The process runs from the repository root, so ``import semrsm`` works.
    """
    src = _TEMPLATE.format(
        setup=textwrap.dedent(setup), code=textwrap.indent(textwrap.dedent(code), "    ")
    )
    proc = subprocess.run(
        [sys.executable, "-c", src], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMORY-RESULT ")]
    if not lines:
        raise AssertionError(f"the measured process died (rc {proc.returncode}): {proc.stderr[-2000:]}")
    res = json.loads(lines[-1][len("MEMORY-RESULT "):])
    return res["peak"] - res["before"], res["error"]
