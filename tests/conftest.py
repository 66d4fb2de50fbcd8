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
