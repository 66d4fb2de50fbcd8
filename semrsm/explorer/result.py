"""What a run produced (:class:`ExplorerResult`): RSMs, matchings on demand and downloads."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

import semrsm
from semrsm.explorer.config import ExplorerConfig
from semrsm.pairs import pair_ids


@dataclass
class ExplorerResult:
    """Everything the pages show for one configuration.

    Attributes
    ----------
    config : ExplorerConfig
        With ``layer`` resolved to the layer used.
    images : list of PIL.Image.Image
        The images as loaded (RGB, original size).
    thumbnails : list of PIL.Image.Image
        96×96 RGB thumbnails.
    names : list of str
    labels : list of str or None
    skipped : list of (str, str)
        Inputs that could not be used, with the reason.
    description : str
        Where the images come from.
    meta : dict
        The image set's meta (object boxes for shapes, offsets for crops).
    tokens : ndarray (N, S, C) float32
        The layer's tokens (prefix tokens removed).
    grid : (int, int)
        Token grid (H, W), ``H * W == S``.
    layer : semrsm.layers.LayerInfo
    layers : list of semrsm.layers.LayerInfo
        All layers of the model, in network order.
    spatial, semantic : dict str → ndarray (N, N) float64
        Both RSMs for every kernel of :data:`semrsm.kernels.KERNELS`.
    inner : ndarray (N, N) float64
        Matched inner products ``<R_i, P*_ij R_j>``.
    pairs : ndarray (P, 2) int64 or None
        Pairs ``i < j`` in row-major order; with ``perms``.
    perms : ndarray (P, S) int32 or None
        ``perms[p, s]``: position of image ``pairs[p, 1]`` matched to position ``s`` of
        image ``pairs[p, 0]``; None when too large to keep (see :meth:`matching`).
    proba : ndarray (N, K) float64 or None
        Predicted class probabilities (None when the model has no classifier).
    class_names : list of str or None
    model_name, weights, weights_id : str
    sigma2 : dict
        RBF bandwidths used (``{"spatial": ..., "semantic": ...}``).
    timings : dict str → float
        Seconds per stage (``images``, ``extract``, ``match``, ``predict``, ``total``).
    cache_hits : dict str → bool
        Which stages were served from the cache (``tokens``, ``rsm``, ``proba``).
    key : str
        The RSM cache key (identifies this result).
    matcher_params : dict or None
        The matcher's parameters with defaults filled in (see :attr:`params`).
    """

    config: ExplorerConfig
    images: list[Image.Image]
    thumbnails: list[Image.Image]
    names: list[str]
    labels: list[str] | None
    skipped: list[tuple[str, str]]
    description: str
    meta: dict
    tokens: np.ndarray
    grid: tuple[int, int]
    layer: Any
    layers: list[Any]
    spatial: dict[str, np.ndarray]
    semantic: dict[str, np.ndarray]
    inner: np.ndarray
    pairs: np.ndarray | None
    perms: np.ndarray | None
    proba: np.ndarray | None
    class_names: list[str] | None
    model_name: str
    weights: str
    weights_id: str
    sigma2: dict[str, float]
    timings: dict[str, float]
    cache_hits: dict[str, bool]
    key: str
    matcher_params: dict[str, Any] | None = None
    _transform: Any = field(default=None, repr=False)
    _mean_std: tuple[Any, Any] | None = field(default=None, repr=False)

    # ----------------------------------------------------------- convenience
    @property
    def n(self) -> int:
        """Number of images."""
        return len(self.names)

    @property
    def kernel(self) -> str:
        """The kernel chosen in the configuration."""
        return self.config.kernel

    @property
    def params(self) -> dict[str, Any]:
        """The matcher's parameters with defaults filled in (``config.params``, kept with
        the result so that reading them imports no matcher registry)."""
        if self.matcher_params is not None:
            return dict(self.matcher_params)
        return self.config.params

    @property
    def spatial_rsm(self) -> np.ndarray:
        """Spatio-semantic RSM of the chosen kernel, (N, N) float64."""
        return self.spatial[self.config.kernel]

    @property
    def semantic_rsm(self) -> np.ndarray:
        """Semantic RSM of the chosen kernel, (N, N) float64."""
        return self.semantic[self.config.kernel]

    def matching(self, i: int, j: int) -> tuple[np.ndarray, float]:
        """The matching of image ``j``'s positions to image ``i``'s.

        Returns
        -------
        perm : ndarray (S,) int64
            ``tokens[j][perm[s]]`` is matched to ``tokens[i][s]``.
        value : float
            The matched inner product ``sum_s <tokens[i][s], tokens[j][perm[s]]>``.

        Raises
        ------
        ValueError
            Indices out of range.
        """
        n = self.n
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"pair ({i}, {j}) is out of range for {n} images")
        s = self.tokens.shape[1]
        if i == j:
            return np.arange(s, dtype=np.int64), float(self.inner[i, i])
        a, b = (i, j) if i < j else (j, i)
        if self.perms is not None and self.pairs is not None:
            p = pair_ids(a, b, n)
            if tuple(self.pairs[p]) == (a, b):
                perm = self.perms[p].astype(np.int64)
                if i > j:
                    perm = np.argsort(perm).astype(np.int64)
                return perm, float(self.inner[i, j])
        from semrsm.matching import match_pair

        perm, value = match_pair(
            self.tokens[i].astype(np.float64),
            self.tokens[j].astype(np.float64),
            matcher=self.config.matcher,
            **self.params,
        )
        return np.asarray(perm, dtype=np.int64), float(value)

    def model_view(self, i: int) -> Image.Image:
        """Image ``i`` as the model sees it (after resizing and cropping), RGB.

        The token grid covers this image evenly, so overlays go on it.
        """
        img = self.images[i]
        if self._transform is None or self._mean_std is None:
            return img
        try:
            x = self._transform(img)
            arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
            if arr.ndim != 3 or arr.shape[0] not in (1, 3):
                return img
            mean = np.asarray(self._mean_std[0], dtype=np.float64).reshape(-1, 1, 1)
            std = np.asarray(self._mean_std[1], dtype=np.float64).reshape(-1, 1, 1)
            arr = np.clip((arr * std + mean) * 255.0, 0, 255).round().astype(np.uint8)
            arr = np.repeat(arr, 3, axis=0) if arr.shape[0] == 1 else arr
            return Image.fromarray(arr.transpose(1, 2, 0), mode="RGB")
        except Exception:  # noqa: BLE001 - a display helper must not break a page
            return img

    # ----------------------------------------------------------- downloads
    def descriptors(self) -> dict[str, str]:
        """What the RSMs were computed from, as strings."""
        return {
            "model": self.model_name,
            "weights": self.weights,
            "weights_id": self.weights_id,
            "layer": self.layer.name,
            "grid": f"{self.grid[0]}x{self.grid[1]}",
            "kernel": self.config.kernel,
            "matcher": self.config.matcher,
            "matcher_params": json.dumps(self.params, sort_keys=True),
            "images": self.description,
            "semrsm_version": semrsm.__version__,
        }

    def bundle_npz(self) -> bytes:
        """One ``.npz`` with both RSMs of the chosen kernel and their descriptors.

        Arrays: ``spatial``, ``semantic`` (N, N) float64; ``names``, ``labels`` (N,) str
        (labels empty strings when the set has none); and 0-d str arrays ``model``,
        ``weights``, ``weights_id``, ``layer``, ``grid``, ``kernel``, ``matcher``,
        ``matcher_params`` (JSON), ``images``, ``semrsm_version``. Loads with
        ``numpy.load(path, allow_pickle=False)``.
        """
        buf = io.BytesIO()
        arrays: dict[str, np.ndarray] = {
            "spatial": self.spatial_rsm,
            "semantic": self.semantic_rsm,
            "names": np.array(self.names, dtype=str),
            "labels": np.array(
                self.labels if self.labels is not None else [""] * self.n, dtype=str
            ),
        }
        arrays.update({k: np.array(v) for k, v in self.descriptors().items()})
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def rsm_npy(self, which: str) -> bytes:
        """``.npy`` bytes of the ``"spatial"`` or ``"semantic"`` RSM of the chosen kernel."""
        buf = io.BytesIO()
        np.save(buf, self._which(which), allow_pickle=False)
        return buf.getvalue()

    def rsm_csv(self, which: str) -> str:
        """CSV of the ``"spatial"`` or ``"semantic"`` RSM: a header of image names, then one
        row per image starting with its name."""
        m = self._which(which)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["image", *self.names])
        for name, row in zip(self.names, m, strict=True):
            w.writerow([name, *(f"{v:.10g}" for v in row)])
        return out.getvalue()

    def _which(self, which: str) -> np.ndarray:
        if which == "spatial":
            return self.spatial_rsm
        if which == "semantic":
            return self.semantic_rsm
        raise ValueError(f"which must be 'spatial' or 'semantic', got {which!r}")
