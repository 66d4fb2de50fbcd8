"""Every page of the app, in a real browser with every outside request blocked: each page
opens on the offline default, draws its charts and shows no exception or error, and the
browser never tries another address (the conftest's ``no_outside_requests`` fails the
test otherwise); no chart's titles or tick labels lie over another panel. Screenshots
of each page: artifacts/screenshots/page_*.png."""

from __future__ import annotations

import re

import pytest
from browser_helpers import (
    CHART,
    assert_no_exception,
    assert_no_overlapping_ticks,
    wait_for_heatmaps,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def test_every_page_offline(page, app_url, full_screenshot):
    page.goto(app_url, wait_until="domcontentloaded")
    wait_for_heatmaps(page, 240_000)
    wait_idle(page)
    assert_no_exception(page, "the RSM page")
    # no icon font or favicon from elsewhere: the page icon is served by the app
    icon = page.evaluate(
        "() => [...document.querySelectorAll('link[rel*=icon]')].map(l => l.href)"
    )
    assert all(h.startswith((app_url, "data:")) for h in icon), icon
    nav = page.locator('[data-testid="stSidebarNav"] a')
    titles = [t.strip() for t in nav.all_inner_texts()]
    assert len(titles) >= 2 and not any(":material" in t for t in titles), titles
    for k, title in enumerate(titles):
        nav.nth(k).click()
        page.wait_for_timeout(500)
        wait_idle(page, timeout_s=300)
        page.locator("h1").first.wait_for(timeout=120_000)
        assert_no_exception(page, f"the page {title!r}")
        assert page.locator(CHART).count() >= 1 or page.locator("button").count() >= 1
        # no panel title or tick label of a chart over another panel's
        assert_no_overlapping_ticks(page, f"the page {title!r}")
        full_screenshot(page, f"page_{_slug(title)}.png", height=2200)
