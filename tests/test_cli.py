"""Command line: python -m semrsm rsm / matchers."""

import json
import subprocess
import sys

import numpy as np
import pytest

import semrsm
from semrsm.__main__ import main


def test_rsm_from_tokens_file(tmp_path, rng):
    feats = rng.random((6, 4, 3, 3)).astype(np.float32)
    np.save(tmp_path / "t.npy", feats)
    out = tmp_path / "out" / "r.npz"
    code = main(["rsm", "--tokens", str(tmp_path / "t.npy"), "--kernel", "linear",
                 "--matcher", "batch_optimal", "--window", "4", "--out", str(out)])
    assert code == 0
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_allclose(z["spatial"], semrsm.spatial_rsm(feats, kernel="linear"))
        np.testing.assert_allclose(
            z["semantic"], semrsm.semantic_rsm(feats, kernel="linear", matcher="batch_optimal", window=4))
        meta = json.loads(str(z["meta"]))
    assert meta["kernel"] == "linear" and meta["matcher"] == "batch_optimal"
    assert meta["matcher_params"] == {"window": 4}
    assert meta["semrsm_version"] == semrsm.__version__ and meta["shape"] == [6, 4, 3, 3]


def test_rsm_bad_tokens_is_a_message_not_a_traceback(tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.full((2, 3, 4), np.nan))
    assert main(["rsm", "--tokens", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "NaN" in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_missing_tokens_file(tmp_path, capsys):
    assert main(["rsm", "--tokens", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "nope.npy" in capsys.readouterr().err


def test_module_entry_point_lists_matchers():
    out = subprocess.run([sys.executable, "-m", "semrsm", "matchers"], capture_output=True, text=True,
                         check=True).stdout
    for name in ("exact", "greedy", "topk_greedy", "batch_optimal", "identity"):
        assert name in out


def test_model_requires_layer(capsys):
    with pytest.raises(SystemExit):
        main(["rsm", "--model", "demo-resnet", "--out", "x.npz"])
    assert "--layer" in capsys.readouterr().err
