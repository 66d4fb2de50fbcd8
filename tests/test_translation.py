"""The paper's translation claim on the demo CNN (Wald et al. 2024, Sec. 5.1).

Overlapping crops of the same photo hold the same content at shifted positions. At an
early layer (layer1 of demo-resnet: 16 x 16 positions at 64 px input) the semantic RSM,
which may permute positions, must call them much more similar than the spatio-semantic
RSM does, and crops of different photos must stay less similar than crops of one photo.

Measured when the thresholds were set (4 photos x 9 crops, 75 % of the shorter side):
semantic same-photo 0.88, spatio-semantic same-photo 0.53, semantic different-photo 0.78.
"""

from __future__ import annotations

import numpy as np
import pytest

import semrsm
from semrsm.images import make_crops
from semrsm.layers import extract_tokens
from semrsm.models import create_model

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
LAYER = "layer1"
# Fixed thresholds (cosine kernel, exact matcher); each sits well inside the measured margin.
MIN_SEMANTIC_GAIN = 0.20  # mean over same-photo pairs: semantic - spatio-semantic
MIN_SAME_OVER_DIFFERENT = 0.05  # semantic: mean same-photo - mean different-photo


@pytest.fixture(scope="module")
def rsms():
    crops = make_crops(PHOTOS, n_per_source=9, crop_frac=0.75)
    model = create_model("demo-resnet")
    tokens = extract_tokens(model, crops, LAYER).tokens
    assert tokens.shape[1] == 256  # an early layer: many positions
    semantic = semrsm.semantic_rsm(tokens, kernel="cosine", matcher="exact", device="cpu")
    spatial = semrsm.spatial_rsm(tokens, kernel="cosine", device="cpu")
    source = np.asarray(crops.meta["sources"])
    same = (source[:, None] == source[None, :]) & ~np.eye(len(source), dtype=bool)
    different = source[:, None] != source[None, :]
    return semantic, spatial, source, same, different


def test_semantic_similarity_sees_through_translation(rsms):
    semantic, spatial, _, same, _ = rsms
    assert (semantic >= spatial - 1e-9).all()  # the identity permutation is a candidate
    gain = semantic[same].mean() - spatial[same].mean()
    assert gain >= MIN_SEMANTIC_GAIN, f"semantic gain on translated crops only {gain:.3f}"


def test_crops_of_different_photos_stay_less_similar(rsms):
    semantic, spatial, source, same, different = rsms
    margin = semantic[same].mean() - semantic[different].mean()
    assert margin >= MIN_SAME_OVER_DIFFERENT, f"same-photo margin only {margin:.3f}"
    for k in range(len(PHOTOS)):  # and for every photo on its own
        rows = source == k
        assert semantic[same & rows[:, None]].mean() > semantic[different & rows[:, None]].mean()
    # translation hurts the spatio-semantic view so much that same-photo crops look no more
    # alike there than different photos do under the semantic view
    assert spatial[same].mean() < semantic[different].mean()
