"""Figure builders of the token-matching, embedding and analyses pages: structure, titles,
shared colour scales, and errors for inconsistent input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

from semrsm import analysis as A
from semrsm.figures import analyses as FA
from semrsm.figures import embedding as FE
from semrsm.figures import matching as FM


@pytest.fixture
def pair(rng):
    t = np.maximum(rng.normal(size=(2, 12, 5)), 0)
    ex = A.explain_pair(t[0], t[1], "greedy", grid=(3, 4))
    img = Image.fromarray((rng.random((40, 60, 3)) * 255).astype(np.uint8))
    return ex, img


def _names(fig: go.Figure) -> list[str]:
    return [tr.name for tr in fig.data]


def test_matching_overlay_draws_images_grid_and_top_lines(pair):
    ex, img = pair
    fig = FM.matching_overlay(
        img, img, ex.grid, ex.perm, ex.contributions, top_n=5, focus=2, alternatives=[0, 1, 2]
    )
    names = _names(fig)
    assert names.count("image a") == 1 and names.count("image b") == 1
    assert "grid a" in names and "match centres" in names and "focus" in names
    assert fig.layout.meta["lines"] == 5
    # 5 segments in total over the colour bins, each "x0, x1, None"
    segs = sum(len(tr.x) // 3 for tr in fig.data if tr.name == "matches")
    assert segs == 5
    # the strongest matches are the ones drawn
    drawn = sorted(fig.data[names.index("match centres")].customdata)
    assert drawn == sorted(np.argsort(-ex.contributions)[:5].tolist())
    assert len(fig.layout.shapes) >= 2  # focus token and its partner
    assert (
        FM.matching_overlay(img, img, ex.grid, ex.perm, ex.contributions, top_n=0).layout.meta[
            "lines"
        ]
        == 0
    )
    with pytest.raises(ValueError, match="cells"):
        FM.matching_overlay(img, img, (5, 5), ex.perm, ex.contributions)


def test_contribution_maps_share_one_colour_axis_and_show_totals(pair):
    ex, img = pair
    fig = FM.contribution_maps_figure(img, img, ex.maps("identity"), ex.maps("matched"))
    heat = [tr for tr in fig.data if isinstance(tr, go.Heatmap)]
    assert len(heat) == 4 and {tr.coloraxis for tr in heat} == {"coloraxis"}
    titles = [a.text for a in fig.layout.annotations]
    assert f"{ex.identity_value:.4g}" in titles[0] and f"{ex.value:.4g}" in titles[2]
    assert fig.layout.coloraxis.cmin == 0  # ReLU features: sequential scale from 0


def test_contribution_range_diverging_for_negative_values():
    scale, lo, hi = FM.contribution_range(np.array([-1.0, 3.0]))
    assert scale == FM.CONTRIBUTION_DIVERGING and (lo, hi) == (-3.0, 3.0)


def test_inner_product_figure_marks_both_alignments(pair):
    ex, _ = pair
    fig = FM.inner_product_figure(ex.inner, ex.exact_perm, ex.perm, matcher="greedy", grid_w=4)
    names = _names(fig)
    assert any(n.startswith("identity (diagonal)") for n in names)
    opt = next(tr for tr in fig.data if tr.name.startswith("optimal"))
    assert list(opt.x) == ex.exact_perm.tolist()
    assert f"{ex.exact_value:.4g}" in opt.name
    assert any(n.startswith("greedy") for n in names)


def test_model_view_is_the_centre_crop():
    img = Image.new("RGB", (200, 100))
    img.paste((255, 0, 0), (0, 0, 50, 100))  # red strip on the left is cropped away
    out = FM.model_view(img, size=64, crop_pct=1.0)
    assert out.size == (64, 64) and out.getpixel((0, 32))[0] < 50


def test_embedding_figure_panels_labels_and_thumbnails(rng):
    coords = {"spatio-semantic": rng.normal(size=(6, 2)), "semantic": rng.normal(size=(6, 2))}
    thumbs = [Image.new("RGB", (16, 16), (i * 40, 0, 0)) for i in range(6)]
    fig = FE.embedding_figure(
        coords, [f"im{i}" for i in range(6)], list("aabbcc"), thumbnails=thumbs, selected=1
    )
    scat = [tr for tr in fig.data if tr.name in {"a", "b", "c"}]
    assert len(scat) == 6 and sum(tr.showlegend for tr in scat) == 3
    assert fig.layout.meta["thumbnails"] == 12 and len(fig.layout.images) == 12
    assert sorted(i for tr in scat[:3] for i in tr.customdata) == list(range(6))
    assert fig.layout.xaxis.title.text == "UMAP 1"
    with pytest.raises(ValueError, match="expected"):
        FE.embedding_figure({"x": np.zeros((5, 2))}, ["a"] * 6)


def test_analysis_figures_have_titles_and_consistent_colours():
    pairs = pd.DataFrame(
        {
            "layer": ["l1"] * 3,
            "i": [0, 0, 1],
            "j": [1, 2, 2],
            "source": ["s"] * 3,
            "overlap": [0.2, 0.5, 0.8],
            "spatial": [0.3, 0.5, 0.7],
            "semantic": [0.9, 0.92, 0.95],
            "gap": [0.6, 0.42, 0.25],
        }
    )
    fig = FA.translation_figure(pairs)
    assert fig.layout.xaxis.title.text.startswith("overlap")
    colours = {tr.name: tr.marker.color for tr in fig.data if tr.mode == "markers"}
    assert FA.SPATIAL_COLOR in colours.values() and FA.SEMANTIC_COLOR in colours.values()
    with pytest.raises(ValueError, match="no pairs"):
        FA.translation_figure(pairs, "l9")

    heat = FA.cka_heatmap_figure(["a", "b"], np.array([[1.0, 0.5], [0.5, 1.0]]))
    assert (heat.data[0].zmin, heat.data[0].zmax) == (0, 1)
    line = FA.cka_line_figure(["a", "b"], [0.4, 0.9], tokens=[64, 4])
    assert line.layout.yaxis.title.text == "linear CKA"

    ag = {
        "spatio-semantic": {
            "pearson_r": -0.1,
            "spearman_r": -0.2,
            "similarity": [0.1, 0.5, 0.9],
            "divergence": [0.5, 0.4, 0.1],
        },
        "semantic": {
            "pearson_r": -0.5,
            "spearman_r": -0.6,
            "similarity": [0.2, 0.6, 0.9],
            "divergence": [0.6, 0.3, 0.1],
        },
    }
    fig = FA.agreement_figure(ag)
    assert "r = -0.500" in fig.layout.annotations[1].text
    assert fig.data[0].marker.color == FA.SPATIAL_COLOR

    table = pd.DataFrame(
        {
            "matcher": ["exact", "greedy"],
            "name": ["exact", "greedy"],
            "ratio_mean": [1.0, 0.98],
            "ratio_min": [1.0, 0.9],
            "seconds": [0.5, 0.01],
            "pairs_per_second": [10.0, 500.0],
        }
    )
    fig = FA.matcher_figure(table)
    assert fig.layout.yaxis2.type == "log" and list(fig.data[0].y) == [1.0, 0.98]
