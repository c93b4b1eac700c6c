"""Browser fixtures: the app served by a real uvicorn process with demo data, and the system Chromium.

One Chromium per test session, one server per test module; each test gets a fresh browser context
(cookies, caches, service workers of its own) and a database put back to the demo snapshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.databases import Databases, settings_for
from tests.servers import LiveServer

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
