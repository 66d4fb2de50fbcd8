"""CPU tests of the batched torch solvers (semrsm.matching.torch_batched) against scipy and CPU greedy.

The same torch code runs on CUDA; here it runs on the CPU so CI checks it without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semrsm.matching.torch_batched import (
    GPUMatcherError,
    batch_optimal_torch,
    greedy_torch,
    solve_batch_torch,
    solve_exact_torch,
)
from tests.optimum import optimal_values as _opt

torch.set_num_threads(min(2, torch.get_num_threads()))


def _cpu_greedy(c: np.ndarray) -> np.ndarray:
    s = c.shape[0]
    perm = np.full(s, -1)
    row_used = np.zeros(s, bool)
    col_used = np.zeros(s, bool)
    for f in np.argsort(-c, axis=None, kind="stable"):
        i, j = divmod(int(f), s)
        if not row_used[i] and not col_used[j]:
            perm[i] = j
            row_used[i] = col_used[j] = True
    return perm


def _assert_perms(perms: torch.Tensor, s: int) -> None:
    assert perms.dtype == torch.int64
    assert perms.shape[1] == s
    ref = np.arange(s)
    for p in perms.numpy():
        np.testing.assert_array_equal(np.sort(p), ref)


def _assert_values(costs: torch.Tensor, perms: torch.Tensor, values: torch.Tensor) -> None:
    assert values.dtype == torch.float64
    c = costs.double().numpy()
    ref = np.array([c[b, np.arange(c.shape[1]), perms[b].numpy()].sum() for b in range(len(c))])
    np.testing.assert_allclose(values.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def cnn_costs() -> torch.Tensor:
    """Cost matrices of ReLU features of a random-init resnet18 on scikit-image photo crops.

    10 pairs at S = 196 (layer2 of a 112 px input: 14 x 14 x 128).
    """
    timm = pytest.importorskip("timm")
    skd = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    rng = np.random.default_rng(0)
    crops = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "astronaut"):
        im = getattr(skd, name)()[..., :3]
        h, w = im.shape[:2]
        cs = int(min(h, w) * 0.7)
        y, x = rng.integers(0, h - cs + 1), rng.integers(0, w - cs + 1)
        crops.append(resize(im[y : y + cs, x : x + cs], (112, 112), anti_aliasing=True))
    x = torch.tensor(np.stack(crops), dtype=torch.float32).permute(0, 3, 1, 2)
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, features_only=True, out_indices=(2,))
    with torch.no_grad():
        f = model.eval()((x - 0.45) / 0.225)[0]
    tok = f.flatten(2).transpose(1, 2).contiguous()  # (5, 196, 128), ReLU output
    assert tok.shape == (5, 196, 128) and bool((tok >= 0).all())
    i, j = np.triu_indices(5, 1)
    return torch.bmm(tok[i], tok[j].transpose(1, 2))  # (10, 196, 196) float32


@pytest.mark.parametrize("s", [1, 2, 7, 49, 196])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exact_matches_scipy_random(s: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(s)
    b = 3 if s == 196 else 6
    costs = torch.randn(b, s, s, generator=g, dtype=torch.float64).to(dtype)
    st: dict = {}
    perms, values = solve_batch_torch(costs, "exact", stats=st)
    _assert_perms(perms, s)
    _assert_values(costs, perms, values)
    opt = _opt(costs)
    assert np.all(np.abs(values.numpy() - opt) <= 1e-9 * np.abs(opt).clip(min=1e-300))
    assert st["fallback"] == 0
    assert st["max_gap_rel"] <= 1e-10


def test_exact_matches_scipy_cnn_features(cnn_costs: torch.Tensor) -> None:
    st: dict = {}
    perms, values = solve_batch_torch(cnn_costs, "exact", stats=st)
    _assert_perms(perms, 196)
    _assert_values(cnn_costs, perms, values)
    opt = _opt(cnn_costs)
    np.testing.assert_allclose(values.numpy(), opt, rtol=1e-9, atol=0)
    assert st["fallback"] == 0 and st["problems"] == 10
    # the identity (spatio-semantic) value is a lower bound, strictly below on real features
    ident = cnn_costs.diagonal(dim1=1, dim2=2).double().sum(1).numpy()
    assert np.all(values.numpy() > ident)


def test_exact_nonnegative_structured_costs() -> None:
    # rank-dominated nonnegative costs (like ReLU features): many near ties
    g = torch.Generator().manual_seed(3)
    a = torch.rand(8, 49, 16, generator=g, dtype=torch.float64)
    bb = torch.rand(8, 49, 16, generator=g, dtype=torch.float64)
    costs = torch.bmm(a, bb.transpose(1, 2))
    _, values = solve_exact_torch(costs)
    np.testing.assert_allclose(values.numpy(), _opt(costs), rtol=1e-9, atol=0)


def test_exact_integer_costs_are_exact() -> None:
    g = torch.Generator().manual_seed(5)
    costs = torch.randint(0, 5, (10, 12, 12), generator=g).double()  # heavy ties
    perms, values = solve_exact_torch(costs)
    _assert_perms(perms, 12)
    np.testing.assert_array_equal(values.numpy(), _opt(costs))


@pytest.mark.parametrize(
    "costs",
    [
        torch.zeros(3, 5, 5),
        torch.full((2, 6, 6), 2.5, dtype=torch.float64),
        torch.ones(4, 1, 1) * torch.arange(4.0)[:, None, None],
        torch.ones(2, 7, 1) * torch.arange(7.0)[None, None, :],  # identical rows
        torch.zeros(0, 4, 4),
    ],
)
def test_exact_degenerate_inputs_certify(costs: torch.Tensor) -> None:
    st: dict = {}
    perms, values = solve_exact_torch(costs, stats=st)
    s = costs.shape[1]
    _assert_perms(perms, s)
    assert values.shape == (costs.shape[0],)
    if len(costs):
        _assert_values(costs, perms, values)
        np.testing.assert_allclose(values.numpy(), _opt(costs), rtol=1e-12, atol=1e-12)
    assert st["fallback"] == 0


def test_chunking_and_active_limit_give_same_result() -> None:
    g = torch.Generator().manual_seed(11)
    costs = torch.randn(9, 30, 30, generator=g, dtype=torch.float64)
    p1, v1 = solve_exact_torch(costs)
    # tiny budgets: bidding rows split into chunks, certificates one problem at a time,
    # at most two problems active (refilled as others finish)
    p2, v2 = solve_exact_torch(costs, max_active=2, work_bytes=4096, check_every=3)
    np.testing.assert_allclose(v1.numpy(), v2.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(p1.numpy(), p2.numpy())  # unique optimum on random costs
    np.testing.assert_allclose(v1.numpy(), _opt(costs), rtol=1e-9)
    pg1 = greedy_torch(costs)
    pg2 = greedy_torch(costs, work_bytes=1)
    np.testing.assert_array_equal(pg1.numpy(), pg2.numpy())


def test_fallback_is_counted_and_optimal() -> None:
    g = torch.Generator().manual_seed(2)
    costs = torch.randn(4, 20, 20, generator=g, dtype=torch.float64)
    st: dict = {}
    perms, values = solve_exact_torch(costs, max_rounds=1, check_every=1, stats=st)
    assert st["fallback"] == 4
    _assert_perms(perms, 20)
    np.testing.assert_allclose(values.numpy(), _opt(costs), rtol=1e-12)


@pytest.mark.parametrize("s", [1, 2, 7, 49, 150])
def test_greedy_equals_cpu_greedy(s: int) -> None:
    g = torch.Generator().manual_seed(100 + s)
    costs = torch.rand(5, s, s, generator=g, dtype=torch.float64)  # continuous: no ties
    perms, values = solve_batch_torch(costs, "greedy")
    ref = np.stack([_cpu_greedy(c) for c in costs.numpy()])
    np.testing.assert_array_equal(perms.numpy(), ref)
    _assert_values(costs, perms, values)


def test_greedy_rank_one_and_ties() -> None:
    # rank one: every row prefers the same column; one pair per round before compaction
    x = torch.linspace(1, 2, 40, dtype=torch.float64)
    costs = (x[:, None] * x.flip(0)[None, :])[None].repeat(2, 1, 1)
    perms = greedy_torch(costs)
    np.testing.assert_array_equal(perms[0].numpy(), _cpu_greedy(costs[0].numpy()))
    tied = torch.zeros(3, 9, 9)
    _assert_perms(greedy_torch(tied), 9)


def test_greedy_on_cnn_features(cnn_costs: torch.Tensor) -> None:
    perms, values = solve_batch_torch(cnn_costs, "greedy")
    ref = np.stack([_cpu_greedy(c) for c in cnn_costs.double().numpy()])
    ref_values = np.array(
        [c[np.arange(196), p].sum() for c, p in zip(cnn_costs.double().numpy(), ref, strict=True)]
    )
    np.testing.assert_allclose(values.numpy(), ref_values, rtol=1e-12)
    assert np.all(values.numpy() <= _opt(cnn_costs) * (1 + 1e-12))


def test_batch_optimal_and_topk_greedy(cnn_costs: torch.Tensor) -> None:
    opt = _opt(cnn_costs)
    ident = cnn_costs.diagonal(dim1=1, dim2=2).double().sum(1).numpy()
    for matcher, params in [("batch_optimal", {"window": 64}), ("topk_greedy", {"k": 16})]:
        st: dict = {}
        perms, values = solve_batch_torch(cnn_costs, matcher, stats=st, **params)
        _assert_perms(perms, 196)
        _assert_values(cnn_costs, perms, values)
        assert np.all(values.numpy() <= opt * (1 + 1e-12))
        assert np.all(values.numpy() > ident)
        assert st["fallback"] == 0
    # window >= S is the exact optimum
    _, v = solve_batch_torch(cnn_costs, "batch_optimal", window=500)
    np.testing.assert_allclose(v.numpy(), opt, rtol=1e-9)


def test_batch_optimal_matches_cpu_matcher_with_norms() -> None:
    approx = pytest.importorskip("semrsm.matching.approximate")
    g = torch.Generator().manual_seed(7)
    a = torch.rand(4, 40, 8, generator=g, dtype=torch.float64)
    b = torch.rand(4, 40, 8, generator=g, dtype=torch.float64)
    costs = torch.bmm(a, b.transpose(1, 2))
    rn, cn = a.norm(dim=2), b.norm(dim=2)
    c = costs.numpy()
    values = {}
    for order in ("descending", "ascending"):
        perms = batch_optimal_torch(costs, window=16, order=order, row_norms=rn, col_norms=cn)
        ref = approx.batch_optimal_batch(c, rn.numpy(), cn.numpy(), window=16, order=order)
        v = np.array([c[k, np.arange(40), perms[k].numpy()].sum() for k in range(4)])
        v_ref = np.array([c[k, np.arange(40), ref[k]].sum() for k in range(4)])
        np.testing.assert_allclose(v, v_ref, rtol=1e-9)
        values[order] = v
    # 40 = 16 + 16 + 8: the two orders cut different windows, so their values differ
    assert not np.allclose(values["descending"], values["ascending"], rtol=1e-9)


def test_large_s_approximate_quality() -> None:
    # S = 400 stands in for 56 x 56 maps on CI; the benchmark measures S = 3136
    g = torch.Generator().manual_seed(9)
    tok = torch.relu(torch.randn(3, 400, 32, generator=g))
    costs = torch.bmm(tok[[0, 0]], tok[[1, 2]].transpose(1, 2))
    _, ve = solve_batch_torch(costs, "exact")
    for matcher, params in [("greedy", {}), ("batch_optimal", {"window": 128})]:
        perms, v = solve_batch_torch(costs, matcher, **params)
        _assert_perms(perms, 400)
        ratio = v.numpy() / ve.numpy()
        assert np.all(ratio <= 1 + 1e-12) and np.all(ratio > 0.8), (matcher, ratio)


def test_devices_and_dtypes_follow_input() -> None:
    costs = torch.randn(2, 5, 5, dtype=torch.float32)
    for matcher in ("exact", "greedy", "batch_optimal", "topk_greedy", "identity"):
        perms, values = solve_batch_torch(costs, matcher)
        assert perms.device.type == "cpu" and values.device.type == "cpu"
        assert perms.dtype == torch.int64 and values.dtype == torch.float64
    perms, _ = solve_batch_torch(costs, "identity")
    np.testing.assert_array_equal(perms.numpy(), np.tile(np.arange(5), (2, 1)))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((torch.zeros(3, 4),), {}, "shape"),
        ((torch.zeros(2, 3, 4),), {}, "shape"),
        ((torch.full((1, 3, 3), float("nan")),), {}, "NaN"),
        ((torch.zeros(1, 3, 3, dtype=torch.int64),), {}, "float32"),
        ((np.zeros((1, 3, 3)),), {}, "torch.Tensor"),
        ((torch.zeros(1, 3, 3), "hungarian"), {}, "unknown matcher"),
        ((torch.zeros(1, 3, 3),), {"rtol": 0.0}, "rtol"),
        ((torch.zeros(1, 3, 3),), {"bogus": 1}, "bogus"),
        ((torch.zeros(1, 3, 3), "batch_optimal"), {"window": 0}, "window"),
        ((torch.zeros(1, 3, 3), "batch_optimal"), {"row_norms": torch.ones(2, 3)}, "row_norms"),
    ],
)
def test_bad_input_raises_value_error(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_batch_torch(*args, **kwargs)
    assert issubclass(GPUMatcherError, ValueError)


# --------------------------------------------------------------------------------------
# registry: parameters, validation, which implementation runs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matcher", "params", "match"),
    [
        ("batch_optimal", {"window": 0}, "window must be an integer ≥ 1"),
        ("batch_optimal", {"window": 2.5}, "window must be an integer"),
        ("batch_optimal", {"window": True}, "window must be an integer"),
        ("batch_optimal", {"window": "8"}, "window must be an integer"),
        ("topk_greedy", {"k": -1}, "k must be an integer ≥ 0"),
        ("exact", {"rtol": float("nan")}, "rtol must be a number in"),
        ("exact", {"rtol": float("inf")}, "rtol must be a number in"),
        ("exact", {"rtol": 0.0}, "rtol must be a number in"),
        ("exact", {"rtol": -1e-9}, "rtol must be a number in"),
        ("greedy", {"k": 3}, "takes parameters"),
        ("hungarian", {}, "unknown matcher"),
    ],
)
def test_registry_validates_parameters(matcher: str, params: dict, match: str) -> None:
    from semrsm.matching import check_matcher

    with pytest.raises(ValueError, match=match):
        check_matcher(matcher, params)


def test_registry_defaults_and_public_view() -> None:
    from semrsm.matching import MATCHERS, check_matcher
    from semrsm.matching.registry import REGISTRY

    assert set(MATCHERS) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert MATCHERS[name]["params"] == spec.defaults
        assert MATCHERS[name]["description"] == spec.description
        assert check_matcher(name, {}) == spec.defaults
    assert check_matcher("batch_optimal", {"window": np.int64(16)}) == {
        "window": 16, "order": "descending"}
    assert check_matcher("batch_optimal", {"window": 16.0, "order": "ascending"}) == {
        "window": 16, "order": "ascending"}
    with pytest.raises(ValueError, match="order must be one of"):
        check_matcher("batch_optimal", {"order": "random"})
    assert check_matcher("topk_greedy", {"k": 0}) == {"k": 0}


def test_select_implementation_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from semrsm.matching import registry, select_implementation

    assert select_implementation("exact", "cpu", 196) == "numba"
    assert select_implementation("greedy", "cpu", 196) == "numba"
    assert select_implementation("greedy", "cuda", 196) == "torch"
    assert select_implementation("identity", "cuda:0", 196) == "torch"
    assert select_implementation("topk_greedy", "cuda", 196, {"k": 0}) == "torch"
    assert select_implementation("exact", "cpu", 196, backend="tla") == "tla"
    with pytest.raises(ValueError, match="backend"):
        select_implementation("exact", "cpu", 196, backend="cupy")
    # on CUDA: the table's solver when it runs on the device, else the CPU
    monkeypatch.setattr(registry, "gpu_usable", lambda impl, dev: impl in ("tla", "torch"))
    assert select_implementation("exact", "cuda", 196) == "tla"
    assert select_implementation("batch_optimal", "cuda", 3136, {"window": 128}) == "tla"
    monkeypatch.setattr(registry, "CUDA_EXACT_TABLE", ((64, "triton"), (256, "tla"), (1 << 30, "numba")))
    assert select_implementation("exact", "cuda", 49) == "numba"  # triton not usable here
    assert select_implementation("exact", "cuda", 196) == "tla"
    assert select_implementation("exact", "cuda", 784) == "numba"
    assert select_implementation("batch_optimal", "cuda", 784, {"window": 64}) == "numba"
    monkeypatch.setattr(registry, "gpu_usable", lambda impl, dev: True)
    assert select_implementation("batch_optimal", "cuda", 784, {"window": 64}) == "triton"
    assert select_implementation("topk_greedy", "cuda", 784, {"k": 200}) == "tla"


@pytest.mark.parametrize("matcher,params", [("exact", {}), ("batch_optimal", {"window": 8}),
                                            ("topk_greedy", {"k": 6}), ("greedy", {})])
def test_tla_backend_matches_numba(matcher: str, params: dict) -> None:
    pytest.importorskip("torch_linear_assignment")
    from semrsm.matching import solve_batch

    g = torch.Generator().manual_seed(5)
    a = torch.relu(torch.randn(6, 20, 8, generator=g, dtype=torch.float64))
    b = torch.relu(torch.randn(6, 20, 8, generator=g, dtype=torch.float64))
    costs = torch.bmm(a, b.transpose(1, 2))
    kw = {"row_norms": a.norm(dim=2), "col_norms": b.norm(dim=2), **params}
    p_t, v_t = solve_batch(costs, matcher, backend="tla", **kw)
    p_n, v_n = solve_batch(costs.numpy(), matcher, backend="numba", **kw)
    _assert_perms(torch.from_numpy(p_t), 20)
    assert v_t.dtype == np.float64
    np.testing.assert_allclose(v_t, v_n, rtol=1e-12)


def test_tla_wrapper_float32_values_in_float64() -> None:
    pytest.importorskip("torch_linear_assignment")
    from semrsm.matching.tla import solve_exact_tla

    costs = torch.randn(5, 12, 12, generator=torch.Generator().manual_seed(3))
    perms, values = solve_exact_tla(costs)
    _assert_perms(perms, 12)
    _assert_values(costs, perms, values)
    np.testing.assert_allclose(values.numpy(), _opt(costs), rtol=1e-6)
