"""End to end in a real browser: the app opens on its offline default with both heatmaps,
the neighbours page shows the gallery and the neighbours, a click on a thumbnail changes
the query (and the link: it reopens that query in a new session), the tour steps through
the four findings with their figures, *How it works* draws the picture of the two
pairings when opened, projector mode enlarges text and figures, and no page ever shows an
exception. Screenshots: artifacts/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import (
    CHART,
    assert_no_clipped_text,
    assert_no_exception,
    assert_no_overlapping_ticks,
    heatmap_chart,
    wait_for_heatmaps,
    wait_idle,
)

from semrsm.images.shapes import SHAPE_CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
SHAPES = set(SHAPE_CLASSES)  # the classes of the procedural shapes set
#: the x tick labels of the first heatmap panel and the font sizes of all tick labels
TICKS = """gd => ({
  x: [...gd.querySelectorAll('g.xtick text')].map(t => t.textContent),
  sizes: [...gd.querySelectorAll('g.xtick text, g.ytick text, g.x2tick text, g.y2tick text')]
       .map(t => parseFloat(getComputedStyle(t).fontSize)),
})"""
#: the panel titles of a figure, the lines of a long title (plotly's tspan.line) joined
PANEL_TITLES = """gd => [...gd.querySelectorAll('g.annotation')].map(a => {
  const lines = [...a.querySelectorAll('tspan.line')].map(t => t.textContent);
  return lines.length ? lines.join(' ') : a.textContent;
})"""
#: the option the order box shows, and the order the figure of both RSMs is drawn in
ORDER_SHOWN = """() => {
  const box = [...document.querySelectorAll('[data-testid="stSelectbox"]')]
    .find(b => b.innerText.includes('Order the images'));
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.querySelector('g.hm'));
  const input = box && box.querySelector('input');
  return {shown: box ? (input && input.value) || box.innerText.split('\\n').pop() : null,
          order: gd && gd.layout.meta ? gd.layout.meta.order : null};
}"""


def test_rsm_and_neighbours_pages(page, app_url, screenshots, full_screenshot):
    page.goto(app_url, wait_until="domcontentloaded")
    # both heatmaps of the default configuration (one figure with two heatmap panels)
    wait_for_heatmaps(page, 180_000)
    heatmaps = heatmap_chart(page)
    wait_idle(page)
    assert_no_exception(page, "the RSM page")
    assert page.get_by_text("Similarity matrices: classic vs semantic").count() == 1
    assert page.locator(CHART).count() >= 3  # heatmaps, difference, histograms
    titles = heatmaps.evaluate(PANEL_TITLES)
    assert titles == ["spatio-semantic (classic)", "semantic (optimal matching)"], titles
    # the axes name the classes, one per block, at a readable size (were file names cut
    # to 14 characters at 8 px: crescent and cross looked alike)
    ticks = heatmaps.evaluate(TICKS)
    assert ticks["x"] and set(ticks["x"]) <= SHAPES, ticks
    assert len(ticks["x"]) == len(set(ticks["x"]))  # by label: one tick per class
    assert min(ticks["sizes"]) >= 10, ticks
    # names on the axes, colour bars and legends fit in the figures' fixed margins
    assert_no_clipped_text(page, "the RSM page")
    # no panel's names or title over another's, in a wide window and in a projector's
    # 1024 px with the sidebar open (the right panel's row names lay over the left
    # heatmap, the two titles over each other, and the histograms' in a narrow column)
    assert_no_overlapping_ticks(page, "the RSM page")
    full_screenshot(page, "rsm_page.png")
    heatmaps.screenshot(path=str(screenshots / "rsm_heatmaps.png"))
    wide = page.viewport_size
    page.set_viewport_size({"width": 1024, "height": 768})
    try:
        page.wait_for_timeout(1500)  # plotly redraws on the resize
        assert_no_overlapping_ticks(page, "the RSM page in a window 1024 px wide")
        assert_no_clipped_text(page, "the RSM page in a window 1024 px wide")
        page.screenshot(path=str(screenshots / "rsm_page_narrow.png"))
    finally:
        page.set_viewport_size(wide)
    page.wait_for_timeout(1000)

    # neighbours page through the navigation
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Nearest neighbours").click()
    page.get_by_text("Choose a query").wait_for(timeout=120_000)
    page.wait_for_function(
        """() => {
            const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
            // gallery: one thumbnail per image; neighbours: query + k per row
            return charts.length >= 2 && charts[0].querySelectorAll('image').length >= 24
                && charts[1].querySelectorAll('image').length >= 6;
        }""",
        timeout=120_000,
    )
    wait_idle(page)
    assert_no_exception(page, "the neighbours page")
    heading = page.get_by_text(re.compile(r"^Top \d+ neighbours of ")).first
    before = heading.inner_text()
    assert "classic (spatio-semantic)" in page.locator(CHART).nth(1).inner_text()
    full_screenshot(page, "neighbours_page.png", height=2000)

    # a click on another thumbnail makes it the query
    gallery = page.locator(f"{CHART} .js-plotly-plot").first
    box = gallery.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.28, box["y"] + 30)
    page.wait_for_function(
        """(before) => {
            const h = [...document.querySelectorAll('h3')].find(e => e.innerText.startsWith('Top '));
            return h && h.innerText !== before;
        }""",
        arg=before,
        timeout=60_000,
    )
    wait_idle(page)
    assert_no_exception(page, "the neighbours page after a click")
    page.screenshot(path=str(screenshots / "neighbours_after_click.png"))

    # the link carries the new query: it reopens the same neighbours in a new session
    after = heading.inner_text()
    page.wait_for_function("() => /[?&]query=[1-9]/.test(location.search)")
    link = page.url
    assert "/neighbours?" in link and "query=0" not in link
    other = page.context.new_page()
    try:
        other.goto(link, wait_until="domcontentloaded")
        other.get_by_text(after, exact=True).wait_for(timeout=120_000)
        wait_idle(other)
        assert_no_exception(other, "the neighbours page opened from its link")
    finally:
        other.close()

    _tour_how_it_works_and_projector(page, screenshots, full_screenshot)


def _charts_drawn(page, count: int) -> None:
    page.wait_for_function(
        """(n) => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
            .filter(gd => gd.querySelector('.main-svg')).length >= n""",
        arg=count,
        timeout=180_000,
    )


def _tour_how_it_works_and_projector(page, screenshots, full_screenshot) -> None:
    """The teaching views: the tour's four steps, the RSM page's *How it works*, and
    projector mode (root font and figures 1.5 times larger)."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Tour of the findings").click()
    steps = [("Translation", 2), ("Retrieval", 2), ("Agreement with the output", 1),
             ("Layers", 1)]
    for n, (title, charts) in enumerate(steps, start=1):
        page.get_by_text(f"Step {n} of 4 · {title}", exact=True).wait_for(timeout=180_000)
        wait_idle(page)
        _charts_drawn(page, charts)
        assert_no_exception(page, f"the tour, step {n}")
        assert page.get_by_text("Look for:").count() == 1
        assert page.get_by_text(re.compile(r"^Here")).count() == 1  # this run's numbers
        full_screenshot(page, f"tour_{title.split()[0].lower()}.png", height=1500)
        if n < 4:
            page.get_by_role("button", name="Next →").click()
    page.wait_for_function("() => location.search.includes('step=layers')")  # in the link

    # RSM page: the picture of the two pairings, one click away
    nav.get_by_text("RSMs").click()
    wait_for_heatmaps(page, 120_000)
    wait_idle(page)
    assert page.get_by_text("cosine 0.56").count() == 0  # collapsed: not drawn
    page.get_by_text("How it works: what the two RSMs compare").click()
    page.get_by_text("cosine 0.56").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "How it works")
    page.locator('[data-testid="stExpander"]').filter(
        has_text="How it works: what the two RSMs compare").screenshot(
        path=str(screenshots / "how_it_works.png"))
    page.get_by_text("How it works: what the two RSMs compare").click()  # close it again

    # projector mode: text and figures 1.5 times larger, on every page
    height = heatmap_chart(page).bounding_box()["height"]
    font = "() => getComputedStyle(document.documentElement).fontSize"
    assert page.evaluate(font) == "16px"
    page.locator('[data-testid="stSidebar"]').get_by_text("Projector mode").click()
    page.wait_for_function(f"() => ({font})() === '24px'", timeout=60_000)
    wait_idle(page)
    wait_for_heatmaps(page, 60_000)
    page.wait_for_function(
        """(h) => { const gd = [...document.querySelectorAll('.js-plotly-plot')]
                        .find(g => g.querySelector('g.hm'));
                    return gd && gd.getBoundingClientRect().height > 1.4 * h; }""",
        arg=height,
        timeout=60_000,
    )
    assert_no_exception(page, "the RSM page in projector mode")
    assert_no_clipped_text(page, "the RSM page in projector mode")
    full_screenshot(page, "projector_rsm.png", height=2000)
    nav.get_by_text("Tour of the findings").click()
    page.get_by_text("Step 4 of 4 · Layers", exact=True).wait_for(timeout=120_000)
    wait_idle(page)
    _charts_drawn(page, 1)
    assert page.evaluate(font) == "24px"
    assert_no_exception(page, "the tour in projector mode")
    full_screenshot(page, "projector_tour.png", height=1400)


def test_heatmap_cell_selects_a_pair(page, app_url, screenshots):
    """A click on a heatmap cell previews that pair below the heatmaps, and its link opens
    the pair in the token-matching view (when that page exists)."""
    page.goto(app_url, wait_until="domcontentloaded")
    wait_for_heatmaps(page, 180_000)
    wait_idle(page)
    page.get_by_text("No pair selected yet").wait_for()
    chart = heatmap_chart(page)
    box = chart.locator(".nsewdrag").nth(1).bounding_box()  # the semantic panel
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.get_by_text("strongest matches of the optimal pairing").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the pair preview")
    page.screenshot(path=str(screenshots / "heatmap_click_preview.png"))
    # a box dragged over a block (box tool of the chart's toolbar) lists its images
    chart.hover()
    chart.locator('[data-title="Box Select"]').click()
    box = chart.locator(".nsewdrag").nth(1).bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2, steps=10)
    page.mouse.up()
    page.get_by_text("Selected block:").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the selected block")
    # the block's means leave out the self-similarities, as the page's numbers do, and
    # say so (a 5×5 block showed 0.471 with the diagonal, 0.339 without)
    text = page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text="Selected block:").last.inner_text()
    rows, cols, cells = (int(x) for x in re.search(
        r"(\d+) rows × (\d+) columns .* over its (\d+) cells", text).groups())
    assert "self-similarities left out" in text
    assert cells == rows * cols - min(rows, cols), text  # a block on the diagonal
    page.screenshot(path=str(screenshots / "heatmap_box_selection.png"))
    if (ROOT / "pages" / "token_matching.py").is_file():
        page.get_by_text("Open this pair in Token matching").first.click()
        page.get_by_role("heading", name="Token matching").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the page opened by a heatmap click")
    page.screenshot(path=str(screenshots / "heatmap_click.png"))


def test_order_box_shows_the_order_drawn_after_a_screen_without_it(page, app_url):
    """After a screen without the heatmaps (a *Compute* prompt, or no images yet) the box
    showed *as loaded* while the heatmaps were drawn by label."""
    page.goto(app_url, wait_until="domcontentloaded")
    wait_for_heatmaps(page, 180_000)
    wait_idle(page)
    before = page.evaluate(ORDER_SHOWN)
    assert before["shown"] == "by label", before
    source = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
        has_text="Image set")
    for option in ("Upload images", "Shapes (procedural, labelled)"):
        source.click()
        page.get_by_role("option", name=option).click()
        wait_idle(page)
    wait_for_heatmaps(page, 180_000)
    wait_idle(page)
    assert_no_exception(page, "the RSM page after a screen without heatmaps")
    after = page.evaluate(ORDER_SHOWN)
    assert after == before, (before, after)  # the box says by label; drawn by label
