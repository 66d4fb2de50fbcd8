"""CSV downloads of the numbers the pages show (semrsm/explorer/tables.py): every table
reads back with the values it was made from."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import semrsm.analysis as A
from semrsm.explorer import tables as T


def _read(text: str) -> pd.DataFrame:
    assert text.endswith("\n") and "\r" not in text
    return pd.read_csv(io.StringIO(text))


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(0)
    base = np.maximum(rng.normal(size=(36, 8)), 0).reshape(6, 6, 8)
    shifts = [(0, 0), (0, 1), (1, 1), (0, 3)]
    toks = np.stack([np.roll(base, s, axis=(0, 1)).reshape(36, 8) for s in shifts])
    meta = {"offsets": shifts, "sources": [0] * 4, "crop_size": 6}
    return meta, toks


def test_translation_csvs(shifted):
    meta, toks = shifted
    res = A.translation_analysis(meta, {"early": toks, "late": toks[:, ::2]}, kernel="cosine")
    names = [f"crop{k}" for k in range(4)]
    pairs = _read(T.translation_pairs_csv(res, names))
    assert list(pairs.columns) == ["layer", "i", "j", "name_i", "name_j", "source", "overlap",
                                   "classic", "semantic", "gap"]
    assert len(pairs) == 12 and set(pairs["layer"]) == {"early", "late"}
    np.testing.assert_allclose(pairs["classic"], res.pairs["spatial"], rtol=1e-9)
    assert pairs["name_j"].iloc[0] == names[int(res.pairs["j"].iloc[0])]
    assert "name_i" not in _read(T.translation_pairs_csv(res)).columns
    summary = _read(T.translation_summary_csv(res))
    assert "mean_classic" in summary.columns and "mean_spatial" not in summary.columns
    np.testing.assert_allclose(summary["mean_semantic"], res.summary["mean_semantic"])
    with pytest.raises(ValueError, match="names"):
        T.translation_pairs_csv(res, names[:2])


def test_cka_csv(shifted):
    _, toks = shifted
    cka = A.layer_cka({"a": toks, "b": toks[:, ::2], "c": toks[:, ::4]})
    df = _read(T.cka_csv(cka, positions={"a": 36, "b": 18, "c": 9}))
    assert len(df) == 9 and df["same_layer"].sum() == 3
    diag = df[df["same_layer"] == 1]
    np.testing.assert_allclose(diag["cka"], cka.diagonal, rtol=1e-9)
    row = df[(df["semantic_layer"] == "a") & (df["classic_layer"] == "c")].iloc[0]
    assert row["cka"] == pytest.approx(cka.semantic_vs_spatial[0, 2], rel=1e-9)
    assert row["classic_layer_positions"] == 9


def test_agreement_csvs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3))
    rsm = x @ x.T
    proba = rng.dirichlet(np.ones(4), size=5)
    ag = {"classic (spatio-semantic)": A.output_agreement(rsm, proba),
          "semantic": A.output_agreement(rsm + 1, proba)}
    names = list("abcde")
    df = _read(T.agreement_csv(ag, names, labels=list("xxyyz")))
    assert list(df.columns) == ["i", "j", "name_i", "name_j", "label_i", "label_j", "jsd_bits",
                                "similarity_classic_spatio_semantic", "similarity_semantic"]
    assert len(df) == 10 and df.iloc[0][["name_i", "name_j"]].tolist() == ["a", "b"]
    np.testing.assert_allclose(df["jsd_bits"], A.jensen_shannon(proba)[np.triu_indices(5, 1)])
    np.testing.assert_allclose(df["similarity_semantic"], rsm[np.triu_indices(5, 1)] + 1)
    summ = _read(T.agreement_summary_csv(ag))
    assert summ["spearman_r"].tolist() == pytest.approx(
        [a["spearman_r"] for a in ag.values()])
    with pytest.raises(ValueError, match="pairs"):
        T.agreement_csv(ag, names[:4])


def test_matchers_csv():
    table = pd.DataFrame({"matcher": ["exact", "greedy"], "ratio_mean": [1.0, 0.987654321]})
    assert _read(T.matchers_csv(table))["ratio_mean"].tolist() == [1.0, 0.987654321]


def test_pair_matching_csv():
    rng = np.random.default_rng(2)
    a, b = np.maximum(rng.normal(size=(2, 6, 4)), 0)
    ex = A.explain_pair(a, b, "greedy", grid=(2, 3))
    df = _read(T.pair_matching_csv(ex, ("img1", "img2")))
    assert len(df) == 6 and set(df["name_a"]) == {"img1"}
    assert df["position_b"].tolist() == ex.perm.tolist()
    assert df["optimal_position_b"].tolist() == ex.exact_perm.tolist()
    assert (df["row_b"] * 3 + df["col_b"]).tolist() == ex.perm.tolist()
    np.testing.assert_allclose(df["contribution"].sum(), ex.value, rtol=1e-9)
    np.testing.assert_allclose(df["same_position_contribution"].sum(), ex.identity_value,
                               rtol=1e-9)
    best = np.argmax(ex.inner, axis=1)
    assert ((df["candidate_rank"] == 1) == (ex.inner[np.arange(6), ex.perm]
                                            >= ex.inner[np.arange(6), best])).all()


def test_embedding_csv():
    c2, c3 = np.arange(8.0).reshape(4, 2), np.arange(12.0).reshape(4, 3)
    df = _read(T.embedding_csv({"classic (spatio-semantic)": c2, "semantic": c3},
                               ["p", "q", "r", "s"], labels=[1, 1, 2, 2],
                               methods={"classic (spatio-semantic)": "umap", "semantic": "pca"}))
    assert list(df.columns) == ["index", "name", "label", "classic_spatio_semantic_umap_x",
                                "classic_spatio_semantic_umap_y", "semantic_pca_x",
                                "semantic_pca_y", "semantic_pca_z"]
    assert df["semantic_pca_z"].tolist() == [2.0, 5.0, 8.0, 11.0]
    with pytest.raises(ValueError, match="shape"):
        T.embedding_csv({"m": c2[:3]}, ["p", "q", "r", "s"])


def test_same_representation():
    from semrsm.explorer import ExplorerConfig
    from semrsm.explorer.comparison import same_representation

    a = ExplorerConfig(model="demo-resnet", layer="layer3")
    assert same_representation(a, a.replace(images="photos", kernel="rbf", device="cpu"))
    assert not same_representation(a, a.replace(layer="layer4"))
    assert not same_representation(a, a.replace(weights="none"))
    assert not same_representation(a, a.replace(model="demo-vit"))
    r = ExplorerConfig(model="resnet18", layer="layer1")
    # a timm model's "default" weights are its seeded random init, i.e. "none"
    assert same_representation(r, r.replace(weights="none"))
    assert not same_representation(r, r.replace(weights="pretrained"))
    f = r.replace(weights="file", checkpoint="/x/a.pt")
    assert same_representation(f, r.replace(checkpoint="/x/a.pt"))
    assert not same_representation(f, f.replace(checkpoint="/x/b.pt"))
