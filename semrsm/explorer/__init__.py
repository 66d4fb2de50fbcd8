"""The explorer's backend: one configuration in, both RSMs (and everything the pages draw) out.

The Streamlit pages only collect an :class:`ExplorerConfig` and draw an
:class:`ExplorerResult`; everything in between lives here and is usable from a script::

    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    result = compute(ExplorerConfig(model="demo-resnet", images="shapes:32"), Cache())
    result.spatial["cosine"], result.semantic["cosine"]      # (N, N) float64
    result.matching(0, 5)                                     # (perm, value) of one pair

Flow of :func:`compute`: load the model (or take the one given) → load the image set →
tokens of the layer (cached by model + weights identity, layer, preprocessing and the
image pixels) → both RSMs for *all* kernels with the matchings (cached by the tokens'
key, the matcher and its parameters; one assignment per pair serves every kernel) →
class probabilities (cached) → an :class:`ExplorerResult`.

Everything that determines a cache entry is part of its key (see :func:`tokens_key`,
:func:`rsm_key`), including :data:`semrsm.__version__`; the device is not, because
it does not change the result beyond rounding.

One job per module, in the order a run needs them:

==============  ==========================================================================
``config``      :class:`ExplorerConfig`, the errors, shared constants, :func:`resolve_device`
``sources``     the model, the image set (built in, uploads, server folders), the layer
``keys``        cache keys of tokens, RSMs and probabilities; the image digest
``estimate``    time estimates before a run (:func:`estimate_seconds`, :func:`plan`)
``pipeline``    :func:`compute` and :func:`layer_rsms`: tokens → RSMs → probabilities, cached
``result``      :class:`ExplorerResult`: RSMs, matchings on demand, downloads
``summary``     :func:`summarize` and :func:`explain_pair` of a result
==============  ==========================================================================
"""

from semrsm.explorer.config import (
    BUILTIN_SETS as BUILTIN_SETS,
)
from semrsm.explorer.config import (
    DATA_ROOT_ENV,
    DEFAULT_IMAGES,
    DEFAULT_MODEL,
    LONG_RUN_SECONDS,
    ComputeError,
    ExplorerConfig,
    ExplorerError,
    resolve_device,
)
from semrsm.explorer.config import (
    DEVICES as DEVICES,
)
from semrsm.explorer.config import (
    PERMS_MAX_BYTES as PERMS_MAX_BYTES,
)
from semrsm.explorer.config import (
    Progress as Progress,
)
from semrsm.explorer.estimate import RunPlan, estimate_seconds, plan
from semrsm.explorer.estimate import seconds_per_image as seconds_per_image
from semrsm.explorer.keys import images_digest, rsm_key, tokens_key
from semrsm.explorer.keys import proba_key as proba_key
from semrsm.explorer.pipeline import compute, layer_rsms
from semrsm.explorer.result import ExplorerResult
from semrsm.explorer.sources import (
    data_root,
    default_layer,
    labels_from_file_names,
    list_server_folders,
    load_images,
    load_model,
)
from semrsm.explorer.summary import explain_pair, summarize

# the pipeline calls the solver through this name, so a caller (or a test) can replace it
from semrsm.rsm import semantic_rsm as semantic_rsm

__all__ = [
    "DATA_ROOT_ENV",
    "DEFAULT_IMAGES",
    "DEFAULT_MODEL",
    "LONG_RUN_SECONDS",
    "ComputeError",
    "ExplorerConfig",
    "ExplorerError",
    "ExplorerResult",
    "RunPlan",
    "compute",
    "data_root",
    "default_layer",
    "estimate_seconds",
    "explain_pair",
    "images_digest",
    "labels_from_file_names",
    "layer_rsms",
    "list_server_folders",
    "load_images",
    "load_model",
    "plan",
    "resolve_device",
    "rsm_key",
    "summarize",
    "tokens_key",
]
