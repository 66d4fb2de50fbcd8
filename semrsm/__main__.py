"""Command line: ``python -m semrsm {rsm,layers,matchers,compare,search} ...``.

Examples
--------
python -m semrsm rsm --tokens feats.npy --kernel cosine --matcher exact --out out.npz
python -m semrsm layers --model demo-resnet
python -m semrsm rsm --model demo-resnet --layer stages.1 --images shapes:64 --out out.npz
python -m semrsm rsm --tokens feats.npy --tile 512 --ray --out out.npz
python -m semrsm search --gallery photos/ --queries query/ --k 10 --rerank 200
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semrsm.scale import cli as tiles_cli


def _progress_printer(label: str):
    """A progress callback that redraws one line on stderr (no extra dependency)."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 0.2:
            last[0] = now
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return progress


def _matcher_params(args: argparse.Namespace) -> dict:
    params = {}
    if args.matcher == "batch_optimal" and args.window is not None:
        params["window"] = args.window
    if args.matcher == "topk_greedy" and args.k is not None:
        params["k"] = args.k
    return params


def _output_path(out: str) -> Path:
    """The file ``--out`` names, checked before any computation so that a long run is not
    lost at the end: ``.npz`` is appended when missing (numpy would do it silently), the
    folder must be writable and the target, if it exists, a regular file."""
    path = Path(out).expanduser()
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
        print(f"note: --out {out!r} has no .npz suffix; writing {str(path)!r}", file=sys.stderr)
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {str(path)!r} exists and is not a regular file; choose a file name")
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot write into {str(folder)!r}; choose a writable folder")
    return path


def _write_atomic(path: Path, arrays: dict) -> None:
    """Write an ``.npz`` next to ``path`` and move it into place: a crash or a kill during
    the write leaves the previous file intact and no partial file under ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cmd_rsm(args: argparse.Namespace) -> int:
    import semrsm

    out = _output_path(args.out)

    meta: dict = {
        "semrsm_version": semrsm.__version__,
        "kernel": args.kernel,
        "matcher": args.matcher,
        "matcher_params": _matcher_params(args),
        "device": args.device,
    }
    extra: dict[str, np.ndarray] = {}
    if args.tokens:
        tokens = np.load(args.tokens, allow_pickle=False)
        meta["tokens"] = str(args.tokens)
    else:
        from semrsm.images import load_image_set
        from semrsm.layers import extract_tokens
        from semrsm.models import create_model

        images = load_image_set(args.images, seed=args.seed)
        for name, reason in images.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        model = create_model(args.model, weights=args.weights, checkpoint=args.checkpoint)
        extracted = extract_tokens(
            model, images.images, args.layer, progress=_progress_printer("tokens  ")
        )
        tokens = extracted.tokens
        meta.update(
            model=args.model, weights=model.weights, weights_id=model.weights_id,
            layer=args.layer, grid=list(extracted.grid), images=args.images, seed=args.seed,
        )
        extra["names"] = np.asarray(images.names)
        extra["labels"] = np.asarray(images.labels if images.labels is not None else [])
    meta["shape"] = list(np.shape(tokens))
    spatial = semrsm.spatial_rsm(tokens, kernel=args.kernel, device=args.device)
    if tiles_cli.wants_tiles(args):  # tiled, resumable, optionally on Ray
        result = tiles_cli.tiled_for_cli(args, tokens, out, meta["matcher_params"])
        meta.update(tile=result.tile, ray=result.executor == "ray")
    else:
        result = semrsm.semantic_rsm(
            tokens, kernel=args.kernel, matcher=args.matcher, device=args.device,
            progress=_progress_printer("matching"), return_result=True, **meta["matcher_params"],
        )
    meta["seconds"] = round(result.seconds, 3)
    _write_atomic(
        out, {"spatial": spatial, "semantic": result.rsm, "meta": np.asarray(json.dumps(meta)), **extra}
    )
    if tiles_cli.wants_tiles(args):
        tiles_cli.finish_tiles(result, keep=args.keep_tiles)
    n = spatial.shape[0]
    off = ~np.eye(n, dtype=bool)
    print(
        f"wrote {out}: {n} images, mean off-diagonal {args.kernel} similarity "
        f"spatio-semantic {spatial[off].mean() if n > 1 else float('nan'):.4f}, "
        f"semantic {result.rsm[off].mean() if n > 1 else float('nan'):.4f} "
        f"({result.seconds:.2f} s)"
    )
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from semrsm.layers import list_layers
    from semrsm.models import create_model

    model = create_model(args.model, weights=args.weights, checkpoint=args.checkpoint)
    layers = list_layers(model)
    width = max(len(layer.name) for layer in layers)
    print(f"{'layer':<{width}}  {'kind':<4}  {'grid':>7}  {'tokens':>6}  {'channels':>8}")
    for layer in layers:
        grid = f"{layer.grid[0]}x{layer.grid[1]}"
        print(f"{layer.name:<{width}}  {layer.kind:<4}  {grid:>7}  {layer.num_tokens:>6}  {layer.channels:>8}")
    return 0


def _cmd_matchers(args: argparse.Namespace) -> int:
    from semrsm.matching import MATCHERS

    for name, spec in MATCHERS.items():
        params = ", ".join(f"{k}={v}" for k, v in spec["params"].items())
        print(f"{name:<14} {spec['description']}" + (f"  [{params}]" if params else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m semrsm", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", help="demo-resnet, demo-vit or any timm model name")
        p.add_argument("--weights", default="default",
                       help="default | pretrained | none | file (with --checkpoint)")
        p.add_argument("--checkpoint", help="a .safetensors or .pt/.pth file")

    rsm = sub.add_parser("rsm", help="compute the spatio-semantic and semantic RSMs")
    src = rsm.add_mutually_exclusive_group(required=True)
    src.add_argument("--tokens", help="a .npy of shape (N,S,C) or (N,C,H,W)")
    src.add_argument("--model", help="demo-resnet, demo-vit or any timm model name")
    rsm.add_argument("--weights", default="default",
                     help="default | pretrained | none | file (with --checkpoint)")
    rsm.add_argument("--checkpoint", help="a .safetensors or .pt/.pth file")
    rsm.add_argument("--layer", help="layer name (see: python -m semrsm layers --model M)")
    rsm.add_argument("--images", default="shapes:64",
                     help="shapes:N, shapes:N:K, photos, crops:astronaut[,coffee], or a folder")
    rsm.add_argument("--seed", type=int, default=0, help="seed of generated image sets")
    rsm.add_argument("--kernel", default="cosine", choices=["linear", "cosine", "rbf"])
    rsm.add_argument("--matcher", default="exact",
                     choices=["exact", "batch_optimal", "topk_greedy", "greedy", "identity"])
    rsm.add_argument("--window", type=int, help="window size of batch_optimal")
    rsm.add_argument("--k", type=int, help="k of topk_greedy")
    rsm.add_argument("--device", default="auto", help="auto | cpu | cuda")
    rsm.add_argument("--out", required=True, help="output .npz (spatial, semantic, meta)")
    tiles_cli.add_tile_arguments(rsm)
    rsm.set_defaults(func=_cmd_rsm)

    layers = sub.add_parser("layers", help="list a model's layers with their shapes")
    model_args(layers)
    layers.set_defaults(func=_cmd_layers)

    matchers = sub.add_parser("matchers", help="list the matchers and their parameters")
    matchers.set_defaults(func=_cmd_matchers)

    from semrsm.explorer.comparison import add_compare_arguments, cli_compare

    cmp_ = sub.add_parser("compare", help="A vs B: CKA and RSA (Spearman, Kendall tau_a) with "
                          "bootstrap intervals; layer x layer tables; a reference RDM")
    add_compare_arguments(cmp_)
    cmp_.set_defaults(func=cli_compare)

    search = sub.add_parser("search", help="search a gallery: pooled top-K candidates re-ranked "
                            "by the semantic similarity")
    tiles_cli.add_search_arguments(search)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rsm" and args.model and not args.layer:
        parser.error("--model needs --layer (list them with: python -m semrsm layers --model M)")
    if args.command == "layers" and not args.model:
        parser.error("layers needs --model")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
