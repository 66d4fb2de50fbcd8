"""Helpers the real-browser tests share (plain functions; the fixtures are in conftest.py).

The test modules import this file by name: pytest puts their folder on ``sys.path``.
"""

from __future__ import annotations

import time

CHART = '[data-testid="stPlotlyChart"]'

# true once the RSM page's first chart has drawn both heatmap panels
HEATMAPS_DRAWN = """() => {
    const chart = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    return chart && chart.querySelectorAll('g.hm image').length >= 2;
}"""


def wait_idle(page, timeout_s: float = 180.0, quiet_s: float = 1.5) -> None:
    """Wait until the script is not running (no status widget) for ``quiet_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.2)
    raise AssertionError(f"the app was still running after {timeout_s} s")


def assert_no_exception(page, where: str) -> None:
    """Fail when the page shows an exception or an error box."""
    exc = page.locator('[data-testid="stException"]')
    if exc.count():
        raise AssertionError(f"exception shown on {where}: {exc.first.inner_text()[:2000]}")
    errors = page.locator('[data-testid="stAlertContentError"]')
    if errors.count():
        raise AssertionError(f"error shown on {where}: {errors.first.inner_text()[:2000]}")


def wait_for_heatmaps(page, timeout_ms: int) -> None:
    """Wait until both heatmap panels of the RSM page are drawn."""
    page.wait_for_function(HEATMAPS_DRAWN, timeout=timeout_ms)
