"""The GPU device check (bench/bench_gpu.py) rehearsed on the CPU, so its first GPU run works.

Runs the whole script in ``--tiny`` mode with ``TRITON_INTERPRET=1`` (every solver, every
section, the same code paths as on CUDA except the device), then with a budget too small
for anything, which must skip sections with a note instead of overrunning.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("triton")
pytest.importorskip("timm")
pytest.importorskip("skimage")


def _run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), *args],
                          env=env, capture_output=True, text=True, timeout=600)
    return proc, time.perf_counter() - t0


def test_device_check_runs_end_to_end_on_cpu() -> None:
    proc, _ = _run("--device", "cpu", "--tiny", "--budget", "240")
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:] + out[-3000:]
    for heading in ("# bench_gpu:", "## Exact matching", "## Largest relative gap",
                    "## Greedy and Batch-Optimal", "## End-to-end", "CUDA_EXACT_TABLE"):
        assert heading in out, out
    assert "## Errors" not in out, out
    assert "error (" not in out, out
    # every exact solver reached the optimum on the sampled pairs
    section = out.split("## Largest relative gap")[1].split("##")[0]
    rows = [r for r in section.splitlines() if r.startswith("| ") and r[2].isdigit()]
    assert len(rows) == 2, section
    for r in rows:
        gaps = [float(x) for x in r.strip("| ").split(" | ")[2:]]
        assert len(gaps) == 4 and max(gaps) <= 1e-9, r
    assert "| triton | triton |" in out  # Batch-Optimal with the Triton kernel's windows


def test_device_check_respects_its_budget() -> None:
    proc, seconds = _run("--device", "cpu", "--tiny", "--budget", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipped" in proc.stdout
    assert "## Exact matching" in proc.stdout
