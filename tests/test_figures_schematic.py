"""The picture at the top of the RSM page (semrsm/figures/schematic.py): its numbers are
the classic and the optimal pairing of one-hot tokens, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from semrsm.figures.schematic import SCHEMATIC_TOKENS, schematic_matchings, two_rsms_schematic


def _best(a: np.ndarray, b: np.ndarray) -> float:
    return max(float(np.mean(a == b[list(p)])) for p in itertools.permutations(range(a.size)))


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2, 0, 0, 0, 0], [0, 0, 0, 0, 1, 2]),
        ([1, 1, 2, 0, 3, 0], [3, 0, 1, 2, 0, 0]),
        ([1, 2, 3, 0, 0, 0], [0, 0, 0, 4, 4, 1]),  # not the same content: some pairs differ
    ],
)
def test_semantic_pairing_is_the_optimum_and_classic_the_identity(a, b):
    a, b = np.array(a), np.array(b)
    out = schematic_matchings(a, b)
    perm, cos = out["semantic"]
    assert sorted(perm.tolist()) == list(range(a.size))
    assert cos == pytest.approx(float(np.mean(a == b[perm]))) == pytest.approx(_best(a, b))
    ident, classic = out["classic"]
    assert ident.tolist() == list(range(a.size))
    assert classic == pytest.approx(float(np.mean(a == b)))
    assert classic <= cos


def test_schematic_shows_the_moved_object_and_both_cosines():
    a, b = SCHEMATIC_TOKENS
    fig = two_rsms_schematic()
    assert fig.layout.meta["classic"] == pytest.approx(5 / 9)  # 5 of 9 positions agree
    assert fig.layout.meta["semantic"] == 1.0
    titles = [ann.text for ann in fig.layout.annotations if "cosine" in (ann.text or "")]
    assert titles == ["classic: position by position · cosine 0.56",
                      "semantic: best pairing · cosine 1.00"]
    dotted = [t for t in fig.data if t.mode == "lines" and t.line.dash == "dot"]
    # the classic panel marks the 4 positions where the object meets background; the
    # semantic panel has none
    assert len(dotted) == 1 and dotted[0].xaxis == "x"
    assert list(dotted[0].x).count(None) == int(np.sum(a != b)) == 4
    assert len(fig.layout.shapes) == 2 * 2 * a.size  # two grids in each panel
