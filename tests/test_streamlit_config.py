"""Starting the app makes no request to another machine and prints no alarming line.

Streamlit, started headless without ``browser.serverAddress``, asked
checkip.amazonaws.com for the machine's external address to print an "External URL",
and offline printed "Did not auto detect external IP. Please go to
https://docs.streamlit.io/ for debugging hints." ``.streamlit/config.toml`` names the
address users open (``browser.serverAddress``), which is all the start-up banner needs.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.streamlit_server import streamlit_server

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _browser_section() -> dict[str, str]:
    """``[browser]`` of ``.streamlit/config.toml`` as text values (tomllib needs 3.11)."""
    out, inside = {}, False
    for line in (ROOT / ".streamlit" / "config.toml").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("["):
            inside = line == "[browser]"
        elif inside and "=" in line:
            key, value = (x.strip() for x in line.split("=", 1))
            out[key] = value.strip('"')
    return out


def test_config_turns_off_statistics_and_names_the_address():
    browser = _browser_section()
    assert browser["gatherUsageStats"] == "false"
    assert browser["serverAddress"] == "localhost"


class _Trap:
    """A loopback port posing as the HTTP(S) proxy: it counts the requests that would
    have left the machine and answers none of them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.attempts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.attempts += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_a_headless_start_makes_no_outside_request_and_prints_no_alarm(tmp_path):
    """``streamlit run app.py --server.headless true``, as a user starts it (no address
    option): the banner names the local URL and nothing tries to reach the internet."""
    trap = _Trap()
    proxy = f"http://127.0.0.1:{trap.port}"
    env = {
        "SEMRSM_CACHE_DIR": str(tmp_path / "cache"),
        # any HTTP(S) request made with requests/urllib goes to the trap, not outside
        "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
        "NO_PROXY": "", "no_proxy": "",
    }
    log_path = tmp_path / "streamlit.log"
    try:
        # no address option: as a user starts it
        with streamlit_server(log_path, env, options=()) as server:
            port = server.port
            # the banner is printed once the server is up; give it a moment to be written
            for _ in range(20):
                if "URL:" in server.log():
                    break
                time.sleep(0.25)
            time.sleep(2.5)  # a lookup of the external address would have been made by now
    finally:
        trap.close()
    out = log_path.read_text(errors="replace")
    assert "external IP" not in out, out
    assert "External URL" not in out, out
    assert f"URL: http://localhost:{port}" in out, out
    assert trap.attempts == 0, f"{trap.attempts} request(s) tried to leave the machine"
