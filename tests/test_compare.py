"""Comparing representations: the statistics against brute force, scipy and rsatoolbox;
what must hold (self = 1, shuffled positions: semantic 1 and classic lower); bootstrap
intervals; the reference file formats; and the same numbers through the library, the
command line and the Compare page on the offline default (demo-resnet vs demo-vit)."""

from __future__ import annotations

import io
import itertools
import math
import os

import numpy as np
import pytest
from scipy import stats

import semrsm
from semrsm.analysis import AnalysisError, linear_cka
from semrsm.analysis.bootstrap import bootstrap_similarity
from semrsm.analysis.compare import compare, compare_layers, compare_reference
from semrsm.analysis.ordering import cluster_order, image_order
from semrsm.analysis.reference import load_reference
from semrsm.analysis.statistics import kendall_tau_a, rsm_similarity, spearman, upper_triangle

N_BOOT = 200


def _tau_a_brute(x, y):
    s = 0
    for a, b in itertools.combinations(range(len(x)), 2):
        s += np.sign(x[a] - x[b]) * np.sign(y[a] - y[b])
    return s / (len(x) * (len(x) - 1) / 2)


def test_kendall_tau_a_matches_brute_force_with_ties(rng):
    for _ in range(5):
        x = rng.integers(0, 5, 40).astype(float)  # many ties
        y = x + rng.integers(0, 3, 40)
        assert kendall_tau_a(x, y) == pytest.approx(_tau_a_brute(x, y), abs=1e-12)
    x = rng.random(30)
    assert kendall_tau_a(x, x) == pytest.approx(1.0)
    assert kendall_tau_a(x, -x) == pytest.approx(-1.0)
    assert kendall_tau_a(np.ones(5), x[:5]) == 0.0


def test_spearman_and_cka_match_scipy_and_linear_cka(rng):
    x, y = rng.random(50), rng.random(50)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    f = rng.random((10, 4))
    g = f @ rng.random((4, 3))
    a, b = f @ f.T, g @ g.T
    assert rsm_similarity(a, b, "cka") == pytest.approx(linear_cka(a, b), abs=1e-12)
    assert rsm_similarity(a, b, "spearman") == pytest.approx(
        stats.spearmanr(upper_triangle(a), upper_triangle(b)).statistic, abs=1e-12
    )


def test_statistics_match_rsatoolbox(rng):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    f, g = rng.random((12, 5)), rng.random((12, 5))
    a, b = np.corrcoef(f), np.corrcoef(g)
    rdms = rsatoolbox.rdm.RDMs(np.stack([upper_triangle(1 - a), upper_triangle(1 - b)]))
    for method, ours in (("tau-a", "kendall_tau_a"), ("spearman", "spearman")):
        theirs = float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method=method)[0, 0])
        assert rsm_similarity(a, b, ours) == pytest.approx(theirs, abs=1e-10)


@pytest.fixture(scope="module")
def tokens():
    """10 images of 4x4 non-negative tokens (ReLU-like) with 8 channels."""
    g = np.random.default_rng(3)
    return np.maximum(g.normal(size=(10, 16, 8)), 0.0)


def test_configuration_against_itself_scores_one(tokens):
    res = compare(tokens, tokens, n_boot=50)
    for kind in ("classic", "semantic"):
        for e in res.estimates[kind].values():
            assert e.value == pytest.approx(1.0, abs=1e-9)
            assert e.low == pytest.approx(1.0, abs=1e-9) and e.high == pytest.approx(1.0, abs=1e-9)


def test_shuffled_positions_semantic_one_classic_lower(tokens, rng):
    shuffled = np.stack([t[rng.permutation(t.shape[0])] for t in tokens])
    res = compare(tokens, shuffled, n_boot=0)
    for m in ("cka", "spearman", "kendall_tau_a"):
        assert res.value("semantic", m) == pytest.approx(1.0, abs=1e-8)
        assert res.value("classic", m) < 0.99
        assert res.value("semantic − classic", m) > 0.01


def test_bad_inputs_are_clear_errors(rng):
    a = np.eye(5)
    with pytest.raises(AnalysisError, match="different image sets"):
        rsm_similarity(a, np.eye(6))
    with pytest.raises(AnalysisError, match="unknown"):
        rsm_similarity(a, a, "pearson")
    with pytest.raises(AnalysisError, match="confidence"):
        bootstrap_similarity(a, a, ci=95)
    with pytest.raises(AnalysisError, match="at least 3"):
        rsm_similarity(np.eye(2), np.eye(2))


def test_ordering_by_label_and_cluster(rng):
    labels = ["b", "a", "b", "a"]
    assert image_order("label", 4, labels=labels).tolist() == [1, 3, 0, 2]
    assert image_order("loaded", 3).tolist() == [0, 1, 2]
    # two clear clusters, shuffled: clustering puts each cluster together
    f = np.concatenate([rng.normal(0, 0.05, (5, 3)) + [3, 0, 0], rng.normal(0, 0.05, (5, 3)) + [0, 3, 0]])
    perm = rng.permutation(10)
    f = f[perm]
    order = cluster_order(f @ f.T)
    groups = [perm[k] < 5 for k in order]
    assert groups == sorted(groups) or groups == sorted(groups, reverse=True)
    assert sorted(order.tolist()) == list(range(10))
    with pytest.raises(AnalysisError):
        image_order("cluster", 4)


# --------------------------------------------------------------------------- references


def test_reference_formats(tmp_path, rng):
    f = rng.random((6, 3))
    sim = np.corrcoef(f)
    names = [f"im{k}" for k in range(6)]
    np.save(tmp_path / "r.npy", sim)
    assert load_reference(tmp_path / "r.npy").kind == "similarity"
    rdm = 1 - sim
    np.fill_diagonal(rdm, 0)
    ref = load_reference(_npy_bytes(rdm), "rdm.npy")
    assert ref.kind == "dissimilarity"
    np.testing.assert_allclose(ref.similarity, -rdm)
    # semrsm's own CSV layout: header of names, a first column of names; rows reordered
    order = [3, 1, 0, 5, 4, 2]
    lines = ["image," + ",".join(names[o] for o in order)]
    lines += [names[o] + "," + ",".join(f"{sim[o, p]:.17g}" for p in order) for o in order]
    (tmp_path / "r.csv").write_text("\n".join(lines))
    ref = load_reference(tmp_path / "r.csv")
    assert ref.names == [names[o] for o in order]
    np.testing.assert_allclose(ref.aligned(names), sim, atol=1e-12)
    (tmp_path / "plain.csv").write_text("\n".join(",".join(map(str, r)) for r in sim))
    np.testing.assert_allclose(load_reference(tmp_path / "plain.csv").matrix, sim)
    header_only = ",".join(names) + "\n" + "\n".join(",".join(map(str, r)) for r in sim)
    ref = load_reference(header_only.encode(), "h.csv")
    assert ref.names == names and ref.matrix.shape == (6, 6)
    with pytest.raises(AnalysisError, match="unknown format"):
        load_reference(b"x", "r.mat")
    with pytest.raises(AnalysisError, match="5 images"):
        load_reference(tmp_path / "r.npy").aligned(names[:5])
    # a reference equal to the classic RSM of a layer scores 1 there
    rc = compare_reference(load_reference(tmp_path / "r.npy"), {"L": (sim, sim * 0.5 + 0.1)},
                           n_boot=20)
    assert rc.estimates["L"]["classic"]["cka"].value == pytest.approx(1.0)
    assert "reference,layer,kind,method" in rc.to_csv()


def _npy_bytes(m):
    buf = io.BytesIO()
    np.save(buf, m)
    return buf.getvalue()


def test_rsatoolbox_file_as_reference(tmp_path, rng):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    f = rng.random((7, 3))
    rdm = 1 - np.corrcoef(f)
    names = [f"im{k}" for k in range(7)]
    rdms = rsatoolbox.rdm.RDMs(
        upper_triangle(rdm)[None], pattern_descriptors={"image": names}
    )
    rdms.save(str(tmp_path / "ref.hdf5"), file_type="hdf5")
    ref = load_reference(tmp_path / "ref.hdf5")
    assert ref.kind == "dissimilarity" and ref.names == names
    np.testing.assert_allclose(ref.aligned(names), -rdm, atol=1e-12)


# --------------------------------------------------------------------------- the offline default


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """demo-resnet layer3 and demo-vit blocks.3 on shapes:32, through one cache folder."""
    from semrsm.cache import Cache
    from semrsm.explorer import ExplorerConfig, compute

    cache_dir = tmp_path_factory.mktemp("compare-cache")
    cache = Cache(cache_dir)
    base = ExplorerConfig(images="shapes:32")
    a = base.replace(model="demo-resnet", layer="layer3")
    b = base.replace(model="demo-vit", layer="blocks.3")
    return {
        "cache_dir": cache_dir,
        "cache": cache,
        "a": a,
        "b": b,
        "ra": compute(a, cache, with_proba=False),
        "rb": compute(b, cache, with_proba=False),
    }


def test_bootstrap_contains_estimate_and_shrinks_with_more_images(demo):
    """On the demo models: every interval holds its estimate, and the intervals are
    narrower on average with 32 images than with 12. (Not every statistic shrinks at these
    sizes: semantic CKA is 0.96 on the first 12 images, close to its bound, and 0.84 on 32.)"""
    ra, rb = demo["ra"], demo["rb"]
    wide = {}
    for n in (12, 32):
        sub = np.arange(n)
        pa = (ra.spatial_rsm[np.ix_(sub, sub)], ra.semantic_rsm[np.ix_(sub, sub)])
        pb = (rb.spatial_rsm[np.ix_(sub, sub)], rb.semantic_rsm[np.ix_(sub, sub)])
        res = compare(pa, pb, n_boot=N_BOOT, seed=0)
        for kind in res.estimates:
            for m, e in res.estimates[kind].items():
                assert e.low <= e.value <= e.high, (n, kind, m, e)
        wide[n] = np.mean([e.width for k in ("classic", "semantic")
                           for e in res.estimates[k].values()])
    assert wide[32] < 0.8 * wide[12]


def test_bootstrap_intervals_shrink_for_a_fixed_population(rng):
    """Two noisy views of the same features: the same population at every N, so each
    interval must narrow as images are added (about as 1/sqrt(N))."""
    f = rng.normal(size=(160, 6))
    g = f + rng.normal(scale=1.0, size=f.shape)
    widths = {}
    for n in (20, 120):
        a, b = np.corrcoef(f[:n]), np.corrcoef(g[:n])
        for m, e in bootstrap_similarity(a, b, n_boot=100).items():
            assert e.low <= e.value <= e.high
            widths[n, m] = e.width
    for m in ("cka", "spearman", "kendall_tau_a"):
        assert widths[120, m] < 0.7 * widths[20, m], (m, widths)


def test_library_cli_and_page_agree(demo, tmp_path):
    from semrsm.__main__ import main
    from semrsm.explorer.comparison import compare_configs, compare_layer_grid

    lib = compare_configs(demo["a"], demo["b"], demo["cache"], n_boot=N_BOOT)
    assert lib.names == ("demo-resnet layer3", "demo-vit blocks.3")
    direct = compare(demo["ra"], demo["rb"], n_boot=N_BOOT)
    assert lib.rows()[0]["value"] == direct.rows()[0]["value"]
    grid = compare_layer_grid(demo["a"], demo["b"], ["layer3", "layer4"], ["blocks.3"],
                              demo["cache"], methods=("cka", "kendall_tau_a"))

    # ---- the command line: same cache, same numbers (CSV written with 10 digits)
    out = tmp_path / "cmp.csv"
    code = main(["compare", "--model-a", "demo-resnet", "--layer-a", "layer3", "--model-b",
                 "demo-vit", "--layer-b", "blocks.3", "--images", "shapes:32", "--n-boot",
                 str(N_BOOT), "--layers-a", "layer3,layer4", "--layers-b", "blocks.3",
                 "--methods", "cka,kendall_tau_a", "--cache-dir", str(demo["cache_dir"]),
                 "--out", str(out)])
    assert code == 0
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(lib.rows()) == 9
    for r, ours in zip(rows, lib.rows(), strict=True):
        assert (r["kind"], r["method"]) == (ours["kind"], ours["method"])
        for k in ("value", "low", "high"):
            assert float(r[k]) == pytest.approx(ours[k], rel=1e-9, abs=1e-12)
    lrows = list(csv.DictReader((tmp_path / "cmp_layers.csv").open()))
    for r, ours in zip(lrows, grid.rows(), strict=True):
        assert (r["layer_a"], r["layer_b"], r["method"]) == (ours["layer_a"], ours["layer_b"], ours["method"])
        assert float(r["classic"]) == pytest.approx(ours["classic"], rel=1e-9)
        assert float(r["semantic"]) == pytest.approx(ours["semantic"], rel=1e-9)

    # ---- the page (AppTest): sidebar A = demo-resnet layer3 on shapes:32, B = demo-vit blocks.3
    from streamlit.testing.v1 import AppTest

    old = os.environ.get("SEMRSM_CACHE_DIR")
    os.environ["SEMRSM_CACHE_DIR"] = str(demo["cache_dir"])
    try:
        at = AppTest.from_file(str(_root() / "app.py"), default_timeout=300)
        at.run()
        at.switch_page("pages/compare.py").run()
        at.number_input(key="cmp_nboot").set_value(N_BOOT).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert at.selectbox(key="cmp_layer_b").value == "blocks.3"
        page_rows = _frame(at, "a")
        assert len(page_rows) == 9
        for (_, r), ours in zip(page_rows.iterrows(), lib.rows(), strict=True):
            assert (r["kind"], r["method"]) == (ours["kind"], ours["method"])
            for k in ("value", "low", "high"):
                assert float(r[k]) == pytest.approx(ours[k], rel=1e-12)
        at.multiselect(key="cmp_layers_a").set_value(["layer3", "layer4"])
        at.multiselect(key="cmp_layers_b").set_value(["blocks.3"])
        at.button(key="cmp_grid_go").click().run()
        assert not at.exception, [e.value for e in at.exception]
        grid_page = at.session_state["cmp_grid"][1]
        for m in ("cka", "kendall_tau_a"):
            for kind in ("classic", "semantic"):
                np.testing.assert_allclose(grid_page.matrices[m][kind], grid.matrices[m][kind],
                                           rtol=1e-12)
        # a reference upload: A's classic RSM of layer3 itself scores 1 there
        buf = io.BytesIO()
        np.save(buf, demo["ra"].spatial_rsm)
        at.file_uploader(key="cmp_reference").set_value(("ref.npy", buf.getvalue(), "application/octet-stream")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        ref_rows = _frame(at, "reference")
        row = ref_rows[(ref_rows["layer"] == "layer3") & (ref_rows["kind"] == "classic")
                       & (ref_rows["method"] == "cka")]
        assert float(row["value"].iloc[0]) == pytest.approx(1.0)
        # every control of the page has a help text
        for w in [*at.selectbox, *at.number_input, *at.multiselect, *at.radio, *at.button,
                  *at.select_slider]:
            if str(getattr(w, "key", "") or "").startswith("cmp_"):
                assert w.help, f"{w.key} has no help text"
    finally:
        if old is None:
            os.environ.pop("SEMRSM_CACHE_DIR", None)
        else:
            os.environ["SEMRSM_CACHE_DIR"] = old


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def _frame(at, column):
    """The first data frame of the page with ``column``."""
    for el in at.dataframe:
        if column in el.value.columns:
            return el.value
    raise AssertionError(f"no data frame with a {column!r} column")


def test_layer_table_shapes(demo):
    ra, rb = demo["ra"], demo["rb"]
    lc = compare_layers({"x": ra, "y": ra}, {"z": rb}, methods=("cka", "spearman"))
    assert lc.matrices["cka"]["classic"].shape == (2, 1)
    assert lc.matrices["cka"]["semantic"][0, 0] == pytest.approx(
        rsm_similarity(ra.semantic_rsm, rb.semantic_rsm, "cka")
    )
    assert len(lc.rows()) == 4 and not math.isnan(lc.rows()[0]["classic"])
    assert semrsm.analysis.compare is compare


def test_exports(demo):
    import csv

    from semrsm.explorer.exports import kernels_npz, matchings_csv, tokens_npy, tokens_npz

    ra = demo["ra"]
    with np.load(io.BytesIO(tokens_npz(ra)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["tokens"], ra.tokens)
        assert tuple(z["grid"]) == ra.grid and int(np.prod(z["grid"])) == ra.tokens.shape[1]
        assert z["names"].tolist() == ra.names and str(z["layer"]) == "layer3"
    np.testing.assert_array_equal(np.load(io.BytesIO(tokens_npy(ra))), ra.tokens)
    with np.load(io.BytesIO(kernels_npz(ra)), allow_pickle=False) as z:
        for k in ("linear", "cosine", "rbf"):
            np.testing.assert_array_equal(z[f"spatial_{k}"], ra.spatial[k])
            np.testing.assert_array_equal(z[f"semantic_{k}"], ra.semantic[k])
        assert float(z["sigma2_semantic"]) > 0
    rows = list(csv.DictReader(io.StringIO(matchings_csv(ra, [(0, 5), (3, 1)]))))
    s = ra.tokens.shape[1]
    assert len(rows) == 2 * s
    for (i, j), chunk in (((0, 5), rows[:s]), ((3, 1), rows[s:])):
        assert sorted(int(r["position_j"]) for r in chunk) == list(range(s))  # a permutation
        total = sum(float(r["inner_product"]) for r in chunk)
        assert total == pytest.approx(ra.inner[i, j], rel=1e-5)  # the matched inner product
