"""Command line of the scale features: ``rsm --tile/--ray`` and the ``search`` command.

``python -m semrsm rsm ... --tile 512 [--ray [ADDRESS]]`` computes the semantic RSM tile by
tile (in this process, or one Ray task per tile), each finished tile stored in a folder
beside ``--out`` so that rerunning the same command after a crash or Ctrl-C computes only
the missing tiles. ``python -m semrsm search`` ranks a gallery for each query image.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_tile_arguments(p: argparse.ArgumentParser) -> None:
    """``--tile``, ``--ray``, ``--tile-store``, ``--keep-tiles`` of ``python -m semrsm rsm``."""
    p.add_argument("--tile", type=int, metavar="B",
                   help="compute the semantic RSM in B x B tiles (resumable: rerun the same "
                        "command after an interruption); default 1024 with --ray")
    p.add_argument("--ray", nargs="?", const=True, metavar="ADDRESS",
                   help="run one Ray task per tile: alone, the cluster of $RAY_ADDRESS or of "
                        "`ray start` on this machine, else a new local Ray; or host:port, "
                        "ray://host:port, auto, local (needs `pip install ray`)")
    p.add_argument("--tile-store", metavar="DIR",
                   help="folder of finished tiles (default: OUT.tiles beside --out)")
    p.add_argument("--keep-tiles", action="store_true",
                   help="keep the tile folder after the .npz is written")


def wants_tiles(args: argparse.Namespace) -> bool:
    return args.tile is not None or args.ray is not None


def tile_progress_printer(label: str = "matching", stream: Any = None):
    """A progress callback for :func:`semrsm.tiled_semantic_rsm`: one line redrawn on stderr
    with tiles done, pairs per second and the time left."""
    out = stream or sys.stderr
    last = [0.0]

    def progress(p: Any) -> None:
        now = time.monotonic()
        final = p.tiles_done == p.tiles_total
        if not (final or p.tile is None or now - last[0] > 0.2):
            return
        last[0] = now
        width = 30
        filled = int(width * p.pairs_done / max(p.pairs_total, 1))
        rate = f"  {p.pairs_per_s:,.0f} pairs/s" if p.pairs_per_s else ""
        eta = f"  ETA {_duration(p.eta_s)}" if p.eta_s is not None and not final else ""
        reused = f"  ({p.tiles_reused} from the store)" if p.tiles_reused else ""
        out.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                  f"{p.tiles_done}/{p.tiles_total} tiles{rate}{eta}{reused}   ")
        if final:
            out.write("\n")
        out.flush()

    return progress


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def tiled_for_cli(args: argparse.Namespace, tokens: Any, out: Path, params: dict) -> Any:
    """The tiled semantic RSM for ``python -m semrsm rsm``; prints where tiles are kept.

    Returns
    -------
    :class:`semrsm.scale.tiled.TiledResult`

    Raises
    ------
    ValueError
        Bad arguments, Ray problems (the message says what to do), or a tile that failed on
        the cluster (rerun to resume).
    KeyboardInterrupt
        Ctrl-C, after saying how many tiles are stored and how to resume.
    """
    from semrsm.scale.tiled import DEFAULT_TILE, tiled_semantic_rsm

    tile = args.tile if args.tile is not None else DEFAULT_TILE
    if tile < 1:
        raise ValueError(f"--tile: images per tile side must be at least 1, got {tile}")
    store = Path(args.tile_store).expanduser() if args.tile_store else out.with_suffix(".tiles")
    seen: list[Any] = []
    printer = tile_progress_printer()

    def progress(p: Any) -> None:
        seen.append(p)
        printer(p)

    try:
        result = tiled_semantic_rsm(
            tokens, kernel=args.kernel, matcher=args.matcher, tile=tile, ray=args.ray,
            store=store, progress=progress, device=args.device, return_result=True, **params,
        )
    except KeyboardInterrupt:
        done = seen[-1].tiles_done if seen else 0
        total = seen[-1].tiles_total if seen else "?"
        print(f"\n{done} of {total} tiles are stored in {store}; run the same command again "
              "to compute only the others", file=sys.stderr)
        raise  # the CLI says "interrupted" and exits with 130
    except RuntimeError as err:  # a tile failed on the cluster for good
        raise ValueError(f"{err} (finished tiles are in {store}: rerun to resume)") from err
    where = "on Ray" if result.executor == "ray" else "in this process"
    print(f"tiles: {result.tiles_computed} computed {where} ({result.workers} at once, "
          f"{result.device_kind}), {result.tiles_reused} reused, {result.tiles_total} in all",
          file=sys.stderr)
    return result


def finish_tiles(result: Any, keep: bool) -> None:
    """After the ``.npz`` is written: remove the tile folder unless asked to keep it."""
    store = result.store
    if store is None or keep or not Path(store).is_dir():
        return
    shutil.rmtree(store, ignore_errors=True)


# ----------------------------------------------------------------------------------- search

def add_search_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``python -m semrsm search``."""
    p.add_argument("--gallery", required=True,
                   help="images to search: a folder, shapes:N, photos, crops:NAME, or a .npy "
                        "of tokens (N,S,C)")
    p.add_argument("--queries",
                   help="query images (same forms as --gallery); default: every gallery "
                        "image queries the others")
    p.add_argument("--k", type=int, default=10, help="results per query (default 10)")
    p.add_argument("--rerank", type=int, default=200,
                   help="candidates per query from the pooled ranking that are re-ranked "
                        "semantically (default 200)")
    from semrsm.cli_args import add_config_arguments, add_model_arguments
    from semrsm.explorer.config import DEFAULT_MODEL

    add_model_arguments(p, model_default=DEFAULT_MODEL)
    p.add_argument("--layer", help="layer name (default: the app's default layer)")
    # --k is the number of results here: top-k greedy's k is --topk
    add_config_arguments(p, images=False, taken=("--k",))
    p.add_argument("--ray", nargs="?", const=True, metavar="ADDRESS",
                   help="re-rank on Ray (one task per batch of queries); see rsm --ray")
    p.add_argument("--out", help="write every ranking to this .csv")
    p.set_defaults(func=cli_search)


def _search_params(args: argparse.Namespace) -> dict:
    from semrsm.cli_args import matcher_params

    return matcher_params(args)


def _load_set(spec: str, model: Any, layer: str, seed: int, label: str) -> tuple[np.ndarray, list[str]]:
    """Tokens and names of an image set (or a .npy of tokens)."""
    if spec.endswith(".npy") and Path(spec).is_file():
        tokens = np.load(spec, allow_pickle=False)
        return tokens, [f"{Path(spec).stem}[{i}]" for i in range(len(tokens))]
    from semrsm.images import load_image_set
    from semrsm.layers import extract_tokens

    images = load_image_set(spec, seed=seed)
    for name, reason in images.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    extracted = extract_tokens(model, images.images, layer, progress=_bar(f"{label:<8}"))
    return extracted.tokens, list(images.names)


def _bar(label: str):
    def progress(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return progress


def cli_search(args: argparse.Namespace) -> int:
    """``python -m semrsm search``: pooled top-k and semantic re-ranked top-k per query."""
    from semrsm.scale.search import search

    if args.k < 1:
        raise ValueError(f"--k: need at least 1 result, got {args.k}")
    if args.rerank < args.k:
        raise ValueError(f"--rerank ({args.rerank}) must be at least --k ({args.k})")
    model = layer = None
    npy = [s for s in (args.gallery, args.queries) if s and s.endswith(".npy")]
    if len(npy) < len([s for s in (args.gallery, args.queries) if s]):
        from semrsm.explorer.sources import default_layer
        from semrsm.layers import list_layers
        from semrsm.models import create_model

        model = create_model(args.model, weights=args.weights, checkpoint=args.checkpoint)
        layer = args.layer or default_layer(list_layers(model)).name
    gallery, g_names = _load_set(args.gallery, model, layer, args.seed, "gallery")
    if args.queries:
        queries, q_names = _load_set(args.queries, model, layer, args.seed, "queries")
    else:
        queries, q_names = None, g_names
    res = search(
        gallery, queries, k=args.k, rerank=args.rerank, matcher=args.matcher,
        kernel=args.kernel, device=args.device, ray=args.ray, progress=_bar("re-rank "),
        **_search_params(args),
    )
    about = f"{args.model} {layer}" if model is not None else "tokens"
    print(f"{len(q_names)} queries against {len(g_names)} images ({about}); pooled top-"
          f"{res.rerank} re-ranked by the {args.matcher} matching, {args.kernel} kernel "
          f"({res.seconds['pooled']:.2f} s pooled, {res.seconds['rerank']:.2f} s re-ranking)")
    show = min(len(q_names), 20)
    for q in range(show):
        pooled = ", ".join(g_names[i] for i in res.pooled_indices[q])
        semantic = ", ".join(g_names[i] for i in res.indices[q])
        print(f"{q_names[q]}\n  pooled:   {pooled}\n  semantic: {semantic}")
    if show < len(q_names):
        print(f"... {len(q_names) - show} more queries" + (f" in {args.out}" if args.out else
              " (write them all with --out FILE.csv)"))
    if args.out:
        path = Path(args.out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["query", "rank", "pooled_image", "pooled_score", "semantic_image",
                        "semantic_score"])
            for q in range(len(q_names)):
                for r in range(res.indices.shape[1]):
                    w.writerow([q_names[q], r + 1, g_names[res.pooled_indices[q, r]],
                                f"{res.pooled_scores[q, r]:.6g}", g_names[res.indices[q, r]],
                                f"{res.scores[q, r]:.6g}"])
        print(f"wrote {path}")
    return 0
