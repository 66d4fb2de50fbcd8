"""The Triton assignment kernel (semrsm/matching/triton_lap.py) without a GPU.

* Correctness: the kernel runs under ``TRITON_INTERPRET=1`` in a subprocess
  (tests/triton_cases.py; the variable must be set before the kernel is decorated) on a
  few hundred small problems — random float32/float64, ties, constant and rank-one
  matrices, ReLU products — and its values are compared with scipy's optimum.
* Compilation: the same kernel is compiled for an H100 (sm_90) with triton's bundled
  ptxas, which needs no GPU: it must build without register spills at the benchmark's
  sizes, so the first GPU run does not fail on a compile error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
triton = pytest.importorskip("triton")


@pytest.fixture(scope="module")
def interp() -> dict[str, dict]:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "triton_cases.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}


def test_interpreted_kernel_matches_scipy(interp: dict[str, dict]) -> None:
    groups = [r for r in interp.values() if "problems" in r]
    assert sum(r["problems"] for r in groups) >= 200
    for r in groups:
        assert r["is_perm"], r
        assert r["values_match_perms"], r
        assert r["values_dtype"] == "torch.float64" and r["perms_dtype"] == "torch.int64", r
        assert r["max_gap_rel"] <= 1e-12, r  # the certificate bounds it by rtol = 1e-10
        assert r["kernel_max_gap_rel"] <= 1e-10, r
        if "capped" not in r["name"]:
            assert r["fallback"] == 0, r
    # ties, constant and rank-one inputs need the shortest-path stage, not only bids
    assert interp["constant_s5"]["paths"] > 0
    assert interp["rank_one_s10"]["paths"] > 0
    assert interp["random_f64_s6_arr2"]["arr_bids"] > 0 and interp["ties_int_s6_arr2"]["arr_bids"] > 0


@pytest.mark.parametrize("name", ["capped_paths_s8", "auction_capped_bids_s6"])
def test_uncertified_problems_fall_back_and_are_counted(interp: dict[str, dict], name: str) -> None:
    r = interp[name]
    assert 0 < r["fallback"] <= r["problems"]  # problems left unfinished by the cap
    assert r["max_gap_rel"] <= 1e-12


def test_semantic_rsm_on_triton_backend(interp: dict[str, dict]) -> None:
    r = interp["semantic_rsm_backend_triton"]
    assert r["exact_max_rel"] <= 1e-12
    assert r["batch_optimal_max_rel"] <= 1e-12


@pytest.mark.parametrize(("kernel", "s", "dtype"), [
    ("jv", 49, "fp32"), ("jv", 196, "fp32"), ("jv", 784, "fp32"), ("jv", 196, "fp64"),
    ("auction", 196, "fp32"), ("auction", 784, "fp32"),
])
def test_kernel_compiles_for_h100_without_spills(kernel: str, s: int, dtype: str) -> None:
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the kernel is interpreted in this process")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from semrsm.matching import triton_lap

    block = max(16, triton.next_power_of_2(s))
    sig = {"cost": "*" + dtype, "perm_out": "*i32", "gap_out": "*fp64", "scale_out": "*fp64",
           "flag_out": "*i32", "stat_out": "*i32", "rtol": "fp32"}
    if kernel == "jv":
        sig.update({"max_paths": "i32", "S": "constexpr", "BLOCK": "constexpr", "ARR_ITERS": "constexpr"})
        const = {"S": s, "BLOCK": block, "ARR_ITERS": triton_lap.DEFAULT_ARR_ITERS}
        fn = triton_lap._lap_kernel
    else:
        sig.update({"max_bids": "i32", "S": "constexpr", "BLOCK": "constexpr", "THETA": "constexpr"})
        const = {"S": s, "BLOCK": block, "THETA": 6.0}
        fn = triton_lap._auction_kernel
    src = ASTSource(fn=fn, signature=sig, constexprs=const)
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": triton_lap.num_warps_for(block)})
    ptx = compiled.asm["ptx"]
    assert ".target sm_90" in ptx
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not ptxas.exists():
        pytest.skip("triton's bundled ptxas is missing")
    ptx_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"semrsm_lap_{kernel}_{s}_{dtype}_{os.getpid()}.ptx"
    ptx_file.write_text(ptx)
    try:
        out = subprocess.run([str(ptxas), "-arch=sm_90a", "-v", str(ptx_file), "-o", os.devnull],
                             capture_output=True, text=True, timeout=120)
    finally:
        ptx_file.unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "0 bytes spill stores" in out.stderr, out.stderr


def test_triton_backend_without_gpu_or_interpreter_is_a_clear_error() -> None:
    import torch

    from semrsm.matching import triton_lap

    if triton_lap.available("cpu"):
        pytest.skip("this process interprets Triton kernels")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        triton_lap.solve_exact_triton(torch.zeros(1, 3, 3))


def test_solve_batch_triton_backend_message_without_gpu() -> None:
    import numpy as np

    from semrsm.matching import solve_batch, triton_lap

    if triton_lap.available("cpu"):
        pytest.skip("this process interprets Triton kernels")
    with pytest.raises(ValueError, match="backend='auto'"):
        solve_batch(np.zeros((1, 3, 3)), "exact", backend="triton")
