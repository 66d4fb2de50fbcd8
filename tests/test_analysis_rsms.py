"""RSMPair, the one container of both RSMs of a configuration, and RSMPair.from_any."""

from __future__ import annotations

import numpy as np
import pytest

from semrsm.analysis import AnalysisError, RSMPair, layer_rsms


def _rsms(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 4)), rng.normal(size=(n, 4))
    return x @ x.T, y @ y.T


def test_from_any_takes_pairs_tuples_and_dicts_of_kernels():
    sp, se = _rsms()
    pair = RSMPair(sp, se)
    assert RSMPair.from_any(pair, "cosine") is pair
    for x in ((sp, se), {"spatial": sp, "semantic": se}):
        got = RSMPair.from_any(x, "cosine")
        assert got.spatial.dtype == got.semantic.dtype == np.float64
        np.testing.assert_array_equal(got.spatial, sp)
        np.testing.assert_array_equal(got.semantic, se)
        assert got.kernel is None  # a bare matrix does not say its kernel
    nested = RSMPair.from_any({"spatial": {"rbf": sp}, "semantic": {"rbf": se}}, "rbf")
    assert nested.kernel == "rbf" and nested.n == 5
    np.testing.assert_array_equal(nested.rsm("classic"), sp)
    np.testing.assert_array_equal(nested.rsm("semantic"), se)
    with pytest.raises(AnalysisError, match="precomputed RSMs lack the kernel 'linear'"):
        RSMPair.from_any({"spatial": {"rbf": sp}, "semantic": {"rbf": se}}, "linear")
    with pytest.raises(AnalysisError, match="kind: unknown"):
        nested.rsm("other")


def test_from_any_reads_a_result_with_its_descriptors():
    sp, se = _rsms()

    class Result:  # the attributes of an ExplorerResult that from_any reads
        spatial = {"cosine": sp}
        semantic = {"cosine": se}
        config = type("Config", (), {"matcher": "greedy"})()
        layer = type("Layer", (), {"name": "layer3"})()
        params = {"k": 2}
        model_name = "demo-resnet"
        names = [f"img{i}" for i in range(5)]
        labels = None

    got = RSMPair.from_any(Result(), "cosine")
    assert (got.kernel, got.matcher, got.matcher_params) == ("cosine", "greedy", {"k": 2})
    assert (got.layer, got.model, got.names) == ("layer3", "demo-resnet", Result.names)
    with pytest.raises(AnalysisError, match="the result lacks the kernel 'rbf'"):
        RSMPair.from_any(Result(), "rbf")


def test_from_any_computes_both_rsms_from_tokens_with_descriptors():
    tokens = np.random.default_rng(1).normal(size=(4, 3, 2)).astype(np.float32)
    got = RSMPair.from_any(tokens, "linear", "exact", device="cpu", layer="x")
    assert (got.kernel, got.matcher, got.layer) == ("linear", "exact", "x")
    assert got.spatial.shape == got.semantic.shape == (4, 4)
    # the same numbers as layer_rsms, which goes through from_any as well
    again = layer_rsms({"x": tokens}, "linear", "exact", device="cpu")["x"]
    np.testing.assert_array_equal(got.semantic, again.semantic)
    assert again.layer == "x"
