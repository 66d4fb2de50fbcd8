"""Semantic search: pooled top-K candidates re-ranked semantically, in this process and on a
real local Ray cluster (a head and two workers on 127.0.0.1); the library, the CLI, and the
agreement of the re-ranked scores with the full semantic RSM (the same bits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import semrsm
from semrsm.__main__ import main
from semrsm.analysis import nearest_neighbours
from semrsm.scale.search import GalleryIndex, pooled_embeddings
from tests.ray_cluster import local_cluster  # Ray's environment, before ray

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def gallery() -> np.ndarray:
    g = np.random.default_rng(11)
    return np.maximum(g.normal(size=(20, 16, 8)), 0.0).astype(np.float32)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    torch.set_num_threads(2)
    with local_cluster(workers=2) as (c, nodes):
        yield c, nodes


def test_pooled_ranking_is_the_cosine_of_mean_tokens(gallery):
    q = gallery[:3] + 0.05
    res = semrsm.search(gallery, q, k=4, rerank=6)
    pg = gallery.mean(axis=1).astype(np.float64)
    pq = q.mean(axis=1).astype(np.float64)
    cos = (pq / np.linalg.norm(pq, axis=1, keepdims=True)) @ (pg / np.linalg.norm(pg, axis=1, keepdims=True)).T
    for i in range(3):
        assert res.pooled_indices[i].tolist() == np.argsort(-cos[i], kind="stable")[:4].tolist()
        np.testing.assert_allclose(res.pooled_scores[i], cos[i][res.pooled_indices[i]], rtol=1e-5)
    assert res.candidates.shape == (3, 6) and res.pairs == 18
    assert res.indices.shape == res.scores.shape == (3, 4)
    assert set(res.indices[0]) <= set(res.candidates[0])
    assert np.all(np.diff(res.scores, axis=1) <= 0)


@pytest.mark.parametrize("kernel", ["cosine", "linear"])
@pytest.mark.parametrize("matcher", ["exact", "batch_optimal"])
def test_reranking_everything_is_the_full_semantic_ranking(gallery, kernel, matcher):
    full = semrsm.semantic_rsm(gallery, kernel=kernel, matcher=matcher)
    res = semrsm.search(gallery, k=5, rerank=len(gallery) - 1, matcher=matcher, kernel=kernel)
    for q in range(len(gallery)):
        idx, sims = nearest_neighbours(full, q, 5)
        assert res.indices[q].tolist() == idx.tolist()
        assert np.array_equal(res.scores[q], sims)  # the same bits as the RSM's entries
        assert q not in res.candidates[q]  # a query never finds itself


def test_separate_queries_match_semantic_block(gallery):
    q = np.roll(gallery[:4], 3, axis=1)  # the same content, moved
    res = semrsm.search(gallery, q, k=3, rerank=7, kernel="rbf")
    block = semrsm.semantic_block(q, gallery, kernel="linear")
    sq_q = (q.astype(np.float64) ** 2).sum(axis=(1, 2))
    sq_g = (gallery.astype(np.float64) ** 2).sum(axis=(1, 2))
    d2 = np.maximum(sq_q[:, None] + sq_g[res.candidates] - 2 * np.take_along_axis(block, res.candidates, 1), 0)
    assert res.sigma2 == pytest.approx(np.median(d2[d2 > 0]))
    np.testing.assert_allclose(res.candidate_scores, np.exp(-d2 / (2 * res.sigma2)), rtol=1e-9)
    # moved copies of gallery images: the semantic top-1 is the original
    assert res.indices[:, 0].tolist() == [0, 1, 2, 3]


def test_queries_from_the_gallery_leave_themselves_out(gallery):
    every = semrsm.search(gallery, k=4, rerank=8)
    some = semrsm.search(gallery, gallery[3:5], k=4, rerank=8, exclude=[3, 4])
    assert np.array_equal(some.indices, every.indices[3:5])
    assert np.array_equal(some.scores, every.scores[3:5])
    mixed = semrsm.search(gallery, gallery[3:5], k=4, rerank=8, exclude=[3, -1])
    assert 3 not in mixed.candidates[0] and mixed.indices[1, 0] == 4  # finds itself
    with pytest.raises(ValueError, match="exclude"):
        semrsm.search(gallery, gallery[3:5], exclude=[3])


def test_a_gallery_index_serves_many_searches(gallery):
    index = GalleryIndex(gallery)
    a = semrsm.search(index, gallery[5:7], k=2, rerank=4)
    b = semrsm.search(gallery, gallery[5:7], k=2, rerank=4)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert torch.allclose(index.pooled, pooled_embeddings(index.tokens))
    assert a.index == "torch"


def test_faiss_gives_the_same_pooled_ranking(gallery):
    pytest.importorskip("faiss")
    for queries in (None, gallery[:4] + 0.03):
        a = semrsm.search(gallery, queries, k=3, rerank=5, index="faiss")
        b = semrsm.search(gallery, queries, k=3, rerank=5, index="torch")
        assert a.index == "faiss" and np.array_equal(a.candidates, b.candidates)
        np.testing.assert_allclose(a.pooled_scores, b.pooled_scores, rtol=1e-5)


def test_bad_arguments(gallery):
    with pytest.raises(ValueError, match="rerank"):
        semrsm.search(gallery, k=5, rerank=3)
    with pytest.raises(ValueError, match="k: must be"):
        semrsm.search(gallery, k=0)
    with pytest.raises(ValueError, match="same model"):
        semrsm.search(gallery, gallery[:2, :, :4])
    with pytest.raises(ValueError, match="one image"):
        semrsm.search(gallery[:1])
    with pytest.raises(ValueError, match="index"):
        semrsm.search(gallery, index="annoy")
    if not _has("faiss"):
        with pytest.raises(ValueError, match="faiss is not installed"):
            semrsm.search(gallery, index="faiss")
    small = semrsm.search(gallery[:4], k=10, rerank=50)  # clipped to the gallery
    assert (small.k, small.rerank) == (3, 3)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_cli_search_on_tokens(gallery, tmp_path, capsys):
    np.save(tmp_path / "g.npy", gallery)
    np.save(tmp_path / "q.npy", gallery[:2] + 0.01)
    out = tmp_path / "hits.csv"
    assert main(["search", "--gallery", str(tmp_path / "g.npy"), "--queries",
                 str(tmp_path / "q.npy"), "--k", "3", "--rerank", "6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 queries against 20 images (tokens)" in text and "semantic: g[0]" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "query,rank,pooled_image,pooled_score,semantic_image,semantic_score"
    assert len(rows) == 1 + 2 * 3
    assert main(["search", "--gallery", str(tmp_path / "g.npy"), "--k", "5", "--rerank", "2"]) == 2
    assert "--rerank (2) must be at least --k (5)" in capsys.readouterr().err


def test_cli_search_with_the_demo_model(tmp_path, capsys):
    assert main(["search", "--gallery", "shapes:12", "--queries", "shapes:2:1", "--seed", "3",
                 "--k", "2", "--rerank", "4", "--layer", "layer3"]) == 0
    text = capsys.readouterr().out
    assert "2 queries against 12 images (demo-resnet layer3)" in text


@pytest.mark.parametrize("matcher", ["exact", "batch_optimal"])
def test_reranking_on_ray_equals_this_process(cluster, gallery, matcher):
    local = semrsm.search(gallery, k=4, rerank=9, matcher=matcher)
    on_ray = semrsm.search(gallery, k=4, rerank=9, matcher=matcher, ray=True)
    for name in ("indices", "scores", "pooled_indices", "candidates", "candidate_scores"):
        assert np.array_equal(getattr(local, name), getattr(on_ray, name)), name
    q = gallery[:3] + 0.02
    a = semrsm.search(gallery, q, k=2, rerank=5, matcher=matcher)
    b = semrsm.search(gallery, q, k=2, rerank=5, matcher=matcher, ray=True)
    assert np.array_equal(a.candidate_scores, b.candidate_scores)


def test_search_on_ray_without_resources_is_a_clear_error(cluster, gallery):
    with pytest.raises(ValueError, match="1 GPU"):
        semrsm.search(gallery, k=2, rerank=3, ray=True, device="cuda", resource_timeout=1)
