"""Rectangular blocks and tiles: the same per-chunk code as the square RSM, the same bits.

Products of a pair are bit-identical whether cut from the square RSM's GEMM tiles, a block's
or a list of pairs; so a block of A × B, a tiled RSM (in this process) and the square RSM
agree entry for entry with ``==``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import semrsm
from semrsm.blocks import all_pairs, cost_chunks
from semrsm.cache import CacheWarning
from semrsm.costs import iter_cost_blocks, iter_cost_pair_list
from semrsm.scale.tiles import Tile, place_tile, plan_tiles

KERNELS = ["linear", "cosine", "rbf"]


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    g = np.random.default_rng(3)
    return np.maximum(g.normal(size=(13, 16, 8)), 0.0).astype(np.float32)


@pytest.mark.parametrize("na,nb,s,chunk", [(1, 1, 5, None), (3, 7, 4, 2), (9, 4, 49, None), (5, 6, 130, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_block_costs_cover_every_pair_once_bit_for_bit(na, nb, s, chunk, dtype):
    g = torch.Generator().manual_seed(na * nb * s)
    a = torch.relu(torch.randn(na, s, 8, generator=g, dtype=dtype))
    b = torch.relu(torch.randn(nb, s, 8, generator=g, dtype=dtype))
    seen = np.zeros((na, nb), dtype=int)
    for rows, cols, costs in iter_cost_blocks(a, b, chunk):
        assert costs.dtype == np.float64 and costs.flags.c_contiguous
        assert chunk is None or len(rows) <= chunk
        seen[rows, cols] += 1
        for k in range(len(rows)):
            ai, bi = a[rows[k]], b[cols[k]]
            # float32: a GEMM tile's pair equals the pair alone; float64: one bmm per pair
            ref = (ai @ bi.T) if dtype == torch.float32 else torch.bmm(ai[None], bi.T[None])[0]
            assert np.array_equal(costs[k], ref.double().numpy())
    assert (seen == 1).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pair_list_costs_equal_block_costs(cnn_tokens, dtype):
    t = torch.from_numpy(cnn_tokens).to(dtype)
    a, b = t[:3], t[3:]
    pairs = np.array([[2, 0], [2, 4], [0, 1], [0, 3], [0, 0], [1, 4]])
    got = {}
    for rows, cols, costs in iter_cost_pair_list(a, b, pairs, chunk_pairs=4):
        for k in range(len(rows)):
            got[(rows[k], cols[k])] = costs[k]
    assert sorted(got) == sorted(map(tuple, pairs))
    for rows, cols, costs in iter_cost_blocks(a, b):
        for k in range(len(rows)):
            if (rows[k], cols[k]) in got:
                assert np.array_equal(got[(rows[k], cols[k])], costs[k])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cost_chunks_modes_agree(cnn_tokens, dtype):
    t = torch.from_numpy(cnn_tokens).to(dtype)
    square = {(r, c): m for rr, cc, cs in cost_chunks(t) for r, c, m in zip(rr, cc, cs, strict=True)}
    assert len(square) == len(t) * (len(t) - 1) // 2
    block = {(r, c + 4): m for rr, cc, cs in cost_chunks(t[:4], t[4:])
             for r, c, m in zip(rr, cc, cs, strict=True)}
    assert len(block) == 4 * (len(t) - 4)
    for key, m in block.items():
        assert np.array_equal(square[key], m)


@pytest.mark.parametrize("matcher,params", [("exact", {}), ("batch_optimal", {"window": 4}),
                                            ("topk_greedy", {"k": 3}), ("greedy", {})])
def test_block_equals_square_rsm_entries(tokens, matcher, params):
    full = semrsm.semantic_rsm(tokens, kernel=KERNELS, matcher=matcher, return_result=True, **params)
    res = semrsm.semantic_block(tokens[:5], tokens[5:], kernel=KERNELS, matcher=matcher,
                                return_result=True, sigma2=full.sigma2["rbf"], **params)
    assert np.array_equal(res.inner, full.inner[:5, 5:])
    for k in KERNELS:
        assert np.array_equal(res.rsm[k], full.rsm[k][:5, 5:]), k


def test_block_matchings_reproduce_values(tokens):
    res = semrsm.semantic_block(tokens[:3], tokens[3:7], kernel="linear", return_matchings=True)
    assert res.perms.shape == (3, 4, 16)
    for a in range(3):
        for b in range(4):
            v = float((tokens[a].astype(np.float64) * tokens[3 + b][res.perms[a, b]]).sum())
            assert v == pytest.approx(res.inner[a, b], rel=1e-6)


def test_block_progress_rbf_and_errors(tokens):
    calls = []
    out = semrsm.semantic_block(tokens[:2], tokens[2:5], kernel="rbf", chunk_pairs=2,
                                progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (2, 3) and np.all((out > 0) & (out <= 1))
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    with pytest.raises(ValueError, match="same model"):
        semrsm.semantic_block(tokens[:2], tokens[:2, :8])
    with pytest.raises(ValueError, match="kernel"):
        semrsm.semantic_block(tokens[:2], tokens[2:4], kernel="nope")


def test_all_pairs_order():
    assert all_pairs(2, 3).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_plan_tiles_cover_the_upper_triangle_once():
    for n, b in [(1, 1), (7, 3), (12, 4), (5, 9)]:
        tiles = plan_tiles(n, b)
        k = -(-n // b)
        assert len(tiles) == k * (k + 1) // 2
        assert sum(t.pairs for t in tiles) == n * (n - 1) // 2
        seen = np.zeros((n, n), dtype=int)
        for t in tiles:
            assert t.i0 <= t.j0
            block = np.ones(t.shape)
            place_tile(seen, t, block)
        assert (seen[~np.eye(n, dtype=bool)] == 1).all()
    with pytest.raises(ValueError, match="tile"):
        plan_tiles(5, 0)
    with pytest.raises(ValueError, match="shape"):
        place_tile(np.zeros((4, 4)), Tile(0, 2, 2, 4), np.zeros((3, 2)))


@pytest.mark.parametrize("matcher", ["exact", "batch_optimal"])
@pytest.mark.parametrize("tile", [1, 4, 5, 13])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiled_in_process_equals_semantic_rsm(tokens, matcher, tile, dtype):
    tokens = tokens.astype(dtype)
    ref = semrsm.semantic_rsm(tokens, kernel=KERNELS, matcher=matcher, return_result=True)
    res = semrsm.tiled_semantic_rsm(tokens, kernel=KERNELS, matcher=matcher, tile=tile,
                                    return_result=True)
    assert np.array_equal(res.inner, ref.inner)
    for k in KERNELS:
        assert np.array_equal(res.rsm[k], ref.rsm[k]), k
    assert res.sigma2 == ref.sigma2
    assert res.executor == "local" and res.tiles_computed == res.tiles_total


def test_tiled_resumes_from_the_store(tokens, tmp_path):
    ref = semrsm.semantic_rsm(tokens, kernel="cosine")
    seen = []

    def stop_after_three(p):
        seen.append(p)
        if p.tiles_done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        semrsm.tiled_semantic_rsm(tokens, tile=4, store=tmp_path, progress=stop_after_three)
    assert seen[0].tiles_done == 0 and seen[0].tiles_total == 10 and seen[0].tile is None
    res = semrsm.tiled_semantic_rsm(tokens, tile=4, store=tmp_path, return_result=True)
    assert (res.tiles_reused, res.tiles_computed) == (3, 7)
    assert np.array_equal(res.rsm, ref)
    again = semrsm.tiled_semantic_rsm(tokens, tile=4, store=tmp_path, return_result=True)
    assert (again.tiles_reused, again.tiles_computed, again.pairs_computed) == (10, 0, 0)
    assert np.array_equal(again.rsm, ref)
    # another matcher or other tokens never reuse these tiles
    other = semrsm.tiled_semantic_rsm(tokens, tile=4, store=tmp_path, matcher="greedy",
                                      return_result=True)
    assert other.tiles_reused == 0
    other = semrsm.tiled_semantic_rsm(tokens[::-1].copy(), tile=4, store=tmp_path, return_result=True)
    assert other.tiles_reused == 0


def test_a_corrupted_tile_is_computed_again(tokens, tmp_path):
    ref = semrsm.semantic_rsm(tokens)
    semrsm.tiled_semantic_rsm(tokens, tile=7, store=tmp_path)
    files = sorted((tmp_path / "entries").glob("*/*.npz"))
    assert len(files) == 3
    files[0].write_bytes(files[0].read_bytes()[:100])  # torn
    with pytest.warns(CacheWarning, match="damaged"):
        res = semrsm.tiled_semantic_rsm(tokens, tile=7, store=tmp_path, return_result=True)
    assert (res.tiles_reused, res.tiles_computed) == (2, 1)
    assert np.array_equal(res.rsm, ref)


def test_tiled_progress_counts_pairs(tokens):
    seen = []
    semrsm.tiled_semantic_rsm(tokens, tile=5, progress=seen.append)
    assert [p.tiles_done for p in seen] == list(range(7))
    assert seen[-1].pairs_done == seen[-1].pairs_total == 13 * 12 // 2
    assert seen[-1].eta_s == 0.0 and seen[-1].pairs_per_s > 0


def test_tiled_bad_arguments(tokens):
    with pytest.raises(ValueError, match="tile"):
        semrsm.tiled_semantic_rsm(tokens, tile=0)
    with pytest.raises(ValueError, match="matcher"):
        semrsm.tiled_semantic_rsm(tokens, matcher="nope")
    with pytest.raises(ValueError, match="NaN"):
        semrsm.tiled_semantic_rsm(np.full((3, 4, 2), np.nan))


def test_cli_tiles_in_this_process_and_keeps_no_tiles(tokens, tmp_path, capsys):
    from semrsm.__main__ import main

    np.save(tmp_path / "t.npy", tokens)
    out = tmp_path / "o.npz"
    assert main(["rsm", "--tokens", str(tmp_path / "t.npy"), "--out", str(out), "--kernel",
                 "rbf", "--matcher", "batch_optimal", "--window", "4", "--tile", "5"]) == 0
    err = capsys.readouterr().err
    assert "tiles: 6 computed in this process (1 at once, cpu), 0 reused, 6 in all" in err
    assert "6/6 tiles" in err
    with np.load(out) as f:
        ref = semrsm.semantic_rsm(tokens, kernel="rbf", matcher="batch_optimal", window=4)
        assert np.array_equal(f["semantic"], ref)
    assert not (tmp_path / "o.tiles").exists()
    assert main(["rsm", "--tokens", str(tmp_path / "t.npy"), "--out", str(out), "--tile", "0"]) == 2
    assert "--tile: images per tile side must be at least 1" in capsys.readouterr().err


def test_memory_budgets_are_checked_before_anything_runs(tokens):
    from semrsm.memory import MemoryLimitError

    with pytest.raises(MemoryLimitError, match="semantic_block of 5 × 8 images"):
        semrsm.semantic_block(tokens[:5], tokens[5:], max_memory=10_000)
    # refused before the (unreachable) cluster is contacted
    with pytest.raises(MemoryLimitError, match="tiled_semantic_rsm of N = 13 images"):
        semrsm.tiled_semantic_rsm(tokens, ray="127.0.0.1:1", max_memory=10_000)
    with pytest.raises(ValueError, match="sigma2"):
        semrsm.tiled_semantic_rsm(tokens, kernel="rbf", sigma2=-1.0)
    with pytest.raises(ValueError, match="chunk_pairs"):
        semrsm.semantic_block(tokens[:2], tokens[2:4], chunk_pairs=1.5)
