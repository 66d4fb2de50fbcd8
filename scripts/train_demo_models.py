"""Train the demo models (demo-resnet, demo-vit) on the procedural shapes set.

Reproducible from ``--seed``: the training images, the initial weights and the batch
order all derive from it. Each model is evaluated on a freshly generated held-out set
(seed ``seed + 1000``, never seen in training) through the same path the app uses
(``create_model`` on the saved file, then ``predict_proba`` on PIL images), and the
weights go to ``assets/<name>.safetensors`` with the results in
``assets/demo_models.json``.

    python scripts/train_demo_models.py                 # both models, CPU
    python scripts/train_demo_models.py --models demo-vit    # one model only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semrsm._platform import machine_description  # noqa: E402
from semrsm.images import SHAPE_CLASSES, make_shapes  # noqa: E402
from semrsm.layers import predict_proba  # noqa: E402
from semrsm.models import ASSETS_DIR, DEMO_MODELS, create_model  # noqa: E402

HELD_OUT_OFFSET = 1000  # held-out seed = seed + this: disjoint from the training images
VAL_OFFSET = 500  # small validation set for progress lines only


def machine() -> str:
    return machine_description()


def to_arrays(images: list[Image.Image], size: int) -> np.ndarray:
    """uint8 ``(N, 3, size, size)``: what the demo transform sees before normalising."""
    return np.stack(
        [np.asarray(img.resize((size, size), Image.BICUBIC)) for img in images]
    ).transpose(0, 3, 1, 2)


def normalise(batch: np.ndarray, cfg: dict) -> torch.Tensor:
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    return (torch.from_numpy(batch).float() / 255.0 - mean) / std


def check_matches_transform(lm, images: list[Image.Image], arrays: np.ndarray) -> None:
    """The cached uint8 arrays must give exactly what model.transform gives."""
    ours = normalise(arrays[:8], lm.data_config)
    ref = torch.stack([lm.transform(img) for img in images[:8]])
    err = float((ours - ref).abs().max())
    if err > 1e-4:
        raise SystemExit(f"training preprocessing differs from the model transform (max err {err})")


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, cfg: dict) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(x), 256):
            logits = model(
                normalise(x[start : start + 256], cfg).contiguous(memory_format=torch.channels_last)
            )
            correct += int((logits.argmax(1).numpy() == y[start : start + 256]).sum())
    model.train()
    return correct / len(x)


def train_one(
    name: str, args, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray
) -> dict:
    spec = DEMO_MODELS[name]
    torch.manual_seed(args.seed)
    lm = create_model(name, weights="none", seed=args.seed)
    model, cfg = lm.model, lm.data_config
    model.train()
    if spec["arch"].endswith("resnet"):
        model = model.to(memory_format=torch.channels_last)  # faster convolutions on CPU
    epochs = args.epochs_resnet if "resnet" in name else args.epochs_vit
    lr = args.lr_resnet if "resnet" in name else args.lr_vit
    steps_per_epoch = len(x) // args.batch_size
    total = epochs * steps_per_epoch
    warmup = min(300, total // 10)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warmup
            if s < warmup
            else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup)))
        ),
    )
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen).numpy()
        running = 0.0
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * args.batch_size : (b + 1) * args.batch_size])
            xb = normalise(x[idx], cfg).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), torch.from_numpy(y[idx]), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
        val = accuracy(model, xv, yv, cfg)
        print(
            f"[{name}] epoch {epoch + 1}/{epochs} step {step} loss {running / steps_per_epoch:.3f} "
            f"val {val:.3f} ({time.time() - start:.0f}s)",
            flush=True,
        )
    train_seconds = time.time() - start

    out = Path(args.out) / spec["file"]
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "name": name,
        "arch": spec["arch"],
        "kwargs": json.dumps(spec["kwargs"]),
        "class_names": json.dumps(list(SHAPE_CLASSES)),
        "img_size": str(spec["img_size"]),
        "seed": str(args.seed),
        "trained_by": "scripts/train_demo_models.py",
    }
    save_file(state, str(out), metadata=meta)
    out.chmod(0o644)

    # Held-out evaluation through the public path, on images the model never saw.
    loaded = create_model(name, weights="file", checkpoint=str(out))
    held = make_shapes(args.eval_size, seed=args.seed + HELD_OUT_OFFSET)
    proba = predict_proba(loaded, held.images, batch_size=128)
    pred = [loaded.class_names[i] for i in proba.argmax(1)]
    acc = float(np.mean([p == t for p, t in zip(pred, held.labels, strict=True)]))
    print(
        f"[{name}] held-out accuracy {acc:.4f} on {len(held)} images; trained in "
        f"{train_seconds:.0f}s; {out} ({out.stat().st_size / 1e6:.2f} MB)",
        flush=True,
    )
    return {
        "arch": spec["arch"],
        "kwargs": spec["kwargs"],
        "file": spec["file"],
        "file_bytes": out.stat().st_size,
        "params": int(sum(p.numel() for p in model.parameters())),
        "held_out_accuracy": round(acc, 4),
        "held_out_images": len(held),
        "held_out_seed": args.seed + HELD_OUT_OFFSET,
        "train_seconds": round(train_seconds, 1),
        "epochs": epochs,
        "train_images": len(x),
        "batch_size": args.batch_size,
        "lr": lr,
        "seed": args.seed,
        "img_size": spec["img_size"],
        "class_names": list(SHAPE_CLASSES),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", nargs="+", default=list(DEMO_MODELS), choices=list(DEMO_MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--epochs-resnet", type=int, default=4)
    p.add_argument("--epochs-vit", type=int, default=12)
    p.add_argument("--lr-resnet", type=float, default=3e-3)
    p.add_argument("--lr-vit", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-size", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ASSETS_DIR))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    size = DEMO_MODELS[args.models[0]]["img_size"]
    assert all(DEMO_MODELS[m]["img_size"] == size for m in args.models)
    t0 = time.time()
    train = make_shapes(args.train_size, seed=args.seed)
    x = to_arrays(train.images, size)
    y = np.array([SHAPE_CLASSES.index(label) for label in train.labels], dtype=np.int64)
    val = make_shapes(512, seed=args.seed + VAL_OFFSET)
    xv = to_arrays(val.images, size)
    yv = np.array([SHAPE_CLASSES.index(label) for label in val.labels], dtype=np.int64)
    check_matches_transform(create_model(args.models[0], weights="none"), train.images, x)
    del train
    print(f"generated {len(x)} training images in {time.time() - t0:.0f}s", flush=True)

    results_path = Path(args.out) / "demo_models.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.setdefault("models", {})
    for name in args.models:
        entry = train_one(name, args, x, y, xv, yv)
        entry["command"] = " ".join(
            ["python scripts/train_demo_models.py", *(argv or sys.argv[1:])]
        )
        entry["machine"] = machine()
        entry["torch_threads"] = args.threads
        entry["torch"] = torch.__version__
        results["models"][name] = entry
        results["machine"] = entry["machine"]
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
