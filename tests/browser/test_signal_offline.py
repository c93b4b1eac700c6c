"""晨曦信号 on a helper's phone: the building head opens the board once, then in a stairwell with no signal
records that they have seen an elder; the signal waits on the phone and arrives once when the network is
back, with the time it was saved, and the board shows it (docs/morning-signal.md, "On someone's behalf")."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from server.models import CheckIn, CheckInMethod, User
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import in_db
from tests.browser.waiting import wait_until

BOARD_SAVED = """async () => Boolean(navigator.serviceWorker.controller)
    && Boolean(await (await caches.open("shanzhi-pages")).match("/signals"))"""


def enrol_with_head(server: LiveServer) -> Any:
    async def work(session: Any) -> Any:
        head = await session.scalar(select(User.id).where(User.username == "buildinghead"))
        elder = await morning_signal.enrol(session, ElderInput(name="上官秀英", window_start=time(0, 0), window_end=time(23, 59)),
                                           [HelperInput("building_head", "孙楼长", user_id=head)], now=datetime(2026, 1, 1, tzinfo=UTC))
        return elder.id

    return in_db(server.settings, work)


def signals_of(server: LiveServer, elder_id: Any) -> list[tuple[datetime, CheckInMethod, Any]]:
    async def read(session: Any) -> list[tuple[datetime, CheckInMethod, Any]]:
        return [(r.at, r.method, r.by_user_id) for r in await session.scalars(select(CheckIn).where(CheckIn.elder_id == elder_id))]

    return in_db(server.settings, read)


def test_a_building_head_signals_for_an_elder_offline_and_it_arrives_once(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    elder_id = enrol_with_head(live_server)
    page.goto("/login")
    page.locator("#username").fill("buildinghead")
    page.locator("#password").fill("jiefanglu")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/building-head")
    page.goto("/signals")
    wait_until(page, BOARD_SAVED, timeout=20_000, interval=250)
    page.reload()  # its scripts now come from the service worker too
    page.wait_for_selector("html[data-signals-ready]", state="attached", timeout=20_000)
    row = page.locator("li.signal-row", has_text="上官秀英")

    context.set_offline(True)
    page.reload()  # the saved board opens with no network
    page.wait_for_selector("html[data-signals-ready]", state="attached", timeout=20_000)
    row.locator("select[name=method]").select_option("in_person")
    saved_at = datetime.now(UTC)
    row.get_by_role("button", name="代报平安").click()
    expect(page.locator("[data-behalf-status]")).to_contain_text("已保存在本机")
    expect(row.locator("form")).to_be_hidden()
    assert signals_of(live_server, elder_id) == []
    page.wait_for_timeout(1500)

    online_at = datetime.now(UTC)
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("[data-behalf-status]")).to_contain_text("已发送", timeout=20_000)
    expect(page.locator("li.signal-row", has_text="上官秀英").locator(".badge-success")).to_be_visible(timeout=20_000)
    assert_accessible(page)
    [(at, method, by)] = signals_of(live_server, elder_id)
    assert method == CheckInMethod.IN_PERSON and by is not None
    assert saved_at.replace(microsecond=0) <= at <= online_at  # when it was saved, not when it arrived
