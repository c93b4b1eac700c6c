"""The recycling station on the operator's phone: the drop-off page is opened once, then with no network a
household's recyclables are weighed and saved; the drop-off waits on the phone and arrives once when the
network is back, with the time it was saved, at the rate in force then (docs/boards.md, "recycling")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from server.models import RecyclingDropoff, RecyclingHousehold, RecyclingStation
from server.services import recycling
from server.services.demo_recycling import STATION
from tests.browser.axe import assert_accessible
from tests.browser.conftest import LiveServer
from tests.browser.test_field_offline import in_db
from tests.browser.waiting import wait_until

PAGE_SAVED = """async (path) => Boolean(navigator.serviceWorker.controller)
    && Boolean(await (await caches.open("shanzhi-pages")).match(path))"""


def new_card(server: LiveServer) -> tuple[str, str, str]:
    """(station id, a new household's card number, its id)."""
    async def work(session: Any) -> tuple[str, str, str]:
        station = await session.scalar(select(RecyclingStation).where(RecyclingStation.name == STATION))
        household = await recycling.issue_card(session, station, note="", now=datetime.now(UTC))
        return str(station.id), household.card_number, str(household.id)

    return in_db(server.settings, work)


def dropoffs_of(server: LiveServer, household_id: str) -> list[tuple[datetime, int, int]]:
    async def read(session: Any) -> list[tuple[datetime, int, int]]:
        rows = await session.scalars(select(RecyclingDropoff).where(RecyclingDropoff.household_id == household_id))
        return [(r.recorded_at, r.grams, r.points) for r in rows]

    return in_db(server.settings, read)


def balance_of(server: LiveServer, household_id: str) -> int:
    async def read(session: Any) -> int:
        return int(await session.scalar(select(RecyclingHousehold.balance).where(RecyclingHousehold.id == household_id)))

    return in_db(server.settings, read)


def test_a_drop_off_saved_offline_arrives_once_with_its_time(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    station_id, card, household_id = new_card(live_server)
    path = f"/recycling/stations/{station_id}/dropoff"
    page.goto("/login")
    page.locator("#username").fill("station")
    page.locator("#password").fill("jiefanglu")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/station")
    page.goto(path)
    wait_until(page, PAGE_SAVED, arg=path, timeout=20_000, interval=250)
    page.reload()  # its scripts now come from the service worker too
    page.wait_for_selector("html[data-station-ready]", state="attached", timeout=20_000)
    assert_accessible(page)

    context.set_offline(True)
    page.reload()  # the saved page opens with no network
    page.wait_for_selector("html[data-station-ready]", state="attached", timeout=20_000)
    page.locator("#card").fill(card)
    page.locator("#category_0").select_option(label=page.locator("#category_0 option", has_text="纸类").inner_text())
    page.locator("#kg_0").fill("3.2")
    saved_at = datetime.now(UTC)
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-status]")).to_contain_text("已保存在本机")
    expect(page.locator("[data-station-queue-list] li")).to_have_count(1)
    expect(page.locator("[data-station-queue-list]")).to_contain_text("纸类 3.2 kg")
    expect(page.locator("#card")).to_have_value("")  # ready for the next household
    assert dropoffs_of(live_server, household_id) == []
    page.wait_for_timeout(1500)

    online_at = datetime.now(UTC)
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.locator("[data-station-status]")).to_contain_text("已记录", timeout=20_000)
    expect(page.locator("[data-recent]")).to_contain_text(recycling.format_card(card))
    expect(page.locator("[data-station-queue]")).to_be_hidden()
    [(at, grams, points)] = dropoffs_of(live_server, household_id)
    assert (grams, points) == (3200, 26)  # 3.2 kg of paper at 8 points per kg
    assert saved_at.replace(microsecond=0) <= at <= online_at  # when it was saved, not when it arrived
    assert balance_of(live_server, household_id) == 26
    assert_accessible(page)


def test_an_unknown_card_is_refused_and_comes_back_to_be_corrected(page: Page, live_server: LiveServer) -> None:
    station_id, card, household_id = new_card(live_server)
    page.goto("/login")
    page.locator("#username").fill("station")
    page.locator("#password").fill("jiefanglu")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/station")
    page.goto(f"/recycling/stations/{station_id}/dropoff")
    page.wait_for_selector("html[data-station-ready]", state="attached", timeout=20_000)
    page.locator("#card").fill("00000000")
    page.locator("#category_0").select_option(index=1)
    page.locator("#kg_0").fill("2")
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-status]")).to_contain_text("本驿站没有卡号为 00000000 的积分卡", timeout=20_000)
    expect(page.locator("#card")).to_have_value("00000000")  # what was typed comes back to be corrected
    expect(page.locator("#kg_0")).to_have_value("2")
    page.locator("#card").fill(card)
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-status]")).to_contain_text("已记录", timeout=20_000)
    assert [(g, p) for _at, g, p in dropoffs_of(live_server, household_id)] == [(2000, 16)]


def test_a_refusal_while_the_next_card_is_typed_waits_in_the_list(context: BrowserContext, page: Page, live_server: LiveServer) -> None:
    """A queued drop-off is refused while the operator types the next household: what is typed stays; the
    refused one waits under "On this phone" with its reason, and is loaded into the form once it is free."""
    station_id, card, household_id = new_card(live_server)
    page.goto("/login")
    page.locator("#username").fill("station")
    page.locator("#password").fill("jiefanglu")
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/station")
    page.goto(f"/recycling/stations/{station_id}/dropoff")
    page.wait_for_selector("html[data-station-ready]", state="attached", timeout=20_000)

    context.set_offline(True)
    page.locator("#card").fill("00000000")
    page.locator("#category_0").select_option(index=1)
    page.locator("#kg_0").fill("2")
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-queue-list] li")).to_have_count(1)
    page.locator("#card").fill(card)  # the next household is being typed when the network comes back
    page.locator("#kg_1").fill("4.5")

    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    item = page.locator("[data-station-queue-list] li")
    expect(item).to_contain_text("本驿站没有卡号为 00000000 的积分卡", timeout=20_000)
    expect(page.locator("[data-station-status]")).to_contain_text("您正在填写的内容不受影响")
    expect(page.locator("#card")).to_have_value(card)  # not overwritten
    expect(page.locator("#kg_1")).to_have_value("4.5")
    expect(page.locator("#kg_0")).to_have_value("")

    item.get_by_role("button", name="载入表单修改").click()  # the form is busy: nothing is overwritten
    expect(page.locator("[data-station-status]")).to_contain_text("请先保存或清空表单")
    expect(page.locator("#card")).to_have_value(card)
    expect(item).to_have_count(1)
    assert_accessible(page)

    page.locator("#card").fill("")
    page.locator("#kg_1").fill("")
    item.get_by_role("button", name="载入表单修改").click()
    expect(page.locator("#card")).to_have_value("00000000")
    expect(page.locator("#kg_0")).to_have_value("2")
    expect(page.locator("[data-station-queue]")).to_be_hidden()
    page.locator("#card").fill(card)
    page.get_by_role("button", name="保存投递").click()
    expect(page.locator("[data-station-status]")).to_contain_text("已记录", timeout=20_000)
    assert [(g, p) for _at, g, p in dropoffs_of(live_server, household_id)] == [(2000, 16)]
