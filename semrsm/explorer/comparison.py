"""Comparisons of explorer configurations, shared by the Compare page and
``python -m semrsm compare`` so that both give the same numbers.

Two configurations share the image set, kernel, matcher and device; they differ in model,
weights and layer. RSMs come from (and go to) the same cache as :func:`compute`.

    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig
    from semrsm.explorer.comparison import compare_configs

    base = ExplorerConfig(images="shapes:32")
    res = compare_configs(base.replace(model="demo-resnet", layer="layer3"),
                          base.replace(model="demo-vit", layer="blocks.3"), Cache())
    print(res.to_csv())
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semrsm.analysis import compare, compare_layers, compare_reference, load_reference
from semrsm.analysis.bootstrap import _check_boot
from semrsm.analysis.compare import Comparison, LayerComparison, ReferenceComparison
from semrsm.analysis.statistics import COMPARE_METHODS, METHOD_LABELS
from semrsm.atomic import AtomicOutput
from semrsm.cache import Cache
from semrsm.catalog import DEMO_MODELS
from semrsm.explorer.config import (
    DEFAULT_MODEL,
    WEIGHTS_TEXT,
    ExplorerConfig,
    ExplorerError,
    Progress,
)
from semrsm.explorer.pipeline import compute, layer_rsms

__all__ = [
    "add_compare_arguments",
    "cli_compare",
    "compare_configs",
    "compare_layer_grid",
    "compare_results",
    "compare_with_reference",
    "config_label",
    "same_representation",
    "shared_config",
]


def config_label(config: ExplorerConfig) -> str:
    """``"model layer"`` plus the weights when they are not the default ones, in the
    sidebar's words (``resnet18 (local checkpoint) layer3``)."""
    w = "" if config.weights == "default" else f" ({WEIGHTS_TEXT[config.weights]})"
    return f"{config.model}{w} {config.layer or ''}".strip()


def _weights_identity(config: ExplorerConfig) -> tuple[str, str | None]:
    """The weights a configuration loads, as :func:`semrsm.models.create_model` resolves
    ``default``: the demo weights of a demo model, else the checkpoint if one is given, else
    the (seeded, so always the same) random init."""
    w = config.weights
    if w == "default" and config.model.strip() not in DEMO_MODELS:
        w = "file" if config.checkpoint else "none"
    return w, (config.checkpoint if w == "file" else None)


def same_representation(a: ExplorerConfig, b: ExplorerConfig) -> bool:
    """Whether A and B extract the same tokens: same model, weights and layer. On the same
    images every comparison of the two is then trivially 1 (1.000 for CKA, Spearman and
    τ_a, an interval of zero width); the Compare page warns."""
    return (
        a.model.strip() == b.model.strip()
        and (a.layer or None) == (b.layer or None)
        and _weights_identity(a) == _weights_identity(b)
    )


# The bootstrap keywords (n_boot, ci, seed, methods) repeat in compare_results and
# compare_with_reference, and the signature has the shape of semrsm.rsm.semantic_memory's:
# public signatures that each document their own defaults, nothing shared to factor.
def compare_configs(
    a: ExplorerConfig,
    b: ExplorerConfig,
    cache: Cache,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    methods: Sequence[str] = COMPARE_METHODS,
    progress: Progress | None = None,
    models: tuple[Any, Any] = (None, None),
) -> Comparison:
    """A vs B (:func:`semrsm.analysis.compare`) for two explorer configurations.

    Parameters
    ----------
    a, b : ExplorerConfig over the same images (B's image set, seed, kernel are ignored:
        A's are used for both); ``layer`` None picks each model's default layer.
    cache : Cache
    n_boot, ci, seed, methods : the bootstrap and statistics of :func:`semrsm.analysis.compare`.
    progress : ``progress(stage, done, total)`` as in :func:`compute`.
    models : already loaded models of A and B (the app keeps them), or None.

    Returns
    -------
    Comparison, names ``(config_label(a), config_label(b))`` with the resolved layers.

    Raises
    ------
    As :func:`compute` and :func:`semrsm.analysis.compare`.
    """
    _check_boot(n_boot, ci)  # bad bootstrap settings fail before the RSMs are computed
    b = shared_config(a, b)
    ra = compute(a, cache, progress=progress, model=models[0], with_proba=False)
    rb = compute(b, cache, progress=progress, model=models[1], with_proba=False)
    return compare_results(ra, rb, n_boot=n_boot, ci=ci, seed=seed, methods=methods)


def compare_results(
    ra: Any,
    rb: Any,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    methods: Sequence[str] = COMPARE_METHODS,
) -> Comparison:
    """A vs B for two :class:`~semrsm.explorer.ExplorerResult` of the same images, with A's
    kernel; what :func:`compare_configs` and the Compare page both call.

    Raises
    ------
    ExplorerError
        The two results cover different images.
    """
    if ra.names != rb.names:
        raise ExplorerError("A and B must be computed on the same images in the same order")
    return compare(
        ra,
        rb,
        kernel=ra.kernel,
        methods=methods,
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        names=(config_label(ra.config), config_label(rb.config)),
    )


def shared_config(a: ExplorerConfig, b: ExplorerConfig) -> ExplorerConfig:
    """B with A's image set, kernel, matcher and device (the comparison needs the same images)."""
    return b.replace(
        images=a.images,
        uploads=a.uploads,
        labels_from_names=a.labels_from_names,
        seed=a.seed,
        kernel=a.kernel,
        matcher=a.matcher,
        matcher_params=a.matcher_params,
        device=a.device,
    )


def compare_layer_grid(
    a: ExplorerConfig,
    b: ExplorerConfig,
    layers_a: Sequence[str],
    layers_b: Sequence[str],
    cache: Cache,
    *,
    methods: Sequence[str] = ("cka",),
    progress: Progress | None = None,
    models: tuple[Any, Any] = (None, None),
) -> LayerComparison:
    """Every layer of A's model against every layer of B's, classic next to semantic.

    Returns
    -------
    LayerComparison with names ``(a.model, b.model)``.
    """
    b = shared_config(a, b)
    if not layers_a or not layers_b:
        raise ExplorerError("pick at least one layer of each model")
    la = layer_rsms(a, cache, list(layers_a), model=models[0], progress=progress)
    lb = layer_rsms(b, cache, list(layers_b), model=models[1], progress=progress)
    return compare_layers(la, lb, kernel=a.kernel, methods=methods, names=(a.model, b.model))


def compare_with_reference(
    reference: Any,
    a: ExplorerConfig,
    layers: Sequence[str],
    cache: Cache,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    methods: Sequence[str] = COMPARE_METHODS,
    progress: Progress | None = None,
    model: Any = None,
) -> ReferenceComparison:
    """Each layer of A's model against a reference (:func:`semrsm.analysis.compare_reference`).

    The reference is put in the image order by name when it names its images.
    """
    if not layers:
        raise ExplorerError("pick at least one layer")
    _check_boot(n_boot, ci)
    from semrsm.explorer.sources import load_images

    images = load_images(a, cache)
    rs = layer_rsms(a, cache, list(layers), model=model, images=images, progress=progress)
    return compare_reference(
        reference,
        rs,
        kernel=a.kernel,
        methods=methods,
        n_boot=n_boot,
        ci=ci,
        seed=seed,
        names=list(images.names),
    )


# --------------------------------------------------------------------------- command line


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m semrsm compare``."""
    from semrsm.cli_args import add_config_arguments, add_model_arguments

    for side, model in (("a", DEFAULT_MODEL), ("b", "demo-vit")):
        add_model_arguments(p, f"-{side}", model_default=model, what=side.upper())
        p.add_argument(f"--layer-{side}",
                       help=f"layer of {side.upper()} (default: the model's default layer)")
    add_config_arguments(p)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws over images (0: none)")
    p.add_argument("--ci", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--boot-seed", type=int, default=0, help="seed of the bootstrap draws")
    p.add_argument("--layers-a", help="layer x layer table: A's layers, comma-separated or 'all'")
    p.add_argument("--layers-b", help="layer x layer table: B's layers, comma-separated or 'all'")
    p.add_argument("--methods", default="cka",
                   help="statistics of the layer table, comma-separated: cka,spearman,kendall_tau_a")
    p.add_argument("--reference",
                   help="reference RSM/RDM, compared with A's layers (--layers-a, default "
                   "--layer-a): .npy or .csv/.txt (N x N in image order; text up to 64 MiB) or "
                   "rsatoolbox's HDF5 file (rdms.save(path, file_type='hdf5'), .hdf5/.h5); at most "
                   "10,000 images ($SEMRSM_MAX_REFERENCE_IMAGES raises it). Pickles (.pkl) are "
                   "refused: reading one can run code")
    p.add_argument("--reference-kind", default="auto", choices=["auto", "similarity", "dissimilarity"],
                   help="auto: a zero diagonal means a dissimilarity (RDM)")
    p.add_argument("--out", help="CSV of A vs B; the layer table goes to <out>_layers.csv, "
                   "the reference table to <out>_reference.csv")
    p.add_argument("--cache-dir", help="cache folder (default $SEMRSM_CACHE_DIR or ~/.cache/semrsm)")


def _layer_list(spec: str | None, model: Any) -> list[str]:
    from semrsm.layers import list_layers

    names = [li.name for li in list_layers(model)]
    if spec is None:
        return []
    if spec.strip() == "all":
        return names
    out = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in out if s not in names]
    if bad:
        raise ExplorerError(f"unknown layer(s) {bad}; choose among {names}")
    return out


def _cli_params(args: argparse.Namespace) -> tuple:
    """The matcher parameters given for ``--matcher``; a warning on stderr for one given
    to another matcher (it would change nothing)."""
    from semrsm.cli_args import matcher_params

    return tuple(matcher_params(args).items())


def _cli_outputs(args: argparse.Namespace) -> dict[str, AtomicOutput]:
    """The CSV files this run will write, created as temporaries now: an unwritable
    ``--out`` fails before the models run. Keys: "ab", "layers", "reference"."""
    if not args.out:
        return {}
    out = Path(args.out).expanduser()
    names = {"ab": out}
    if args.layers_a and args.layers_b:
        names["layers"] = out.with_name(out.stem + "_layers.csv")
    if args.reference:
        names["reference"] = out.with_name(out.stem + "_reference.csv")
    for path in names.values():
        if path.exists() and not path.is_file():
            raise ValueError(f"--out: {str(path)!r} exists and is not a regular file; "
                             "choose another name")
    outputs: dict[str, AtomicOutput] = {}
    try:
        for key, path in names.items():
            outputs[key] = AtomicOutput(path, "--out")
    except BaseException:
        for o in outputs.values():
            o.discard()
        raise
    return outputs


def _print_ab(res: Comparison, args: argparse.Namespace) -> None:
    print(f"A = {res.names[0]}, B = {res.names[1]}: {res.n} images ({args.images}), "
          f"{args.kernel} kernel, {args.matcher} matcher; {res.n_boot} bootstrap draws, "
          f"{res.ci:.0%} intervals")
    print(f"{'statistic':<18}" + "".join(f"{k:>30}" for k in res.estimates))
    for m in COMPARE_METHODS:
        print(f"{METHOD_LABELS[m]:<18}" + "".join(f"{format(per[m], '.4f'):>30}"
                                                   for per in res.estimates.values()))


def _print_grid(grid: LayerComparison, a: ExplorerConfig, b: ExplorerConfig) -> None:
    for m, per in grid.matrices.items():
        for kind, mat in per.items():
            print(f"\n{METHOD_LABELS.get(m, m)}, {kind}: rows {a.model}, columns {b.model}")
            print(" " * 12 + "".join(f"{lb:>12}" for lb in grid.layers_b))
            for la, row in zip(grid.layers_a, mat, strict=True):
                print(f"{la:<12}" + "".join(f"{v:>12.4f}" for v in row))


def _print_reference(rc: ReferenceComparison, ref: Any, a: ExplorerConfig) -> None:
    print(f"\nreference {rc.reference} ({ref.kind}) vs {a.model}:")
    for layer, per_kind in rc.estimates.items():
        for kind, per in per_kind.items():
            print(f"{layer:<12} {kind:<20}" + "".join(
                f"  {m} {format(e, '.4f')}" for m, e in per.items()))


def cli_compare(args: argparse.Namespace) -> int:
    """Body of ``python -m semrsm compare``: prints the tables, writes the CSVs; returns 0.

    Everything that can be checked without computing is checked first, in this order:
    matcher options, kernel, device and bootstrap settings, the output files (created as
    temporaries), the reference file, the models and their layer names. Only then do the
    RSMs of A and B run.
    """
    from semrsm.cache import default_cache_dir
    from semrsm.explorer.config import resolve_device
    from semrsm.explorer.sources import default_layer, load_model
    from semrsm.layers import list_layers

    base = ExplorerConfig(
        images=args.images, seed=args.seed, kernel=args.kernel, matcher=args.matcher,
        matcher_params=_cli_params(args), device=args.device,
    ).validate()
    resolve_device(base.device)
    _check_boot(args.n_boot, args.ci)
    a = base.replace(model=args.model_a, weights=args.weights_a, checkpoint=args.checkpoint_a,
                     layer=args.layer_a)
    b = base.replace(model=args.model_b, weights=args.weights_b, checkpoint=args.checkpoint_b,
                     layer=args.layer_b)
    outputs = _cli_outputs(args)
    try:
        ref = load_reference(args.reference, kind=args.reference_kind) if args.reference else None
        cache = Cache(args.cache_dir or default_cache_dir())
        ma, mb = load_model(a), load_model(b)
        layers_a = _layer_list(args.layers_a, ma)
        layers_b = _layer_list(args.layers_b, mb)
        res = compare_configs(a, b, cache, n_boot=args.n_boot, ci=args.ci, seed=args.boot_seed,
                              models=(ma, mb))
        _print_ab(res, args)
        if "ab" in outputs:
            print(f"wrote {outputs['ab'].write_text(res.to_csv())}")
        if layers_a and layers_b:
            methods = [m.strip() for m in args.methods.split(",") if m.strip()]
            grid = compare_layer_grid(a, b, layers_a, layers_b, cache, methods=methods,
                                      models=(ma, mb))
            _print_grid(grid, a, b)
            if "layers" in outputs:
                print(f"wrote {outputs['layers'].write_text(grid.to_csv())}")
        if ref is not None:
            layers = layers_a or [args.layer_a or default_layer(list_layers(ma)).name]
            rc = compare_with_reference(ref, a, layers, cache, n_boot=args.n_boot, ci=args.ci,
                                        seed=args.boot_seed, model=ma)
            _print_reference(rc, ref, a)
            if "reference" in outputs:
                print(f"wrote {outputs['reference'].write_text(rc.to_csv())}")
    finally:
        for o in outputs.values():
            o.discard()
    sys.stdout.flush()
    return 0
