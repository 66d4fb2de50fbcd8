"""Hostile cache entries and hostile links: every bad entry is dropped and recomputed,
nothing in an entry's place can block a read, every key carries the cache format, and
every value of a link that is not used is reported, never used in another form."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import semrsm.cache as cache_module
from semrsm.cache import DEFAULT_MAX_BYTES, Cache, CacheWarning, content_key, parse_size
from semrsm.explorer.links import (
    MAX_IMAGES,
    layer_problem,
    pair_problem,
    params_to_state,
)

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["", "neighbours", "token_matching", "embedding", "analyses", "compare"]


def _recompute(cache: Cache, key: str, value: np.ndarray) -> tuple[dict, bool, list]:
    """get_or_compute of ``value`` under ``key``, with the CacheWarnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, hit = cache.get_or_compute(key, lambda: {"v": value})
    return out, hit, [w for w in caught if issubclass(w.category, CacheWarning)]


# --------------------------------------------------------------------------- cache reads


def test_damaged_array_header_is_dropped_and_recomputed(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    key = content_key("header")
    big = np.arange(100_000.0)  # larger than one zip read: the header is parsed before the CRC
    cache.save(key, {"v": big})
    path = cache.path(key)
    raw = bytearray(path.read_bytes())
    start = raw.find(b"\x93NUMPY")
    header_len = int.from_bytes(raw[start + 8 : start + 10], "little")
    raw[start + 10 + header_len - 3] = ord("(")  # one byte of the header's space padding
    path.write_bytes(bytes(raw))

    out, hit, warned = _recompute(cache, key, np.zeros(3))
    assert not hit and out["v"].tolist() == [0.0, 0.0, 0.0]
    assert warned and "TokenError" in str(warned[0].message)
    assert cache.load(key)["v"].shape == (3,)  # the repaired entry is served again

    # any other exception while reading is handled the same way
    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(cache_module.np, "load", broken)
    out, hit, warned = _recompute(cache, key, np.ones(2))
    assert not hit and out["v"].tolist() == [1.0, 1.0] and "RuntimeError" in str(warned[0].message)


@pytest.mark.timeout(20)
def test_fifo_in_an_entry_place_never_blocks(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("fifo")
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    done: dict = {}

    def run() -> None:
        done["load"] = cache.load(key)
        done["compute"] = _recompute(cache, key, np.arange(4.0))

    worker = threading.Thread(target=run, daemon=True)  # a blocked read must not hang pytest
    worker.start()
    worker.join(10)
    if worker.is_alive():  # release the reader (a writer's open unblocks it), then fail
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("Cache.load blocked on a FIFO in an entry's place")
    assert done["load"] is None
    out, hit, warned = done["compute"]
    assert not hit and out["v"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert stat.S_ISREG(path.stat().st_mode)  # the FIFO was dropped, the entry stored


def test_cache_size_of_400_digits_is_a_clear_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMRSM_CACHE_MAX_BYTES", "9" * 400)
    with pytest.warns(CacheWarning, match="SEMRSM_CACHE_MAX_BYTES") as caught:
        cache = Cache(tmp_path)
    assert cache.max_bytes == DEFAULT_MAX_BYTES
    message = str(caught[0].message)
    assert "too large" in message and "default" in message and len(message) < 400
    with pytest.raises(ValueError, match="too large"):
        parse_size("1" + "0" * 30 + "G")
    assert parse_size("1.5GiB") == 3 * 2**29  # exact, not through float


def test_entry_without_a_manifest_is_a_miss(tmp_path):
    cache = Cache(tmp_path)
    key = content_key("no manifest")
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, v=np.arange(5.0))  # a valid .npz, but not written by the cache
    with pytest.warns(CacheWarning, match="no manifest"):
        assert cache.load(key) is None
    assert not path.exists()
    out, hit, _ = _recompute(cache, key, np.ones(1))
    assert not hit and cache.load(key)["v"].tolist() == [1.0]


def _every_key() -> dict[str, str]:
    """One key of every kind the package makes."""
    from semrsm.cache_schema import (
        fact_key,
        images_digest,
        model_facts_key,
        proba_key,
        rsm_key,
        tile_key,
        tile_run_key,
        tokens_key,
    )
    from semrsm.explorer.config import ExplorerConfig
    from semrsm.scale.tiles import Tile
    from semrsm.uploads import upload_digest

    images = SimpleNamespace(images=[Image.new("RGB", (4, 4), "red")])
    model = SimpleNamespace(name="demo-resnet", weights_id="w", data_config={"mean": (0.5,)})
    config = ExplorerConfig(model="demo-resnet", weights="none")
    digest = images_digest(images)
    tk = tokens_key(model, "layer1", digest)
    return {
        "content": content_key("x", 1),
        "images": digest,
        "tokens": tk,
        "rsm": rsm_key(tk, "exact", {}),
        "proba": proba_key(model, digest),
        "model facts": model_facts_key(config),
        "fact": fact_key("kind"),
        "upload": upload_digest(b"file"),
        "tile run": tile_run_key("t", "exact", {}, "numba", "cpu"),
        "tile": tile_key(tile_run_key("t", "exact", {}, "numba", "cpu"), Tile(0, 2, 0, 2)),
    }


def test_cache_format_changes_every_key(monkeypatch):
    before = _every_key()
    monkeypatch.setattr(cache_module, "CACHE_FORMAT", cache_module.CACHE_FORMAT + 1)
    after = _every_key()
    assert [kind for kind in before if before[kind] == after[kind]] == []


def test_entry_of_another_cache_format_is_never_served(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT", 0)
    old_key = content_key("same inputs")
    cache.get_or_compute(old_key, lambda: {"v": np.full(3, 7.0)})  # same shapes, old meaning
    monkeypatch.undo()
    key = content_key("same inputs")
    out, hit, _ = _recompute(cache, key, np.full(3, 1.0))
    assert key != old_key and not hit and out["v"].tolist() == [1.0] * 3
    # an old-format file under a current key (copied there) is refused by its manifest
    other = content_key("copied")
    cache.path(other).parent.mkdir(parents=True, exist_ok=True)
    cache.path(other).write_bytes(cache.path(old_key).read_bytes())
    with pytest.warns(CacheWarning, match="cache format 0"):
        assert cache.load(other) is None


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("layer", ["../../etc", "/etc/passwd", "a..b", "layer1/", "x" * 300])
def test_layer_that_is_not_a_name_is_reported_and_never_used(layer):
    state, problems = params_to_state({"layer": layer, "kernel": "rbf"})
    assert state == {"sb_kernel": "rbf"}
    (problem,) = problems
    assert problem.startswith("layer=") and len(problem) < 250


def test_unknown_layer_is_reported_once_the_layers_are_known():
    state, problems = params_to_state({"layer": "stages.9"})
    assert state == {"sb_layer": "stages.9"} and problems == []  # a name: checked later
    problem = layer_problem("stages.9", ["layer1", "layer2", "layer3"], "demo-resnet")
    assert "stages.9" in problem and "demo-resnet" in problem and "layer3" in problem
    assert layer_problem("layer2", ["layer1", "layer2"], "demo-resnet") is None


@pytest.mark.parametrize("pair", ["999999,0", "1e400,2", "99999999999999999999,0", "1_0,2",
                                  "-1,3", "3", "1,2,3", "٣,1", ""])
def test_pair_that_no_set_has_is_reported(pair):
    state, problems = params_to_state({"pair": pair})
    assert "pair" not in state
    (problem,) = problems
    assert problem.startswith("pair=")


def test_pair_beyond_the_set_is_reported_once_the_set_is_known():
    state, problems = params_to_state({"pair": f"{MAX_IMAGES - 1},0"})
    assert state["pair"] == (MAX_IMAGES - 1, 0) and problems == []
    assert "8 images" in pair_problem((20, 0), 8)
    assert pair_problem((7, 0), 8) is None


@pytest.mark.parametrize("page", ["nope", "../../etc", "compare/x"])
def test_unknown_page_is_reported(page):
    state, problems = params_to_state({"page": page}, pages=PAGES)
    assert "page" not in state
    (problem,) = problems
    assert problem.startswith("page=")
    assert params_to_state({"page": "/compare"}, pages=PAGES) == ({"page": "compare"}, [])
    assert params_to_state({"page": "../../etc"})[1]  # refused by its form alone, too


def test_unknown_parameter_is_reported():
    state, problems = params_to_state({"kernal": "rbf", "embed": "true"})
    assert state == {} and len(problems) == 1 and "kernal" in problems[0]


@pytest.fixture(scope="module")
def app_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("links-cache")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("link,expected", [
    ({"layer": "no_such_layer", "pair": "20,0", "page": "nope"},
     ["layer='no_such_layer' is not a layer", "pair='20,0'", "page='nope'"]),
    ({"layer": "../../etc", "pair": "99999999999999999999,0", "page": "../../etc"},
     ["layer='../../etc'", "pair='99999999999999999999,0'", "page='../../etc'"]),
])
def test_app_reports_every_ignored_link_value(app_cache, monkeypatch, link, expected):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(app_cache))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    for k, v in {"model": "demo-resnet", "images": "shapes:8", **link}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="sb_layer").value != link["layer"]  # the model's default layer
    kept = "semrsm_selected_pair" in at.session_state
    assert not kept or at.session_state["semrsm_selected_pair"] != (20, 0)  # not kept
    notes = [c.value for c in at.caption if "Ignored from the link" in c.value]
    assert notes, [c.value for c in at.caption]
    for text in expected:
        assert text in notes[0], (text, notes[0])
    link_box = [t.value for t in at.text_input if "model=demo-resnet" in (t.value or "")]
    assert link_box and "etc" not in link_box[0] and "20,0" not in link_box[0]
