"""2-D maps from RSMs: distances, classical MDS fallback, UMAP determinism."""

from __future__ import annotations

import numpy as np
import pytest

from semrsm.embedding import MIN_UMAP_POINTS, classical_mds, embed_rsm, rsm_to_distances


def _cosine_rsm(x: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def test_distances_linear_and_cosine(rng):
    x = rng.normal(size=(6, 4))
    lin = x @ x.T
    d = rsm_to_distances(lin, "linear")
    expected = np.linalg.norm(x[:, None] - x[None], axis=2)
    np.testing.assert_allclose(d, expected, atol=1e-9)
    cos = _cosine_rsm(x)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(
        rsm_to_distances(cos, "cosine"), np.linalg.norm(u[:, None] - u[None], axis=2), atol=1e-7
    )
    with pytest.raises(ValueError, match="positive diagonal"):
        rsm_to_distances(np.zeros((3, 3)), "cosine")
    with pytest.raises(ValueError, match="unknown kernel"):
        rsm_to_distances(lin, "poly")


def test_classical_mds_recovers_planar_configuration(rng):
    pts = rng.normal(size=(8, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    emb = classical_mds(d)
    # pairwise distances are reproduced exactly (up to rotation/reflection)
    np.testing.assert_allclose(np.linalg.norm(emb[:, None] - emb[None], axis=2), d, atol=1e-9)


def test_small_sets_use_mds_fallback(rng):
    rsm = _cosine_rsm(rng.normal(size=(MIN_UMAP_POINTS - 1, 5)))
    e = embed_rsm(rsm, "cosine")
    assert e.method == "mds" and e.coords.shape == (MIN_UMAP_POINTS - 1, 2)
    assert "MDS" in e.note and "sqrt(2 - 2 s_ij)" in e.note
    np.testing.assert_array_equal(e.coords, embed_rsm(rsm, "cosine").coords)
    one = embed_rsm(np.ones((1, 1)), "cosine")
    assert one.coords.shape == (1, 2) and np.all(one.coords == 0)
    two = embed_rsm(np.array([[1.0, 0.2], [0.2, 1.0]]), "cosine")
    assert np.linalg.norm(two.coords[0] - two.coords[1]) == pytest.approx(np.sqrt(1.6))


def test_umap_is_deterministic_and_separates_clusters(rng):
    centres = rng.normal(size=(2, 6)) * 4
    x = np.concatenate(
        [centres[0] + rng.normal(size=(12, 6)), centres[1] + rng.normal(size=(12, 6))]
    )
    rsm = _cosine_rsm(x)
    e1 = embed_rsm(rsm, "cosine", seed=3)
    e2 = embed_rsm(rsm, "cosine", seed=3)
    assert e1.method == "umap" and e1.coords.shape == (24, 2)
    np.testing.assert_array_equal(e1.coords, e2.coords)
    c = e1.coords
    within = max(np.ptp(c[:12], axis=0).max(), np.ptp(c[12:], axis=0).max())
    between = np.linalg.norm(c[:12].mean(0) - c[12:].mean(0))
    assert between > within  # the two groups land apart


def test_embed_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        embed_rsm(np.eye(3), method="isomap")
    with pytest.raises(ValueError, match="square"):
        embed_rsm(np.ones((2, 3)))


# --------------------------------------------------------------------------- projector


def test_pca_tsne_mds_and_3d(rng):
    from semrsm.embedding import classical_mds

    centres = rng.normal(size=(2, 6)) * 4
    x = np.concatenate([centres[0] + rng.normal(size=(10, 6)), centres[1] + rng.normal(size=(10, 6))])
    lin = x @ x.T
    pca = embed_rsm(lin, "linear", method="pca")
    xc = x - x.mean(0)
    proj = xc @ np.linalg.svd(xc, full_matrices=False)[2][:2].T
    # kernel PCA of the linear RSM is PCA of the features (up to the sign of each axis)
    np.testing.assert_allclose(np.abs(pca.coords), np.abs(proj), atol=1e-8)
    np.testing.assert_allclose(pca.coords, classical_mds(rsm_to_distances(lin, "linear")))
    rsm = _cosine_rsm(x)
    for method in ("tsne", "mds", "pca"):  # UMAP: test_umap_is_deterministic_and_separates_clusters
        e = embed_rsm(rsm, "cosine", method=method, seed=1)
        assert e.method == method and e.coords.shape == (20, 2)
        np.testing.assert_array_equal(e.coords, embed_rsm(rsm, "cosine", method=method, seed=1).coords)
        c = e.coords
        between = np.linalg.norm(c[:10].mean(0) - c[10:].mean(0))
        within = max(np.linalg.norm(c[:10] - c[:10].mean(0), axis=1).max(),
                     np.linalg.norm(c[10:] - c[10:].mean(0), axis=1).max())
        assert between > within, method
    for method in ("tsne", "pca", "mds"):
        assert embed_rsm(rsm, "cosine", method=method, n_components=3).coords.shape == (20, 3)
    with pytest.raises(ValueError, match="n_components"):
        embed_rsm(rsm, n_components=4)
    # metric MDS keeps Euclidean distances it can (a planar configuration: exactly)
    pts = rng.normal(size=(7, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    e = embed_rsm(-0.5 * d**2, "linear", method="mds")
    np.testing.assert_allclose(np.linalg.norm(e.coords[:, None] - e.coords[None], axis=2), d,
                               atol=1e-6)


def test_search_and_neighbour_lines():
    from semrsm.embedding import neighbour_lines, search_images

    names = ["shape_0001_star", "shape_0002_disc", "photo_cat"]
    labels = ["star", "disc", "cat"]
    assert search_images("STAR", names, labels) == [0]
    assert search_images("disc, cat", names, labels) == [1, 2]
    assert search_images("  ", names, labels) == []
    assert search_images("cat", names, None) == [2]
    rsm = np.array([[1, 0.2, 0.9], [0.2, 1, 0.5], [0.9, 0.5, 1.0]])
    assert neighbour_lines(rsm, 0, 2) == [2, 1]
    assert neighbour_lines(rsm, 1, 5) == [2, 0]


def test_projector_figure_dots_above_thumbnails_search_classes_lines(rng):
    from PIL import Image

    from semrsm.figures.embedding import embedding_figure

    coords = {"classic": rng.normal(size=(6, 2)), "semantic": rng.normal(size=(6, 2))}
    thumbs = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(6)]
    names = [f"im{i}" for i in range(6)]
    fig = embedding_figure(coords, names, list("aabbcc"), thumbnails=thumbs, selected=0,
                           highlight=[2, 3], hidden=["c"],
                           neighbours={"classic": [1, 2], "semantic": [3]})
    # thumbnails of shown images only, all under the traces, on a transparent plot area
    assert len(fig.layout.images) == 8 and {im.layer for im in fig.layout.images} == {"below"}
    assert fig.layout.plot_bgcolor == "rgba(0,0,0,0)"
    dots = [tr for tr in fig.data if tr.name in {"a", "b", "c"}]
    assert {tr.name for tr in dots} == {"a", "b"}  # class c hidden
    assert sorted(i for tr in dots[:2] for i in tr.customdata) == [0, 1, 2, 3]
    hit = next(tr for tr in dots if tr.name == "b")
    assert list(hit.marker.size) == [16, 16]  # both found images are drawn large
    miss = next(tr for tr in dots if tr.name == "a")
    assert miss.marker.opacity == 0.25  # no match among them: faded
    lines = [tr for tr in fig.data if tr.name == "nearest neighbours"]
    assert [sum(v is None for v in tr.x) for tr in lines] == [2, 1]
    # lines come before the dots of their panel: dots are drawn on top
    assert list(fig.data).index(lines[0]) < list(fig.data).index(dots[0])
    assert fig.layout.meta["highlight"] == 2
    fig3 = embedding_figure({k: rng.normal(size=(6, 3)) for k in coords}, names, list("aabbcc"),
                            thumbnails=thumbs, selected=1, neighbours={"classic": [0]})
    assert fig3.layout.meta["dims"] == 3 and len(fig3.layout.images) == 0
    assert any(tr.type == "scatter3d" for tr in fig3.data)


def test_embedding_page_search_lasso_and_3d(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=300)
    at.session_state["sb_shapes_n"] = 16
    at.run()
    at.switch_page("pages/embedding.py").run()
    at.selectbox(key="emb_method").set_value("pca").run()
    at.text_input(key="emb_search").input("star").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = __import__("json").loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["meta"]["highlight"] >= 1
    assert any("match" in c.value for c in at.caption)
    at.session_state["emb_selected"] = 0
    at.session_state["emb_lasso"] = [1, 2, 3]
    at.toggle(key="emb_3d").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    spec = __import__("json").loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["meta"]["dims"] == 3
    assert any(tr.get("name") == "nearest neighbours" for tr in spec["data"])
    assert any("Lasso selection: 3 images" in h.value for h in at.subheader)
    for w in [*at.selectbox, *at.text_input, *at.multiselect, *at.slider, *at.toggle]:
        if str(w.key or "").startswith("emb_"):
            assert w.help, f"{w.key} has no help text"
