"""Browser fixtures: the app served by a real uvicorn process with demo data, and the system Chromium."""

from __future__ import annotations

import asyncio
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

from server.db import make_alchemy_config, session_scope
from server.services import demo
from server.settings import Settings
from tests.conftest import run_isolated

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _load_demo(settings: Settings) -> None:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            await demo.load_demo(session)
    finally:
        await config.get_engine().dispose()


@pytest.fixture
def demo_database(settings: Settings) -> Settings:
    """The test database with the Jiefanglu demo data (demo users, password demo.DEMO_PASSWORD)."""
    run_isolated(asyncio.run, _load_demo(settings))
    return settings


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


@pytest.fixture
def live_server(demo_database: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(settings=demo_database, log_path=tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Module scope: Playwright's sync API keeps an event loop running on the main thread while it is
# alive, which would stop any async test collected after the browser modules.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
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
