"""Layer listing and token extraction on real (random-init and demo) timm models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import timm
import torch

from semrsm.images import make_shapes
from semrsm.layers import (
    LayerInfo,
    Tokens,
    extract_layers,
    extract_tokens,
    list_layers,
    predict_proba,
)
from semrsm.models import ModelError, create_model


@pytest.fixture(scope="module")
def images():
    return make_shapes(5, seed=7).images


@pytest.fixture(scope="module")
def cnn():
    return create_model("test_resnet", weights="none")


@pytest.fixture(scope="module")
def vit():
    return create_model("test_vit", weights="none")


@pytest.mark.parametrize(
    "name,weights",
    [
        ("test_resnet", "none"),
        ("test_vit", "none"),
        ("test_convnext", "none"),
        ("demo-resnet", "default"),
        ("demo-vit", "default"),
    ],
)
def test_every_listed_shape_matches_extraction(name, weights, images):
    m = create_model(name, weights=weights)
    layers = list_layers(m)
    assert layers and all(isinstance(info, LayerInfo) for info in layers)
    out = extract_layers(m, images[:2], [info.name for info in layers])
    for info in layers:
        t = out[info.name]
        assert isinstance(t, Tokens) and t.layer == info.name
        assert t.tokens.dtype == np.float32
        assert t.tokens.shape == (2, info.num_tokens, info.channels)
        assert t.grid == info.grid and info.grid[0] * info.grid[1] == info.num_tokens
        assert info.shape == (info.num_tokens, info.channels)
        assert np.isfinite(t.tokens).all()


def test_cnn_layers_in_network_order(cnn):
    layers = list_layers(cnn)
    assert [info.name for info in layers] == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert all(info.kind == "cnn" for info in layers)
    h, w = cnn.input_size
    assert layers[0].grid == (h // 2, w // 2) and layers[-1].grid == (h // 32, w // 32)
    sizes = [info.num_tokens for info in layers]
    assert sizes == sorted(sizes, reverse=True)


def test_cnn_blocks_inside_stages_are_listed():
    m = create_model("test_convnext", weights="none")
    names = [info.name for info in list_layers(m)]
    # blocks come before the stage that holds them; a block identical to its stage is dropped
    assert any(".blocks." in n for n in names)
    for n in names:
        if ".blocks." in n:
            stage = n.split(".blocks.")[0]
            assert names.index(n) < names.index(stage)
    m.model.eval()
    assert len(names) == len(set(names))


def test_cnn_tokens_are_row_major_feature_map(cnn, images):
    x = torch.stack([cnn.transform(im) for im in images[:2]])
    with torch.no_grad():
        fmap = cnn.model.forward_intermediates(x, indices=[2], intermediates_only=True)[0]
    t = extract_tokens(cnn, images[:2], "layer2")
    _, c, h, w = fmap.shape
    assert t.grid == (h, w)
    for s in (0, 1, w, h * w - 1):
        np.testing.assert_allclose(
            t.tokens[:, s], fmap[:, :, s // w, s % w].numpy(), rtol=1e-5, atol=1e-6
        )


def test_vit_layer_gives_exactly_the_patch_grid_tokens(vit, images):
    layers = list_layers(vit)
    assert [info.name for info in layers] == [f"blocks.{i}" for i in range(len(vit.model.blocks))]
    assert all(info.kind == "vit" for info in layers)
    grid = vit.model.patch_embed.grid_size
    assert layers[0].grid == tuple(grid) and layers[0].num_tokens == grid[0] * grid[1]
    # Reference: the raw block output, prefix (CLS) tokens cut off by hand.
    captured = {}
    handle = vit.model.blocks[2].register_forward_hook(
        lambda mod, i, o: captured.__setitem__("x", o)
    )
    x = torch.stack([vit.transform(im) for im in images[:3]])
    with torch.no_grad():
        vit.model(x)
    handle.remove()
    raw = captured["x"]
    assert raw.shape[1] == vit.num_prefix_tokens + grid[0] * grid[1]
    t = extract_tokens(vit, images[:3], "blocks.2")
    np.testing.assert_allclose(
        t.tokens, raw[:, vit.num_prefix_tokens :].numpy(), rtol=1e-5, atol=1e-5
    )


def test_vit_with_registers_drops_cls_and_registers(vit, images):
    net = timm.create_model("test_vit", pretrained=False, reg_tokens=4).eval()
    m = dataclasses.replace(vit, model=net, num_prefix_tokens=net.num_prefix_tokens, cache={})
    assert m.num_prefix_tokens == 5
    captured = {}
    handle = net.blocks[1].register_forward_hook(lambda mod, i, o: captured.__setitem__("x", o))
    t = extract_tokens(m, images[:2], "blocks.1")
    handle.remove()
    grid = net.patch_embed.grid_size
    assert t.tokens.shape == (2, grid[0] * grid[1], net.embed_dim)
    np.testing.assert_allclose(t.tokens, captured["x"][:, 5:].numpy(), rtol=1e-5, atol=1e-5)


def test_hook_fallback_for_models_without_intermediates(cnn, images):
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.body = torch.nn.Sequential(
                torch.nn.ReLU(), torch.nn.Conv2d(8, 12, 3, stride=2, padding=1)
            )
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(12, 3)

        def forward(self, x):
            return self.fc(self.pool(self.body(self.stem(x))).flatten(1))

    net = Plain().eval()
    m = dataclasses.replace(cnn, model=net, cache={})
    layers = list_layers(m)
    h, w = m.input_size
    assert [(i.name, i.channels, i.grid) for i in layers] == [
        ("stem", 8, (h // 2, w // 2)),
        ("body", 12, (h // 4, w // 4)),
        ("pool", 12, (1, 1)),
    ]
    t = extract_tokens(m, images[:2], "body")
    with torch.no_grad():
        ref = net.body(net.stem(torch.stack([m.transform(im) for im in images[:2]])))
    np.testing.assert_allclose(
        t.tokens, ref.flatten(2).transpose(1, 2).numpy(), rtol=1e-5, atol=1e-6
    )
    assert predict_proba(m, images[:2]).shape == (2, 3)


def test_batching_progress_and_multi_layer_consistency(cnn, images):
    calls = []
    one = extract_tokens(
        cnn, images, "layer1", batch_size=2, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(2, 5), (4, 5), (5, 5)]
    both = extract_layers(cnn, images, ["layer1", "layer3"], batch_size=5)
    np.testing.assert_allclose(both["layer1"].tokens, one.tokens, rtol=1e-5, atol=1e-6)
    assert set(both) == {"layer1", "layer3"}


def test_tensor_and_imageset_inputs(cnn):
    s = make_shapes(3, seed=1)
    x = torch.stack([cnn.transform(im) for im in s.images])
    a = extract_tokens(cnn, s, "layer2").tokens
    b = extract_tokens(cnn, x, "layer2").tokens
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_predict_proba(cnn, images):
    calls = []
    p = predict_proba(cnn, images, batch_size=4, progress=lambda d, t: calls.append(d))
    assert p.shape == (5, cnn.model.num_classes) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    x = torch.stack([cnn.transform(im) for im in images])
    with torch.no_grad():
        ref = torch.softmax(cnn.model(x).double(), -1).numpy()
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-8)
    assert calls == [4, 5]


def test_predict_proba_without_head(vit, images):
    net = timm.create_model("test_vit", pretrained=False, num_classes=0).eval()
    m = dataclasses.replace(vit, model=net, cache={})
    with pytest.raises(ModelError, match="no classifier head"):
        predict_proba(m, images)


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda m, ims: extract_tokens(m, ims, "layer9"), "unknown layer.*layer1"),
        (lambda m, ims: extract_layers(m, ims, []), "no layer"),
        (lambda m, ims: extract_tokens(m, [], "layer1"), "no images"),
        (lambda m, ims: extract_tokens(m, ["not an image"], "layer1"), "PIL images"),
        (lambda m, ims: extract_tokens(m, torch.zeros(2, 3, 10, 10), "layer1"), "preprocessed"),
        (lambda m, ims: extract_tokens(m, ims, "layer1", batch_size=0), "batch_size"),
    ],
)
def test_bad_inputs(cnn, images, call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call(cnn, images)
