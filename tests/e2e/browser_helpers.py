"""Helpers the real-browser tests share (plain functions; the fixtures are in conftest.py).

The test modules import this file by name: pytest puts their folder on ``sys.path``.
"""

from __future__ import annotations

import time

CHART = '[data-testid="stPlotlyChart"]'

# true once the RSM page's chart of both RSMs has drawn its two heatmap panels
HEATMAPS_DRAWN = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .some(chart => chart.querySelectorAll('g.hm image').length >= 2)"""


def heatmap_chart(page):
    """The RSM page's chart of both RSMs (the picture above it has no heatmap)."""
    return page.locator(f"{CHART} .js-plotly-plot").filter(has=page.locator("g.hm")).first


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


# texts of tick labels, colour bars and legends that stick out of their figure (the
# figures of the RSM page have fixed margins estimated from their text:
# semrsm/figures/drawing.py; a label outside the figure is cut off)
CLIPPED_TEXT = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
  .flatMap(gd => {
    const box = gd.querySelector('svg.main-svg').getBoundingClientRect();
    return [...gd.querySelectorAll('g.xtick text, g.ytick text, g.colorbar text, g.legend text')]
      .map(t => [t.textContent, t.getBoundingClientRect()])
      .filter(([s, r]) => s && r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1
                                              || r.top < box.top - 1 || r.bottom > box.bottom + 1))
      .map(([s]) => s);
  })"""


def assert_no_clipped_text(page, where: str) -> None:
    """Fail when a tick label, colour bar or legend text sticks out of its figure."""
    clipped = page.evaluate(CLIPPED_TEXT)
    if clipped:
        raise AssertionError(f"text cut off at the edge of a figure on {where}: {clipped[:10]}")


# tick labels of one panel that lie over another panel's heatmap (the right panel's row
# names over the left heatmap when the gap between the panels is too narrow for them),
# and titles or other annotations of a figure that overlap each other
OVERLAPPING_TICKS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
  .flatMap(gd => {
    const panels = [...gd.querySelectorAll('g.subplot')].map(sp => ({
      // tick labels of any axis: g.xtick, g.y2tick, ...
      ticks: [...sp.querySelectorAll('g text')]
        .filter(t => /^[xy]\\d*tick$/.test(t.parentNode.getAttribute('class') || '')),
      maps: [...sp.querySelectorAll('g.hm image')].map(i => i.getBoundingClientRect()),
    }));
    const hit = (a, b) => a.left < b.right - 1 && a.right > b.left + 1
                          && a.top < b.bottom - 1 && a.bottom > b.top + 1;
    const notes = [...gd.querySelectorAll('g.annotation')]
      .map(a => [a.textContent, a.getBoundingClientRect()]).filter(([s, r]) => s && r.width > 0);
    return panels.flatMap((p, k) => p.ticks
      .filter(t => t.textContent && t.getBoundingClientRect().width > 0)
      .filter(t => panels.some((q, m) => m !== k
                               && q.maps.some(r => hit(t.getBoundingClientRect(), r))))
      .map(t => t.textContent))
      .concat(notes.filter(([s, r], k) => notes.some(([, q], m) => m !== k && hit(r, q)))
                   .map(([s]) => s));
  })"""


def assert_no_overlapping_ticks(page, where: str) -> None:
    """Fail when a panel's tick label lies over another panel's heatmap, or two
    annotations (panel titles) of a figure overlap."""
    over = page.evaluate(OVERLAPPING_TICKS)
    if over:
        raise AssertionError(f"labels over another heatmap or title on {where}: {over[:10]}")
