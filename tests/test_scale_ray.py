"""Tiled semantic RSMs on a real local Ray cluster (a head and two workers on 127.0.0.1):
bit-identical to the single-process RSM, a worker node killed mid-run changes nothing,
an interrupted run resumes with only the missing tiles, bad addresses and clusters
without the resources a tile needs are clear errors, and ``import semrsm`` does not
import ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import semrsm
from semrsm.__main__ import main
from tests.ray_cluster import LOOPBACK, ROOT, local_cluster  # Ray's environment, before ray

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(180)

KERNELS = ["linear", "cosine", "rbf"]


@pytest.fixture(scope="module")
def cluster():
    torch.set_num_threads(2)
    with local_cluster(workers=2) as (c, nodes):
        yield c, nodes


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    g = np.random.default_rng(7)
    return np.maximum(g.normal(size=(14, 16, 8)), 0.0).astype(np.float32)


@pytest.mark.parametrize("matcher,params", [("exact", {}), ("batch_optimal", {"window": 4})])
def test_ray_tiles_equal_the_single_process_rsm(cluster, tokens, matcher, params):
    ref = semrsm.semantic_rsm(tokens, kernel=KERNELS, matcher=matcher, return_result=True, **params)
    res = semrsm.tiled_semantic_rsm(tokens, kernel=KERNELS, matcher=matcher, tile=5, ray=True,
                                    return_result=True, **params)
    assert res.executor == "ray" and res.workers == 3 and res.device_kind == "cpu"
    assert res.tiles_total == res.tiles_computed == 6
    assert np.array_equal(res.inner, ref.inner)
    for k in KERNELS:
        assert np.array_equal(res.rsm[k], ref.rsm[k]), k
    assert res.sigma2 == ref.sigma2


def test_an_interrupted_run_resumes_with_the_missing_tiles_only(cluster, tokens, tmp_path):
    ref = semrsm.semantic_rsm(tokens, kernel="rbf")

    def stop(p):
        if p.tiles_done == 4:
            raise KeyboardInterrupt  # as Ctrl-C would

    with pytest.raises(KeyboardInterrupt):
        semrsm.tiled_semantic_rsm(tokens, kernel="rbf", tile=4, ray=True, store=tmp_path,
                                  progress=stop)
    res = semrsm.tiled_semantic_rsm(tokens, kernel="rbf", tile=4, ray=True, store=tmp_path,
                                    return_result=True)
    assert (res.tiles_total, res.tiles_reused, res.tiles_computed) == (10, 4, 6)
    assert np.array_equal(res.rsm, ref)


def test_cli_runs_tiles_on_the_cluster_and_resumes(cluster, tokens, tmp_path, capsys):
    c, _ = cluster
    np.save(tmp_path / "t.npy", tokens)
    out = tmp_path / "out.npz"
    argv = ["rsm", "--tokens", str(tmp_path / "t.npy"), "--out", str(out), "--kernel", "cosine",
            "--ray", c.address, "--tile", "6", "--keep-tiles"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "3/3 tiles" not in err or "tiles: " in err
    assert "tiles: 6 computed on Ray (3 at once, cpu), 0 reused" in err
    with np.load(out) as f:
        assert np.array_equal(f["semantic"], semrsm.semantic_rsm(tokens))
        meta = json.loads(str(f["meta"]))
    assert meta["tile"] == 6 and meta["ray"] is True
    assert (tmp_path / "out.tiles").is_dir()
    assert main(argv[:-1]) == 0  # everything from the store; the tile folder is removed
    assert "0 computed on Ray (3 at once, cpu), 6 reused" in capsys.readouterr().err
    assert not (tmp_path / "out.tiles").exists()


def test_a_bad_address_is_a_clear_error_quickly(tokens, tmp_path, capsys):
    np.save(tmp_path / "t.npy", tokens)
    t0 = time.monotonic()
    code = main(["rsm", "--tokens", str(tmp_path / "t.npy"), "--out", str(tmp_path / "o.npz"),
                 "--ray", f"{LOOPBACK}:1", "--tile", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: ray: cannot reach a Ray cluster at '127.0.0.1:1'" in err
    assert time.monotonic() - t0 < 15
    for bad in ("no-port", "host:99999", "ray://:12"):
        with pytest.raises(ValueError, match="host:port"):
            semrsm.tiled_semantic_rsm(tokens, ray=bad)
    assert not (tmp_path / "o.npz").exists()


def test_a_cluster_without_the_resources_is_a_clear_error(cluster, tokens):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"no node of the cluster .* has 1 CPU and 1 GPU"):
        semrsm.tiled_semantic_rsm(tokens, ray=True, device="cuda", resource_timeout=1)
    with pytest.raises(ValueError, match="has 4 CPU"):
        semrsm.tiled_semantic_rsm(tokens, ray=True, cpus_per_tile=4, resource_timeout=1)
    with pytest.raises(ValueError, match="CPUs and GPUs per task are both 0"):
        semrsm.tiled_semantic_rsm(tokens, ray=True, cpus_per_tile=0)
    assert time.monotonic() - t0 < 20
    # a connected cluster is not replaced by another address
    with pytest.raises(ValueError, match="already connected"):
        semrsm.tiled_semantic_rsm(tokens, ray="local")


def test_import_semrsm_and_its_api_do_not_import_ray():
    code = (
        "import sys, numpy as np, semrsm\n"
        "t = np.abs(np.random.default_rng(0).normal(size=(6, 4, 3))).astype('float32')\n"
        "semrsm.semantic_block(t[:2], t[2:]); semrsm.tiled_semantic_rsm(t, tile=4)\n"
        "semrsm.search(t, k=2, rerank=3); semrsm.TiledResult; semrsm.SearchResult\n"
        "import semrsm.scale.tiled, semrsm.scale.search, semrsm.scale.cli, semrsm.__main__\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_a_worker_node_killed_mid_run_changes_nothing(cluster, tokens):
    # last in this module: the cluster keeps one worker fewer afterwards
    c, nodes = cluster
    ref = semrsm.semantic_rsm(tokens, kernel=KERNELS, return_result=True)
    killed = []

    def kill_after_first_tile(p):
        if p.tile is not None and not killed:
            c.remove_node(nodes[1])
            killed.append(p.tiles_done)

    res = semrsm.tiled_semantic_rsm(tokens, kernel=KERNELS, tile=3, ray=True,
                                    progress=kill_after_first_tile, return_result=True)
    assert killed == [1]
    assert res.tiles_computed == res.tiles_total == 15
    assert np.array_equal(res.inner, ref.inner)
    for k in KERNELS:
        assert np.array_equal(res.rsm[k], ref.rsm[k]), k
