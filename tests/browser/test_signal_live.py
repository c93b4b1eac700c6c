"""晨曦信号 live: a volunteer watches the board; the building head answers the alert on another phone and the
volunteer's board shows it without a reload (Server-Sent Events); the volunteer then resolves the alert
on its page (docs/morning-signal.md)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from server.models import AlertOutcome, AlertStatus, ElderAlert, User
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from tests.browser.axe import assert_accessible
from tests.browser.conftest import PHONE_CONTEXT, LiveServer
from tests.browser.test_field_offline import in_db


def alert_for_a_new_elder(server: LiveServer) -> Any:
    async def work(session: Any) -> Any:
        head = await session.scalar(select(User.id).where(User.username == "buildinghead"))
        volunteer = await session.scalar(select(User.id).where(User.username == "volunteer"))
        elder = await morning_signal.enrol(session, ElderInput(name="欧阳桂香", window_start=time(0, 0), window_end=time(0, 1), grace_minutes=0),
                                           [HelperInput("building_head", "孙楼长", user_id=head), HelperInput("volunteer", "何志愿", user_id=volunteer)],
                                           now=datetime(2026, 1, 1, tzinfo=UTC))
        today = morning_signal.day_of(elder, datetime.now(UTC), server.settings.tz)
        await morning_signal.sweep(session, morning_signal.schedule(elder, today, server.settings.tz).alert_at, server.settings.tz)
        await session.flush()
        return await session.scalar(select(ElderAlert.id).where(ElderAlert.elder_id == elder.id, ElderAlert.day == today))

    return in_db(server.settings, work)


def test_an_answer_on_one_phone_shows_live_on_another(browser: Browser, live_server: LiveServer) -> None:
    alert_id = alert_for_a_new_elder(live_server)
    watcher = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    answerer = browser.new_context(base_url=live_server.url, **PHONE_CONTEXT)
    try:
        volunteer = watcher.new_page()
        volunteer.goto("/login")
        volunteer.locator("#username").fill("volunteer")
        volunteer.locator("#password").fill("jiefanglu")
        volunteer.locator("form button[type=submit]").click()
        volunteer.goto("/signals")
        row = volunteer.locator("li.signal-row", has_text="欧阳桂香")
        expect(row.locator(".badge-danger")).to_be_visible()
        assert_accessible(volunteer)
        volunteer.wait_for_function("() => document.querySelector('[sse-connect]') && htmx !== undefined")
        volunteer.wait_for_timeout(500)  # the stream is open

        head = answerer.new_page()
        head.goto("/login")
        head.locator("#username").fill("buildinghead")
        head.locator("#password").fill("jiefanglu")
        head.locator("form button[type=submit]").click()
        head.goto(f"/signals/alerts/{alert_id}")
        head.get_by_role("button", name="我来处理（上门或电话）").click()
        head.wait_for_url(f"**/signals/alerts/{alert_id}")

        # The volunteer's board changed by itself, well before the 30-second poll.
        expect(row).to_contain_text("守护人已在处理", timeout=8_000)

        volunteer.goto(f"/signals/alerts/{alert_id}")
        volunteer.locator('input[name="outcome"][value="safe"]').check()
        volunteer.locator("#note").fill("电话联系上了，老人在女儿家")
        volunteer.get_by_role("button", name="处置完毕").click()
        expect(volunteer.locator(".badge-success").first).to_be_visible()
        assert_accessible(volunteer)
        # The building head's alert page shows the outcome live too.
        expect(head.locator("#alert-live")).to_contain_text("提醒已处置", timeout=8_000)
    finally:
        watcher.close()
        answerer.close()

    async def read(session: Any) -> Any:
        return await session.get(ElderAlert, alert_id)

    done = in_db(live_server.settings, read)
    assert (done.status, done.outcome) == (AlertStatus.RESOLVED, AlertOutcome.SAFE)
