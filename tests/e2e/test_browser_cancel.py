"""A long run in a real browser: the early layer waits behind *Compute* (or starts at once
on a fast machine), shows progress with a *Cancel* button, and *Cancel* stops it: the
script goes idle within seconds and the page offers *Compute* again."""

from __future__ import annotations

import time

import pytest
from browser_helpers import assert_no_exception, wait_for_heatmaps, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_long_run_can_be_cancelled(page, app_url, screenshots):
    page.goto(app_url, wait_until="domcontentloaded")
    wait_for_heatmaps(page, 240_000)
    wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').filter(has_text="Layer").click()
    page.get_by_role("option").filter(has_text="act1").first.click()  # 32x32 positions
    compute = page.get_by_role("button", name="Compute")
    cancel = page.get_by_role("button", name="Cancel")
    compute.or_(cancel).first.wait_for(timeout=120_000)
    if compute.count():
        assert page.get_by_text("This run matches").count() == 1
        compute.click()
    cancel.wait_for(timeout=120_000)
    page.screenshot(path=str(screenshots / "long_run_running.png"))
    t0 = time.monotonic()
    cancel.click()
    page.get_by_text("was cancelled").wait_for(timeout=120_000)
    wait_idle(page, timeout_s=60)
    assert time.monotonic() - t0 < 60
    assert_no_exception(page, "the RSM page after Cancel")
    assert page.get_by_role("button", name="Compute").count() == 1
    page.screenshot(path=str(screenshots / "long_run_cancelled.png"))
