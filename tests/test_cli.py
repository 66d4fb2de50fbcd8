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


def test_rsm_end_to_end_from_model_and_images(tmp_path, capsys):
    out = tmp_path / "shapes.npz"
    assert main(["rsm", "--model", "demo-resnet", "--layer", "layer3", "--images", "shapes:8",
                 "--matcher", "exact", "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["spatial"].shape == z["semantic"].shape == (8, 8)
        assert np.all(z["semantic"] >= z["spatial"] - 1e-9)
        assert len(z["names"]) == 8 and len(z["labels"]) == 8
        meta = json.loads(str(z["meta"]))
    assert meta["model"] == "demo-resnet" and meta["layer"] == "layer3"
    assert meta["weights_id"].startswith("sha256:") and meta["images"] == "shapes:8"


def test_layers_command_and_unknown_model(capsys):
    assert main(["layers", "--model", "demo-resnet"]) == 0
    out = capsys.readouterr().out
    assert "layer1" in out and "16x16" in out
    assert main(["layers", "--model", "resnett50"]) == 2
    assert "did you mean" in capsys.readouterr().err
