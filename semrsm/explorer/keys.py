"""Cache keys: everything that determines a cache entry is part of its key.

Every key here is made by :func:`semrsm.cache.content_key`, which also hashes
:data:`semrsm.cache.CACHE_FORMAT`: a new cache format gives new keys of every kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import semrsm
from semrsm.cache import content_key
from semrsm.images import ImageSet
from semrsm.kernels import KERNELS


def images_digest(imageset: ImageSet) -> str:
    """Content hash of the pixels (mode, size and bytes of every image, in order).

    Names and labels are not part of it: they do not change tokens or RSMs.
    """
    parts = []
    for img in imageset.images:
        parts.append([img.mode, list(img.size), img.tobytes()])
    return content_key("images", parts)


def _plain(obj: Any) -> Any:
    """JSON-able, hashable copy of a data config (tuples → lists, other objects → str)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def tokens_key(model: Any, layer: str, digest: str) -> str:
    """Cache key of a layer's tokens: model name + weights identity, layer, data config
    (preprocessing), image pixels and package version."""
    return content_key(
        "tokens",
        semrsm.__version__,
        model.name,
        model.weights_id,
        layer,
        _plain(model.data_config),
        digest,
    )


def rsm_key(tok_key: str, matcher: str, params: Mapping[str, Any]) -> str:
    """Cache key of both RSMs (all kernels) and the matchings computed from some tokens."""
    return content_key("rsm", semrsm.__version__, tok_key, list(KERNELS), matcher, dict(params))


def proba_key(model: Any, digest: str) -> str:
    """Cache key of the class probabilities of a model on some images."""
    return content_key(
        "proba", semrsm.__version__, model.name, model.weights_id, _plain(model.data_config), digest
    )
