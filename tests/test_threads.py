"""The app serves each browser session from its own thread: concurrent RSM calls must work."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import semrsm


def test_concurrent_semantic_rsm_calls_agree(rng):
    feats = [rng.random((6, 16, 8)) for _ in range(4)]
    expected = [semrsm.semantic_rsm(f) for f in feats]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda f: semrsm.semantic_rsm(f, chunk_pairs=3), feats * 2))
    for k, r in enumerate(got):
        np.testing.assert_allclose(r, expected[k % 4], rtol=1e-12)
