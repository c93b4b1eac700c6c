"""Browser fixtures: the app served by a real uvicorn process with demo data, and the system Chromium.

One Chromium per test session, one server per test module; each test gets a fresh browser context
(cookies, caches, service workers of its own) and a database put back to the demo snapshot."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from server.settings import Settings
from tests.databases import Databases, settings_for

PHONE = {"width": 390, "height": 844}
# How every test browser profile looks: a phone, in Chinese, with service workers on.
PHONE_CONTEXT: dict[str, object] = {
    "viewport": PHONE,
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "service_workers": "allow",
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("No Chromium found: run `make test` (it installs Debian's chromium) or set CHROMIUM=/path")
    return path


_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_ports = iter(range(21000 + 500 * _WORKER, 21500 + 500 * _WORKER))


def free_port() -> int:
    """A free port from this pytest worker's own range: a server stopped by a test keeps its port
    until it starts again, and no other worker's server can take it meanwhile."""
    for port in _ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this worker's range")


@dataclass
class LiveServer:
    """`shanzhi serve` in its own process, so a test can stop it (no network) and start it again."""

    settings: Settings
    log_path: Path
    port: int = field(default_factory=free_port)
    release: str = "1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "SHANZHI_DATABASE_URL": self.settings.database_url,
            "SHANZHI_VAR_DIR": str(self.settings.var_dir),
            "SHANZHI_SECRET_KEY": self.settings.secret_key,
            "SHANZHI_RELEASE": self.release,
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the server did not answer /healthz within 30 s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


DEFAULT_RELEASE = "1"


@pytest.fixture(scope="module")
def module_server(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("live")
    settings = settings_for(databases.fresh("demo", directory), directory / "var")
    server = LiveServer(settings=settings, log_path=directory / "server.log", release=DEFAULT_RELEASE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(module_server: LiveServer, databases: Databases) -> Iterator[LiveServer]:
    """The module's server on the demo data as loaded (what an earlier test wrote is gone), running."""
    databases.reset_in_place(module_server.settings.database_url, "demo")
    if module_server.process is None or module_server.release != DEFAULT_RELEASE:
        module_server.stop()
        module_server.release = DEFAULT_RELEASE
        module_server.start()
    yield module_server


# One Playwright and one Chromium for the whole session: browser tests run last (see tests/conftest.py),
# so the event loop Playwright's sync API keeps on the main thread stops no async test.
@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A phone-sized browser profile of its own (fresh cookies, caches and service workers)."""
    context = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
