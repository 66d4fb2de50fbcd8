"""Figure fixes from a new user's first hour: match lines visible on any image,
the matched partner always in the candidates chart, neighbour frames not by colour alone."""

from __future__ import annotations

import numpy as np
from PIL import Image

from semrsm.figures.matching import OUTLINE_COLOR, alternatives_figure, matching_overlay
from semrsm.figures.neighbours import DIFF_MARK, SAME_MARK, neighbours_figure


def test_every_match_line_has_a_light_outline_underneath():
    dark = Image.new("RGB", (32, 32), (10, 20, 90))  # navy lines vanished on blue images
    s = 16
    perm = np.arange(s)[::-1].copy()
    contrib = np.linspace(0.0, 1.0, s)
    fig = matching_overlay(dark, dark, (4, 4), perm, contrib, top_n=s)
    names = [t.name for t in fig.data]
    outline = [t for t in fig.data if t.name == "match outline"]
    assert len(outline) == 1
    assert names.index("match outline") < names.index("matches")  # drawn first, underneath
    lines = [t for t in fig.data if t.name == "matches"]
    assert sum(list(t.x).count(None) for t in lines) == list(outline[0].x).count(None) == s
    assert outline[0].line.color == OUTLINE_COLOR
    assert outline[0].line.width > max(t.line.width for t in lines)


def test_matched_partner_is_always_a_bar_of_the_candidates_chart():
    fig = alternatives_figure(np.array([3, 5, 7]), np.array([0.9, 0.8, 0.7]), 12, grid_w=4,
                              partner_value=0.1)
    bar = fig.data[0]
    assert list(bar.x)[-1] == "b (3,0)" and bar.y[-1] == 0.1
    assert bar.marker.color[-1] == "#00e5ff"  # the cyan of the matched partner
    # a partner among the candidates is not added twice
    fig = alternatives_figure(np.array([3, 5]), np.array([0.9, 0.8]), 5, grid_w=4,
                              partner_value=0.8)
    assert len(fig.data[0].x) == 2


def test_neighbour_frames_carry_a_symbol_and_a_line_style():
    thumbs = [Image.new("RGB", (16, 16), (k * 40, 0, 0)) for k in range(4)]
    names = ["a", "b", "c", "d"]
    labels = ["x", "x", "y", "y"]
    fig = neighbours_figure(
        thumbs, names, labels, 0, {"classic": (np.array([1, 2]), np.array([0.9, 0.5]))}
    )
    captions = [a.text for a in fig.layout.annotations]
    assert any(SAME_MARK in c and "b" in c for c in captions)
    assert any(DIFF_MARK in c and "c" in c for c in captions)
    dashes = sorted(sh.line.dash for sh in fig.layout.shapes)
    assert "dot" in dashes and "solid" in dashes
