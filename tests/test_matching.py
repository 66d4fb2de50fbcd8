"""Matchers: exact = brute force = scipy; approximate matchers are valid and never exceed exact."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from semrsm.matching import MATCHERS, match_pair, solve_batch
from semrsm.matching.exact import exact_batch


def brute_force(costs: np.ndarray) -> float:
    s = costs.shape[0]
    rows = np.arange(s)
    return max(costs[rows, list(p)].sum() for p in itertools.permutations(range(s)))


def scipy_value(costs: np.ndarray) -> float:
    r, c = linear_sum_assignment(costs, maximize=True)
    return float(costs[r, c].sum())


def is_perm(p: np.ndarray) -> bool:
    return np.array_equal(np.sort(p), np.arange(len(p)))


@pytest.mark.parametrize("s", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_equals_brute_force(s, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4, s, 6))
    b = rng.normal(size=(4, s, 6))
    costs = np.einsum("bsc,btc->bst", a, b)
    perms, values = solve_batch(costs, "exact")
    for k in range(4):
        assert is_perm(perms[k])
        assert values[k] == pytest.approx(brute_force(costs[k]), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("s", [16, 49, 100, 196])
def test_exact_equals_scipy_random(s):
    rng = np.random.default_rng(s)
    costs = rng.normal(size=(6, s, s))
    perms, values = solve_batch(costs, "exact")
    for k in range(6):
        assert is_perm(perms[k])
        ref = scipy_value(costs[k])
        assert abs(values[k] - ref) <= 1e-9 * abs(ref)
        assert values[k] == pytest.approx(costs[k][np.arange(s), perms[k]].sum(), rel=1e-14)


def test_exact_equals_scipy_on_cnn_features(cnn_tokens):
    t = cnn_tokens.astype(np.float64)
    n = len(t)
    i, j = np.triu_indices(n, 1)
    costs = np.einsum("psc,ptc->pst", t[i], t[j])
    perms, values, gaps = exact_batch(costs)
    for k in range(len(costs)):
        ref = scipy_value(costs[k])
        assert abs(values[k] - ref) <= 1e-9 * abs(ref)
        assert values[k] <= ref * (1 + 1e-12)  # never above the optimum
        assert 0 <= gaps[k] + 1e-9 * abs(ref)  # the certificate is a valid upper bound
        assert ref <= values[k] + gaps[k] + 1e-9 * abs(ref)


def test_exact_integer_costs_are_exact():
    rng = np.random.default_rng(3)
    costs = rng.integers(0, 20, size=(10, 30, 30)).astype(np.float64)  # many ties
    _, values = solve_batch(costs, "exact")
    for k in range(10):
        assert values[k] == scipy_value(costs[k])


@pytest.mark.parametrize("costs", [np.zeros((2, 9, 9)), np.full((2, 9, 9), 3.5), np.ones((1, 1, 1))])
def test_exact_degenerate(costs):
    perms, values = solve_batch(costs, "exact")
    assert all(is_perm(p) for p in perms)
    assert np.allclose(values, costs[:, 0, 0] * costs.shape[1])


def test_exact_rank_one_needs_no_loop_forever():
    # outer products: every permutation pairing large with large is optimal; many near-ties
    u = np.linspace(0, 1, 64)
    costs = np.outer(u, u[::-1])[None]
    _, values = solve_batch(costs, "exact")
    assert values[0] == pytest.approx(scipy_value(costs[0]), rel=1e-10)


@pytest.mark.parametrize("matcher,params", [
    ("greedy", {}), ("topk_greedy", {"k": 8}), ("topk_greedy", {"k": 0}), ("topk_greedy", {"k": 100}),
    ("batch_optimal", {"window": 8}), ("batch_optimal", {"window": 1}), ("batch_optimal", {"window": 64}),
    ("identity", {}),
])
def test_approximate_matchers_valid_and_below_exact(matcher, params, cnn_tokens):
    t = cnn_tokens[:6].astype(np.float64)
    i, j = np.triu_indices(len(t), 1)
    costs = np.einsum("psc,ptc->pst", t[i], t[j])
    norms = np.linalg.norm(t, axis=2)
    _, exact = solve_batch(costs, "exact")
    perms, values = solve_batch(costs, matcher, row_norms=norms[i], col_norms=norms[j], **params)
    s = costs.shape[1]
    for k in range(len(costs)):
        assert is_perm(perms[k])
        assert values[k] == pytest.approx(costs[k][np.arange(s), perms[k]].sum(), rel=1e-12)
        assert values[k] <= exact[k] * (1 + 1e-12)


def test_full_window_batch_optimal_and_topk_are_exact():
    rng = np.random.default_rng(5)
    costs = rng.normal(size=(3, 20, 20))
    norms = rng.random((3, 20))
    _, exact = solve_batch(costs, "exact")
    _, bo = solve_batch(costs, "batch_optimal", row_norms=norms, col_norms=norms, window=20)
    _, tk = solve_batch(costs, "topk_greedy", row_norms=norms, col_norms=norms, k=20)
    np.testing.assert_allclose(bo, exact, rtol=1e-10)
    np.testing.assert_allclose(tk, exact, rtol=1e-10)


def test_greedy_takes_global_maximum_first():
    costs = np.array([[[5.0, 4.0], [4.5, 0.0]]])  # greedy: 5 then 0 (=5); optimal 4 + 4.5 (=8.5)
    perms, values = solve_batch(costs, "greedy")
    assert perms[0].tolist() == [0, 1] and values[0] == 5.0
    _, exact = solve_batch(costs, "exact")
    assert exact[0] == 8.5


def test_greedy_matches_reference_implementation():
    rng = np.random.default_rng(11)
    costs = rng.random((5, 25, 25))
    perms, _ = solve_batch(costs, "greedy")
    for k in range(5):
        c = costs[k].copy()
        ref = np.empty(25, dtype=int)
        for _ in range(25):
            r, col = np.unravel_index(np.argmax(c), c.shape)
            ref[r] = col
            c[r, :] = -np.inf
            c[:, col] = -np.inf
        assert np.array_equal(perms[k], ref)


def test_batch_optimal_window_sorting_by_norm():
    # two windows: the high-norm tokens may only match high-norm tokens
    costs = np.array([[[1.0, 9.0], [9.0, 1.0]]])
    norms_rows = np.array([[2.0, 1.0]])
    norms_cols = np.array([[2.0, 1.0]])
    perms, values = solve_batch(costs, "batch_optimal", row_norms=norms_rows, col_norms=norms_cols, window=1)
    assert perms[0].tolist() == [0, 1] and values[0] == 2.0


def test_match_pair_contract_numpy_and_torch(rng):
    a = rng.normal(size=(12, 5))
    perm_true = rng.permutation(12)
    b = np.empty_like(a)
    b[perm_true] = a  # b[perm_true[s]] = a[s]
    perm, value = match_pair(a, b)
    assert np.array_equal(perm, perm_true)
    assert value == pytest.approx(float((a * a).sum()))
    perm_t, value_t = match_pair(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert np.array_equal(perm_t, perm_true)
    assert value_t == pytest.approx(value, rel=1e-5)


def test_match_pair_accepts_feature_maps(rng):
    a = rng.normal(size=(4, 3, 3))  # (C, H, W)
    perm, value = match_pair(a, a)
    assert np.array_equal(perm, np.arange(9))


@pytest.mark.parametrize("call,msg", [
    (lambda: solve_batch(np.zeros((1, 3, 3)), "hungarian"), "unknown matcher"),
    (lambda: solve_batch(np.zeros((1, 3, 3)), "greedy", window=3), "unknown"),
    (lambda: solve_batch(np.zeros((3, 3)), "exact"), "(B, S, S)"),
    (lambda: solve_batch(np.zeros((1, 3, 3)), "batch_optimal"), "row_norms"),
    (lambda: solve_batch(np.zeros((1, 3, 3)), "batch_optimal", row_norms=np.ones((1, 3)),
                         col_norms=np.ones((1, 3)), window=0), "window"),
    (lambda: match_pair(np.zeros((3, 2)), np.zeros((4, 2))), "same shape"),
    (lambda: match_pair(np.zeros(3), np.zeros(3)), "expected shape"),
    (lambda: match_pair(np.full((3, 2), np.nan), np.zeros((3, 2))), "NaN"),
])
def test_bad_arguments_raise_value_error(call, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_registry_lists_paper_matchers():
    assert {"exact", "greedy", "topk_greedy", "batch_optimal", "identity"} <= set(MATCHERS)


# --- the exact auction always ends (hardening) -------------------------------------------

@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("rtol", [-1, 0, float("nan"), float("inf"), -float("inf"), "x"])
def test_exact_rejects_bad_rtol(rtol):
    costs = np.random.default_rng(0).normal(size=(2, 6, 6))
    with pytest.raises(ValueError, match="rtol"):
        exact_batch(costs, rtol)
    with pytest.raises(ValueError, match="rtol"):
        solve_batch(costs, "exact", rtol=rtol)


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exact_rejects_non_finite_costs(bad, dtype):
    costs = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(dtype)
    costs[1, 2, 5] = bad
    with pytest.raises(ValueError, match="overflow"):
        exact_batch(costs)
    with pytest.raises(ValueError, match="overflow"):
        solve_batch(costs, "exact")


@pytest.mark.timeout(120, method="thread")
def test_exact_bid_cap_falls_back_to_scipy(cnn_tokens):
    from semrsm.matching.exact import fallback_count

    t = cnn_tokens[:4].astype(np.float64)
    i, j = np.triu_indices(len(t), 1)
    costs = np.einsum("psc,ptc->pst", t[i], t[j])
    before = fallback_count()
    stats: dict = {}
    perms, values, gaps = exact_batch(costs, max_bids_per_row=1, stats=stats)
    assert stats["fallbacks"] == len(costs)  # one bid per row cannot solve these
    assert fallback_count() - before == len(costs)
    for k in range(len(costs)):
        assert is_perm(perms[k])
        assert values[k] == pytest.approx(scipy_value(costs[k]), rel=1e-12)
        assert gaps[k] == 0.0
    stats = {}
    _, values2, _ = exact_batch(costs, stats=stats)
    assert stats["fallbacks"] == 0 and stats["bids"] > 0
    np.testing.assert_allclose(values2, values, rtol=1e-10)


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("rtol", [1e-300, 5e-324])
def test_exact_unreachable_rtol_ends_with_exact_values(rtol):
    # ε below float64 resolution of the prices: the auction must stop (and fall back), not hang
    costs = np.random.default_rng(1).normal(size=(3, 30, 30)) * 1e6
    perms, values, _ = exact_batch(costs, rtol)
    for k in range(3):
        assert is_perm(perms[k])
        assert values[k] == pytest.approx(scipy_value(costs[k]), rel=1e-12)


@pytest.mark.timeout(120, method="thread")
def test_exact_ties_and_huge_values_end():
    rng = np.random.default_rng(2)
    ties = rng.integers(0, 2, size=(4, 40, 40)).astype(np.float64) * 1e12
    ties[0] = 1e12  # constant matrix
    _, values, _ = exact_batch(ties)
    for k in range(4):
        assert values[k] == scipy_value(ties[k])


@pytest.mark.timeout(120, method="thread")
def test_exact_float32_threads_and_concurrent_callers(cnn_tokens):
    import threading

    t = cnn_tokens.astype(np.float32)
    i, j = np.triu_indices(len(t), 1)
    c32 = np.einsum("psc,ptc->pst", t[i], t[j])
    c64 = c32.astype(np.float64)
    p1, v1, _ = exact_batch(c64, threads=1)
    p2, v2, _ = exact_batch(c64, threads=2)
    p3, v3, _ = exact_batch(c32)  # no float64 copy; same arithmetic
    assert np.array_equal(p1, p2) and np.array_equal(v1, v2)
    assert np.array_equal(p1, p3) and np.array_equal(v1, v3)
    out = {}

    def work(k):
        out[k] = solve_batch(c64, "exact")[1]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for k in range(4):
        assert np.array_equal(out[k], v1)


@pytest.mark.timeout(120, method="thread")
def test_exact_after_fork():
    import multiprocessing as mp

    costs = np.random.default_rng(4).normal(size=(6, 12, 12))
    exact_batch(costs, threads=2)  # the parent's pool exists before the fork
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        values = pool.apply(_child_values, (costs,))
    np.testing.assert_array_equal(values, exact_batch(costs, threads=2)[1])


def _child_values(costs):
    return exact_batch(costs, threads=2)[1]
