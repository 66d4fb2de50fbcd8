"""Command-line options shared by ``rsm``, ``compare`` and ``search``, built from the
configuration's defaults (:data:`semrsm.explorer.config.CONFIG_DEFAULTS`) and the matcher
registry (:mod:`semrsm.matching.registry`).

Options of the configuration default to None ("not given") and :func:`fill_defaults`
puts in the configuration's defaults after parsing, so the command line and the app
start from the same values; ``--help`` shows them. Each matcher parameter of the
registry is an option (``--window``, ``--k``...) whose value goes to the matchers that
take it (:func:`matcher_params`). Imports neither torch nor numba.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from typing import Any

from semrsm.explorer.config import CONFIG_DEFAULTS, DEVICES, WEIGHTS
from semrsm.kernels import KERNELS
from semrsm.matching import check_matcher, split_matcher_options
from semrsm.matching.registry import cli_params, matcher_names, owners

__all__ = [
    "add_config_arguments",
    "add_matcher_arguments",
    "add_model_arguments",
    "fill_defaults",
    "matcher_params",
]

#: the attribute a matcher parameter's option stores its value in
_PARAM_DEST = "matcher_param_{}"
#: parser attribute listing the dests :func:`fill_defaults` fills: dest → config field
_FILLED = "_semrsm_config_dests"


def _default(field: str) -> str:
    return f" (default {CONFIG_DEFAULTS[field]})"


def _filled(p: argparse.ArgumentParser, dest: str, field: str) -> None:
    """Record that ``dest`` takes the configuration's ``field`` when not given."""
    p.set_defaults(**{_FILLED: {**(p.get_default(_FILLED) or {}), dest: field}})


def add_model_arguments(p: argparse.ArgumentParser, suffix: str = "", *, model_to: Any = None,
                        model_default: str | None = None, what: str = "") -> None:
    """``--model``, ``--weights``, ``--checkpoint`` (each with ``suffix``, e.g. ``-a``).

    Parameters
    ----------
    p : the parser.
    suffix : appended to each option (``--model-a``).
    model_to : the parser or group that takes ``--model`` (a mutually exclusive group of
        ``rsm``); default ``p``.
    model_default : ``--model``'s default (None: not given).
    what : who the options describe, for the help (``"A"``).
    """
    of = f" of {what}" if what else ""
    shown = f" (default {model_default})" if model_default else ""
    (model_to or p).add_argument(
        f"--model{suffix}", default=model_default,
        help=f"model{of}: demo-resnet, demo-vit or any timm model name{shown}")
    p.add_argument(f"--weights{suffix}", default=None,
                   help=f"weights{of}: {' | '.join(WEIGHTS)} (file: with --checkpoint{suffix})"
                   + _default("weights"))
    _filled(p, f"weights{suffix}".replace("-", "_"), "weights")
    p.add_argument(f"--checkpoint{suffix}", help=f"checkpoint file{of} (.safetensors, .pt/.pth)")


def add_matcher_arguments(p: argparse.ArgumentParser, *, taken: Collection[str] = ()) -> None:
    """``--matcher`` (the registry's names) and one option per matcher parameter.

    Parameters
    ----------
    p : the parser.
    taken : options the command already uses for something else; a parameter whose main
        option is taken gets its first free alias (search's ``--k`` is its number of
        results, so top-k greedy's k is ``--topk`` there).
    """
    p.add_argument("--matcher", default=None, choices=matcher_names(),
                   help="how the positions of two images are paired" + _default("matcher"))
    _filled(p, "matcher", "matcher")
    for name, param in cli_params().items():
        options = [o for o in param.options if o not in taken]
        if not options:
            continue
        extra = {"choices": param.choices} if param.choices else {}
        p.add_argument(*options, dest=_PARAM_DEST.format(name), type=param.kind, default=None,
                       metavar=None if param.choices else name.upper(),
                       help=f"{param.doc} (--matcher {' / '.join(owners(name))}; "
                       f"default {param.default})", **extra)


def add_config_arguments(p: argparse.ArgumentParser, *, images: bool = True,
                         taken: Collection[str] = ()) -> None:
    """The options of a run's configuration: ``--images``, ``--seed``, ``--kernel``,
    ``--matcher`` with its parameters (:func:`add_matcher_arguments`) and ``--device``.

    Parameters
    ----------
    p : the parser.
    images : whether to add ``--images`` (a command with its own image options has none).
    taken : options the command uses for something else (see :func:`add_matcher_arguments`).
    """
    if images:
        p.add_argument("--images", default=None,
                       help="image set: shapes:N, shapes:N:K, photos, crops:astronaut[,coffee][:K], "
                       "or a folder" + _default("images"))
        _filled(p, "images", "images")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of generated image sets" + _default("seed"))
    _filled(p, "seed", "seed")
    p.add_argument("--kernel", default=None, choices=KERNELS, help="kernel" + _default("kernel"))
    _filled(p, "kernel", "kernel")
    add_matcher_arguments(p, taken=taken)
    # no choices: the library's message says what is wrong with "cuda:9" or "tpu"
    p.add_argument("--device", default=None, help=" | ".join(DEVICES) + _default("device"))
    _filled(p, "device", "device")


def fill_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Put the configuration's defaults into the options that were not given (None);
    returns ``args``. Idempotent."""
    for dest, field in (getattr(args, _FILLED, None) or {}).items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, CONFIG_DEFAULTS[field])
    return args


def matcher_params(args: argparse.Namespace, *, validate: bool = False) -> dict[str, Any]:
    """The matcher parameters given on the command line for ``args.matcher``; one given
    for another matcher is a warning on stderr (it would change nothing).

    Parameters
    ----------
    args : parsed options (after :func:`fill_defaults`).
    validate : check the values now (a bad value is a message before any computation).

    Raises
    ------
    ValueError
        Unknown matcher, or (``validate``) a bad value.
    """
    given = {name: getattr(args, _PARAM_DEST.format(name), None) for name in cli_params()}
    params, ignored = split_matcher_options(args.matcher, given)
    for name, matchers in ignored:
        print(f"warning: {cli_params()[name].options[0]} is a parameter of --matcher {' / '.join(matchers)}; "
              f"ignored with --matcher {args.matcher}", file=sys.stderr)
    if validate:
        check_matcher(args.matcher, params)
    return params
