"""Server-level fault test (one stuck solve used to stall every user, and SIGTERM was ignored).

A real ``streamlit run`` server on a free loopback port with a data root holding a checkpoint
whose activations overflow float32 (the demo ResNet with its stem scaled by 1e20). Session A
picks that checkpoint; session B meanwhile computes a batch-optimal RSM, which must take no
longer than the first, cold run of the app plus a few seconds. Then B starts a long run and
the server gets SIGTERM: it must exit within seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from browser_helpers import HEATMAPS_DRAWN, wait_for_heatmaps, wait_idle

from tests.streamlit_server import streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
SLACK_S = 8.0  # "its normal time plus a few seconds"
STOP_S = 15.0  # the server must be gone this long after SIGTERM


def _overflowing_checkpoint(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = {k: v.clone() for k, v in load_file(str(ROOT / "assets" / "demo-resnet.safetensors")).items()}
    state["conv1.0.weight"] *= 1e20  # finite weights, activations ~1e21: products overflow
    save_file(state, str(path))


@contextlib.contextmanager
def _server(tmp_path: Path, data_root: Path):
    env = {"SEMRSM_CACHE_DIR": str(tmp_path / "cache"), "SEMRSM_DATA_ROOT": str(data_root),
           "OMP_NUM_THREADS": "2"}
    with streamlit_server(tmp_path / "streamlit.log", env) as server:
        yield server.proc, server.url, server.log_path


def _select(page, label: str, option: str) -> float:
    """Pick ``option`` (a prefix of its text) in the sidebar selectbox labelled ``label``.

    A rerun redraws the widget and closes an open list: then it is tried again. Returns the
    time (``time.monotonic()``) of the successful click."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("combobox", name=label).first
    wanted = page.get_by_role("option", name=re.compile("^" + re.escape(option))).first
    for _ in range(3):
        box.click()
        try:
            wanted.click(timeout=5_000)
            return time.monotonic()
        except PlaywrightTimeout:
            print(f"retrying the selection of {option!r}")
            page.keyboard.press("Escape")
            wait_idle(page, 60)
    page.screenshot(path=str(tmp_shot(page)))
    raise AssertionError(f"could not pick {option!r} in {label!r}")


def tmp_shot(page) -> Path:
    out = ROOT / "artifacts" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out / "server_faults_select_failed.png"


def _body_has(page, pattern: str, timeout_s: float) -> None:
    page.wait_for_function(
        "(re) => new RegExp(re).test(document.body.innerText)", arg=pattern,
        timeout=int(timeout_s * 1000),
    )


def test_overflowing_checkpoint_does_not_stall_others_and_sigterm_stops(
    browser_context, allow_app_origin, tmp_path
):
    import numpy as np

    import semrsm

    # compile the solvers into numba's on-disk cache first, so that neither run below
    # pays for compilation (in CI this test may run before any other solve)
    warm = np.random.default_rng(0).random((3, 16, 8)).astype(np.float32)
    for matcher in ("exact", "batch_optimal"):
        semrsm.semantic_rsm(warm, matcher=matcher)
    data = tmp_path / "data"
    data.mkdir()
    _overflowing_checkpoint(data / "huge.safetensors")
    with _server(tmp_path, data) as (proc, url, log_path):
        allow_app_origin(url)  # this test's own server, on the loopback address
        a, b = browser_context.new_page(), browser_context.new_page()
        for tab in (a, b):
            tab.set_default_timeout(60_000)

        # normal time: the first, cold run of the default configuration (model load,
        # token extraction, exact matching of 496 pairs)
        t0 = time.monotonic()
        a.goto(url, wait_until="domcontentloaded")
        wait_for_heatmaps(a, 180_000)
        normal_s = time.monotonic() - t0

        # session A: the overflowing checkpoint, by path inside the data root
        a.get_by_text("local checkpoint").click()
        path_box = a.get_by_label(re.compile("or a path inside"))
        path_box.fill("huge.safetensors")
        path_box.press("Enter")
        _body_has(a, "too large|Matching positions", 60)  # A's job has started (or ended)

        # session B: an uncomputed batch-optimal run while A's job is (or was) running
        b.goto(url, wait_until="domcontentloaded")
        wait_for_heatmaps(b, 60_000)  # served from the cache
        wait_idle(b, 60)
        t1 = _select(b, "Matcher", "batch-optimal")
        _body_has(b, r"batch-optimal matcher", normal_s + SLACK_S)
        b.wait_for_function(HEATMAPS_DRAWN, timeout=int((normal_s + SLACK_S) * 1000))
        b_s = time.monotonic() - t1
        assert b_s <= normal_s + SLACK_S, (b_s, normal_s)

        # A says what is wrong, without a traceback
        _body_has(a, "too large", 30)
        assert a.locator('[data-testid="stException"]').count() == 0
        err = a.locator('[data-testid="stAlertContentError"]').first.inner_text()
        assert "overflow" in err and "checkpoint" in err

        # SIGTERM while B runs a long job (exact matching of 1024 positions)
        wait_idle(b, 60)
        _select(b, "Matcher", "exact")
        wait_idle(b, 60)
        _select(b, "Layer", "act1")
        # the long job starts at once, or behind a Compute prompt when its estimate is
        # above the app's long-run threshold: click only if the prompt is there
        _body_has(b, r"Extracting tokens|Matching positions|Compute \(about", 60)
        compute = b.get_by_role("button", name=re.compile("^Compute"))
        if compute.count():
            with contextlib.suppress(Exception):
                compute.first.click(timeout=15_000)
        _body_has(b, "Extracting tokens|Matching positions", 60)
        b.wait_for_timeout(1000)
        t2 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the server ignored SIGTERM for {STOP_S} s while a job ran:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        stop_s = time.monotonic() - t2
        print(f"normal {normal_s:.1f} s, B's batch-optimal run {b_s:.1f} s, stop {stop_s:.1f} s")
