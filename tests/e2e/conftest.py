"""Fixtures for the real-browser tests: the app served by ``streamlit run`` on a free
loopback port with a temporary cache, and Debian's chromium driven by playwright, with
every request that is not to the app's own address blocked and failing the test.

Screenshots go to ``artifacts/screenshots/`` (kept by CI). The tests are skipped, with
the reason, when chromium or playwright is missing — except in CI (``CI`` set), which
installs both and where they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.streamlit_server import streamlit_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Start ``streamlit run app.py`` on a free loopback port; yield its URL."""
    cache_dir = tmp_path_factory.mktemp("semrsm-cache")
    log_path = tmp_path_factory.mktemp("streamlit-log") / "streamlit.log"
    env = {"SEMRSM_CACHE_DIR": str(cache_dir), "OMP_NUM_THREADS": "2", "SEMRSM_DATA_ROOT": None}
    with streamlit_server(log_path, env, startup_timeout=STARTUP_TIMEOUT_S) as server:
        yield server.url
    tail = server.log()[-3000:]
    if "Traceback" in tail:
        print("streamlit server log (tail):\n" + tail)


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where a skipped browser test would hide
    that nobody checked what a person sees."""
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


#: every request the browser tried to send anywhere but the app's own address (blocked)
OUTSIDE_REQUESTS: list[str] = []


#: the app servers that the tests started themselves (origins); nothing else may be reached
APP_ORIGINS: set[str] = set()


def _allowed(url: str) -> bool:
    if url.startswith(("data:", "blob:")):
        return True
    return any(url == origin or url.startswith(origin + "/") for origin in APP_ORIGINS)


@pytest.fixture()
def allow_app_origin():
    """Let the browser reach one more app server that the test started itself (on the
    loopback address); the permission ends with the test."""
    added: list[str] = []

    def allow(url: str) -> None:
        origin = url.rstrip("/")
        APP_ORIGINS.add(origin)
        added.append(origin)

    yield allow
    for origin in added:
        APP_ORIGINS.discard(origin)


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory, app_url):
    """A chromium context with a fresh user-data dir (Debian chromium, no downloads).

    Every request that is not to the app's own address is aborted and recorded; the
    autouse fixture ``no_outside_requests`` fails the test that caused it (the app must
    work without a network: no icon fonts, no CDNs, no usage statistics).
    """
    if not Path(CHROMIUM).is_file():
        _unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        import playwright.sync_api as sync_api
    except ImportError:
        _unavailable("the playwright package is missing: pip install -r requirements-dev.txt")
    user_data = tmp_path_factory.mktemp("chromium-profile")
    pw = sync_api.sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(user_data),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
            device_scale_factor=1,
        )
    except Exception as err:  # noqa: BLE001
        pw.stop()
        _unavailable(f"chromium could not start: {err}")
    APP_ORIGINS.add(app_url.rstrip("/"))

    def route(r) -> None:
        if _allowed(r.request.url):
            r.continue_()
        else:
            OUTSIDE_REQUESTS.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    try:
        yield context
    finally:
        context.close()
        pw.stop()


@pytest.fixture(autouse=True)
def no_outside_requests():
    """Fail a browser test during which the app tried to reach any other address."""
    start = len(OUTSIDE_REQUESTS)
    yield
    tried = OUTSIDE_REQUESTS[start:]
    assert not tried, f"the app tried to leave the machine: {sorted(set(tried))[:10]}"


@pytest.fixture()
def page(browser_context):
    """A fresh tab."""
    tab = browser_context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    tab.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder CI keeps: ``artifacts/screenshots/``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture()
def full_screenshot(screenshots):
    """``shoot(page, "name.png", height=2400)``: the whole page, not just the viewport.

    Streamlit scrolls inside its own container, so ``full_page=True`` only shows the
    viewport; the viewport is made tall for the shot and restored afterwards.
    """

    def shoot(page, name: str, height: int = 2400) -> Path:
        size = page.viewport_size
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(1500)  # let plotly relayout to the new size
        path = screenshots / name
        page.screenshot(path=str(path))
        page.set_viewport_size(size)
        return path

    return shoot


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
