"""The live boards (docs/boards.md, "The boards"): a drop-off recorded at the station on one phone shows on
the recycling board open in another browser without a reload — in one server process, and with
SHANZHI_REDIS_URL across two server processes (the station's write handled by one, the lobby TV's board
served by the other)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from server.models import RecyclingStation
from server.services import recycling
from server.services.demo_recycling import STATION
from tests.browser.axe import assert_accessible
from tests.browser.conftest import PHONE_CONTEXT, LiveServer
from tests.browser.test_field_offline import in_db
from tests.servers import LiveServer as Server

REDIS = "redis://127.0.0.1:6379/15"
TV = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}


def new_card(server: LiveServer) -> tuple[str, str]:
    async def work(session: Any) -> tuple[str, str]:
        station = await session.scalar(select(RecyclingStation).where(RecyclingStation.name == STATION))
        household = await recycling.issue_card(session, station, note="", now=datetime.now(UTC))
        return str(station.id), household.card_number

    return in_db(server.settings, work)


def record_drop_off(page: Page, station_id: str, card: str, kg: str) -> None:
    """The operator at the station: sign in, weigh, save (online)."""
    page.goto("/login")
    page.locator("#username").fill("station")
    page.locator("#password").fill("jiefanglu")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/station")
    page.goto(f"/recycling/stations/{station_id}/dropoff")
    page.wait_for_selector("html[data-station-ready]", state="attached", timeout=20_000)
    page.locator("#card").fill(card)
    page.locator("#category_0").select_option(index=1)
    page.locator("#kg_0").fill(kg)
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-status]")).to_contain_text("已记录", timeout=20_000)


def watch_board(page: Page, path: str) -> int:
    """Open the board and wait for its live stream; the drop-offs this month as it shows them."""
    page.goto(path)
    page.wait_for_function("() => document.querySelector('[sse-connect]') && window.htmx !== undefined")
    page.wait_for_timeout(500)  # the stream is open
    return int(page.locator('[data-figure="dropoffs"]').inner_text().replace(",", ""))


def test_a_drop_off_shows_on_the_open_board_without_a_reload(browser: Browser, live_server: LiveServer) -> None:
    station_id, card = new_card(live_server)
    tv = browser.new_context(base_url=live_server.url, **TV)
    phone = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    try:
        board = tv.new_page()
        before = watch_board(board, "/boards/recycling?screen=1")
        assert_accessible(board)
        record_drop_off(phone.new_page(), station_id, card, "7.3")
        # Well before the 60-second poll: the commit announced it, the board fetched itself.
        expect(board.locator('[data-figure="dropoffs"]')).to_have_text(str(before + 1), timeout=8_000)
        expect(board.locator("[data-latest]")).to_contain_text("7.3 kg")
        assert board.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    finally:
        tv.close()
        phone.close()


@pytest.fixture
def two_processes(live_server: LiveServer) -> Iterator[tuple[Server, Server]]:
    """Two more `shanzhi serve` processes on the module's database, sharing Redis (live updates, sessions)."""
    live_server.stop()  # its database is ours now; it starts again for the next test
    servers = []
    try:
        for n in (1, 2):
            # With the figures cache on, as in production: each process must drop its cached board when
            # another announces a change (services/boards.py, RemoteChanges).
            server = Server(settings=replace(live_server.settings), log_path=live_server.log_path.with_name(f"redis-{n}.log"),
                            env={"SHANZHI_REDIS_URL": REDIS, "SHANZHI_PUBLIC_CACHE_SECONDS": "30"})
            server.start()
            servers.append(server)
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def test_with_redis_a_drop_off_through_one_process_reaches_a_board_served_by_another(
        browser: Browser, live_server: LiveServer, two_processes: tuple[Server, Server]) -> None:
    lobby, station = two_processes
    station_id, card = new_card(live_server)
    tv = browser.new_context(base_url=lobby.url, **TV)
    phone = browser.new_context(base_url=station.url, **PHONE_CONTEXT)
    try:
        board = tv.new_page()
        before = watch_board(board, "/boards/recycling?screen=1")  # the lobby process now holds the figures in its cache
        record_drop_off(phone.new_page(), station_id, card, "4.6")
        expect(board.locator('[data-figure="dropoffs"]')).to_have_text(str(before + 1), timeout=8_000)
        expect(board.locator("[data-latest]")).to_contain_text("4.6 kg")
    finally:
        tv.close()
        phone.close()
