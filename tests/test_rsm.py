"""RSMs: the properties every semantic RSM has (README, docs/ARCHITECTURE.md), layouts, dtypes, devices, chunks, progress, bad input."""

import itertools

import numpy as np
import pytest
import torch

import semrsm
from semrsm import blocks as blocks_module

KERNELS = ["linear", "cosine", "rbf"]


@pytest.fixture
def feats(rng):
    return np.maximum(rng.normal(size=(7, 6, 3, 3)), 0.0)  # (N, C, H, W), ReLU-like


def brute_semantic_linear(tokens):
    n, s, _ = tokens.shape
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            m = tokens[i] @ tokens[j].T
            out[i, j] = max(m[np.arange(s), list(p)].sum() for p in itertools.permutations(range(s)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_semantic_equals_brute_force_all_kernels(seed):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(5, 6, 4))
    inner = brute_semantic_linear(t)
    got = semrsm.semantic_rsm(t, kernel=KERNELS, matcher="exact")
    np.testing.assert_allclose(got["linear"], inner, rtol=1e-10, atol=1e-12)
    norms = np.sqrt(np.diag(inner))
    np.testing.assert_allclose(got["cosine"], inner / np.outer(norms, norms), rtol=1e-9)
    d2 = np.maximum(np.diag(inner)[:, None] + np.diag(inner)[None] - 2 * inner, 0)
    np.fill_diagonal(d2, 0)
    sigma2 = np.median(d2[~np.eye(5, dtype=bool)])
    np.testing.assert_allclose(got["rbf"], np.exp(-d2 / (2 * sigma2)), rtol=1e-8)


@pytest.mark.parametrize("kernel", KERNELS)
def test_identity_matcher_reproduces_spatial_rsm(feats, kernel):
    sem = semrsm.semantic_rsm(feats, kernel=kernel, matcher="identity")
    np.testing.assert_allclose(sem, semrsm.spatial_rsm(feats, kernel=kernel), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_semantic_at_least_spatial(feats, kernel):
    sigma2 = 5.0 if kernel == "rbf" else None  # with a common bandwidth; the median heuristic
    sem = semrsm.semantic_rsm(feats, kernel=kernel, sigma2=sigma2)  # picks one per RSM
    spa = semrsm.spatial_rsm(feats, kernel=kernel, sigma2=sigma2)
    assert np.all(sem >= spa - 1e-10)
    assert np.any(sem > spa + 1e-6)  # and the matching actually gains somewhere


@pytest.mark.parametrize("kernel", KERNELS)
def test_invariant_to_permuting_any_image(feats, kernel, rng):
    tokens = semrsm.to_tokens(feats)
    shuffled = tokens.copy()
    for i in range(len(shuffled)):
        shuffled[i] = shuffled[i][rng.permutation(tokens.shape[1])]
    np.testing.assert_allclose(
        semrsm.semantic_rsm(shuffled, kernel=kernel), semrsm.semantic_rsm(tokens, kernel=kernel),
        rtol=1e-9, atol=1e-12,
    )
    assert not np.allclose(semrsm.spatial_rsm(shuffled, kernel=kernel),
                           semrsm.spatial_rsm(tokens, kernel=kernel))


def test_cyclic_shift_has_cosine_one(rng):
    fmap = rng.random((1, 8, 5, 5))
    shifted = np.roll(fmap, shift=(2, 3), axis=(2, 3))
    x = np.concatenate([fmap, shifted])
    assert semrsm.semantic_rsm(x, kernel="cosine")[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert semrsm.spatial_rsm(x, kernel="cosine")[0, 1] < 0.95


@pytest.mark.parametrize("kernel", KERNELS)
def test_symmetric_with_expected_diagonal(feats, kernel):
    for r in (semrsm.semantic_rsm(feats, kernel=kernel), semrsm.spatial_rsm(feats, kernel=kernel)):
        assert np.array_equal(r, r.T)
        diag = (feats ** 2).sum(axis=(1, 2, 3)) if kernel == "linear" else np.ones(len(feats))
        np.testing.assert_allclose(np.diag(r), diag, rtol=1e-12)


def test_layouts_dtypes_and_tensor_inputs(feats):
    ref = semrsm.semantic_rsm(feats.astype(np.float64))
    tokens = semrsm.to_tokens(feats)
    assert tokens.shape == (7, 9, 6)
    np.testing.assert_allclose(semrsm.semantic_rsm(tokens), ref, rtol=1e-12)
    np.testing.assert_allclose(semrsm.semantic_rsm(feats.astype(np.float32)), ref, rtol=1e-5)
    np.testing.assert_allclose(semrsm.semantic_rsm(torch.from_numpy(feats)), ref, rtol=1e-12)
    np.testing.assert_allclose(semrsm.semantic_rsm(torch.from_numpy(tokens).float()), ref, rtol=1e-5)
    out = semrsm.semantic_rsm(feats.astype(np.float32))
    assert out.dtype == np.float64 and out.shape == (7, 7)


def test_to_tokens_layouts(rng):
    x = rng.random((2, 3, 4, 5))
    t = semrsm.to_tokens(x)
    assert t.shape == (2, 20, 3)
    assert t[1, 4 * 5 - 1, 2] == x[1, 2, 3, 4]  # row-major grid: s = y * W + x
    assert t[0, 1 * 5 + 2, 0] == x[0, 0, 1, 2]
    seq = rng.random((2, 7, 3))
    assert semrsm.to_tokens(seq) is not None and np.array_equal(semrsm.to_tokens(seq), seq)
    tt = semrsm.to_tokens(torch.from_numpy(x))
    assert isinstance(tt, torch.Tensor) and tuple(tt.shape) == (2, 20, 3)


def test_chunking_and_progress_do_not_change_results(feats):
    calls = []
    full = semrsm.semantic_rsm(feats, kernel="linear")
    chunked = semrsm.semantic_rsm(feats, kernel="linear", chunk_pairs=4,
                                  progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_allclose(chunked, full, rtol=1e-12)
    total = 7 * 6 // 2
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == 2 + (total - 1) // 4


def test_several_kernels_solve_assignments_once(feats, monkeypatch):
    counted = []
    real = blocks_module.solve_batch

    def counting(costs, *args, **kwargs):
        counted.append(len(costs))
        return real(costs, *args, **kwargs)

    monkeypatch.setattr(blocks_module, "solve_batch", counting)
    out = semrsm.semantic_rsm(feats, kernel=KERNELS)
    assert set(out) == set(KERNELS)
    assert sum(counted) == 7 * 6 // 2  # each unordered pair solved exactly once


def test_return_matchings_reproduce_values(feats):
    res = semrsm.semantic_rsm(feats, kernel="linear", return_matchings=True)
    tokens = semrsm.to_tokens(feats)
    assert res.perms.shape == (21, 9)
    for i, j in [(0, 1), (3, 5), (6, 2), (4, 4)]:
        perm = res.perm(i, j)
        value = float((tokens[i] * tokens[j][perm]).sum())
        assert value == pytest.approx(res.rsm[i, j], rel=1e-12)


def test_zero_tokens_give_finite_values(rng):
    x = rng.random((4, 5, 6))
    x[1] = 0.0
    x[2, :3] = 0.0  # some zero tokens
    for kernel in KERNELS:
        for r in (semrsm.semantic_rsm(x, kernel=kernel), semrsm.spatial_rsm(x, kernel=kernel)):
            assert np.all(np.isfinite(r))
    cos = semrsm.semantic_rsm(x, kernel="cosine")
    assert cos[1, 1] == 1.0 and cos[0, 1] == 0.0


def test_single_image(rng):
    r = semrsm.semantic_rsm(rng.random((1, 4, 3)), kernel=KERNELS)
    assert all(v.shape == (1, 1) and v[0, 0] > 0 for v in r.values())


def test_approximate_matchers_between_identity_and_exact(feats):
    exact = semrsm.semantic_rsm(feats, kernel="linear")
    for matcher, params in [("greedy", {}), ("topk_greedy", {"k": 3}), ("batch_optimal", {"window": 3})]:
        approx = semrsm.semantic_rsm(feats, kernel="linear", matcher=matcher, **params)
        assert np.all(approx <= exact + 1e-10)


@pytest.mark.parametrize("call,msg", [
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4)), kernel="laplace"), "unknown kernel"),
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4)), matcher="hungarian"), "unknown matcher"),
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4)), matcher="exact", window=3), "unknown"),
    (lambda: semrsm.semantic_rsm(np.zeros((3, 4))), "expected shape"),
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4, 5, 6))), "expected shape"),
    (lambda: semrsm.semantic_rsm(np.zeros((0, 3, 4))), "empty"),
    (lambda: semrsm.semantic_rsm([]), "empty"),
    (lambda: semrsm.semantic_rsm([np.zeros((3, 4)), np.zeros((5, 4))]), "different feature shapes"),
    (lambda: semrsm.semantic_rsm(np.array([[[np.inf]]])), "NaN or inf"),
    (lambda: semrsm.spatial_rsm(np.full((2, 3, 4), np.nan)), "NaN or inf"),
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4)), kernel=[]), "at least one"),
    (lambda: semrsm.semantic_rsm(np.zeros((2, 3, 4)), device="tpu"), "device"),
])
def test_bad_input_raises_value_error(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without GPU")
def test_cuda_request_without_gpu_is_clear():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        semrsm.semantic_rsm(np.zeros((2, 3, 4)), device="cuda")


@pytest.mark.parametrize("matcher,params", [("exact", {}), ("greedy", {}), ("batch_optimal", {"window": 4})])
def test_gpu_code_path_on_cpu_matches_numba(feats, matcher, params):
    # the batched torch solver that serves device="cuda", run through the whole RSM pipeline
    numba_rsm = semrsm.semantic_rsm(feats, kernel="linear", matcher=matcher, backend="numba", **params)
    torch_rsm = semrsm.semantic_rsm(feats, kernel="linear", matcher=matcher, backend="torch", **params)
    if matcher == "exact":
        np.testing.assert_allclose(torch_rsm, numba_rsm, rtol=1e-9)
    else:
        assert np.all(torch_rsm <= semrsm.semantic_rsm(feats, kernel="linear") + 1e-9)
        np.testing.assert_allclose(torch_rsm, numba_rsm, rtol=1e-9)


def test_gpu_code_path_on_cnn_features(cnn_tokens):
    tokens = cnn_tokens[:6]
    np.testing.assert_allclose(
        semrsm.semantic_rsm(tokens, kernel="cosine", backend="torch"),
        semrsm.semantic_rsm(tokens, kernel="cosine", backend="numba"), rtol=1e-9,
    )


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        semrsm.semantic_rsm(np.zeros((1, 3, 4)), backend="cupy")


# --- CPU products: GEMM tiles cut into pairs ---------------------------------------------

@pytest.mark.parametrize("n,s,chunk", [(2, 5, None), (7, 4, 1), (9, 3, 5), (13, 49, None), (5, 130, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cost_tiles_cover_every_pair_once_with_per_pair_products(n, s, chunk, dtype):
    from semrsm.costs import iter_cost_tiles
    from semrsm.pairs import pair_indices

    g = torch.Generator().manual_seed(n * s)
    t = torch.relu(torch.randn(n, s, 8, generator=g, dtype=dtype))
    pairs = pair_indices(n)
    seen = np.zeros(len(pairs), dtype=int)
    for ids, costs in iter_cost_tiles(t, chunk):
        assert costs.dtype == np.float64 and costs.flags.c_contiguous
        assert chunk is None or len(ids) <= chunk
        seen[ids] += 1
        for k, p in enumerate(ids):
            a, b = pairs[p]
            ref = (t[a] @ t[b].T).double().numpy()
            np.testing.assert_allclose(costs[k], ref, rtol=1e-6 if dtype == torch.float32 else 1e-12)
    assert (seen == 1).all()


def test_cost_tiles_equal_per_pair_matmul_bit_for_bit(cnn_tokens):
    # the benchmark compares with scipy on `base[a] @ base[b].T`: same BLAS kernel, same bits
    from semrsm.costs import iter_cost_tiles
    from semrsm.pairs import pair_indices

    t = torch.from_numpy(cnn_tokens)
    pairs = pair_indices(len(t))
    for ids, costs in iter_cost_tiles(t, 5):
        for k, p in enumerate(ids):
            a, b = pairs[p]
            assert np.array_equal(costs[k], (t[a] @ t[b].T).double().numpy())


def test_cpu_chunks_keep_matchings_and_values(feats):
    full = semrsm.semantic_rsm(feats, kernel="linear", return_matchings=True)
    for chunk in (1, 3, 100):
        res = semrsm.semantic_rsm(feats, kernel="linear", return_matchings=True, chunk_pairs=chunk)
        np.testing.assert_allclose(res.inner, full.inner, rtol=1e-12)
        t = np.asarray(semrsm.to_tokens(feats))
        for i, j in [(0, 1), (2, 6), (5, 3)]:
            value = (t[i] * t[j][res.perm(i, j)]).sum()
            assert value == pytest.approx(res.inner[i, j], rel=1e-12)


def test_float32_products_that_overflow_raise_a_clear_error():
    # finite float32 tokens whose inner products overflow float32: say what to do, don't hang
    t = np.full((3, 4, 8), 1e19, dtype=np.float32)
    t[1] *= 2
    with pytest.raises(ValueError, match="overflow"):
        semrsm.semantic_rsm(t, kernel="linear", matcher="exact", device="cpu")


def test_tensors_that_require_grad(feats):
    t = torch.from_numpy(feats).float().requires_grad_(True)
    ref = semrsm.semantic_rsm(feats.astype(np.float32), kernel="linear", device="cpu")
    np.testing.assert_allclose(semrsm.semantic_rsm(t, kernel="linear", device="cpu"), ref, rtol=1e-6)
    assert semrsm.spatial_rsm(t, kernel="linear", device="cpu").shape == ref.shape
