"""Run-time estimates (with injected rates, never timed), the matching probe's logic, the
background warm-up and the one navigation workaround of the app."""

from __future__ import annotations

import math

import numpy as np
import pytest

from semrsm.explorer import ExplorerConfig, ExplorerError, estimate_seconds
from semrsm.explorer import estimate as est_mod


def test_estimate_adds_extraction_matching_and_predictions_from_given_rates():
    e = estimate_seconds(
        100, 64, seconds_per_image=0.02, pairs_per_second=99.0, tokens_cached=False,
        proba_cached=False,
    )
    assert e["pairs"] == 4950
    assert e["extract"] == pytest.approx(2.0) and e["predict"] == pytest.approx(2.0)
    assert e["match"] == pytest.approx(50.0) and e["total"] == pytest.approx(54.0)
    cached = estimate_seconds(100, 64, pairs_per_second=99.0, tokens_cached=True, rsm_cached=True)
    assert cached["total"] == 0.0
    with pytest.raises(ExplorerError):
        estimate_seconds(10, 16, pairs_per_second=0.0)


def test_table_rate_differs_by_device():
    assert est_mod.table_rate("exact", "cuda", 256) > est_mod.table_rate("exact", "cpu", 256)


class _FakeSolver:
    """Takes ``pairs / rate`` seconds of a fake clock per call."""

    def __init__(self, rate: float):
        self.rate, self.now, self.sizes = rate, 0.0, []

    def clock(self) -> float:
        return self.now

    def __call__(self, tokens, **kw):
        m = len(tokens)
        self.sizes.append(m)
        self.now += (m * (m - 1) // 2) / self.rate


def test_probe_warms_up_then_doubles_until_a_run_is_long_enough():
    fake = _FakeSolver(rate=100.0)
    tokens = np.zeros((64, 16, 4), np.float32)
    rate = est_mod.probe_matching(
        tokens, "exact", {}, "cpu", budget_s=0.4, solver=fake, clock=fake.clock
    )
    # 4 images untimed (compile, threads), 4 twice (6 pairs, 0.06 s < 0.1 s), 8 twice
    # (28 pairs, 0.28 s)
    assert fake.sizes == [4, 4, 4, 8, 8]
    assert rate == pytest.approx(100.0)


class _ColdStartSolver(_FakeSolver):
    """The first call with several pairs takes ``slow`` times longer (worker threads
    starting, fresh memory), as the exact solver's first batch at S = 1,024 did."""

    def __init__(self, rate: float, slow: float):
        super().__init__(rate)
        self.slow, self.cold = slow, True

    def __call__(self, tokens, **kw):
        m = len(tokens)
        self.sizes.append(m)
        pairs = m * (m - 1) // 2
        factor = self.slow if (self.cold and pairs > 1) else 1.0
        self.cold = self.cold and pairs <= 1
        self.now += factor * pairs / self.rate


def test_probe_rate_is_not_the_cold_first_batch():
    # each run is long enough to stop at once: the cold first batch alone would give a
    # rate 2.5x too low (the estimate of a 48 s run was 106 s); it is not timed
    fake = _ColdStartSolver(rate=10.0, slow=2.5)
    tokens = np.zeros((40, 16, 4), np.float32)
    rate = est_mod.probe_matching(tokens, "exact", {}, "cpu", solver=fake, clock=fake.clock)
    assert fake.sizes == [4, 4, 4]
    assert rate == pytest.approx(10.0)


class _SlowStartSolver(_FakeSolver):
    """The first ``calls`` calls with several pairs take ``slow`` times longer, as the
    batch-optimal matcher's at S = 1,024 did in the app (0.17, 0.18, then 0.04 s)."""

    def __init__(self, rate: float, slow: float, calls: int):
        super().__init__(rate)
        self.slow, self.left = slow, calls

    def __call__(self, tokens, **kw):
        m = len(tokens)
        self.sizes.append(m)
        pairs = m * (m - 1) // 2
        factor = self.slow if self.left > 0 and pairs > 1 else 1.0
        self.left -= pairs > 1
        self.now += factor * pairs / self.rate


def test_probe_does_not_stop_on_slow_first_runs():
    """Two slow first runs looked "long enough" and ended the probe: the estimate of a
    15 s batch-optimal run was 68 s. Every size is now run twice after an untimed run."""
    fake = _SlowStartSolver(rate=250.0, slow=5.0, calls=2)
    tokens = np.zeros((64, 16, 4), np.float32)
    rate = est_mod.probe_matching(tokens, "batch_optimal", {}, "cpu", solver=fake,
                                  clock=fake.clock)
    assert rate == pytest.approx(250.0)


def test_spread_takes_the_whole_set():
    assert est_mod.spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert est_mod.spread(list(range(3)), 8) == [0, 1, 2]


def test_probe_stops_at_all_images_and_starts_larger_on_cuda():
    fake = _FakeSolver(rate=1e9)
    est_mod.probe_matching(
        np.zeros((6, 4, 2)), "greedy", {}, "cpu", solver=fake, clock=fake.clock
    )
    assert fake.sizes == [4, 4, 4, 6, 6, 6, 6, 6]  # short runs: repeated, the fastest counts
    fake = _FakeSolver(rate=1e9)
    est_mod.probe_matching(
        np.zeros((100, 4, 2)), "exact", {}, "cuda", solver=fake, clock=fake.clock
    )
    assert fake.sizes[:2] == [32, 32]
    with pytest.raises(ExplorerError):
        est_mod.probe_matching(np.zeros((1, 4, 2)), "exact", {}, "cpu", solver=fake)


@pytest.fixture()
def probes(monkeypatch):
    """plan() with injected probes: forward 0.5 s per image, matching 10 pairs/s."""
    calls = []
    monkeypatch.setattr(est_mod, "_probes", {})

    def forward(model, images, layer, **kw):
        return 0.5, np.ones((4, 1024, 4), np.float32)

    def matching(tokens, matcher, params, device, **kw):
        calls.append(device)
        return 10.0

    monkeypatch.setattr(est_mod, "probe_forward", forward)
    monkeypatch.setattr(est_mod, "probe_matching", matching)
    return calls


def test_plan_uses_rates_probed_on_the_device_that_runs_the_job(tmp_path, probes):
    from semrsm.cache import Cache

    run = est_mod.plan(ExplorerConfig(layer="act1", device="cpu"), Cache(tmp_path))
    assert probes == ["cpu"]
    assert run.sources == {"extract": "probe", "match": "probe"}
    assert run.estimate["match"] == pytest.approx(496 / 10.0)
    assert run.estimate["extract"] == pytest.approx(32 * 0.5)
    assert run.is_long and run.slowest == "match"


def test_long_run_advice_names_the_slow_part(tmp_path, probes, monkeypatch):
    """The advice suggested a deeper layer or batch-optimal even when the model's forward
    pass was the slow part."""
    from pages._run import long_run_advice, run_prompt
    from semrsm.cache import Cache

    monkeypatch.setattr(est_mod, "probe_forward", lambda *a, **k: (5.0, np.ones((4, 16, 4))))
    run = est_mod.plan(ExplorerConfig(device="cpu"), Cache(tmp_path))  # 4x4 layer: matching fast
    assert run.slowest in ("extract", "predict")
    advice = long_run_advice(run)
    assert "running the model" in advice and "batch-optimal" not in advice
    assert "measured on this server" in run_prompt(run)
    run.estimate.update(extract=0.0, predict=0.0, match=100.0)
    assert "batch-optimal" in long_run_advice(run)


def test_warm_up_compiles_the_matchers_and_rejects_unknown_steps():
    from semrsm.explorer.warmup import warm_up

    out = warm_up(("exact", "approximate"), device="cpu")
    assert set(out) == {"exact", "approximate"} and all(math.isfinite(v) for v in out.values())
    with pytest.raises(ValueError, match="unknown warm-up step"):
        warm_up(("nope",))


def test_umap_functions_get_an_on_disk_cache():
    from numba.core.caching import NullCache

    from semrsm.explorer.warmup import cache_umap

    cache_umap()
    import umap.umap_ as uu

    # smooth_knn_dist is a parallel numba function that umap-learn leaves uncached
    assert not isinstance(uu.smooth_knn_dist._cache, NullCache)


def test_leaving_the_legacy_pages_mode_reruns_once():
    from streamlit.runtime.pages_manager import PagesManager

    from pages._navigation import leave_legacy_pages_mode

    old = PagesManager.uses_pages_directory
    reruns = []
    try:
        PagesManager.uses_pages_directory = True
        assert leave_legacy_pages_mode(rerun=lambda: reruns.append(1)) is True
        assert PagesManager.uses_pages_directory is False and reruns == [1]
        assert leave_legacy_pages_mode(rerun=lambda: reruns.append(1)) is False
        assert reruns == [1]
    finally:
        PagesManager.uses_pages_directory = old


def test_numba_cache_lands_in_the_app_cache(monkeypatch, tmp_path):
    from pages._startup import own_numba_cache

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path))
    assert own_numba_cache() == tmp_path / "numba"
    import os

    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert own_numba_cache() == tmp_path / "mine"  # a user's choice wins


def test_layer_estimate_counts_one_forward_pass_and_a_cold_model():
    """The Analyses page said "about 1 s" for a translation run of 2.7 s after a restart:
    its estimate left out loading the model (the cached pages need none)."""
    from semrsm.explorer import estimate_layers

    warm = estimate_layers(18, [256, 64], seconds_per_image=0.01, model_loaded=True)
    pairs = 18 * 17 // 2
    want = pairs / est_mod.table_rate("exact", "cpu", 256) + pairs / est_mod.table_rate(
        "exact", "cpu", 64)
    assert warm["match"] == pytest.approx(want)
    assert warm["extract"] == pytest.approx(0.18)  # one forward pass for both layers
    assert warm["load"] == 0.0
    cold = estimate_layers(18, [256, 64], seconds_per_image=0.01, model_loaded=False)
    assert cold["total"] == pytest.approx(warm["total"] + est_mod.MODEL_LOAD_SECONDS)
    with pytest.raises(ExplorerError):
        estimate_layers(0, [16])


def test_short_times_keep_a_decimal():
    from pages._progress import fmt_seconds

    assert fmt_seconds(0.6) == "0.6 s" and fmt_seconds(4.24) == "4.2 s"
    assert fmt_seconds(42) == "42 s" and fmt_seconds(600) == "10 min"
