"""Library analyses: retrieval metrics, CKA, JSD agreement, matching contributions,
translation, layer CKA and the matcher comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon as scipy_js

import semrsm
from semrsm import analysis as A

# --------------------------------------------------------------------------- retrieval

# two well separated groups: {0, 1, 2} and {3, 4}; image 2 is closer to group 2 than to 0
RSM5 = np.array(
    [
        [1.0, 0.9, 0.2, 0.1, 0.3],
        [0.9, 1.0, 0.4, 0.2, 0.1],
        [0.2, 0.4, 1.0, 0.6, 0.5],
        [0.1, 0.2, 0.6, 1.0, 0.8],
        [0.3, 0.1, 0.5, 0.8, 1.0],
    ]
)
LABELS5 = ["a", "a", "a", "b", "b"]


def test_nearest_neighbours_order_excludes_query_and_breaks_ties_by_index():
    idx, sim = A.nearest_neighbours(RSM5, 2, 3)
    assert idx.tolist() == [3, 4, 1]
    np.testing.assert_allclose(sim, [0.6, 0.5, 0.4])
    tie = np.ones((4, 4))
    idx, _ = A.nearest_neighbours(tie, 1, 10)  # k clipped to N - 1
    assert idx.tolist() == [0, 2, 3]


def test_retrieval_metrics_single_label_known_values():
    m = A.retrieval_metrics(RSM5, LABELS5, k=2)
    # rankings: 0 -> 1,4,2,3 ; 1 -> 0,2,3,4 ; 2 -> 3,4,1,0 ; 3 -> 4,2,1,0 ; 4 -> 3,2,0,1
    p2 = [1 / 2, 1.0, 0.0, 1 / 2, 1 / 2]
    f1 = [1, 1, 0, 1, 1]
    ap = [
        (1 / 1 + 2 / 3) / 2,
        (1 / 1 + 2 / 2) / 2,
        (1 / 3 + 2 / 4) / 2,
        1.0,
        1.0,
    ]
    assert m["k"] == 2 and m["n_queries"] == 5 and not m["multi_label"]
    assert m["precision_at_k"] == pytest.approx(np.mean(p2))
    assert m["f1_at_1"] == pytest.approx(np.mean(f1))
    assert m["mean_average_precision"] == pytest.approx(np.mean(ap))
    np.testing.assert_allclose(m["per_query"]["average_precision"], ap)


def test_retrieval_metrics_perfect_and_query_excluded():
    # the diagonal is the largest entry; a metric that forgot to exclude the query would be off
    rsm = np.array([[9.0, 1, 0, 0], [1, 9, 0, 0], [0, 0, 9, 1], [0, 0, 1, 9]])
    m = A.retrieval_metrics(rsm, [0, 0, 1, 1], k=1)
    assert m["precision_at_k"] == 1.0 and m["f1_at_1"] == 1.0 and m["mean_average_precision"] == 1.0


def test_retrieval_metrics_multi_label_f1_between_object_sets():
    labels = [{"cat"}, {"cat", "dog"}, {"dog"}, {"car"}]
    rsm = np.array(
        [
            [1.0, 0.9, 0.1, 0.2],
            [0.9, 1.0, 0.3, 0.1],
            [0.1, 0.3, 1.0, 0.8],
            [0.2, 0.1, 0.8, 1.0],
        ]
    )
    m = A.retrieval_metrics(rsm, labels, k=1)
    # top-1: 0->1 (F1 2*1/3), 1->0 (2/3), 2->3 (0), 3->2 (0)
    assert m["multi_label"]
    assert m["f1_at_1"] == pytest.approx((2 / 3 + 2 / 3) / 4)
    assert m["n_queries_without_relevant"] == 1  # "car" shares nothing
    # query 2 ranks 3 (no), 1 (yes), 0 (no): AP 1/2
    assert m["per_query"]["average_precision"][2] == pytest.approx(0.5)
    assert math.isnan(m["per_query"]["average_precision"][3])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": ["a"] * 4}, "one per image"),
        ({"labels": LABELS5, "k": 0}, "k >= 1"),
        ({"labels": ["a", {"b"}, "a", "b", "a"]}, "mix"),
    ],
)
def test_retrieval_metrics_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.retrieval_metrics(RSM5, **kwargs)


def test_nearest_neighbours_bad_input():
    with pytest.raises(ValueError, match="square"):
        A.nearest_neighbours(np.ones((3, 4)), 0, 1)
    with pytest.raises(ValueError, match="out of range"):
        A.nearest_neighbours(RSM5, 7, 1)
    with pytest.raises(ValueError, match="NaN"):
        A.nearest_neighbours(np.full((3, 3), np.nan), 0, 1)


# --------------------------------------------------------------------------- CKA


def _gram(x):
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    return x @ x.T


def test_linear_cka_identical_scaled_and_known_value(rng):
    k = _gram(rng.normal(size=(10, 4)))
    assert A.linear_cka(k, k) == pytest.approx(1.0)
    assert A.linear_cka(k, 7.5 * k) == pytest.approx(1.0)
    l_ = _gram(rng.normal(size=(10, 3)))
    assert A.linear_cka(3 * k, 0.2 * l_) == pytest.approx(A.linear_cka(k, l_))
    assert A.linear_cka(k, l_ + 5.0) == pytest.approx(A.linear_cka(k, l_))  # centring
    # 1-D features: linear CKA of the linear kernels is the squared Pearson correlation
    x, y = [1, 2, 3, 4], [1, 3, 2, 4]
    assert A.linear_cka(_gram(x), _gram(y)) == pytest.approx(0.8**2)


def test_linear_cka_degenerate_and_bad_input():
    assert math.isnan(A.linear_cka(np.ones((4, 4)), np.eye(4)))
    with pytest.raises(ValueError, match="different image sets"):
        A.linear_cka(np.eye(3), np.eye(4))


def test_cka_matrix_matches_pairwise(rng):
    a = {f"l{i}": _gram(rng.normal(size=(8, 3))) for i in range(3)}
    b = {"x": a["l1"], "y": _gram(rng.normal(size=(8, 2)))}
    m = A.cka_matrix(a, b)
    assert m.shape == (3, 2)
    assert m[1, 0] == pytest.approx(1.0)
    assert m[2, 1] == pytest.approx(A.linear_cka(a["l2"], b["y"]))


# --------------------------------------------------------------------------- JSD


def test_jensen_shannon_properties_and_known_value(rng):
    p = rng.dirichlet(np.ones(6), size=7)
    d = A.jensen_shannon(p)
    assert d.shape == (7, 7)
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0.0)
    assert np.all((d >= 0) & (d <= 1))
    # base 2: scipy's jensenshannon returns the square root of the divergence
    assert d[0, 3] == pytest.approx(scipy_js(p[0], p[3], base=2) ** 2, abs=1e-12)
    assert A.jensen_shannon([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.811278124459 - 0.5)
    assert A.jensen_shannon([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)  # disjoint: the bound
    cross = A.jensen_shannon(p[:2], p[2:])
    assert cross.shape == (2, 5) and cross[1, 0] == pytest.approx(d[1, 2])


def test_jensen_shannon_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        A.jensen_shannon(np.array([[0.5, -0.5]]))
    with pytest.raises(ValueError, match="classes"):
        A.jensen_shannon(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)


def test_output_agreement_negative_when_rsm_follows_the_output(rng):
    probs = rng.dirichlet(np.ones(5) * 0.5, size=12)
    rsm = 1.0 - A.jensen_shannon(probs) + rng.normal(scale=0.01, size=(12, 12))
    rsm = 0.5 * (rsm + rsm.T)
    out = A.output_agreement(rsm, probs)
    assert out["n_pairs"] == 66 and out["similarity"].shape == (66,)
    assert out["pearson_r"] < -0.9 and out["spearman_r"] < -0.9 and out["pearson_p"] < 1e-6
    with pytest.raises(ValueError, match="rows"):
        A.output_agreement(rsm, probs[:5])


# --------------------------------------------------------------------------- contributions


@pytest.fixture
def relu_tokens(rng):
    return np.maximum(rng.normal(size=(6, 16, 8)), 0.0)


def test_contributions_sum_to_semantic_and_spatial_linear(relu_tokens):
    t = relu_tokens
    sem = semrsm.semantic_rsm(t, kernel="linear", matcher="exact", device="cpu")
    spa = semrsm.spatial_rsm(t, kernel="linear")
    for i, j in [(0, 1), (2, 5), (4, 3)]:
        perm, value = semrsm.match_pair(t[i], t[j])
        c = A.matching_contributions(t[i], t[j], perm)
        assert c.shape == (16,)
        assert c.sum() == pytest.approx(sem[i, j], rel=1e-9)
        assert c.sum() == pytest.approx(value, rel=1e-9)
        assert A.matching_contributions(t[i], t[j]).sum() == pytest.approx(spa[i, j], rel=1e-9)


def test_contribution_maps_place_pairs_on_both_grids(relu_tokens):
    a, b = relu_tokens[0], relu_tokens[1]
    perm, _ = semrsm.match_pair(a, b)
    c = A.matching_contributions(a, b, perm)
    ma, mb = A.contribution_maps(c, perm, (4, 4))
    assert ma.shape == mb.shape == (4, 4)
    assert ma.sum() == pytest.approx(mb.sum())
    s = 5
    assert mb.flat[perm[s]] == pytest.approx(ma.flat[s])
    with pytest.raises(ValueError, match="cells"):
        A.contribution_maps(c, perm, (3, 4))
    with pytest.raises(ValueError, match="permutation"):
        A.matching_contributions(a, b, np.zeros(16, dtype=int))


def test_explain_pair_exact_and_approximate(relu_tokens):
    a, b = relu_tokens[2], relu_tokens[3]
    ex = A.explain_pair(a, b, "exact", grid=(4, 4))
    assert ex.ratio_to_optimal == pytest.approx(1.0)
    assert ex.value >= ex.identity_value
    assert ex.contributions.sum() == pytest.approx(ex.value)
    assert ex.identity_contributions.sum() == pytest.approx(ex.identity_value)
    ma, mb = ex.maps("identity")
    assert ma.sum() == pytest.approx(ex.identity_value)
    gr = A.explain_pair(a, b, "batch_optimal", grid=(4, 4), window=4)
    assert gr.exact_value == pytest.approx(ex.value)
    assert gr.value <= gr.exact_value + 1e-9 and 0 < gr.ratio_to_optimal <= 1 + 1e-12
    pos, vals = A.token_alternatives(ex.inner, 3, top=4)
    assert vals[0] == ex.inner[3].max() and np.all(np.diff(vals) <= 0)


def test_kernel_values_reproduce_the_rsm(relu_tokens):
    t = relu_tokens
    res = semrsm.semantic_rsm(t, kernel=["linear", "cosine", "rbf"], device="cpu")
    spa = semrsm.spatial_rsm(t, kernel=["linear", "cosine", "rbf"])
    ex = A.explain_pair(t[1], t[4])
    k = ex.kernels(A.rbf_sigma2(spa["linear"]), A.rbf_sigma2(res["linear"]))
    for kind, rsms in (("semantic", res), ("spatial", spa)):
        for kernel in ("linear", "cosine", "rbf"):
            assert k[kind][kernel] == pytest.approx(rsms[kernel][1, 4], rel=1e-7), (kind, kernel)


# --------------------------------------------------------------------------- layers, matchers


def test_layer_rsms_uses_precomputed_and_layer_cka(relu_tokens):
    t = relu_tokens
    pre = (semrsm.spatial_rsm(t), semrsm.semantic_rsm(t, device="cpu"))
    calls = []
    res = A.layer_cka({"early": t, "late": pre}, progress=lambda d, n: calls.append((d, n)))
    assert res.layers == ["early", "late"]
    assert res.semantic_vs_spatial.shape == (2, 2)
    np.testing.assert_allclose(res.diagonal, np.diag(res.semantic_vs_spatial))
    np.testing.assert_allclose(res.diagonal[0], res.diagonal[1])  # same tokens both ways
    np.testing.assert_allclose(np.diag(res.semantic_vs_semantic), 1.0)
    assert calls[-1] == (2000, 2000)
    with pytest.raises(ValueError, match="different image sets"):
        A.layer_rsms({"a": t, "b": t[:3]})


def test_compare_matchers_ratios(relu_tokens):
    df = A.compare_matchers(
        relu_tokens, ["greedy", ("batch_optimal", {"window": 4}), "identity"], kernel="cosine"
    )
    assert df["name"].tolist() == ["exact", "greedy", "batch_optimal", "identity"]
    assert df.loc[0, "ratio_mean"] == pytest.approx(1.0) and df.loc[0, "frac_optimal"] == 1.0
    assert (df["ratio_mean"] <= 1 + 1e-9).all() and (df["ratio_min"] <= df["ratio_mean"]).all()
    assert df.loc[3, "ratio_mean"] < 0.95  # identity is far from optimal on shuffled content
    assert df["matcher"][2] == "batch-optimal (window 4)"  # the words of the app's sidebar
    assert (df["n_pairs"] == 15).all() and (df["seconds"] > 0).all()


# --------------------------------------------------------------------------- translation (synthetic)


def test_crop_overlaps_from_meta():
    meta = {"offsets": [(0, 0), (0, 5), (5, 5), (0, 0)], "sources": [0, 0, 0, 1], "crop_size": 10}
    ov, same = A.crop_overlaps(meta)
    assert ov[0, 1] == pytest.approx(0.5) and ov[0, 2] == pytest.approx(0.25)
    assert ov[0, 3] == 0.0 and not same[0, 3] and ov[3, 3] == 1.0
    with pytest.raises(ValueError, match="crops set"):
        A.crop_overlaps({"offsets": []})


def test_translation_analysis_on_shifted_feature_maps(rng):
    # a feature map and cyclic shifts of it: the semantic RSM ignores the shift
    base = np.maximum(rng.normal(size=(36, 8)), 0).reshape(6, 6, 8)
    shifts = [(0, 0), (0, 1), (1, 1), (0, 3)]
    toks = np.stack([np.roll(base, s, axis=(0, 1)).reshape(36, 8) for s in shifts])
    meta = {"offsets": shifts, "sources": [0] * 4, "crop_size": 6}
    res = A.translation_analysis(meta, {"layer": toks}, kernel="cosine")
    assert len(res.pairs) == 6
    np.testing.assert_allclose(res.pairs["semantic"], 1.0, atol=1e-9)
    assert (res.pairs["spatial"] < 0.9).all()
    row = res.summary.iloc[0]
    assert row["frac_semantic_higher"] == 1.0 and row["mean_gap"] > 0.1


# --------------------------------------------------------------------------- demo CNN (acceptance)


@pytest.fixture(scope="module")
def demo_crops():
    """demo-resnet (shipped weights) on 9 translated crops of each of two photos:
    tokens of every layer and both cosine RSMs per layer (exact matcher)."""
    from semrsm.images import load_image_set
    from semrsm.layers import extract_layers, list_layers
    from semrsm.models import create_model

    model = create_model("demo-resnet")
    crops = load_image_set("crops:astronaut,coffee")
    names = [li.name for li in list_layers(model)]
    tokens = extract_layers(model, crops.images, names)
    rsms = A.layer_rsms(tokens, kernel="cosine", matcher="exact", device="cpu")
    return crops, names, rsms


def test_translation_effect_on_demo_cnn(demo_crops):
    """The paper's translation result, thresholds stated here.

    Measured with the shipped weights: mean semantic - spatio-semantic gap of same-source
    crops 0.60 in the first layer (act1, 32x32 positions) and 0.12 in the last (2x2);
    slope of similarity against overlap 1.6-3.2x steeper for the spatio-semantic RSM.
    """
    crops, names, rsms = demo_crops
    res = A.translation_analysis(crops, rsms, kernel="cosine")
    summ = res.summary.set_index("layer").loc[names]
    first, last = summ.iloc[0], summ.iloc[-1]
    assert len(res.pairs) == 2 * 36 * len(names)  # 36 same-source pairs per photo and layer
    # semantic > spatio-semantic for same-source crops, by a wide margin in the first layer
    assert first["frac_semantic_higher"] == 1.0
    assert first["mean_gap"] > 0.3
    # ... most clearly in early layers (many positions), less so in the deepest
    assert first["mean_gap"] > 2 * last["mean_gap"]
    # the spatio-semantic similarity falls with translation; the semantic one much less
    assert (summ["slope_spatial"] > 1.3 * summ["slope_semantic"]).all(), summ
    # the semantic RSM still tells the two photos apart
    assert (summ["mean_semantic"] - summ["mean_semantic_other"] > 0.03).all(), summ


def test_layer_cka_rises_with_depth_on_demo_cnn(demo_crops):
    """CKA(semantic, spatio-semantic) is higher in the deepest layer than in the first.
    Measured: 0.70 (act1, 1024 positions) -> 0.97 (layer4, 4)."""
    _, names, rsms = demo_crops
    res = A.layer_cka(rsms)
    assert res.layers == names
    assert res.diagonal[-1] > res.diagonal[0] + 0.1
    assert res.diagonal[-1] > 0.9
    np.testing.assert_allclose(np.diag(res.semantic_vs_semantic), 1.0)
