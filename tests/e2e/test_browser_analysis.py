"""End to end in a real browser, issue-5 pages: the token-matching page draws both images
and the match lines, the embedding page draws both maps with thumbnails, the analyses
page runs the matcher comparison; no page shows an exception.
Screenshots: artifacts/screenshots/ (fixtures in tests/e2e/conftest.py)."""

from __future__ import annotations

import pytest
from browser_helpers import CHART, assert_no_exception, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


def _goto(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()


# counts, in the first chart of the page, plotly image traces, match-line segments and
# the <image> elements actually rendered
OVERLAY_STATE = """() => {
    const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    if (!gd || !gd.data) return null;
    const segs = gd.data.filter(t => t.name === 'matches')
        .reduce((n, t) => n + t.x.filter(v => v === null).length, 0);
    return {
        images: gd.data.filter(t => t.type === 'image').length,
        drawnImages: gd.querySelectorAll('.imagelayer image').length,
        segments: segs,
        paths: gd.querySelectorAll('g.scatterlayer path.js-line').length,
        lines: gd.layout.meta ? gd.layout.meta.lines : -1,
        tokens: gd.layout.meta ? gd.layout.meta.grid[0] * gd.layout.meta.grid[1] : -1,
    };
}"""


def test_token_matching_embedding_and_analyses_pages(page, app_url, screenshots):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator(f"{CHART} .js-plotly-plot").first.wait_for(state="visible", timeout=180_000)
    wait_idle(page)

    # ---- token matching: both images, the grid and the strongest matches as lines
    _goto(page, "Token matching")
    page.get_by_text("The matching", exact=True).wait_for(timeout=120_000)
    page.wait_for_function(
        f"() => {{ const s = ({OVERLAY_STATE})(); return s && s.drawnImages >= 2 && s.segments > 0; }}",
        timeout=120_000,
    )
    wait_idle(page)
    assert_no_exception(page, "the token-matching page")
    state = page.evaluate(OVERLAY_STATE)
    assert state["images"] == 2 and state["drawnImages"] == 2
    # the slider's default: the 30 strongest matches, or all when there are fewer tokens
    assert state["segments"] == state["lines"] == min(30, state["tokens"]) > 0
    assert state["paths"] >= state["segments"]  # every match is a rendered line
    assert page.locator(CHART).count() >= 4  # overlay, alternatives, maps, S x S matrix
    assert page.get_by_text("How it works", exact=True).count() == 1
    page.screenshot(path=str(screenshots / "token_matching_page.png"), full_page=True)
    page.locator(CHART).first.screenshot(path=str(screenshots / "token_matching_overlay.png"))
    page.locator(CHART).nth(2).screenshot(path=str(screenshots / "token_matching_maps.png"))
    page.locator(CHART).nth(3).screenshot(path=str(screenshots / "token_matching_matrix.png"))

    # ---- embedding: two panels of points with thumbnails
    _goto(page, "Embedding")
    page.wait_for_function(
        """() => {
            const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
            return gd && gd.querySelectorAll('g.scatterlayer .point').length >= 64
                && gd.querySelectorAll('.imagelayer image').length >= 64;
        }""",
        timeout=180_000,
    )
    wait_idle(page)
    assert_no_exception(page, "the embedding page")
    titles = page.locator(f"{CHART} .js-plotly-plot").first.inner_text()
    assert "classic (spatio-semantic)" in titles and "semantic" in titles
    page.screenshot(path=str(screenshots / "embedding_page.png"), full_page=True)

    # ---- analyses: output agreement at once, then the matcher comparison on request
    _goto(page, "Analyses")
    page.get_by_text("Run the translation analysis").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the analyses page")
    page.get_by_role("tab", name="Matchers").click()
    page.get_by_role("button", name="Compare the matchers").click()
    page.get_by_text("ratios over pairs whose optimum is positive").wait_for(timeout=180_000)
    wait_idle(page)
    assert_no_exception(page, "the analyses page after comparing matchers")
    page.screenshot(path=str(screenshots / "analyses_matchers.png"), full_page=True)
    # the chart alone (docs/screenshots/analysis_matchers.png): bars from 0, labels apart
    page.locator(CHART).filter(has_text="matched value / optimal value").first.screenshot(
        path=str(screenshots / "analysis_matchers.png"))
