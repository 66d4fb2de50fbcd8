"""``streamlit run app.py`` on a free loopback port, for the tests that need a real server
(the browser tests, the server-fault test, the start-up banner test).

The server runs in a process group of its own, so that stopping it stops everything it
started and nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the options of the tests' servers: loopback only, no file watcher, no statistics
TEST_OPTIONS = ("--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false")


@dataclass(frozen=True)
class Server:
    proc: subprocess.Popen
    port: int
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    """Ask the local Streamlit server (loopback only) whether it is up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/_stcore/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to the server's process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextlib.contextmanager
def streamlit_server(
    log_path: Path,
    env: Mapping[str, str | None] = (),
    options: tuple[str, ...] = TEST_OPTIONS,
    startup_timeout: float = 90.0,
) -> Iterator[Server]:
    """Start the app, wait until it answers its health check, yield it, stop it.

    ``env`` is added to this process's environment (``None`` removes a variable);
    ``options`` follow ``streamlit run app.py --server.headless true --server.port P``.
    A server that exits or stays silent for ``startup_timeout`` seconds fails the test
    with the end of its log.
    """
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for key, value in dict(env).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), *options]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        server = Server(proc, port, f"http://127.0.0.1:{port}", log_path)
        try:
            deadline = time.monotonic() + startup_timeout
            while not healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{server.log()[-4000:]}")
                time.sleep(0.3)
            yield server
        finally:
            stop(proc)
