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
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from semrsm.atomic import discard_pending
from semrsm.cli_args import add_config_arguments, add_model_arguments, fill_defaults, matcher_params
from semrsm.memory import format_bytes
from semrsm.scale import cli as tiles_cli

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for Ctrl-C
TERMINATED_EXIT = 143  # 128 + SIGTERM
#: set to print the traceback of an unexpected error after its one-line message
DEBUG_ENV = "SEMRSM_DEBUG"


#: whether a progress line is drawn without its newline yet (a message must start below it)
_line_open = False


def _progress_printer(label: str):
    """A progress callback that redraws one line on stderr (no extra dependency)."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        global _line_open
        now = time.monotonic()
        if done == total or now - last[0] > 0.2:
            last[0] = now
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            _line_open = done != total
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return progress


def _say(message: str) -> None:
    """``message`` on stderr, on a line of its own."""
    global _line_open
    print(("\n" if _line_open else "") + message, file=sys.stderr)
    _line_open = False


def _output_path(out: str) -> Path:
    """The file ``--out`` names: ``.npz`` is appended when missing (numpy would do it
    silently) and the target, if it exists, must be a regular file."""
    path = Path(out).expanduser()
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
        print(f"note: --out {out!r} has no .npz suffix; writing {str(path)!r}", file=sys.stderr)
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {str(path)!r} exists and is not a regular file; choose a file name")
    return path


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header, without reading the data.

    Raises
    ------
    ValueError
        An empty file, not a ``.npy`` (e.g. an ``.npz``), a malformed header, a pickled
        (object) array, or a file shorter than its header says (truncated).
    FileNotFoundError
        No such file.
    """
    what = f"--tokens {str(path)!r}"
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{what} is empty (0 bytes); give a .npy array written by numpy.save")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(f)
        except (ValueError, SyntaxError, TypeError, EOFError, OSError) as err:
            raise ValueError(
                f"{what} is not a readable .npy file ({str(err)[:120]}); save the features "
                "with numpy.save(path, array)"
            ) from None
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{what} holds Python objects (pickled); save a numeric array")
    data = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size < offset + data:
        raise ValueError(
            f"{what} is truncated: its header says shape {tuple(shape)} {dtype} "
            f"({format_bytes(data)} of data) but the file holds {format_bytes(size - offset)}"
        )
    return tuple(int(d) for d in shape), dtype


def _check_run_memory(
    args: argparse.Namespace, what: str, layout: tuple[int, int, int], stored_itemsize: int,
    itemsize: int, copy_bytes: int,
) -> None:
    """Refuse a run whose tokens and both RSMs would not fit the memory budget, before the
    tokens are loaded or extracted: the stored tokens, then the larger of the spatial RSM
    and the semantic one (while the spatial result is kept)."""
    from semrsm.memory import MemoryEstimate, check_memory, memory_budget
    from semrsm.rsm import resolve_device, semantic_memory, spatial_memory, ways_to_fit

    dev = resolve_device(args.device).type
    n, s, c = layout

    def total(n_: int, s_: int) -> MemoryEstimate:
        stored = n_ * s_ * c * stored_itemsize
        copy = copy_bytes * n_ * s_ // max(1, n * s)
        spatial = spatial_memory(n_, s_, c, itemsize=itemsize, copy_bytes=copy, device_type=dev)
        semantic = semantic_memory(n_, s_, c, itemsize=itemsize, copy_bytes=copy,
                                   matcher=args.matcher, device_type=dev)
        semantic += MemoryEstimate({"spatial RSM": 8 * n_ * n_})
        return MemoryEstimate({"tokens": stored}) + max(spatial, semantic, key=lambda e: e.total)

    limit, _ = memory_budget()
    check_memory(f"{what}: N = {n:,} images × S = {s:,} positions × C = {c:,} channels",
                 total(n, s), ways_to_fit(total, n, s, limit, []))


def _load_tokens(args: argparse.Namespace) -> np.ndarray:
    """The ``--tokens`` array, checked from its header (dtype, rank, size, memory) first."""
    from semrsm.tokens import check_dtype

    path = Path(args.tokens).expanduser()
    shape, dtype = _npy_header(path)
    check_dtype(dtype)
    if len(shape) not in (3, 4):
        raise ValueError(
            f"--tokens {str(path)!r}: expected shape (N, S, C) or (N, C, H, W), got {shape}"
        )
    layout = shape if len(shape) == 3 else (shape[0], shape[2] * shape[3], shape[1])
    itemsize = 8 if dtype == np.float64 else 4
    native = dtype in (np.float32, np.float64) and len(shape) == 3
    copy = 0 if native else int(np.prod(layout, dtype=object)) * itemsize
    _check_run_memory(args, "python -m semrsm rsm --tokens", layout, dtype.itemsize, itemsize, copy)
    return np.load(path, allow_pickle=False)


def _extract(args: argparse.Namespace, meta: dict, extra: dict) -> np.ndarray:
    """Tokens of ``--model``'s ``--layer`` for ``--images``; the memory is checked from
    the layer's shape before any image goes through the model."""
    from semrsm.images import load_image_set
    from semrsm.layers import extract_tokens, list_layers
    from semrsm.models import create_model

    images = load_image_set(args.images, seed=args.seed)
    for name, reason in images.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    model = create_model(args.model, weights=args.weights, checkpoint=args.checkpoint)
    info = next((li for li in list_layers(model) if li.name == args.layer), None)
    if info is not None:  # an unknown layer is explained by extract_tokens
        layout = (len(images.images), info.num_tokens, info.channels)
        _check_run_memory(args, f"python -m semrsm rsm --images {args.images}", layout, 4, 4, 0)
    extracted = extract_tokens(
        model, images.images, args.layer, progress=_progress_printer("tokens  ")
    )
    meta.update(
        model=args.model, weights=model.weights, weights_id=model.weights_id,
        layer=args.layer, grid=list(extracted.grid), images=args.images, seed=args.seed,
    )
    extra["names"] = np.asarray(images.names)
    extra["labels"] = np.asarray(images.labels if images.labels is not None else [])
    return extracted.tokens


def _cmd_rsm(args: argparse.Namespace) -> int:
    import semrsm
    from semrsm.atomic import AtomicOutput
    from semrsm.rsm import resolve_device

    params = matcher_params(args, validate=True)
    resolve_device(args.device)  # "meta", "tpu", cuda without a GPU: a message now
    meta: dict = {
        "semrsm_version": semrsm.__version__,
        "kernel": args.kernel,
        "matcher": args.matcher,
        "matcher_params": params,
        "device": args.device,
    }
    extra: dict[str, np.ndarray] = {}
    # the temporary output exists from here on: an unwritable --out fails before computing
    with AtomicOutput(_output_path(args.out), "--out") as out:
        if args.tokens:
            tokens = _load_tokens(args)
            meta["tokens"] = str(args.tokens)
        else:
            tokens = _extract(args, meta, extra)
        meta["shape"] = list(np.shape(tokens))
        spatial = semrsm.spatial_rsm(tokens, kernel=args.kernel, device=args.device)
        if tiles_cli.wants_tiles(args):  # tiled, resumable, optionally on Ray
            result = tiles_cli.tiled_for_cli(args, tokens, out.path, params)
            meta.update(tile=result.tile, ray=result.executor == "ray")
        else:
            result = semrsm.semantic_rsm(
                tokens, kernel=args.kernel, matcher=args.matcher, device=args.device,
                progress=_progress_printer("matching"), return_result=True, **params,
            )
        meta["seconds"] = round(result.seconds, 3)
        arrays = {"spatial": spatial, "semantic": result.rsm,
                  "meta": np.asarray(json.dumps(meta)), **extra}
        out.write(lambda f: np.savez_compressed(f, **arrays))
    if tiles_cli.wants_tiles(args):
        tiles_cli.finish_tiles(result, keep=args.keep_tiles)
    n = spatial.shape[0]
    off = ~np.eye(n, dtype=bool)
    print(
        f"wrote {out.path}: {n} images, mean off-diagonal {args.kernel} similarity "
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

    rsm = sub.add_parser("rsm", help="compute the spatio-semantic and semantic RSMs")
    src = rsm.add_mutually_exclusive_group(required=True)
    src.add_argument("--tokens", help="a .npy of shape (N,S,C) or (N,C,H,W)")
    add_model_arguments(rsm, model_to=src)
    rsm.add_argument("--layer", help="layer name (see: python -m semrsm layers --model M)")
    add_config_arguments(rsm)
    rsm.add_argument("--out", required=True, help="output .npz (spatial, semantic, meta)")
    tiles_cli.add_tile_arguments(rsm)
    rsm.set_defaults(func=_cmd_rsm)

    layers = sub.add_parser("layers", help="list a model's layers with their shapes")
    add_model_arguments(layers)
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


def _one_line(err: BaseException) -> str:
    """An error as one line of at most 2,000 characters (no traceback, no wall of text)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 2000 else text[:2000] + " …"


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or "out of memory" in str(err).lower()


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error is one ``error: …`` line on stderr and exit code 2.

    Ctrl-C (KeyboardInterrupt) propagates: :func:`run`, the ``python -m semrsm`` entry
    point, turns it into ``interrupted`` and exit code 130.
    """
    global _line_open
    _line_open = False
    parser = build_parser()
    args = fill_defaults(parser.parse_args(argv))
    if args.command == "rsm" and args.model and not args.layer:
        parser.error("--model needs --layer (list them with: python -m semrsm layers --model M)")
    if args.command == "layers" and not args.model:
        parser.error("layers needs --model")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        _say(f"error: {_one_line(err)}")
    except Exception as err:  # noqa: BLE001 - a user sees one line, never a traceback
        if _is_out_of_memory(err):
            _say("error: ran out of memory: use fewer images, a later layer (fewer positions) "
                 f"or the CPU device ({_one_line(err)[:200]})")
        else:
            _say(f"error: {type(err).__name__}: {_one_line(err)} (unexpected; set "
                 f"{DEBUG_ENV}=1 to see where it happened)")
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
    return 2


class _Terminated(BaseException):
    """SIGTERM as an exception, so that cleanup (temporary files) runs on the way out."""


#: After Ctrl-C or SIGTERM the CLI unwinds (removing its temporaries) and exits. Should the
#: way out block (a worker thread or a native call that does not return), the process is
#: ended this many seconds after the signal anyway, its temporaries removed.
EXIT_GRACE_SECONDS = 15.0

_stop_said = threading.Event()  # the one-line stop message has been printed
_stop_started = threading.Event()  # a grace timer runs


def _end_after_grace(code: int, word: str) -> None:
    """Start (once) a daemon timer that ends the process with ``code`` after
    :data:`EXIT_GRACE_SECONDS` unless it has ended by then."""
    if _stop_started.is_set():
        return
    _stop_started.set()

    def force() -> None:
        time.sleep(EXIT_GRACE_SECONDS)
        discard_pending()
        if not _stop_said.is_set():
            _say(word)
        sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=force, name="semrsm-exit-grace", daemon=True).start()


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _end_after_grace(TERMINATED_EXIT, "terminated")
    raise _Terminated


def _on_sigint(signum: int, frame: object) -> None:
    _end_after_grace(INTERRUPTED_EXIT, "interrupted")
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> int:
    """``python -m semrsm``: :func:`main`, with Ctrl-C as ``interrupted`` (exit code 130)
    and SIGTERM as ``terminated`` (143), each one line on stderr and never a traceback;
    temporary output files are removed either way, and the process ends within
    :data:`EXIT_GRACE_SECONDS` of the signal whatever it was doing."""
    previous = {}
    with contextlib.suppress(ValueError, OSError):  # not the main thread: keep the defaults
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
    try:
        return main(argv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a trace
        _say("interrupted")
        _stop_said.set()
        return INTERRUPTED_EXIT
    except _Terminated:
        _say("terminated")
        _stop_said.set()
        return TERMINATED_EXIT
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) in (_on_sigterm, _on_sigint):
                signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(run())
