"""End to end in a real browser: the Compare page shows A vs B with intervals; the
RSM page's heatmaps are reordered by clustering and a click opens an inline pair preview;
the embedding is searched; a link copied from the share box restores the view in a new
session. No page shows an exception. Screenshots: artifacts/screenshots/."""

from __future__ import annotations

import pytest
from browser_helpers import CHART, assert_no_exception, heatmap_chart, wait_for_heatmaps, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

# the navigation heatmaps: order in layout.meta, and the red square of a selected pair
NAV_STATE = """() => {
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')];
    const gd = charts.find(g => g.layout && g.layout.meta && g.layout.meta.selectable !== undefined);
    if (!gd) return null;
    return {order: gd.layout.meta.order,
            marked: (gd.layout.shapes || []).filter(s => s.line && s.line.color === 'red').length};
}"""

SEARCH = '[data-testid="stTextInput"] input[aria-label="Search by name or label"]'


def _goto(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label`` (typing filters the list)."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    box.scroll_into_view_if_needed()
    for _ in range(3):
        box.locator("input").first.click()
        box.locator("input").first.fill(option)
        opt = page.get_by_role("option", name=option)
        try:
            opt.wait_for(timeout=10_000)
        except Exception:  # noqa: BLE001 - the list closed during a rerun: open it again
            page.keyboard.press("Escape")
            continue
        opt.click()
        return
    page.screenshot(path="artifacts/screenshots/choose_failed.png")
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def test_compare_navigate_search_and_link(page, app_url, screenshots, full_screenshot, browser_context):
    # ---- Compare: A (sidebar: demo-resnet layer3) vs B (demo-vit blocks.3) on shapes
    page.goto(app_url + "/compare", wait_until="domcontentloaded")
    page.get_by_text("A = demo-resnet layer3").wait_for(timeout=240_000)
    page.locator('[data-testid="stTable"]').first.wait_for(timeout=60_000)
    wait_idle(page)
    assert_no_exception(page, "the Compare page")
    table = page.locator('[data-testid="stTable"]').first.inner_text()
    assert "kernel CKA" in table and "Kendall" in table and "semantic − classic" in table
    full_screenshot(page, "compare_page.png", height=2600)

    # ---- RSM page: reorder the heatmaps, click a cell: inline pair preview
    _goto(page, "RSMs")
    wait_for_heatmaps(page, 180_000)
    page.get_by_text("Order the images").first.wait_for(timeout=60_000)
    wait_idle(page)
    before = page.evaluate(NAV_STATE)["order"]
    _choose(page, "Order the images", "cluster the semantic RSM")
    page.wait_for_function(
        f"(b) => {{ const s = ({NAV_STATE})(); return s && JSON.stringify(s.order) !== JSON.stringify(b); }}",
        arg=before,
        timeout=120_000,
    )
    wait_idle(page)
    assert_no_exception(page, "the RSM page after reordering")
    order = page.evaluate(NAV_STATE)["order"]
    assert sorted(order) == list(range(len(order))) and order != before
    nav = heatmap_chart(page)  # the page's one heatmap figure
    nav.scroll_into_view_if_needed()
    box = nav.locator(".nsewdrag").nth(1).bounding_box()  # the semantic panel
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.get_by_text("Open this pair in Token matching").first.wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the pair preview")
    assert page.evaluate(NAV_STATE)["marked"] == 2  # the cell is outlined in both panels
    full_screenshot(page, "rsm_navigation.png", height=3200)

    # ---- Embedding: search highlights the matching images
    _goto(page, "Embedding")
    search = page.locator(SEARCH)
    search.wait_for(timeout=120_000)
    wait_idle(page)
    search.fill("star")
    search.press("Enter")
    page.get_by_text("images match").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page, "the embedding page after a search")
    found = page.evaluate(
        """() => { const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
                   return gd.layout.meta.highlight; }"""
    )
    assert found >= 1
    page.locator(CHART).first.screenshot(path=str(screenshots / "embedding_search.png"))

    # ---- change the kernel, copy the link from the share box, open it in a new session
    page.locator('[data-testid="stSidebar"]').get_by_text("linear", exact=True).click()
    wait_idle(page)
    page.locator('[data-testid="stSidebar"]').get_by_text("Share this view").click()
    link = page.locator('[data-testid="stSidebar"]').get_by_label("Link to this view").input_value()
    assert "kernel=linear" in link and link.startswith(app_url + "/embedding"), link
    assert "pair=" in link  # the pair clicked on the RSM page travels too
    page.screenshot(path=str(screenshots / "share_link.png"))

    fresh = browser_context.new_page()  # a new tab is a new Streamlit session
    try:
        fresh.set_default_timeout(60_000)
        fresh.goto(link, wait_until="domcontentloaded")
        fresh.locator(SEARCH).wait_for(timeout=180_000)
        wait_idle(fresh)
        assert_no_exception(fresh, "the view opened from a link")
        sidebar = fresh.locator('[data-testid="stSidebar"]')
        assert sidebar.get_by_role("radio", name="linear").is_checked()
        assert "Embedding" in fresh.locator("h1").first.inner_text()
        fresh.screenshot(path=str(screenshots / "restored_from_link.png"))
    finally:
        fresh.close()
