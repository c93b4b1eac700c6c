"""晨曦信号 in a phone-sized Chromium: the elder opens their link once, then with no network presses
"我很好"; the press waits on the phone and arrives once when the network is back, with the time it was
pressed (docs/morning-signal.md). The page reads at 200% zoom."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from server.models import CheckIn, CheckInMethod
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import in_db
from tests.browser.waiting import wait_until

PAGE_SAVED = """async (path) => Boolean(navigator.serviceWorker.controller)
    && Boolean(await (await caches.open("shanzhi-pages")).match(path))"""


def enrol(server: LiveServer) -> tuple[str, Any]:
    async def work(session: Any) -> tuple[str, Any]:
        elder = await morning_signal.enrol(session, ElderInput(name="李淑芬", window_start=time(0, 0), window_end=time(23, 59)),
                                           [HelperInput("family", "李儿子", phone="13800002222")], now=datetime(2026, 1, 1, tzinfo=UTC))
        return elder.token, elder.id

    return in_db(server.settings, work)


def checkins(server: LiveServer, elder_id: Any) -> list[tuple[datetime, CheckInMethod]]:
    async def read(session: Any) -> list[tuple[datetime, CheckInMethod]]:
        return [(r.at, r.method) for r in await session.scalars(select(CheckIn).where(CheckIn.elder_id == elder_id))]

    return in_db(server.settings, read)


def test_a_press_offline_arrives_once_with_its_time(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    token, elder_id = enrol(live_server)
    path = f"/checkin/{token}"
    page.goto(path)
    expect(page.locator(".checkin-button")).to_be_visible()
    assert_accessible(page)
    wait_until(page, PAGE_SAVED, arg=path, timeout=20_000, interval=250)
    page.reload()  # the scripts are now kept by the service worker too
    page.wait_for_selector("html[data-checkin-ready]", state="attached", timeout=20_000)

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("html[data-checkin-ready]", state="attached", timeout=20_000)
    before_press = datetime.now(UTC)
    page.locator(".checkin-button").click()
    expect(page.locator("[data-checkin-status]")).to_be_visible()
    expect(page.locator(".week-mark.is-queued")).to_have_count(1)
    assert checkins(live_server, elder_id) == []
    page.wait_for_timeout(1500)

    online_at = datetime.now(UTC)
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator(".week-mark.is-signalled")).to_have_count(1, timeout=20_000)
    rows = checkins(live_server, elder_id)
    assert len(rows) == 1 and rows[0][1] == CheckInMethod.SELF
    # The time it was pressed, not the time it reached the server.
    assert before_press.replace(microsecond=0) <= rows[0][0] <= online_at
    assert_accessible(page)


def test_the_elder_page_reads_at_200_percent_zoom(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    token, _elder = enrol(live_server)
    page.goto(f"/checkin/{token}")
    page.evaluate("document.documentElement.style.fontSize = '200%'")  # what browser text zoom does to rem sizes
    button = page.locator(".checkin-button")
    box = button.bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] >= 200
    # Nothing sideways: the page still fits the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(button).to_be_in_viewport()
