"""Shared test settings: CPU only, two threads, deterministic."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
torch.set_num_threads(2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def cnn_tokens() -> np.ndarray:
    """Real CNN features: ReLU activations of a random-init timm resnet18 on photo crops,
    shrunk to S = 7x7 = 49 tokens (layer4 at 224 px) — the benchmark's feature kind, small."""
    from bench.features import resnet18_tokens

    return resnet18_tokens(8, 49, seed=0)


@pytest.fixture(scope="module")
def app_cache_dir(tmp_path_factory):
    """A fresh cache folder, and no server data root, for one module of app tests."""
    old = {k: os.environ.get(k) for k in ("SEMRSM_CACHE_DIR", "SEMRSM_DATA_ROOT")}
    os.environ["SEMRSM_CACHE_DIR"] = str(tmp_path_factory.mktemp("app-cache"))
    os.environ.pop("SEMRSM_DATA_ROOT", None)
    torch.set_num_threads(2)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
