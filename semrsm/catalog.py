"""The models the app offers by name, without importing torch or timm.

``semrsm.models`` re-exports these names; the app's sidebar and links read them from here
so that drawing a cached result needs no torch import.
"""

from __future__ import annotations

import os
from pathlib import Path

from .images.shapes import SHAPE_CLASSES

__all__ = ["ASSETS_DIR", "DEMO_MODELS", "POPULAR_MODELS"]

#: Folder with the demo weights; ``SEMRSM_ASSETS`` overrides it.
ASSETS_DIR = Path(
    os.environ.get("SEMRSM_ASSETS", Path(__file__).resolve().parent.parent / "assets")
)

#: Demo models trained by ``scripts/train_demo_models.py`` on the ``shapes`` set.
DEMO_MODELS: dict[str, dict] = {
    "demo-resnet": {
        "arch": "test_resnet",
        "kwargs": {"num_classes": len(SHAPE_CLASSES)},
        "file": "demo-resnet.safetensors",
        "img_size": 64,
        "description": "tiny timm ResNet (test_resnet) trained on the procedural shapes set",
    },
    "demo-vit": {
        # A timm R+ViT hybrid (ResNet stem, then a plain ViT with a CLS token): the conv
        # stem makes the tiny ViT trainable from scratch on CPU; its 4 blocks see 8x8 tokens.
        "arch": "vit_tiny_r_s16_p8_224",
        "kwargs": {
            "num_classes": len(SHAPE_CLASSES),
            "img_size": 64,
            "patch_size": 2,
            "embed_dim": 64,
            "depth": 4,
            "num_heads": 2,
            "mlp_ratio": 3,
        },
        "file": "demo-vit.safetensors",
        "img_size": 64,
        "description": "tiny timm hybrid ViT (ResNet stem + 4 ViT blocks, 8x8 tokens) trained on "
        "the procedural shapes set",
    },
}

#: Pretrained timm models offered by the app when weights can be downloaded or are cached.
POPULAR_MODELS: list[str] = [
    "resnet18.a1_in1k",
    "resnet50.a1_in1k",
    "convnext_tiny.fb_in22k_ft_in1k",
    "convnextv2_base.fcmae_ft_in22k_in1k",
    "efficientnet_b0.ra_in1k",
    "vit_small_patch16_224.augreg_in21k_ft_in1k",
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "deit_small_patch16_224.fb_in1k",
    "vit_small_patch14_dinov2.lvd142m",
    "vit_small_patch14_reg4_dinov2.lvd142m",
]
