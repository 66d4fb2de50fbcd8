"""Models, weights (demo / file / pretrained cache / none) and their errors. No network."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import timm
import torch
from safetensors.torch import save_file

from semrsm.images import SHAPE_CLASSES, make_shapes
from semrsm.layers import extract_tokens
from semrsm.models import (
    ASSETS_DIR,
    DEMO_MODELS,
    POPULAR_MODELS,
    LoadedModel,
    ModelError,
    create_model,
)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def images():
    return make_shapes(3, seed=11).images


@pytest.mark.parametrize("name", list(DEMO_MODELS))
def test_demo_model_defaults(name):
    m = create_model(name)
    assert isinstance(m, LoadedModel)
    assert m.weights == "demo"
    path = ASSETS_DIR / DEMO_MODELS[name]["file"]
    assert m.weights_id == "sha256:" + sha256(path)
    assert m.class_names == list(SHAPE_CLASSES)
    assert m.data_config["input_size"] == (3, 64, 64) and m.data_config["crop_pct"] == 1.0
    assert not m.model.training
    assert m.device == torch.device("cpu")
    x = m.transform(make_shapes(1).images[0])
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert m.num_prefix_tokens == (1 if "vit" in name else 0)


def test_random_init_is_seeded():
    a = create_model("test_resnet", weights="none", seed=5)
    b = create_model("test_resnet", seed=5)
    c = create_model("test_resnet", weights="none", seed=6)
    assert (
        a.weights == "none" and a.weights_id == "random-init:5" and c.weights_id == "random-init:6"
    )
    pa, pb, pc = (next(m.model.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    # the caller's global RNG is left alone
    torch.manual_seed(0)
    x = torch.rand(1)
    torch.manual_seed(0)
    create_model("test_resnet", weights="none", seed=9)
    assert torch.equal(torch.rand(1), x)


def test_preprocessing_comes_from_the_data_config():
    m = create_model("test_vit", weights="none")
    assert m.data_config["input_size"] == (3, 160, 160)
    assert m.data_config["mean"] == (0.5, 0.5, 0.5)
    assert m.input_size == (160, 160)
    assert m.transform(make_shapes(1, image_size=200).images[0]).shape == (3, 160, 160)


def test_unknown_name_suggests_close_names():
    with pytest.raises(ModelError, match="did you mean.*resnet50") as info:
        create_model("resnet05")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ModelError, match="demo-resnet"):
        create_model("demo-resnt")
    with pytest.raises(ModelError, match="unknown model"):
        create_model("zzzzzzzzzzzz")


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(weights="imagenet"), "unknown weights"),
        (dict(weights="file"), "needs a checkpoint"),
        (dict(weights="none", checkpoint="x.pt"), "weights='file'"),
        (dict(device="tpu:7"), "unknown device"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ModelError, match=fragment):
        create_model("test_resnet", **kwargs)


def test_demo_models_have_no_pretrained_tag():
    with pytest.raises(ModelError, match="no pretrained tag"):
        create_model("demo-resnet", weights="pretrained")


def test_unknown_pretrained_tag():
    with pytest.raises(ModelError, match="no pretrained tag 'nope'.*r160_in1k"):
        create_model("test_resnet.nope", weights="pretrained")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda():
    with pytest.raises(ModelError, match="CUDA is not available"):
        create_model("test_resnet", device="cuda")


def test_popular_models_are_known_to_timm():
    pretrained = set(timm.list_pretrained())
    assert len(POPULAR_MODELS) >= 6
    assert all(name in pretrained for name in POPULAR_MODELS)


# ----------------------------------------------------------------------------- pretrained


@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "hf"


def test_pretrained_offline_not_cached_gives_clear_error(offline_empty_cache):
    start = time.time()
    with pytest.raises(ModelError) as info:
        create_model("test_resnet.r160_in1k", weights="pretrained")
    msg = str(info.value)
    assert "not in the local cache" in msg and "offline" in msg
    assert "HF_HOME" in msg and "checkpoint" in msg and str(offline_empty_cache) in msg
    assert time.time() - start < 10  # never hangs on the network


def test_pretrained_from_local_cache_without_network(offline_empty_cache):
    # Lay out a Hugging Face cache entry exactly as the hub client writes it.
    ref = timm.create_model("test_resnet", pretrained=False)
    snap = (
        offline_empty_cache / "hub" / "models--timm--test_resnet.r160_in1k" / "snapshots" / "abc123"
    )
    snap.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in ref.state_dict().items()}, str(snap / "model.safetensors")
    )
    refs = snap.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc123")
    m = create_model("test_resnet.r160_in1k", weights="pretrained")
    assert m.weights == "pretrained" and m.weights_id == "pretrained:test_resnet.r160_in1k"
    for (k, v), w in zip(ref.state_dict().items(), m.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    assert m.data_config["input_size"] == (3, 160, 160)
    assert m.class_names is not None and len(m.class_names) == 1000


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    "fmt", ["safetensors", "pt-plain", "pth-state_dict", "pth-model", "pt-module"]
)
def test_checkpoint_roundtrip_gives_identical_tokens(tmp_path, images, fmt):
    src = create_model("test_resnet", weights="none", seed=3)
    state = {k: v.clone() for k, v in src.model.state_dict().items()}
    if fmt == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file(state, str(path))
    else:
        path = tmp_path / ("w.pt" if fmt.startswith("pt-") else "w.pth")
        obj = {
            "pt-plain": state,
            "pth-state_dict": {"state_dict": state, "epoch": 3},
            "pth-model": {"model": state},
            "pt-module": {f"module.{k}": v for k, v in state.items()},
        }[fmt]
        torch.save(obj, path)
    loaded = create_model("test_resnet", weights="file", checkpoint=str(path))
    assert loaded.weights == "file" and loaded.weights_id == "sha256:" + sha256(path)
    a = extract_tokens(src, images, "layer2").tokens
    b = extract_tokens(loaded, images, "layer2").tokens
    assert (a == b).all()
    # weights="default" with a checkpoint means the file too
    assert create_model("test_resnet", checkpoint=str(path)).weights == "file"


def test_checkpoint_with_other_class_count_rebuilds_head(tmp_path):
    ref = timm.create_model("test_resnet", num_classes=5)
    path = tmp_path / "five.safetensors"
    save_file(
        {k: v.contiguous() for k, v in ref.state_dict().items()},
        str(path),
        metadata={"class_names": json.dumps(list("abcde"))},
    )
    m = create_model("test_resnet", weights="file", checkpoint=str(path))
    assert m.model.num_classes == 5 and m.class_names == list("abcde")


def test_checkpoint_that_does_not_fit(tmp_path):
    other = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "other.pth"
    torch.save(other.state_dict(), path)
    with pytest.raises(ModelError, match="does not fit 'test_resnet'") as info:
        create_model("test_resnet", weights="file", checkpoint=str(path))
    msg = str(info.value)
    assert "missing keys" in msg or "unexpected keys" in msg or "shape mismatches" in msg

    state = timm.create_model("test_resnet").state_dict()
    state["conv1.0.weight"] = torch.zeros(7, 3, 3, 3)
    del state["layer4.0.bn2.bias"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ModelError) as info:
        create_model("test_resnet", weights="file", checkpoint=str(tmp_path / "bad.pt"))
    msg = str(info.value)
    assert "missing keys: layer4.0.bn2.bias" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "conv1.0.weight: checkpoint (7, 3, 3, 3) vs model" in msg


class _NotATensor:
    pass


@pytest.mark.parametrize(
    "case,fragment",
    [
        ("missing", "does not exist"),
        ("suffix", "unsupported file type"),
        ("garbage_pt", "not a plain weights file"),
        ("garbage_st", "could not be read"),
        ("pickled_code", "not a plain weights file"),
        ("no_tensors", "no state dict"),
    ],
)
def test_unreadable_checkpoints(tmp_path, case, fragment):
    path = tmp_path / {"suffix": "w.onnx", "garbage_st": "w.safetensors"}.get(case, "w.pt")
    if case in ("suffix", "garbage_pt", "garbage_st"):
        path.write_bytes(b"\x00garbage" * 20)
    elif case == "pickled_code":
        torch.save({"x": _NotATensor()}, path)  # weights_only=True refuses arbitrary objects
    elif case == "no_tensors":
        torch.save({"a": 1}, path)
    with pytest.raises(ModelError, match=fragment):
        create_model("test_resnet", weights="file", checkpoint=str(path))


def test_checkpoint_saved_for_another_arch(tmp_path):
    ref = timm.create_model("test_resnet")
    path = tmp_path / "w.safetensors"
    save_file(
        {k: v.contiguous() for k, v in ref.state_dict().items()},
        str(path),
        metadata={"arch": "test_resnet"},
    )
    with pytest.raises(ModelError, match="saved for 'test_resnet'"):
        create_model("test_vit", weights="file", checkpoint=str(path))


def test_offline_detection_is_bounded_without_env(monkeypatch, tmp_path):
    import semrsm.models as models

    def hang(*args, **kwargs):
        time.sleep(5)  # a resolver or connect that never answers
        raise OSError("timed out")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(models.socket, "create_connection", hang)
    monkeypatch.setattr(models, "_ONLINE_TIMEOUT_S", 0.2)
    start = time.time()
    with pytest.raises(ModelError, match="not in the local cache"):
        create_model("test_vit.r160_in1k", weights="pretrained")
    assert time.time() - start < 3
