"""Tests for semrsm.cache: keys, atomic writes, corruption, LRU, full disk, compute once."""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import threading
import time
import zipfile

import numpy as np
import pytest

from semrsm.cache import Cache, CacheWarning, content_key


def test_content_key_is_canonical_and_sensitive():
    a = content_key({"b": 1, "a": [1.5, "x"]}, np.arange(3, dtype=np.float32), b"img")
    b = content_key({"a": [1.5, "x"], "b": 1}, np.arange(3, dtype=np.float32), b"img")
    assert a == b  # dict order does not matter
    assert len(a) == 64
    # every ingredient changes the key
    assert a != content_key({"b": 1, "a": [1.5, "y"]}, np.arange(3, dtype=np.float32), b"img")
    assert a != content_key({"b": 1, "a": [1.5, "x"]}, np.arange(3, dtype=np.float64), b"img")
    assert a != content_key({"b": 1, "a": [1.5, "x"]}, np.arange(3, dtype=np.float32), b"imh")
    # type tags: "1" and 1 differ, (1, 2) and [1, 2] hash alike
    assert content_key("1") != content_key(1)
    assert content_key((1, 2)) == content_key([1, 2])
    with pytest.raises(TypeError):
        content_key(object())


def test_roundtrip_meta_and_bad_keys(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("roundtrip")
    assert cache.load(key) is None
    arrays = {"x": np.arange(6.0).reshape(2, 3), "names": np.array(["a", "bé"])}
    assert cache.save(key, arrays, meta={"layer": "stages.3"})
    out = cache.load(key)
    np.testing.assert_array_equal(out["x"], arrays["x"])
    assert out["names"].tolist() == ["a", "bé"]
    assert Cache.meta(out) == {"layer": "stages.3"}
    assert key in cache
    with pytest.raises(ValueError, match="hex digest"):
        cache.path("../../etc/passwd")
    with pytest.raises(ValueError, match="pickle"):
        cache.save(key, {"o": np.array([{"a": 1}], dtype=object)})
    # no temporary files are left behind
    assert not list(tmp_path.rglob("*.tmp"))


def test_second_request_served_from_cache_without_computing(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"v": np.full(4, 7.0)}

    key = content_key("twice")
    first, hit1 = cache.get_or_compute(key, compute)
    second, hit2 = Cache(tmp_path).get_or_compute(key, compute)  # a fresh instance: on disk
    assert (hit1, hit2) == (False, True)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["v"], second["v"])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_entry_is_recomputed(tmp_path, damage):
    cache = Cache(tmp_path)
    key = content_key("damaged", damage)
    cache.save(key, {"v": np.arange(1000.0)})
    path = cache.path(key)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a zip" * 20)
    else:
        path.write_bytes(b"")
    calls = []

    def compute():
        calls.append(1)
        return {"v": np.arange(1000.0)}

    out, hit = cache.get_or_compute(key, compute)
    assert not hit and calls == [1]
    np.testing.assert_array_equal(out["v"], np.arange(1000.0))
    # the repaired entry is valid again
    assert np.load(path, allow_pickle=False)["v"].shape == (1000,)


def test_corrupt_member_crc_is_a_miss(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("crc")
    cache.save(key, {"v": np.arange(4096, dtype=np.int64)})
    path = cache.path(key)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip a byte inside the stored array data
    path.write_bytes(bytes(raw))
    assert zipfile.is_zipfile(path)
    assert cache.load(key) is None
    assert not path.exists()


def test_lru_eviction_keeps_recently_used(tmp_path):
    one_entry = 8000 * 8 + 700  # an 8000-float64 array plus zip/npy headers and the manifest
    cache = Cache(tmp_path, max_bytes=3 * one_entry)
    keys = [content_key("lru", i) for i in range(3)]
    for i, key in enumerate(keys):
        cache.save(key, {"v": np.full(8000, float(i))})
        t = time.time() - 100 + i  # distinct, increasing access times
        os.utime(cache.path(key), (t, t))
    assert all(k in cache for k in keys)
    assert cache.load(keys[0]) is not None  # keys[0] becomes the most recently used
    new = content_key("lru", "new")
    cache.save(new, {"v": np.zeros(8000)})
    assert cache.size_bytes() <= cache.max_bytes
    assert keys[1] not in cache  # least recently used went first
    assert keys[0] in cache and new in cache


def test_entry_larger_than_cap_is_kept_alone(tmp_path):
    cache = Cache(tmp_path, max_bytes=1000)
    old, big = content_key("old"), content_key("big")
    cache.save(old, {"v": np.zeros(10)})
    cache.save(big, {"v": np.zeros(10_000)})
    assert big in cache and old not in cache


def test_full_disk_is_a_warning_and_leaves_nothing(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    key = content_key("full")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    with pytest.warns(CacheWarning, match="full"):
        out, hit = cache.get_or_compute(key, lambda: {"v": np.ones(3)})
    assert not hit
    np.testing.assert_array_equal(out["v"], np.ones(3))  # the value still comes back
    assert cache.write_failures == 1 and "SEMRSM_CACHE_DIR" in cache.last_warning
    assert key not in cache
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".tmp", ".npz")]


def test_other_write_errors_are_a_warning_too(tmp_path, monkeypatch):
    cache = Cache(tmp_path)

    def denied(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(np, "savez", denied)
    with pytest.warns(CacheWarning, match="not stored"):
        assert not cache.save(content_key("denied"), {"v": np.ones(3)})
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_threads_compute_once(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("threads")
    calls = []
    started = threading.Event()

    def compute():
        calls.append(threading.get_ident())
        started.set()
        time.sleep(0.3)  # long enough for the other thread to be waiting on the lock
        return {"v": np.arange(5)}

    results = []

    def worker():
        results.append(cache.get_or_compute(key, compute))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    threads[0].start()
    started.wait(5)
    threads[1].start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False, True]
    for arrays, _ in results:
        np.testing.assert_array_equal(arrays["v"], np.arange(5))


def _process_worker(root, key, marker_dir, barrier):
    cache = Cache(root)
    barrier.wait()

    def compute():
        # one marker file per computation, so the parent can count them
        fd = os.open(os.path.join(marker_dir, f"{os.getpid()}"), os.O_CREAT | os.O_WRONLY)
        os.close(fd)
        time.sleep(0.3)
        return {"v": np.arange(3)}

    cache.get_or_compute(key, compute)


def test_two_processes_compute_once(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    key = content_key("processes")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_process_worker, args=(str(tmp_path / "c"), key, str(markers), barrier))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
        assert p.exitcode == 0
    assert len(list(markers.iterdir())) == 1
    assert key in Cache(tmp_path / "c")


def test_uploads_live_inside_the_cache(tmp_path):
    cache = Cache(tmp_path)
    digest = cache.uploads.store("../../evil.png", b"\x89PNG data")
    assert cache.uploads.read(digest) == b"\x89PNG data"
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and "uploads" in p.parts]
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in stored)
    stored = [p for p in stored if "names" not in p.parts]  # names: the user's file names
    assert len(stored) == 1
    assert cache.uploads.name(digest) == "evil.png"  # the base name only, never a path
    assert cache.uploads.store("again.png", b"\x89PNG data") == digest  # stored once
    with pytest.raises(ValueError):
        cache.uploads.read("../entries")
    with pytest.raises(FileNotFoundError):
        cache.uploads.read("0" * 64)


def test_location_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path / "envcache"))
    monkeypatch.setenv("SEMRSM_CACHE_MAX_BYTES", "12345")
    cache = Cache()
    assert cache.root == tmp_path / "envcache" and cache.root.is_dir()
    assert cache.max_bytes == 12345
    with pytest.raises(ValueError):
        Cache(tmp_path, max_bytes=0)


def test_upload_keeps_only_a_safe_extension(tmp_path):
    cache = Cache(tmp_path)
    d1 = cache.uploads.store("weights.SafeTensors", b"abc")
    assert cache.uploads.path(d1).name == f"{d1}.safetensors"
    d2 = cache.uploads.store("x.p/../ng", b"def")  # no usable extension: none kept
    assert cache.uploads.path(d2).name == d2
    assert cache.uploads.path(d2).parent == cache.uploads_dir
