"""CSV text of the numbers the pages show: the analyses (translation, layer CKA, agreement
with the output, matchers), one pair's token matching and the embedding coordinates.

Pure functions (numpy and pandas, no Streamlit): the pages hand the text to
``st.download_button``. Every CSV has a header row, one record per line (``\\n``), floats
with 10 significant digits, and the classic (spatio-semantic) values before the semantic
ones. Import from ``semrsm.explorer.tables``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "agreement_csv",
    "agreement_summary_csv",
    "cka_csv",
    "embedding_csv",
    "matchers_csv",
    "pair_matching_csv",
    "translation_pairs_csv",
    "translation_summary_csv",
]

_FLOAT = "%.10g"


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format=_FLOAT, lineterminator="\n")


def _slug(title: str) -> str:
    """``"classic (spatio-semantic)"`` → ``"classic_spatio_semantic"``."""
    return re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_") or "rsm"


def _check_names(names: Sequence[str] | None, n: int, what: str = "names") -> None:
    if names is not None and len(names) != n:
        raise ValueError(f"{what}: {len(names)} given for {n} images")


def translation_pairs_csv(result: Any, names: Sequence[str] | None = None) -> str:
    """Every same-source crop pair of every layer of a
    :class:`semrsm.analysis.TranslationResult`: ``layer, i, j, name_i, name_j, source,
    overlap`` (share of the crop area, 0–1), ``classic, semantic, gap`` (similarities of
    the result's kernel; gap = semantic − classic). Without ``names`` the name columns are
    left out."""
    df = result.pairs.rename(columns={"spatial": "classic"}).copy()
    cols = ["layer", "i", "j", "source", "overlap", "classic", "semantic", "gap"]
    if names is not None:
        n = int(max(df["i"].max(), df["j"].max())) + 1 if len(df) else 0
        if n > len(names):
            raise ValueError(f"names: {len(names)} given, the pairs use {n} images")
        df["name_i"] = [names[int(i)] for i in df["i"]]
        df["name_j"] = [names[int(j)] for j in df["j"]]
        cols[3:3] = ["name_i", "name_j"]
    return _csv(df[cols])


def translation_summary_csv(result: Any) -> str:
    """The per-layer table of a :class:`semrsm.analysis.TranslationResult` (means, slopes
    against the overlap, correlations, share of pairs the semantic RSM rates higher, and
    different-source means), ``spatial`` spelled ``classic`` in the headers."""
    df = result.summary.rename(columns=lambda c: str(c).replace("spatial", "classic"))
    return _csv(df)


def cka_csv(result: Any, positions: Mapping[str, int] | None = None) -> str:
    """The layer × layer CKA of a :class:`semrsm.analysis.LayerCKAResult`, one row per
    pair of layers: ``semantic_layer, classic_layer, cka`` (linear CKA between the semantic
    RSM of one layer and the classic RSM of the other), ``same_layer`` (1 on the diagonal:
    the curve of the Layers tab), and with ``positions`` (layer → S) the number of
    positions of each."""
    layers = [str(x) for x in result.layers]
    m = np.asarray(result.semantic_vs_spatial, dtype=np.float64)
    if m.shape != (len(layers), len(layers)):
        raise ValueError(f"CKA matrix of shape {m.shape} for {len(layers)} layers")
    rows = []
    for a, la in enumerate(layers):
        for b, lb in enumerate(layers):
            row = {"semantic_layer": la, "classic_layer": lb, "cka": m[a, b],
                   "same_layer": int(a == b)}
            if positions is not None:
                row["semantic_layer_positions"] = int(positions[la])
                row["classic_layer_positions"] = int(positions[lb])
            rows.append(row)
    return _csv(pd.DataFrame(rows))


def agreement_csv(
    agreements: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    labels: Sequence | None = None,
) -> str:
    """Every pair of images with the Jensen-Shannon divergence of the model's predictions
    and the similarity under each RSM: ``i, j, name_i, name_j, [label_i, label_j,]
    jsd_bits, similarity_<rsm>…``, from :func:`semrsm.analysis.output_agreement` results
    (pairs in ``np.triu_indices(N, 1)`` order; ``<rsm>`` the title as a word, e.g.
    ``classic_spatio_semantic``).

    Raises
    ------
    ValueError
        No result, results of different lengths, or names that do not fit.
    """
    if not agreements:
        raise ValueError("give at least one agreement result")
    n = len(names)
    iu, ju = np.triu_indices(n, 1)
    first = next(iter(agreements.values()))
    div = np.asarray(first["divergence"], dtype=np.float64)
    if div.size != iu.size:
        raise ValueError(f"{div.size} pairs in the results, {iu.size} for {n} names")
    _check_names(labels, n, "labels")
    df = pd.DataFrame({"i": iu, "j": ju, "name_i": [names[i] for i in iu],
                       "name_j": [names[j] for j in ju]})
    if labels is not None:
        df["label_i"] = [labels[i] for i in iu]
        df["label_j"] = [labels[j] for j in ju]
    df["jsd_bits"] = div
    for title, res in agreements.items():
        sim = np.asarray(res["similarity"], dtype=np.float64)
        if sim.size != iu.size:
            raise ValueError(f"{title!r}: {sim.size} pairs, expected {iu.size}")
        df[f"similarity_{_slug(title)}"] = sim
    return _csv(df)


def agreement_summary_csv(agreements: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per RSM: ``rsm, pearson_r, pearson_p, spearman_r, spearman_p, n_pairs``
    (correlation of similarity with the divergence; more negative = more agreement)."""
    keys = ("pearson_r", "pearson_p", "spearman_r", "spearman_p", "n_pairs")
    return _csv(pd.DataFrame([{"rsm": t, **{k: a[k] for k in keys}}
                              for t, a in agreements.items()]))


def matchers_csv(table: Any) -> str:
    """The table of :func:`semrsm.analysis.compare_matchers`, every column."""
    return _csv(pd.DataFrame(table))


def pair_matching_csv(
    explanation: Any, names: tuple[str, str] = ("a", "b")
) -> str:
    """The matching of one pair (:class:`semrsm.analysis.PairExplanation`), one row per
    position ``s`` of image a: ``name_a, name_b, position_a, row_a, col_a, position_b,
    row_b, col_b`` (the position of b matched to it), ``contribution`` (their inner
    product: its share of the matched sum, the linear semantic similarity),
    ``same_position_contribution`` (``<a_s, b_s>``: its share of the classic sum),
    ``candidate_rank`` (1 = the partner is a_s's most similar token of b), and
    ``optimal_position_b`` (the optimal matching's partner; equal to ``position_b`` for the
    exact matcher). Grid rows and columns count from 0; without a grid, rows are 0."""
    ex = explanation
    inner = np.asarray(ex.inner, dtype=np.float64)
    s = inner.shape[0]
    w = int(ex.grid[1]) if ex.grid is not None else s
    perm = np.asarray(ex.perm, dtype=np.int64)
    pos = np.arange(s)
    partner = inner[pos, perm]
    rank = (inner > partner[:, None]).sum(axis=1) + 1
    df = pd.DataFrame({
        "name_a": names[0], "name_b": names[1],
        "position_a": pos, "row_a": pos // w, "col_a": pos % w,
        "position_b": perm, "row_b": perm // w, "col_b": perm % w,
        "contribution": np.asarray(ex.contributions, dtype=np.float64),
        "same_position_contribution": np.asarray(ex.identity_contributions, dtype=np.float64),
        "candidate_rank": rank,
        "optimal_position_b": np.asarray(ex.exact_perm, dtype=np.int64),
    })
    return _csv(df)


def embedding_csv(
    coords: Mapping[str, np.ndarray],
    names: Sequence[str],
    labels: Sequence | None = None,
    methods: Mapping[str, str] | None = None,
) -> str:
    """The coordinates of every image in each map: ``index, name, [label,]`` then per map
    ``<rsm>_<method>_x``, ``_y`` (and ``_z`` for 3-D), ``<rsm>`` the title as a word
    (``classic_spatio_semantic``, ``semantic``) and ``<method>`` what drew the map
    (``umap``, ``tsne``, ``pca``, ``mds``).

    Raises
    ------
    ValueError
        A map without one row per name, or with other than 2 or 3 columns.
    """
    n = len(names)
    _check_names(labels, n, "labels")
    df = pd.DataFrame({"index": np.arange(n), "name": list(names)})
    if labels is not None:
        df["label"] = [str(x) for x in labels]
    for title, c in coords.items():
        c = np.asarray(c, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (2, 3):
            raise ValueError(f"{title!r}: coordinates of shape {c.shape} for {n} images")
        method = (methods or {}).get(title)
        prefix = _slug(title) + (f"_{_slug(method)}" if method else "")
        for k, axis in enumerate("xyz"[: c.shape[1]]):
            df[f"{prefix}_{axis}"] = c[:, k]
    return _csv(df)
