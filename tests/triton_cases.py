"""Runs the Triton assignment kernel under the interpreter and prints a JSON report.

Started by tests/test_triton_lap.py in a subprocess with ``TRITON_INTERPRET=1`` (triton
decides between compiling and interpreting when a kernel is decorated, so the variable
must be set before ``semrsm.matching.triton_lap`` is imported). Each case group records
the largest relative gap of the kernel's values to scipy's optimum, whether every result
is a permutation and how many problems fell back to scipy. The interpreter runs one
program at a time in Python (≈ 0.05 s per problem at S = 4, ≈ 1.5 s at S = 32), so the
sizes are small.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

from semrsm.matching.triton_lap import solve_exact_triton  # noqa: E402
from tests.optimum import optimal_values as _opt  # noqa: E402


def _check(name: str, costs: torch.Tensor, **kw) -> dict:
    t = time.perf_counter()
    st: dict = {}
    perms, values = solve_exact_triton(costs, stats=st, **kw)
    opt = _opt(costs)
    scale = np.abs(costs.double().numpy()).max(axis=2).sum(axis=1).clip(min=1e-300)
    c = costs.double().numpy()
    p = perms.numpy()
    is_perm = all(np.array_equal(np.sort(x), np.arange(c.shape[1])) for x in p)
    recomputed = np.array([c[b, np.arange(c.shape[1]), p[b]].sum() for b in range(len(c))])
    return {
        "name": name,
        "problems": int(costs.shape[0]),
        "s": int(costs.shape[1]),
        "dtype": str(costs.dtype),
        "max_gap_rel": float((np.abs(opt - values.numpy()) / scale).max()) if len(c) else 0.0,
        "values_match_perms": bool(np.allclose(recomputed, values.numpy(), rtol=1e-12, atol=1e-12)),
        "is_perm": bool(is_perm),
        "values_dtype": str(values.dtype),
        "perms_dtype": str(perms.dtype),
        "fallback": int(st["fallback"]),
        "kernel_max_gap_rel": float(st["max_gap_rel"]),
        "paths": int(st["paths"]),
        "arr_bids": int(st["arr_bids"]),
        "seconds": time.perf_counter() - t,
    }


def main() -> None:
    g = torch.Generator().manual_seed(0)
    out = []
    for s, n in [(2, 24), (3, 24), (5, 20), (8, 12)]:
        out.append(_check(f"random_f64_s{s}", torch.randn(n, s, s, generator=g, dtype=torch.float64)))
    # the optional row-reduction bids (off by default) on random costs and on ties
    out.append(_check("random_f64_s6_arr2", torch.randn(20, 6, 6, generator=g, dtype=torch.float64),
                      arr_iters=2))
    out.append(_check("random_f32_s12", torch.randn(10, 12, 12, generator=g)))
    # ties everywhere: integer costs in {0, 1, 2}
    out.append(_check("ties_int_s6_arr2", torch.randint(0, 3, (20, 6, 6), generator=g).double(),
                      arr_iters=2))
    out.append(_check("ties_binary_s4", torch.randint(0, 2, (34, 4, 4), generator=g).double()))
    out.append(_check("ties_int_f32_s7", torch.randint(-2, 2, (15, 7, 7), generator=g).float()))
    const = torch.stack([torch.full((5, 5), v) for v in (0.0, 1.0, -3.5, 1e6)])
    out.append(_check("constant_s5", const))
    x = torch.rand(5, 10, generator=g, dtype=torch.float64) + 0.1
    y = torch.randn(5, 10, generator=g, dtype=torch.float64)
    out.append(_check("rank_one_s10", x[:, :, None] * y[:, None, :]))
    # non-negative products of ReLU features: the structure of the real workload
    tok = torch.relu(torch.randn(3, 32, 16, generator=g))
    out.append(_check("relu_products_f32_s32", torch.bmm(tok[:-1], tok[1:].transpose(1, 2))))
    out.append(_check("single_s1", torch.randn(3, 1, 1, generator=g)))
    out.append(_check("empty_batch", torch.zeros(0, 4, 4)))
    # the uncertified path: one augmenting path allowed, rows left free -> scipy, counted
    out.append(_check("capped_paths_s8", torch.randn(6, 8, 8, generator=g, dtype=torch.float64),
                      arr_iters=0, max_paths=1))
    # the auction kernel (the default above S = 100): fewer, small problems (its ε phases
    # make it slow to interpret)
    auc = {"algorithm": "auction"}
    out.append(_check("auction_random_f64_s4", torch.randn(4, 4, 4, generator=g, dtype=torch.float64), **auc))
    out.append(_check("auction_ties_s5", torch.randint(0, 3, (3, 5, 5), generator=g).float(), **auc))
    out.append(_check("auction_constant_s4", torch.stack([torch.full((4, 4), v) for v in (0.0, 2.0)]), **auc))
    xa = torch.rand(2, 6, generator=g, dtype=torch.float64) + 0.1
    out.append(_check("auction_rank_one_s6", xa[:, :, None] * torch.randn(2, 6, generator=g,
                      dtype=torch.float64)[:, None, :], **auc))
    ta = torch.relu(torch.randn(3, 8, 6, generator=g))
    out.append(_check("auction_relu_f32_s8", torch.bmm(ta[:-1], ta[1:].transpose(1, 2)), **auc))
    out.append(_check("auction_capped_bids_s6", torch.randn(2, 6, 6, generator=g, dtype=torch.float64),
                      max_bids=2, **auc))
    # the whole pipeline on the Triton backend against the numba solver
    import semrsm

    feats = torch.relu(torch.randn(5, 6, 4, generator=g, dtype=torch.float64)).numpy()
    t = time.perf_counter()
    r_tr = semrsm.semantic_rsm(feats, kernel="linear", backend="triton")
    r_nb = semrsm.semantic_rsm(feats, kernel="linear", backend="numba")
    b_tr = semrsm.semantic_rsm(feats, kernel="linear", matcher="batch_optimal", window=4,
                               backend="triton")
    b_nb = semrsm.semantic_rsm(feats, kernel="linear", matcher="batch_optimal", window=4,
                               backend="numba")
    out.append({
        "name": "semantic_rsm_backend_triton",
        "exact_max_rel": float(np.abs(r_tr - r_nb).max() / np.abs(r_nb).max()),
        "batch_optimal_max_rel": float(np.abs(b_tr - b_nb).max() / np.abs(b_nb).max()),
        "seconds": time.perf_counter() - t,
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
