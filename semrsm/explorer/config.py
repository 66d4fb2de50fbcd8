"""The explorer's configuration, its errors and the constants the pages share.

The one source of defaults and choice lists: the app's sidebar, links and the command
line (:mod:`semrsm.cli_args`) read :data:`CONFIG_DEFAULTS`, :data:`DEVICES`,
:data:`WEIGHTS` and :data:`BUILTIN_SETS` from here. Imports neither torch nor numba (the
matcher registry is pure metadata; the device check is imported when first needed), so a
cached result can be drawn before them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from semrsm import devices
from semrsm.explorer.image_sources import BUILTIN_SOURCES
from semrsm.kernels import KERNELS

DEFAULT_MODEL = "demo-resnet"
DATA_ROOT_ENV = "SEMRSM_DATA_ROOT"
#: runs estimated longer than this (seconds) wait for an explicit click in the app
LONG_RUN_SECONDS = 20.0
#: matchings are kept (and cached) only up to this many bytes; beyond, pairs are re-matched
#: on demand by :meth:`ExplorerResult.matching`
PERMS_MAX_BYTES = 128 * 1024**2
#: the built-in image sets of the app (their sidebar controls: semrsm.explorer.image_sources)
BUILTIN_SETS = tuple(BUILTIN_SOURCES)
#: the image set of a default configuration: the first built-in set with its defaults
DEFAULT_IMAGES = BUILTIN_SOURCES[BUILTIN_SETS[0]].spec({})
DEVICES = ("auto", "cpu", "cuda")
#: the ``weights`` of a configuration (see :class:`ExplorerConfig`)
WEIGHTS = ("default", "pretrained", "none", "file")
#: the weights as people read them (the app's sidebar uses the same words), by the
#: configuration's ``weights`` and by a result's ``weights`` (where they came from)
WEIGHTS_TEXT = {
    "default": "default weights",
    "demo": "demo weights",
    "pretrained": "pretrained weights",
    "none": "random init",
    "file": "local checkpoint",
}

Progress = Callable[[str, int, int], None]


class ExplorerError(ValueError):
    """A configuration the explorer cannot run; the message says what to change."""


class ComputeError(RuntimeError):
    """The computation ran out of a resource (memory); the message says what to try."""


@dataclass(frozen=True)
class ExplorerConfig:
    """Everything that determines an explorer result.

    Attributes
    ----------
    model : str
        ``"demo-resnet"``, ``"demo-vit"`` or any timm model name.
    weights : str
        ``"default"`` (demo weights for demo models, none otherwise), ``"pretrained"``
        (timm's download and cache; needs network the first time), ``"none"`` (random
        initialisation) or ``"file"`` (``checkpoint``).
    checkpoint : str or None
        Path of a local checkpoint when ``weights == "file"``.
    layer : str or None
        Layer name from :func:`semrsm.layers.list_layers`; None picks
        :func:`default_layer`.
    images : str
        A built-in spec (``"shapes:32"``, ``"shapes:32:3"``, ``"photos"``,
        ``"crops:astronaut"``), ``"uploads"`` (then ``uploads`` lists the files) or
        ``"folder:<path relative to $SEMRSM_DATA_ROOT>"``.
    uploads : tuple of (str, str)
        ``(file name, sha256)`` of files stored with :meth:`semrsm.uploads.UploadStore.store`.
    labels_from_names : bool
        For uploads: label each image by the text of its file name before the first
        ``_`` or ``-`` (``cat_01.png`` → ``cat``); ignored when a name has neither.
    seed : int
        Seed of the procedural ``shapes`` set.
    kernel : str
        The kernel shown (all three are computed): "linear", "cosine" or "rbf".
    matcher : str
        A name of :data:`semrsm.matching.MATCHERS`.
    matcher_params : tuple of (str, value)
        The matcher's parameters, e.g. ``(("window", 64),)``.
    device : str
        "auto" (the GPU when there is one), "cpu" or "cuda".
    """

    model: str = DEFAULT_MODEL
    weights: str = "default"
    checkpoint: str | None = None
    layer: str | None = None
    images: str = DEFAULT_IMAGES
    uploads: tuple[tuple[str, str], ...] = ()
    labels_from_names: bool = False
    seed: int = 0
    kernel: str = "cosine"
    matcher: str = "exact"
    matcher_params: tuple[tuple[str, Any], ...] = ()
    device: str = "auto"

    def replace(self, **changes: Any) -> ExplorerConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def params(self) -> dict[str, Any]:
        """The matcher's parameters with defaults filled in (from the matcher registry,
        which imports neither torch nor numba).

        Raises
        ------
        ValueError
            Unknown matcher or parameter, or ``matcher_params`` not (name, value) pairs.
        """
        from semrsm.matching import check_matcher

        try:
            params = dict(self.matcher_params)
        except (TypeError, ValueError):
            raise ExplorerError(
                f"matcher_params: expected (name, value) pairs such as (('window', 64),), got "
                f"{str(self.matcher_params)[:60]!r}"
            ) from None
        return check_matcher(self.matcher, params)

    def validate(self) -> ExplorerConfig:
        """Check the fields that can be checked without loading anything.

        Returns
        -------
        ExplorerConfig
            ``self``, for chaining.

        Raises
        ------
        ExplorerError
            Unknown kernel, matcher, matcher parameter or device; ``weights="file"``
            without a checkpoint; ``images="uploads"`` without files; an empty model name.
        """
        if not isinstance(self.model, str) or not self.model.strip():
            raise ExplorerError("model: type a model name, e.g. 'demo-resnet' or 'resnet18'")
        if self.weights not in WEIGHTS:
            raise ExplorerError(
                f"weights: {self.weights!r} is not one of {', '.join(map(repr, WEIGHTS))}"
            )
        if self.weights == "file" and not self.checkpoint:
            raise ExplorerError(
                "a local checkpoint (weights='file') needs a checkpoint file: upload one or "
                "give its path, or pick other weights"
            )
        if self.kernel not in KERNELS:
            raise ExplorerError(f"kernel: {self.kernel!r} is not one of {KERNELS}")
        try:
            self.params  # noqa: B018 - validates matcher name and parameters
        except ValueError as err:
            raise ExplorerError(str(err)) from None
        if self.device not in DEVICES:
            raise ExplorerError(f"device: {self.device!r} is not one of {DEVICES}")
        if self.images == "uploads" and not self.uploads:
            raise ExplorerError("no uploaded files yet: upload a few images or pick a built-in set")
        return self


#: field → default of :class:`ExplorerConfig`: the defaults of the app and the command line
CONFIG_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(ExplorerConfig)
    if f.default is not dataclasses.MISSING
}


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is usable, else ``"cpu"``.

    :func:`semrsm.devices.resolve_device` for the explorer: it accepts only
    :data:`DEVICES`, returns the device *type* as a string (rates, estimates and messages
    are keyed by it) and raises the explorer's error with the library's message.

    Raises
    ------
    ExplorerError
        ``"cuda"`` asked on a machine without a usable GPU, or an unknown device.
    """
    if device not in DEVICES:
        raise ExplorerError(f"device: {device!r} is not one of {DEVICES}")
    try:
        return devices.resolve_device(device).type  # imports torch
    except ValueError as err:
        raise ExplorerError(str(err)) from None
