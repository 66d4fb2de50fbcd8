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
        embed_rsm(np.eye(3), method="tsne")
    with pytest.raises(ValueError, match="square"):
        embed_rsm(np.ones((2, 3)))
