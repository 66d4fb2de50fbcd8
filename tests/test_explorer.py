"""Tests for semrsm.explorer: the backend of the app (cache use, results, errors, estimates).

A randomly initialised demo CNN (``weights="none"``, no file needed) on a dozen shapes
keeps every test fast; the layer ``layer3`` has a 4×4 grid (S = 16).
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import semrsm.explorer as ex
from semrsm.cache import Cache
from semrsm.explorer import (
    ComputeError,
    ExplorerConfig,
    ExplorerError,
    compute,
    describe_pair,
    estimate_seconds,
    layer_rsms,
    load_images,
    plan,
    summarize,
)
from semrsm.kernels import KERNELS
from semrsm.models import ModelError

torch.set_num_threads(2)

CFG = ExplorerConfig(
    model="demo-resnet", weights="none", layer="layer3", images="shapes:12", device="cpu"
)


@pytest.fixture(scope="module")
def model():
    return ex.load_model(CFG)


@pytest.fixture()
def cache(tmp_path):
    return Cache(tmp_path / "cache")


@pytest.fixture()
def counting(monkeypatch):
    """Count calls of the token extraction and of the semantic RSM."""
    import semrsm.layers

    calls = {"extract": 0, "semantic": 0}
    real_extract, real_semantic = semrsm.layers.extract_tokens, ex.semantic_rsm

    def extract(*a, **k):
        calls["extract"] += 1
        return real_extract(*a, **k)

    def semantic(*a, **k):
        calls["semantic"] += 1
        return real_semantic(*a, **k)

    monkeypatch.setattr(semrsm.layers, "extract_tokens", extract)
    monkeypatch.setattr(ex, "semantic_rsm", semantic)
    return calls


def test_result_is_complete_and_consistent(model, cache):
    progress = []
    r = compute(CFG, cache, model=model, progress=lambda *a: progress.append(a))
    n = 12
    assert r.n == n and len(r.thumbnails) == n and r.labels is not None
    assert r.tokens.shape == (n, 16, r.layer.channels) and r.tokens.dtype == np.float32
    assert r.grid == (4, 4) and r.config.layer == "layer3"
    assert set(r.spatial) == set(r.semantic) == set(KERNELS)
    for k in KERNELS:
        a, b = r.spatial[k], r.semantic[k]
        assert a.shape == b.shape == (n, n)
        np.testing.assert_allclose(a, a.T, atol=1e-12)
        if k != "rbf":  # rbf: each RSM has its own median-heuristic bandwidth
            assert np.all(b >= a - 1e-9), k  # the exact matching never loses similarity
    np.testing.assert_allclose(np.diag(r.semantic["cosine"]), 1.0)
    # progress: extraction counts images, matching counts pairs, each ending complete
    stages = {s: (d, t) for s, d, t in progress}
    assert stages["extract"] == (n, n) and stages["match"] == (n * (n - 1) // 2,) * 2
    assert r.proba is not None and r.proba.shape[0] == n
    np.testing.assert_allclose(r.proba.sum(axis=1), 1.0, atol=1e-6)
    assert r.spatial_rsm is r.spatial["cosine"]
    assert r.model_view(0).size == (64, 64)


def test_matching_of_a_pair(model, cache):
    r = compute(CFG, cache, model=model)
    t = r.tokens.astype(np.float64)
    perm, value = r.matching(2, 7)
    assert sorted(perm.tolist()) == list(range(16))
    assert value == pytest.approx(float(np.sum(t[2] * t[7][perm])), rel=1e-6)
    assert value == pytest.approx(r.inner[2, 7])
    back, value_back = r.matching(7, 2)
    np.testing.assert_array_equal(back, np.argsort(perm))
    assert value_back == pytest.approx(value)
    # without stored matchings the pair is matched again, to the same value
    r.perms = None
    perm2, value2 = r.matching(2, 7)
    assert value2 == pytest.approx(value, rel=1e-6)  # float32 products vs float64
    with pytest.raises(ValueError):
        r.matching(0, 12)


def test_second_request_is_served_from_cache(model, cache, counting):
    first = compute(CFG, cache, model=model)
    assert counting == {"extract": 1, "semantic": 1}
    assert first.cache_hits == {"tokens": False, "rsm": False, "proba": False}
    second = compute(CFG, Cache(cache.root), model=model)  # a new session, same folder
    assert counting == {"extract": 1, "semantic": 1}  # nothing ran again
    assert second.cache_hits == {"tokens": True, "rsm": True, "proba": True}
    assert second.timings["total"] < 1.0
    np.testing.assert_array_equal(first.semantic["rbf"], second.semantic["rbf"])
    # the kernel shown is not part of the key: all kernels were computed at once
    third = compute(CFG.replace(kernel="linear"), cache, model=model)
    assert counting["semantic"] == 1 and third.key == first.key
    # another matcher reuses the tokens but matches again
    approx = compute(CFG.replace(matcher="greedy"), cache, model=model)
    assert counting == {"extract": 1, "semantic": 2} and approx.key != first.key


def test_truncated_entries_are_recomputed(model, cache, counting):
    first = compute(CFG, cache, model=model)
    path = cache.path(first.key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    again = compute(CFG, cache, model=model)
    assert counting["semantic"] == 2 and again.cache_hits["rsm"] is False
    np.testing.assert_allclose(again.semantic["cosine"], first.semantic["cosine"])
    assert cache.load(first.key) is not None  # repaired


def test_two_sessions_compute_once(model, cache, counting):
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(compute(CFG, Cache(cache.root), model=model))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and counting["semantic"] == 1 and counting["extract"] == 1
    np.testing.assert_array_equal(results[0].semantic["cosine"], results[1].semantic["cosine"])


def test_keys_follow_the_content(model, cache):
    base = plan(CFG, cache, model=model, measure_forward=False)
    other_seed = plan(CFG.replace(seed=1), cache, model=model, measure_forward=False)
    other_layer = plan(CFG.replace(layer="layer2"), cache, model=model, measure_forward=False)
    other_params = plan(
        CFG.replace(matcher="batch_optimal", matcher_params=(("window", 4),)),
        cache,
        model=model,
        measure_forward=False,
    )
    assert base.digest != other_seed.digest and base.tokens_key != other_seed.tokens_key
    assert base.tokens_key != other_layer.tokens_key
    assert base.tokens_key == other_params.tokens_key and base.rsm_key != other_params.rsm_key
    default = plan(CFG.replace(layer=None), cache, model=model, measure_forward=False)
    assert default.layer.name == "layer3"  # deepest layer with 16..256 positions


def test_bad_configurations_say_what_to_change(model, cache, monkeypatch, tmp_path):
    with pytest.raises(ExplorerError, match="layer 'nope' does not exist"):
        compute(CFG.replace(layer="nope"), cache, model=model)
    with pytest.raises(ExplorerError, match="kernel"):
        CFG.replace(kernel="poly").validate()
    with pytest.raises(ExplorerError, match="window"):
        CFG.replace(matcher="greedy", matcher_params=(("window", 3),)).validate()
    with pytest.raises(ExplorerError, match="upload"):
        CFG.replace(images="uploads").validate()
    monkeypatch.delenv(ex.DATA_ROOT_ENV, raising=False)
    with pytest.raises(ExplorerError, match="SEMRSM_DATA_ROOT"):
        load_images(CFG.replace(images="folder:."), cache)
    with pytest.raises(ExplorerError, match="not built in"):
        load_images(CFG.replace(images=str(tmp_path)), cache)  # no arbitrary server paths
    with pytest.raises(ModelError):
        ex.load_model(CFG.replace(model="no_such_model_xyz"))
    if not torch.cuda.is_available():
        with pytest.raises(ExplorerError, match="GPU"):
            ex.resolve_device("cuda")


def _png(color, size=(40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_with_a_corrupt_file(model, cache):
    files = [
        ("cat_1.png", _png((200, 10, 10))),
        ("cat_2.png", _png((190, 20, 10))),
        ("dog_1.png", _png((10, 10, 200))),
        ("broken.png", b"\x89PNG\r\n\x1a\nnot really"),
    ]
    uploads = tuple((name, cache.uploads.store(name, data)) for name, data in files)
    cfg = CFG.replace(images="uploads", uploads=uploads)
    r = compute(cfg, cache, model=model)
    assert r.names == ["cat_1.png", "cat_2.png", "dog_1.png"]
    assert [name for name, _ in r.skipped] == ["broken.png"] and r.skipped[0][1]
    assert r.labels is None
    # labels from file names: all or nothing
    assert ex.labels_from_file_names(["cat_1.png", "dog-2.jpg"]) == ["cat", "dog"]
    assert ex.labels_from_file_names(["cat_1.png", "plain.png"]) is None
    good = tuple(u for u in uploads if u[0] != "broken.png")
    r2 = compute(cfg.replace(uploads=good, labels_from_names=True), cache, model=model)
    assert r2.labels == ["cat", "cat", "dog"] and r2.skipped == []
    with pytest.raises(ExplorerError, match="at least 2"):
        compute(cfg.replace(uploads=uploads[-1:]), cache, model=model)
    with pytest.raises(ExplorerError, match="upload the files again"):
        load_images(cfg.replace(uploads=(("gone.png", "0" * 64),)), cache)


def test_server_folder_stays_inside_the_data_root(model, cache, monkeypatch, tmp_path):
    root = tmp_path / "data"
    for cls, color in (("red", (220, 0, 0)), ("blue", (0, 0, 220))):
        (root / "set" / cls).mkdir(parents=True)
        for k in range(2):
            (root / "set" / cls / f"{k}.png").write_bytes(_png(color))
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "x.png").write_bytes(_png((0, 0, 0)))
    monkeypatch.setenv(ex.DATA_ROOT_ENV, str(root))
    assert ex.list_server_folders() == [".", "set", "set/blue", "set/red"]
    r = compute(CFG.replace(images="folder:set"), cache, model=model)
    assert sorted(set(r.labels)) == ["blue", "red"] and r.n == 4
    with pytest.raises(ValueError, match="outside"):
        load_images(CFG.replace(images="folder:../secret"), cache)


def test_estimates_and_long_runs(model, cache):
    small = estimate_seconds(12, 16, matcher="exact", device="cpu")
    big = estimate_seconds(256, 1024, matcher="exact", device="cpu")
    assert small["total"] < 1.0 < ex.LONG_RUN_SECONDS < big["total"]
    assert big["pairs"] == 256 * 255 // 2
    faster = estimate_seconds(256, 1024, matcher="batch_optimal", device="cpu")
    assert faster["match"] < big["match"]
    assert estimate_seconds(256, 1024, rsm_cached=True, tokens_cached=True)["total"] == 0.0
    with pytest.raises(ExplorerError):
        estimate_seconds(3, 16, matcher="magic")
    p = plan(CFG, cache, model=model)
    assert not p.is_long and not p.tokens_cached and p.estimate["pairs"] == 66
    long_plan = plan(
        CFG.replace(layer="act1", images="shapes:256"), cache, model=model, measure_forward=False
    )
    assert long_plan.layer.num_tokens == 1024 and long_plan.is_long


def test_downloads_and_summaries(model, cache):
    r = compute(CFG, cache, model=model)
    bundle = np.load(io.BytesIO(r.bundle_npz()), allow_pickle=False)
    np.testing.assert_array_equal(bundle["semantic"], r.semantic["cosine"])
    np.testing.assert_array_equal(bundle["spatial"], r.spatial["cosine"])
    assert bundle["names"].tolist() == r.names and bundle["labels"].tolist() == r.labels
    assert str(bundle["layer"]) == "layer3" and str(bundle["matcher"]) == "exact"
    assert str(bundle["model"]) == "demo-resnet" and str(bundle["kernel"]) == "cosine"
    npy = np.load(io.BytesIO(r.rsm_npy("semantic")), allow_pickle=False)
    np.testing.assert_array_equal(npy, r.semantic_rsm)
    lines = r.rsm_csv("spatial").splitlines()
    assert lines[0].split(",")[1:] == r.names and len(lines) == r.n + 1
    assert float(lines[1].split(",")[2]) == pytest.approx(r.spatial_rsm[0, 1], rel=1e-9)
    with pytest.raises(ValueError):
        r.rsm_npy("both")
    s = summarize(r)
    assert s["n_pairs"] == 66 and s["mean_gap"] >= 0 and s["frac_improved"] <= 1
    assert s["same_gap"] == pytest.approx(s["same_semantic"] - s["same_spatial"])
    e = describe_pair(r)
    assert r.labels[e["i"]] == r.labels[e["j"]] and e["i"] != e["j"]
    assert e["semantic"] - e["spatial"] == pytest.approx(
        np.max(
            [
                r.semantic_rsm[i, j] - r.spatial_rsm[i, j]
                for i in range(r.n)
                for j in range(r.n)
                if i != j and r.labels[i] == r.labels[j]
            ]
        )
    )
    assert 0 <= e["moved"] <= 1


def test_crops_explanation_uses_same_photo(model, cache):
    r = compute(CFG.replace(images="crops:astronaut:4"), cache, model=model, with_proba=False)
    e = describe_pair(r)
    assert r.meta["sources"][e["i"]] == r.meta["sources"][e["j"]]
    assert e["offset"] is not None and e["offset"] != (0, 0)
    assert r.proba is None


def test_layer_rsms_share_the_cache(model, cache, counting, monkeypatch):
    import semrsm.layers

    calls = {"layers": 0}
    real = semrsm.layers.extract_layers

    def extract_layers(*a, **k):
        calls["layers"] += 1
        return real(*a, **k)

    monkeypatch.setattr(semrsm.layers, "extract_layers", extract_layers)
    out = layer_rsms(CFG, cache, ["layer3", "layer4"], model=model)
    assert calls["layers"] == 1 and counting["semantic"] == 2
    assert out["layer4"]["grid"] == (2, 2)
    r = compute(CFG, cache, model=model)  # layer3 is now fully cached
    assert r.cache_hits["tokens"] and r.cache_hits["rsm"] and counting["semantic"] == 2
    np.testing.assert_array_equal(out["layer3"]["semantic"]["cosine"], r.semantic["cosine"])
    layer_rsms(CFG, cache, ["layer3", "layer4"], model=model)
    assert calls["layers"] == 1 and counting["semantic"] == 2


def test_out_of_memory_is_a_compute_error(model, cache, monkeypatch):
    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(ex, "semantic_rsm", oom)
    with pytest.raises(ComputeError, match="fewer images"):
        compute(CFG, cache, model=model)
    assert not list(cache.entries_dir.glob("*/*.tmp"))
