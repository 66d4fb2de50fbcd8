"""Realistic benchmark features: ReLU activations of a random-init timm resnet18 on photo crops.

The measurements in docs/BENCHMARKS.md and docs/GPU.md use these: layer4 → S = 49 × 512,
layer3 → 196 × 256, layer2 → 784 × 128 at 224 × 224 input. Random init is fine; noise
images are not: the assignments on noise are several times easier than on photographs.
"""

from __future__ import annotations

import numpy as np
import torch

LAYER_FOR_S = {49: "layer4", 196: "layer3", 784: "layer2", 3136: "layer1"}


def photo_crops(n: int, seed: int = 0, size: int = 224) -> torch.Tensor:
    """``n`` random crops (rescaled to ``size``) of scikit-image's bundled photos, ImageNet-normalised."""
    from skimage import data
    from skimage.transform import resize

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(),
              np.stack([data.camera()] * 3, -1)]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
    for k in range(n):
        img = photos[k % len(photos)]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = resize(img[y:y + side, x:x + side], (size, size), anti_aliasing=True)
        out[k] = (crop.transpose(2, 0, 1).astype(np.float32) - mean) / std
    return torch.from_numpy(out)


@torch.inference_mode()
def resnet18_tokens(n: int, s: int, seed: int = 0, batch: int = 32) -> np.ndarray:
    """(n, S, C) float32 tokens of a random-init resnet18 at the layer giving ``S`` positions."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model("resnet18", pretrained=False).eval()
    layer = LAYER_FOR_S[s]
    images = photo_crops(n, seed=seed)
    feats = []
    for start in range(0, n, batch):
        x = images[start:start + batch]
        x = model.act1(model.bn1(model.conv1(x)))
        x = model.maxpool(x)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(model, name)(x)
            if name == layer:
                break
        feats.append(x.flatten(2).transpose(1, 2).contiguous())
    return torch.cat(feats).numpy()
