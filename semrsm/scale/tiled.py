"""A semantic RSM computed tile by tile: in this process or on Ray, resumable from a store.

Flow: validate the tokens → plan the ``B × B`` tiles on and above the diagonal → load the
tiles a store already holds → compute the others (here, or one Ray task each), storing
each the moment it is finished → assemble the matched inner products, with the squared
norms on the diagonal → apply every kernel once to the whole matrix (the RBF median is
the whole RSM's). The result equals :func:`semrsm.semantic_rsm` bit for bit for the same
matcher (same per-chunk code, see :mod:`semrsm.blocks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semrsm.arguments import check_match_arguments
from semrsm.blocks import token_norms
from semrsm.cache_schema import tile_run_key
from semrsm.costs import tile_bytes_per_pair, tile_chunk_pairs
from semrsm.devices import resolve_device
from semrsm.matching.scheduling import CancelLike, check_cancel
from semrsm.memory import MemoryEstimate
from semrsm.rsm import (
    _CHUNKS_ALIVE,
    _SOLVER_BYTES,
    _check_rsm_memory,
    _finish,
    _kernels_bytes,
)
from semrsm.scale.ray_pool import Closing
from semrsm.scale.store import TileStore, tokens_digest
from semrsm.scale.tiles import Tile, compute_tile, place_tile, plan_tiles, tile_task
from semrsm.tokens import ArrayLike, squared_norms, validate_tokens

DEFAULT_TILE = 1024


@dataclass
class TileProgress:
    """Where a tiled run stands; passed to the ``progress`` callback.

    Attributes
    ----------
    tiles_done, tiles_total : tiles finished (stored ones included) and in all.
    tiles_reused : tiles taken from the store instead of computed.
    pairs_done, pairs_total : assignments finished (reused included) and in all.
    pairs_per_s : assignments per second computed by this run (0 before its first tile).
    eta_s : seconds left at that rate (None before the first computed tile).
    elapsed_s : seconds since the computation started.
    tile : the tile just finished (None for the first call).
    """

    tiles_done: int
    tiles_total: int
    tiles_reused: int
    pairs_done: int
    pairs_total: int
    pairs_per_s: float
    eta_s: float | None
    elapsed_s: float
    tile: Tile | None = None


TileProgressCallback = Callable[[TileProgress], None]


@dataclass
class TiledResult:
    """A tiled semantic RSM and how it was computed.

    Attributes
    ----------
    rsm : (N, N) float64 ndarray, or a dict kernel → ndarray when several kernels were asked.
    inner : (N, N) float64 matched inner products (diagonal ``‖R_i‖²``).
    kernels, matcher, params, sigma2 : as :class:`semrsm.SemanticResult`.
    tile : images per tile side; tiles_total, tiles_computed, tiles_reused : counts.
    pairs_computed : assignments solved by this run.
    executor : "local" or "ray"; workers : tiles run at once; device_kind : "cpu"/"cuda".
    store : the tile store's folder, or None.
    tile_seconds : compute time of each computed tile (inside its task).
    seconds : wall time of the call.
    """

    rsm: np.ndarray | dict[str, np.ndarray]
    inner: np.ndarray
    kernels: list[str]
    matcher: str
    params: dict[str, Any]
    sigma2: dict[str, float]
    tile: int
    tiles_total: int
    tiles_computed: int
    tiles_reused: int
    pairs_computed: int
    executor: str
    workers: int
    device_kind: str
    store: Path | None
    tile_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


class LocalTiles(Closing):
    """Runs tiles one after the other in this process (the interface of :class:`RayTiles`)."""

    slots = 1

    def __init__(self, device: torch.device):
        self.device = device
        self.device_kind = device.type

    def run(
        self,
        tokens: torch.Tensor,
        norms: torch.Tensor | None,
        tiles: list[Tile],
        spec: dict[str, Any],
        on_tile: Callable[[Tile, np.ndarray, float], None],
        *,
        max_retries: int = 0,
        cancel: CancelLike = None,
    ) -> None:
        for t in tiles:
            check_cancel(cancel)
            nj = None if (norms is None or t.diagonal) else norms[t.j0:t.j1]
            block, seconds = compute_tile(
                tokens[t.i0:t.i1], None if t.diagonal else tokens[t.j0:t.j1],
                spec["matcher"], spec["params"],
                norms_i=None if norms is None else norms[t.i0:t.i1], norms_j=nj,
                backend=spec["backend"], chunk_pairs=spec["chunk_pairs"], cancel=cancel,
            )
            on_tile(t, block, seconds)


class RayTiles(Closing):
    """Runs tiles as Ray tasks, one per tile (see :class:`semrsm.scale.ray_pool.RayPool`).

    The tokens go into the object store once, cut into the row blocks of the tiles, so a
    task reads only its two blocks and a node fetches a block once for all its tasks.
    """

    def __init__(self, address: str | bool, **pool_args: Any):
        from semrsm.scale.ray_pool import RayPool, task_threads  # ray: when connecting

        self.pool = RayPool(address, **pool_args)
        self.device_kind = self.pool.device_kind
        self.slots = self.pool.slots
        self.threads = task_threads(self.pool.options)

    # the signature of LocalTiles.run, repeated on purpose: both executors serve one
    # interface (tiled_rsm calls either), only the default number of retries differs
    def run(
        self,
        tokens: torch.Tensor,
        norms: torch.Tensor | None,
        tiles: list[Tile],
        spec: dict[str, Any],
        on_tile: Callable[[Tile, np.ndarray, float], None],
        *,
        max_retries: int = 3,
        cancel: CancelLike = None,
    ) -> None:
        arr = tokens.detach().cpu().numpy()
        nrm = None if norms is None else norms.detach().cpu().numpy()
        spans = sorted({(t.i0, t.i1) for t in tiles} | {(t.j0, t.j1) for t in tiles})
        parts = {(a, b): self.pool.put((arr[a:b], None if nrm is None else nrm[a:b]))
                 for a, b in spans}
        task_spec = {**spec, "device": self.device_kind, "threads": self.threads}
        jobs = [(t, (parts[(t.i0, t.i1)], None if t.diagonal else parts[(t.j0, t.j1)], task_spec))
                for t in tiles]
        self.pool.map(tile_task, jobs, lambda t, out: on_tile(t, *out),
                      max_retries=max_retries, cancel=cancel)

    def close(self) -> None:
        self.pool.close()


def tiled_memory(
    n: int, s: int, c: int, *, itemsize: int = 4, copy_bytes: int = 0, kernels: int = 1,
    tile: int = DEFAULT_TILE, on_ray: bool = False, chunk_pairs: int | None = None,
    device_type: str = "cpu",
) -> MemoryEstimate:
    """Estimated peak memory of this process in :func:`tiled_semantic_rsm`, beyond the input.

    The (N, N) float64 matched inner products ``8 N²`` and the converted tokens are alive
    throughout; then the larger of: the kernels step ``8 N² (kernels + 3) + 2 N²`` and, for
    tiles computed here, one tile's cost chunks and block (as :func:`semrsm.rsm.semantic_memory`
    counts them). On Ray, a copy of the tokens goes into the object store, which lives in
    this machine's shared memory when the driver runs on a node of the cluster.
    """
    m = min(n, tile)
    parts = {
        "converted tokens": copy_bytes if device_type == "cpu" else 0,
        "(N, N) inner products": 8 * n * n,
        "tokens in Ray's object store": n * s * c * itemsize if on_ray else 0,
    }
    phases = {f"kernel step ({kernels} kernel{'s' if kernels > 1 else ''})": _kernels_bytes(n, kernels)}
    if not on_ray and device_type == "cpu":
        b = tile_chunk_pairs(max(2 * m, 2), s, itemsize, chunk_pairs)
        phases["one tile: its cost chunks and block"] = (
            _CHUNKS_ALIVE * b * tile_bytes_per_pair(s, itemsize) + _SOLVER_BYTES * b * s + 8 * m * m
        )
    name, phase = max(phases.items(), key=lambda kv: kv[1])
    return MemoryEstimate({**parts, name: phase})


def tiled_semantic_rsm(
    tokens: ArrayLike,
    kernel: str | Sequence[str] = "cosine",
    matcher: str = "exact",
    *,
    tile: int = DEFAULT_TILE,
    ray: str | bool | None = None,
    store: str | Path | None = None,
    progress: TileProgressCallback | None = None,
    device: str | torch.device = "auto",
    backend: str = "auto",
    chunk_pairs: int | None = None,
    sigma2: float | None = None,
    bandwidth: str = "median",
    gpus_per_tile: float | None = None,
    cpus_per_tile: float | None = None,
    max_retries: int = 3,
    resource_timeout: float = 30.0,
    cancel: CancelLike = None,
    return_result: bool = False,
    max_memory: int | float | str | None = None,
    **matcher_params: Any,
) -> np.ndarray | dict[str, np.ndarray] | TiledResult:
    """Semantic RSM computed as ``tile × tile`` tiles: in this process, or one Ray task per tile.

    Parameters
    ----------
    tokens : (N, S, C) or (N, C, H, W) numpy array or torch tensor, N ≥ 1.
    kernel, matcher, sigma2, bandwidth, backend, chunk_pairs, **matcher_params :
        as :func:`semrsm.semantic_rsm`.
    tile : images per tile side (default 1024): ``⌈N/tile⌉ (⌈N/tile⌉ + 1) / 2`` tiles.
    ray : None (tiles run in this process), True (Ray: the connected cluster, else
        ``$RAY_ADDRESS`` or one started with ``ray start`` on this machine, else a new local
        one), "auto", "local", "host:port" or "ray://host:port" (docs/SCALE.md).
    store : folder of the tile store; each finished tile is written there at once, and a
        rerun with the same tokens, matcher and parameters computes only the tiles it lacks.
        None: no store (nothing to resume).
    progress : called with a :class:`TileProgress` once before the first computed tile and
        after each tile; an exception it raises stops the run (stored tiles stay).
    device : "auto", "cpu" or "cuda": in this process where tiles compute; on Ray "auto"
        takes a GPU per tile when the cluster has GPUs, "cpu" never does.
    gpus_per_tile, cpus_per_tile : resources of a Ray task (default: 1 GPU when the cluster
        has GPUs, else 1 CPU).
    max_retries : Ray retries of a task whose worker or node died.
    resource_timeout : seconds to wait for a node that can run a tile before an error.
    cancel : threading.Event or callable; raises :class:`semrsm.Cancelled` once set.
    return_result : return a :class:`TiledResult` (counts, timings) instead of the RSM.
    max_memory : the memory budget of this process (bytes or a size such as ``"64G"``; None:
        ``$SEMRSM_MAX_MEMORY``, else min(8 GiB, half the available memory), see
        :mod:`semrsm.memory`), checked against :func:`tiled_memory` before anything is
        allocated or any cluster is contacted. The (N, N) matrices grow as N²: 20 GB each
        at N = 50,000 (docs/SCALE.md).

    Returns
    -------
    (N, N) float64 ndarray, a dict kernel → ndarray when ``kernel`` is a list, or a
    :class:`TiledResult`.

    Raises
    ------
    ValueError
        Everything :func:`semrsm.semantic_rsm` raises; ``tile < 1``; Ray not installed, an
        unreachable or malformed address, or a cluster without a node that can run a tile.
    semrsm.memory.MemoryLimitError (a ValueError)
        The estimated peak memory of this process is above the budget.
    RuntimeError
        A tile failed on the cluster after its retries, or the cluster lost all nodes able
        to run tiles (finished tiles are stored: rerun to resume).
    semrsm.Cancelled
        ``cancel`` was set.
    """
    started = time.perf_counter()
    args = check_match_arguments(kernel, matcher, matcher_params, sigma2=sigma2,
                                 chunk_pairs=chunk_pairs, backend=backend, bandwidth=bandwidth)
    kernels, sigma2, chunk_pairs, params = args.kernels, args.sigma2, args.chunk_pairs, args.params
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile: images per tile side must be a whole number ≥ 1, got {tile!r}")
    local = ray is None or ray is False
    # tokens are checked before any cluster work; for Ray they go to the object store from
    # host memory
    dev = resolve_device(device, tokens) if local else torch.device("cpu")
    _check_rsm_memory(
        "tiled_semantic_rsm", tokens, dev, max_memory,
        lambda n, s, c, **kw: tiled_memory(n, s, c, kernels=len(kernels), tile=int(tile),
                                           on_ray=not local, chunk_pairs=chunk_pairs, **kw),
    )
    t = validate_tokens(tokens, device=dev).detach()
    n = t.shape[0]
    executor: LocalTiles | RayTiles
    if local:
        executor = LocalTiles(dev)
    else:
        executor = RayTiles(
            ray, device=ray_device(device), gpus_per_task=gpus_per_tile,
            cpus_per_task=cpus_per_tile, resource_timeout=resource_timeout,
        )
    with executor:
        tiles = plan_tiles(n, int(tile))
        inner = np.diag(squared_norms(t))
        tile_store = None
        if store is not None:
            key = tile_run_key(tokens_digest(t), matcher, params, backend, executor.device_kind)
            tile_store = TileStore(store, key)
        todo: list[Tile] = []
        reused = 0
        for tl in tiles:
            block = tile_store.load(tl) if tile_store is not None else None
            if block is None:
                todo.append(tl)
            else:
                place_tile(inner, tl, block)
                reused += 1
        pending = set(todo)
        meter = _Meter(tiles, reused, sum(tl.pairs for tl in tiles if tl not in pending), progress)
        tile_seconds: list[float] = []

        def on_tile(tl: Tile, block: np.ndarray, seconds: float) -> None:
            place_tile(inner, tl, block)
            if tile_store is not None:
                tile_store.save(tl, block, seconds)
            tile_seconds.append(seconds)
            meter.finished(tl)

        meter.start()
        if todo:
            spec = {"matcher": matcher, "params": params, "backend": backend,
                    "chunk_pairs": chunk_pairs}
            executor.run(t, token_norms(t, matcher), todo, spec, on_tile,
                         max_retries=max_retries, cancel=cancel)
        kind, workers = executor.device_kind, executor.slots
    rsms, s2 = _finish(inner, kernels, sigma2, bandwidth)
    out = rsms[kernel] if isinstance(kernel, str) else rsms
    if not return_result:
        return out
    return TiledResult(
        rsm=out, inner=inner, kernels=kernels, matcher=matcher, params=params, sigma2=s2,
        tile=int(tile), tiles_total=len(tiles), tiles_computed=len(todo), tiles_reused=reused,
        pairs_computed=sum(tl.pairs for tl in todo),
        executor="local" if isinstance(executor, LocalTiles) else "ray", workers=workers,
        device_kind=kind, store=None if tile_store is None else tile_store.root,
        tile_seconds=tile_seconds, seconds=time.perf_counter() - started,
    )


def ray_device(device: str | torch.device) -> str:
    """A device argument as Ray tasks understand it: "auto", "cpu" or "cuda"."""
    name = device if isinstance(device, str) else device.type
    return "cuda" if name.startswith("cuda") or name == "gpu" else name


class _Meter:
    """Counts tiles and pairs, measures the rate of this run, calls the progress callback."""

    def __init__(self, tiles: list[Tile], reused: int, reused_pairs: int,
                 callback: TileProgressCallback | None):
        self.total = len(tiles)
        self.pairs_total = sum(t.pairs for t in tiles)
        self.reused = reused
        self.done = reused
        self.pairs_done = reused_pairs
        self.computed_pairs = 0
        self.callback = callback
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._report(None)

    def finished(self, tile: Tile) -> None:
        self.done += 1
        self.pairs_done += tile.pairs
        self.computed_pairs += tile.pairs
        self._report(tile)

    def _report(self, tile: Tile | None) -> None:
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.t0
        rate = self.computed_pairs / elapsed if elapsed > 0 and self.computed_pairs else 0.0
        left = self.pairs_total - self.pairs_done
        eta = (left / rate if rate > 0 else None) if left else 0.0
        self.callback(TileProgress(
            tiles_done=self.done, tiles_total=self.total, tiles_reused=self.reused,
            pairs_done=self.pairs_done, pairs_total=self.pairs_total, pairs_per_s=rate,
            eta_s=eta, elapsed_s=elapsed, tile=tile,
        ))
