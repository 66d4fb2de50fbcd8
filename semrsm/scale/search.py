"""Semantic retrieval over a large gallery: pooled top-K, then semantic re-ranking.

A full semantic RSM of a gallery costs ``N²/2`` assignments; a query against it ``N``.
Search instead ranks the gallery by the cosine of mean-pooled token embeddings (one matrix
product, exact; faiss's exact inner-product index when installed and asked for), keeps the
top ``K`` candidates of each query, and re-ranks only those by the semantic similarity
(one assignment per query and candidate, through the per-chunk code of the RSMs:
:mod:`semrsm.blocks`). Mean pooling forgets where things are, as the semantic similarity
does, so the semantic top-k is mostly among the pooled top-K; ``bench/bench_scale.py``
measures how often, against the full semantic RSM (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from semrsm.blocks import cost_chunks, solve_chunks, token_norms
from semrsm.devices import resolve_device
from semrsm.kernels import check_kernels, kernel_from_block
from semrsm.matching import check_backend, check_matcher
from semrsm.matching.scheduling import CancelLike, check_cancel
from semrsm.tokens import ArrayLike, squared_norms, validate_tokens

INDEXES = ("auto", "torch", "faiss")
_SCORES_BYTES = 64 * 2**20  # the (queries, N) float64 scores of one pooled matrix product
_RAY_QUERIES_PER_TASK = 64


@dataclass
class SearchResult:
    """Rankings of a gallery for each query.

    Attributes
    ----------
    pooled_indices, pooled_scores : (Q, k) int64 / float64, the classic ranking: cosine of
        mean-pooled tokens, best first.
    indices, scores : (Q, k) int64 / float64, the semantic re-ranking of the pooled top-K:
        the kernel of the matched inner products, best first (ties keep the pooled order).
    candidates : (Q, K) int64, each query's pooled top-K, in pooled order.
    candidate_scores : (Q, K) float64, their semantic kernel values.
    k, rerank : results and candidates per query (clipped to the gallery's size).
    kernel, matcher, params : the semantic similarity used; ``sigma2`` the RBF bandwidth.
    index : "torch" or "faiss", what ranked the pooled embeddings.
    seconds : {"pooled": …, "rerank": …}; pairs : assignments solved (Q · K).
    """

    pooled_indices: np.ndarray
    pooled_scores: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    candidates: np.ndarray
    candidate_scores: np.ndarray
    k: int
    rerank: int
    kernel: str
    matcher: str
    params: dict[str, Any]
    index: str
    sigma2: float | None = None
    pairs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def pooled_embeddings(t: torch.Tensor) -> torch.Tensor:
    """Mean over positions, L2-normalised: (N, S, C) → (N, C) float32 (zero rows stay 0)."""
    pooled = t.to(torch.float32).mean(dim=1)
    return torch.nn.functional.normalize(pooled, dim=1)


class GalleryIndex:
    """A gallery's pooled embeddings for exact cosine top-K, and its tokens for re-ranking.

    Parameters
    ----------
    tokens : (N, S, C) or (N, C, H, W) gallery features, N ≥ 1 (validated as
        :func:`semrsm.semantic_rsm` does).
    index : "auto" (torch), "torch" (exact matrix product) or "faiss" (faiss's exact
        ``IndexFlatIP``; needs ``pip install faiss-cpu``).
    device : where the tokens are kept and products run ("cpu" or "cuda").

    Raises
    ------
    ValueError
        Bad tokens, an unknown index, or "faiss" without faiss installed.
    """

    def __init__(self, tokens: ArrayLike, *, index: str = "auto", device: torch.device | str = "cpu"):
        if index not in INDEXES:
            raise ValueError(f"index: unknown index {index!r}; use one of {INDEXES}")
        self.tokens = validate_tokens(tokens, device=torch.device(device)).detach()
        self.pooled = pooled_embeddings(self.tokens)
        self.index = "torch" if index == "auto" else index
        self._faiss = None
        if self.index == "faiss":
            try:
                import faiss
            except ImportError as err:
                raise ValueError("index='faiss': faiss is not installed; `pip install "
                                 "faiss-cpu`, or use index='torch' (exact, no extra package)") from err
            vectors = np.ascontiguousarray(self.pooled.cpu().numpy(), dtype=np.float32)
            self._faiss = faiss.IndexFlatIP(vectors.shape[1])
            self._faiss.add(vectors)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def top(self, queries: torch.Tensor, k: int, exclude: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` gallery images with the largest pooled cosine for each query.

        Parameters
        ----------
        queries : (Q, C) pooled, normalised query embeddings (:func:`pooled_embeddings`).
        k : results per query, 1 ≤ k ≤ N − (1 if ``exclude`` else 0).
        exclude : (Q,) int64 gallery index to leave out per query (the query itself; −1:
            none), or None.

        Returns
        -------
        indices : (Q, k) int64, best first (ties: the lower index first); scores : (Q, k) float64.
        """
        if self._faiss is not None:
            extra = 0 if exclude is None else 1
            scores, idx = self._faiss.search(
                np.ascontiguousarray(queries.cpu().numpy(), dtype=np.float32), k + extra)
            if exclude is not None:  # drop the excluded image where found, else the last hit
                rows = []
                for r in range(len(idx)):
                    hit = np.flatnonzero(idx[r] == exclude[r])
                    rows.append(np.delete(np.arange(k + 1), hit[0] if hit.size else k))
                keep = np.stack(rows)
                idx = np.take_along_axis(idx, keep, axis=1)
                scores = np.take_along_axis(scores, keep, axis=1)
            return idx.astype(np.int64), scores.astype(np.float64)
        out_i = np.empty((len(queries), k), dtype=np.int64)
        out_s = np.empty((len(queries), k), dtype=np.float64)
        gallery = self.pooled.to(queries.device)
        batch = max(1, _SCORES_BYTES // (8 * len(gallery)))  # bounded whatever the gallery
        for q0 in range(0, len(queries), batch):
            sims = (queries[q0:q0 + batch] @ gallery.T).cpu().numpy().astype(np.float64)
            if exclude is not None:
                ex = exclude[q0:q0 + batch]
                rows = np.flatnonzero(ex >= 0)
                sims[rows, ex[rows]] = -np.inf
            # a stable descending order: ties keep the lower gallery index first
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else \
                np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
            cand_s = np.take_along_axis(sims, part, axis=1)
            order = np.lexsort((part, -cand_s), axis=1)
            out_i[q0:q0 + len(sims)] = np.take_along_axis(part, order, axis=1)
            out_s[q0:q0 + len(sims)] = np.take_along_axis(cand_s, order, axis=1)
        return out_i, out_s


def matched_inner_of_pairs(
    queries: torch.Tensor, gallery: torch.Tensor, pairs: np.ndarray, matcher: str,
    params: dict[str, Any], *, backend: str = "auto", chunk_pairs: int | None = None,
    q_norms: torch.Tensor | None = None, g_norms: torch.Tensor | None = None,
    cancel: CancelLike = None, progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Matched inner products ``⟨R_q, P* R_g⟩`` of a list of (query, gallery) pairs: (P,) float64.

    ``pairs`` (P, 2) indexes ``queries`` and ``gallery``, grouped by query; ``q_norms`` and
    ``g_norms`` are the token norms the norm-sorting matchers need (None: computed here).
    """
    if q_norms is None:
        q_norms = token_norms(queries, matcher)
    if g_norms is None:
        g_norms = token_norms(gallery, matcher)
    out = np.empty(len(pairs), dtype=np.float64)
    offset = 0  # chunks of a pair list come in the list's order
    solved = solve_chunks(
        cost_chunks(queries, gallery, pairs=pairs, chunk_pairs=chunk_pairs), matcher, params,
        norms_a=q_norms, norms_b=g_norms, backend=backend, cancel=cancel,
    )
    for rows, _, _, values in solved:
        out[offset:offset + len(rows)] = values
        offset += len(rows)
        if progress is not None:
            progress(len(rows))
    return out


def rerank_task(
    gallery: tuple[np.ndarray, np.ndarray | None],
    queries: tuple[np.ndarray, np.ndarray | None] | None,
    q0: int,
    candidates: np.ndarray,
    spec: dict[str, Any],
) -> np.ndarray:
    """Re-ranking of queries ``q0 … q0 + len(candidates)`` as a Ray task: their matched inner
    products with their candidates, (Q_b, K) float64. ``queries`` None: the queries are
    gallery images (``q0`` indexes the gallery)."""
    from semrsm.scale.ray_pool import as_tensor, limit_threads

    limit_threads(spec.get("threads"))
    device = torch.device(spec["device"])
    g_tok, g_nrm = gallery
    q_tok, q_nrm = queries if queries is not None else gallery
    qb, kk = candidates.shape
    qt = as_tensor(q_tok[q0:q0 + qb], device)
    qn = None if q_nrm is None else as_tensor(q_nrm[q0:q0 + qb], device)
    pairs = np.stack([np.repeat(np.arange(qb), kk), candidates.ravel()], axis=1)
    inner = matched_inner_of_pairs(
        qt, as_tensor(g_tok, device), pairs, spec["matcher"], spec["params"],
        backend=spec["backend"], chunk_pairs=spec["chunk_pairs"], q_norms=qn,
        g_norms=as_tensor(g_nrm, device),
    )
    return inner.reshape(qb, kk)


def search(
    gallery_tokens: ArrayLike | GalleryIndex,
    query_tokens: ArrayLike | None = None,
    k: int = 10,
    rerank: int = 200,
    matcher: str = "exact",
    kernel: str = "cosine",
    *,
    index: str = "auto",
    device: str | torch.device = "auto",
    backend: str = "auto",
    chunk_pairs: int | None = None,
    sigma2: float | None = None,
    exclude: ArrayLike | None = None,
    ray: str | bool | None = None,
    resource_timeout: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelLike = None,
    **matcher_params: Any,
) -> SearchResult:
    """Rank a gallery for each query: pooled top-``rerank`` candidates, re-ranked semantically.

    Parameters
    ----------
    gallery_tokens : (N, S, C) or (N, C, H, W) features of the gallery, or a
        :class:`GalleryIndex` built once for many searches.
    query_tokens : (Q, S, C) or (Q, C, H, W) features of the queries (same S and C), or
        None: every gallery image queries the others (itself left out).
    k : results per query, ≥ 1 (clipped to the gallery's size).
    rerank : candidates per query re-ranked semantically, ≥ k (clipped likewise); the
        cost is ``Q · rerank`` assignments.
    matcher, **matcher_params : as :func:`semrsm.semantic_rsm`.
    kernel : "cosine" (default), "linear" or "rbf" for the semantic scores; RBF's σ² is
        ``sigma2`` or the median of the non-zero squared matched distances of all
        re-ranked pairs.
    index : pooled ranking, see :class:`GalleryIndex`.
    device, backend, chunk_pairs : as :func:`semrsm.semantic_rsm`.
    exclude : (Q,) ints, a gallery image to leave out of each query's results (e.g. the
        query's own index when the queries come from the gallery; −1: none). Ignored when
        ``query_tokens`` is None (each image is left out of its own results).
    ray : None (re-rank in this process) or a Ray address as in
        :func:`semrsm.tiled_semantic_rsm`: one task per batch of queries, the gallery in
        the object store once.
    resource_timeout : seconds to wait for a Ray node that can run a task.
    progress : ``progress(done_pairs, total_pairs)`` during re-ranking.
    cancel : threading.Event or callable; raises :class:`semrsm.Cancelled` once set.

    Returns
    -------
    :class:`SearchResult`

    Raises
    ------
    ValueError
        Bad tokens, different S or C for gallery and queries, ``k < 1``, ``rerank < k``,
        a gallery too small (one image queried against itself), unknown kernel, matcher,
        index, or Ray problems (see :func:`semrsm.tiled_semantic_rsm`).
    RuntimeError
        A re-ranking task failed on the Ray cluster after its retries.
    """
    kernel_name = check_kernels(kernel)[0] if isinstance(kernel, str) else None
    if kernel_name is None:
        raise ValueError(f"kernel: search uses one kernel, got {kernel!r}")
    params = check_matcher(matcher, matcher_params)
    check_backend(backend)
    for name, v in (("k", k), ("rerank", rerank)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: must be a whole number ≥ 1, got {v!r}")
    if rerank < k:
        raise ValueError(f"rerank ({rerank}) must be at least k ({k}): the re-ranked "
                         "candidates are where the k results come from")
    dev = torch.device("cpu") if ray not in (None, False) else resolve_device(device, gallery_tokens)
    t0 = time.perf_counter()
    gal = gallery_tokens if isinstance(gallery_tokens, GalleryIndex) else \
        GalleryIndex(gallery_tokens, index=index, device=dev)
    g = gal.tokens
    self_query = query_tokens is None
    if self_query:
        q = g
        exclude = np.arange(len(g), dtype=np.int64)
    elif exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64).reshape(-1)
        exclude = np.where(exclude < len(g), exclude, -1)
    if not self_query:
        q = validate_tokens(query_tokens, device=g.device).detach()
        if exclude is not None and len(exclude) != len(q):
            raise ValueError(f"exclude: {len(exclude)} entries for {len(q)} queries; give one "
                             "gallery index (or −1) per query")
        if q.shape[1:] != g.shape[1:]:
            raise ValueError(
                f"query_tokens: images of shape (S, C) = {tuple(q.shape[1:])} against "
                f"{tuple(g.shape[1:])} in the gallery; use the same model, layer and input size"
            )
        if q.dtype != g.dtype:
            q = q.to(g.dtype)
    available = len(g) - (1 if exclude is not None and (exclude >= 0).any() else 0)
    if available < 1:
        raise ValueError("search: the gallery has one image and it is the query; "
                         "give at least two images or separate queries")
    kk, k = min(int(rerank), available), min(int(k), available)
    q_pooled = gal.pooled if self_query else pooled_embeddings(q)
    cand, cand_pooled = gal.top(q_pooled, kk, exclude)
    pooled_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    spec = {"matcher": matcher, "params": params, "backend": backend, "chunk_pairs": chunk_pairs}
    total = cand.size
    if progress is not None:
        progress(0, total)
    if ray in (None, False):
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        pairs = np.stack([np.repeat(np.arange(len(q)), kk), cand.ravel()], axis=1)
        inner = matched_inner_of_pairs(
            q, g, pairs, matcher, params, backend=backend, chunk_pairs=chunk_pairs,
            cancel=cancel, progress=step,
        ).reshape(len(q), kk)
    else:
        inner = _rerank_on_ray(ray, q, g, self_query, cand, spec, device, progress, cancel,
                               resource_timeout)
    sq_q = squared_norms(q)
    sq_g = squared_norms(g)
    scores, s2 = kernel_from_block(inner, sq_q, sq_g[cand], kernel_name, sigma2)
    # best first; equal scores keep the pooled order
    order = np.argsort(-scores, axis=1, kind="stable")
    top = order[:, :k]
    pk_i, pk_s = cand[:, :k], cand_pooled[:, :k]
    return SearchResult(
        pooled_indices=pk_i, pooled_scores=pk_s,
        indices=np.take_along_axis(cand, top, axis=1),
        scores=np.take_along_axis(scores, top, axis=1),
        candidates=cand, candidate_scores=scores, k=k, rerank=kk, kernel=kernel_name,
        matcher=matcher, params=params, index=gal.index, sigma2=s2, pairs=int(total),
        seconds={"pooled": pooled_seconds, "rerank": time.perf_counter() - t1},
    )


def _rerank_on_ray(
    address: str | bool, q: torch.Tensor, g: torch.Tensor, self_query: bool, cand: np.ndarray,
    spec: dict[str, Any], device: str | torch.device, progress: Callable[[int, int], None] | None,
    cancel: CancelLike, resource_timeout: float,
) -> np.ndarray:
    """Matched inner products (Q, K) of every query with its candidates, on Ray."""
    from semrsm.scale.ray_pool import RayPool, task_threads
    from semrsm.scale.tiled import ray_device

    matcher = spec["matcher"]
    inner = np.empty(cand.shape, dtype=np.float64)
    with RayPool(address, device=ray_device(device), resource_timeout=resource_timeout) as pool:
        def part(t: torch.Tensor) -> Any:
            n = token_norms(t, matcher)
            return pool.put((t.cpu().numpy(), None if n is None else n.cpu().numpy()))

        g_ref = part(g)
        q_ref = None if self_query else part(q)
        task_spec = {**spec, "device": pool.device_kind, "threads": task_threads(pool.options)}
        step = _RAY_QUERIES_PER_TASK
        jobs = [(q0, (g_ref, q_ref, q0, cand[q0:q0 + step], task_spec))
                for q0 in range(0, len(cand), step)]
        done = [0]

        def on_result(q0: Any, block: np.ndarray) -> None:
            inner[q0:q0 + len(block)] = block
            done[0] += block.size
            check_cancel(cancel)
            if progress is not None:
                progress(done[0], cand.size)

        pool.map(rerank_task, jobs, on_result, cancel=cancel)
    return inner
