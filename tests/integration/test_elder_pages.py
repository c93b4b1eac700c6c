"""晨曦信号, the staff pages (L3): enrolment through the form (errors per field, what was typed kept, a chain
with no helper refused), the list with today's state, an elder's record (chain, history, alerts with their
timelines) and its audit line, pauses, reissuing the personal link, ending the enrolment (the sweep then
leaves the elder alone), the printed card, the staff figures, and who may see any of it: staff, and a grid
worker for the elders whose chain they are in (enrolling puts them in it; anyone else's elder is not found)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
from httpx import Response
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    AlertOutcome, AlertStatus, CheckInMethod, Elder, ElderAlert, ElderPause, PlaceKind, Role, User,
)
from server.services import morning_signal, places
from server.services.morning_signal import ElderInput, HelperInput
from server.settings import Settings
from tests.conftest import TEST_PASSWORD
from tests.helpers import Web
from tests.integration.staff_cases import in_session

ZERO = "00000000-0000-0000-0000-000000000000"


@dataclass
class Setting:
    compound: UUID
    other_place: UUID  # not a residential compound
    head: UUID  # the building head account
    volunteer: UUID


async def make_setting(settings: Settings) -> Setting:
    async def work(session: AsyncSession) -> Setting:
        root = await places.create_place(session, kind=PlaceKind.SUBDISTRICT, name="测试街道", parent=None)
        community = await places.create_place(session, kind=PlaceKind.COMMUNITY, name="测试社区", parent=root)
        grid = await places.create_place(session, kind=PlaceKind.GRID, name="测试网格", parent=community)
        compound = await places.create_place(session, kind=PlaceKind.RESIDENTIAL_COMPOUND, name="东舍坊小区", parent=grid)
        building = await places.create_place(session, kind=PlaceKind.BUSINESS_BUILDING, name="测试大厦", parent=grid)
        head = await session.scalar(select(User.id).where(User.username == "building-head"))
        volunteer = await session.scalar(select(User.id).where(User.username == "volunteer"))
        assert head and volunteer
        return Setting(compound.id, building.id, head, volunteer)

    return await in_session(settings, work)


async def staff(web: Web, people: dict[Role, str]) -> None:
    response = await web.login(people[Role.STAFF], TEST_PASSWORD)
    assert response.status_code == 303, response.text


def form(setting: Setting, **changes: str) -> dict[str, str]:
    data = {
        "name": "张奶奶", "address": "东舍坊小区3号楼2单元501", "phone": "13900000001", "place_id": str(setting.compound),
        "window_start": "06:30", "window_end": "09:00", "grace_minutes": "30", "reminder_minutes": "20", "step_minutes": "15",
        "helper_rows": "6",
        "helper_kind_0": "building_head", "helper_user_id_0": str(setting.head), "helper_team_0": "",
        "helper_kind_1": "volunteer", "helper_user_id_1": str(setting.volunteer), "helper_team_1": "励新党员服务队",
        "helper_kind_2": "family", "helper_name_2": "张女儿", "helper_phone_2": "13800000000",
    }
    data.update(changes)
    return data


async def enrol_form(web: Web, data: dict[str, str]) -> Response:
    return await web.post_form("/signals/elders/new", data, token_from="/signals/elders/new")


def elder_id_of(response: Response) -> UUID:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/signals/elders/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return UUID(match.group(1))


async def load(settings: Settings, elder_id: UUID) -> Elder:
    async def work(session: AsyncSession) -> Elder:
        elder = await session.get(Elder, elder_id)
        assert elder is not None
        return elder

    return await in_session(settings, work)


async def enrol_direct(settings: Settings, name: str, setting: Setting, *, now: datetime) -> UUID:
    async def work(session: AsyncSession) -> UUID:
        elder = await morning_signal.enrol(session, ElderInput(name=name, place_id=setting.compound), [
            HelperInput("building_head", "孙楼长", user_id=setting.head),
            HelperInput("volunteer", "何志愿", user_id=setting.volunteer, team="幸福合伙人"),
        ], now=now)
        return elder.id

    return await in_session(settings, work)


def beijing(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=UTC) - timedelta(hours=8)


# --- Enrolment ---------------------------------------------------------------------------------------------------


async def test_enrolment_through_the_form(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    await staff(web, people)
    page = await client.get("/signals/elders/new")
    assert page.status_code == 200
    assert 'value="06:00"' in page.text and 'value="09:30"' in page.text  # the default window
    assert "东舍坊小区" in page.text and "测试大厦" not in page.text  # residential compounds only

    # No name, a window of no length, a family contact with no phone: each field says so, what was typed stays.
    refused = await enrol_form(web, form(setting, name="", window_end="06:30", helper_phone_2="", helper_team_1="幸福合伙人"))
    assert refused.status_code == 400
    assert "Please enter the elder&#39;s name." in refused.text
    assert "The window must last some time." in refused.text
    assert "Choose an account, or enter a name and a phone number." in refused.text
    assert 'id="helper_2-error"' in refused.text
    for typed in ("东舍坊小区3号楼2单元501", "13900000001", "张女儿", 'value="幸福合伙人"', 'value="06:30"'):
        assert typed in refused.text
    assert re.search(rf'<option value="{setting.volunteer}" selected>', refused.text)

    # A chain with no helper at all.
    empty_chain = {k: v for k, v in form(setting).items() if not k.startswith("helper_") or k == "helper_rows"}
    refused = await enrol_form(web, empty_chain)
    assert refused.status_code == 400
    assert "An elder needs at least one helper in the chain." in refused.text

    # Not a compound, not a time, not a number.
    refused = await enrol_form(web, form(setting, place_id=str(setting.other_place), window_start="6 点", step_minutes="二十"))
    assert refused.status_code == 400
    assert 'id="place_id-error"' in refused.text and 'id="window_start-error"' in refused.text
    assert 'id="step_minutes-error"' in refused.text and 'value="二十"' in refused.text

    async def count(session: AsyncSession) -> int:
        return len(list(await session.scalars(select(Elder))))

    assert await in_session(settings, count) == 0

    elder_id = elder_id_of(await enrol_form(web, form(setting)))
    elder = await load(settings, elder_id)
    assert (elder.name, elder.address, elder.phone, elder.place_id) == ("张奶奶", "东舍坊小区3号楼2单元501", "13900000001", setting.compound)
    assert (elder.window_start, elder.window_end) == (time(6, 30), time(9, 0))
    assert (elder.grace_minutes, elder.reminder_minutes, elder.step_minutes) == (30, 20, 15)
    assert len(elder.token) >= 32

    async def chain(session: AsyncSession) -> list[tuple[int, str, UUID | None, str | None, str | None]]:
        rows = (await morning_signal.chain_of(session, [elder_id]))[elder_id]
        return [(h.position, h.kind.value, h.user_id, h.phone, h.team) for h in rows]

    assert await in_session(settings, chain) == [
        (0, "building_head", setting.head, None, None),
        (1, "volunteer", setting.volunteer, None, "励新党员服务队"),
        (2, "family", None, "13800000000", None),
    ]
    record = await client.get(f"/signals/elders/{elder_id}")
    assert "is enrolled" in record.text  # the flash


async def test_edit_replaces_the_chain_in_order(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    elder_id = await enrol_direct(settings, "李爷爷", setting, now=datetime.now(UTC))
    await staff(web, people)
    page = await client.get(f"/signals/elders/{elder_id}/edit")
    assert page.status_code == 200 and 'value="李爷爷"' in page.text
    data = form(setting, name="李爷爷", window_start="07:00", window_end="10:00",
                helper_kind_0="family", helper_user_id_0="", helper_name_0="李儿子", helper_phone_0="13700000000",
                helper_kind_1="volunteer", helper_user_id_1=str(setting.volunteer), helper_kind_2="family", helper_name_2="",
                helper_phone_2="")
    refused = await web.post_form(f"/signals/elders/{elder_id}/edit", {**data, "name": ""}, token_from=f"/signals/elders/{elder_id}/edit")
    assert refused.status_code == 400 and "Please enter the elder&#39;s name." in refused.text and "李儿子" in refused.text
    assert (await load(settings, elder_id)).version == 1
    response = await web.post_form(f"/signals/elders/{elder_id}/edit", data, token_from=f"/signals/elders/{elder_id}/edit")
    assert response.status_code == 303 and response.headers["location"] == f"/signals/elders/{elder_id}"
    elder = await load(settings, elder_id)
    assert (elder.window_start, elder.window_end, elder.version) == (time(7, 0), time(10, 0), 2)

    async def chain(session: AsyncSession) -> list[tuple[str, str]]:
        return [(h.name, h.kind.value) for h in (await morning_signal.chain_of(session, [elder_id]))[elder_id]]

    assert await in_session(settings, chain) == [("李儿子", "family"), ("测试volunteer", "volunteer")]


# --- The list and the record -----------------------------------------------------------------------------------------


async def test_list_shows_each_elder_with_todays_state(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    now = datetime.now(UTC)
    signalled = await enrol_direct(settings, "王奶奶", setting, now=now - timedelta(days=3))
    paused = await enrol_direct(settings, "赵爷爷", setting, now=now - timedelta(days=3))
    ended = await enrol_direct(settings, "钱奶奶", setting, now=now - timedelta(days=3))

    async def arrange(session: AsyncSession) -> None:
        elder = await session.get(Elder, signalled)
        assert elder is not None
        await morning_signal.check_in(session, elder, at=now, method=CheckInMethod.SELF, by_user_id=None, now=now, tz=settings.tz)
        today = morning_signal.day_of(elder, now, settings.tz)
        other = await session.get(Elder, paused)
        assert other is not None
        await morning_signal.add_pause(session, other, today - timedelta(days=1), today + timedelta(days=5), "住院")
        gone = await session.get(Elder, ended)
        assert gone is not None
        await morning_signal.end_enrolment(session, gone, "搬去女儿家", now)

    await in_session(settings, arrange)
    await staff(web, people)
    page = await client.get("/signals/elders")
    assert page.status_code == 200
    active, _, ended_part = page.text.partition("Ended enrolments (1)")
    assert f'href="/signals/elders/{signalled}">王奶奶' in active
    local = now.astimezone(settings.tz).strftime("%H:%M")
    assert f"Signalled at {local}" in active
    row = next(r for r in active.split("<tr>") if "赵爷爷" in r)
    assert '<span class="badge">Paused</span>' in row
    assert "06:00–09:30" in active and "孙楼长" in active and "东舍坊小区" in active
    assert "钱奶奶" not in active and "钱奶奶" in ended_part and "搬去女儿家" in ended_part
    assert "2 elders enrolled" in page.text
    assert 'href="/signals/elders/new"' in page.text


async def test_the_record_shows_chain_history_alerts_and_is_audited(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setting = await make_setting(settings)
    now = datetime.now(UTC)
    today = now.astimezone(settings.tz).date()
    elder_id = await enrol_direct(settings, "孙奶奶", setting, now=now - timedelta(days=10))
    missed_day, signalled_day = today - timedelta(days=3), today - timedelta(days=2)

    async def arrange(session: AsyncSession) -> None:
        elder = await session.get(Elder, elder_id)
        assert elder is not None
        await morning_signal.check_in(session, elder, at=beijing(signalled_day, 7, 12), method=CheckInMethod.PHONE,
                                      by_user_id=setting.head, now=now, tz=settings.tz)
        # No signal on missed_day: the alert opens at 10:00, goes to the building head, then the volunteer answers.
        await morning_signal.sweep(session, beijing(missed_day, 10, 0), settings.tz)
        await morning_signal.sweep(session, beijing(missed_day, 10, 20), settings.tz)
        alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder_id, ElderAlert.day == missed_day))
        assert alert is not None
        await morning_signal.acknowledge(session, alert, setting.volunteer, beijing(missed_day, 10, 25))
        await morning_signal.resolve(session, alert, AlertOutcome.VISITED, setting.volunteer, beijing(missed_day, 10, 50), "敲门后开门")

    await in_session(settings, arrange)
    await staff(web, people)
    with caplog.at_level(logging.INFO, logger="shanzhi.audit"):
        page = await client.get(f"/signals/elders/{elder_id}")
    assert page.status_code == 200
    text = page.text
    assert text.index("孙楼长") < text.index("何志愿") < text.index("幸福合伙人")  # the chain, in order
    assert 'class="el-mark el-signalled' in text and 'class="el-mark el-missed' in text
    assert f"{signalled_day.isoformat()}: Signalled 07:12" in text
    assert "By phone" in text  # the check-in's method, and who gave it
    assert missed_day.isoformat() in text and "Not reachable, visited at home" in text and "敲门后开门" in text
    for step in ("Alert opened", "Sent to 孙楼长", "Escalated to 何志愿", "Acknowledged by 测试volunteer", "Resolved by 测试volunteer"):
        assert step in text
    staff_id = await in_session(settings, lambda s: s.scalar(select(User.id).where(User.username == people[Role.STAFF])))
    lines = [r.getMessage() for r in caplog.records if r.name == "shanzhi.audit"]
    assert f"morning_signal action=view user={staff_id} elder={elder_id}" in lines


async def test_a_pause_is_added_and_shown(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    elder_id = await enrol_direct(settings, "周奶奶", setting, now=datetime.now(UTC))
    await staff(web, people)
    path = f"/signals/elders/{elder_id}"
    refused = await web.post_form(f"{path}/pauses", {"start_on": "2026-12-10", "end_on": "2026-12-01", "reason": "住院"}, token_from=path)
    assert refused.status_code == 400
    assert "The last day cannot be before the first." in refused.text and 'value="住院"' in refused.text
    refused = await web.post_form(f"{path}/pauses", {"start_on": "", "end_on": "2026-12-01"}, token_from=path)
    assert refused.status_code == 400 and 'id="start_on-error"' in refused.text
    response = await web.post_form(f"{path}/pauses", {"start_on": "2026-12-01", "end_on": "2026-12-10", "reason": "去女儿家住"},
                                   token_from=path)
    assert response.status_code == 303 and response.headers["location"] == f"{path}#pauses"
    page = await client.get(path)
    assert "2026-12-01 – 2026-12-10" in page.text and "去女儿家住" in page.text
    assert "Paused from 2026-12-01 to 2026-12-10" in page.text  # the flash

    async def pauses(session: AsyncSession) -> list[tuple[date, date]]:
        return [(p.start_on, p.end_on) for p in await session.scalars(select(ElderPause).where(ElderPause.elder_id == elder_id))]

    assert await in_session(settings, pauses) == [(date(2026, 12, 1), date(2026, 12, 10))]


# --- The personal link, the card, the end ------------------------------------------------------------------------------


async def test_reissuing_the_link_replaces_the_token(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    elder_id = await enrol_direct(settings, "吴爷爷", setting, now=datetime.now(UTC))
    old = (await load(settings, elder_id)).token
    assert (await client.get(f"/checkin/{old}")).status_code == 200
    await staff(web, people)
    path = f"/signals/elders/{elder_id}"
    card = await client.get(f"{path}/card")
    assert f"http://testserver.local/checkin/{old}" in card.text
    response = await web.post_form(f"{path}/token", {}, token_from=path)
    assert response.status_code == 303
    elder = await load(settings, elder_id)
    assert elder.token != old and len(elder.token) >= 32 and elder.version == 2

    async def holders(session: AsyncSession) -> list[UUID]:
        return list(await session.scalars(select(Elder.id).where(Elder.token == old)))

    assert await in_session(settings, holders) == []
    page = await client.get(path)
    assert "the old link and any card printed with it no longer work" in page.text
    card = await client.get(f"{path}/card")
    assert f"/checkin/{elder.token}" in card.text and old not in card.text
    assert (await client.get(f"/checkin/{old}")).status_code == 404
    assert (await client.get(f"/checkin/{elder.token}")).status_code == 200


async def test_the_card_carries_the_qr_code_of_the_absolute_link(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    elder_id = await enrol_direct(settings, "郑奶奶", setting, now=datetime.now(UTC))
    elder = await load(settings, elder_id)
    await staff(web, people)
    card = await client.get(f"/signals/elders/{elder_id}/card")
    assert card.status_code == 200
    assert "<svg" in card.text and 'class="qr-code"' in card.text
    assert f"http://testserver.local/checkin/{elder.token}" in card.text
    assert "郑奶奶" in card.text and "Morning signal · Report safe" in card.text
    assert "Every morning from 06:00 to 09:30" in card.text
    assert "print.css" in card.text
    assert card.headers["cache-control"] == "no-store"


async def test_ending_the_enrolment_needs_a_reason_and_stops_the_sweep(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    now = datetime.now(UTC)
    ending = await enrol_direct(settings, "冯奶奶", setting, now=now)
    staying = await enrol_direct(settings, "陈爷爷", setting, now=now)
    token = (await load(settings, ending)).token
    await staff(web, people)
    path = f"/signals/elders/{ending}"
    refused = await web.post_form(f"{path}/end", {"end_reason": "  "}, token_from=path)
    assert refused.status_code == 400 and "Please say why the enrolment ends." in refused.text
    assert (await load(settings, ending)).ended_at is None
    response = await web.post_form(f"{path}/end", {"end_reason": "搬去养老院"}, token_from=path)
    assert response.status_code == 303
    elder = await load(settings, ending)
    assert elder.ended_at is not None and elder.end_reason == "搬去养老院"
    page = await client.get(path)
    assert "Enrolment ended on" in page.text and "搬去养老院" in page.text
    assert f"{path}/token" not in page.text and f"{path}/end" not in page.text  # no more actions
    assert (await client.get(f"/checkin/{token}")).status_code == 404
    assert (await client.get(f"{path}/card")).status_code == 303
    assert (await client.get(f"{path}/edit")).status_code == 303
    again = await web.post_form(f"{path}/end", {"end_reason": "再次"}, token_from="/signals/elders")
    assert again.status_code == 400

    # Tomorrow, long after the window: the elder who stays gets an alert, the one who left does not.
    tomorrow = now.astimezone(settings.tz).date() + timedelta(days=1)

    async def sweep(session: AsyncSession) -> set[UUID]:
        await morning_signal.sweep(session, beijing(tomorrow, 12, 0), settings.tz)
        return set(await session.scalars(select(ElderAlert.elder_id)))

    assert await in_session(settings, sweep) == {staying}


# --- The staff figures ---------------------------------------------------------------------------------------------------


async def test_staff_figures_from_answered_alerts(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    now = datetime.now(UTC)
    ids = [await enrol_direct(settings, f"老人{i}", setting, now=now - timedelta(days=20)) for i in range(4)]
    day = now.astimezone(settings.tz).date() - timedelta(days=2)
    opened = beijing(day, 10, 0)

    async def arrange(session: AsyncSession) -> None:
        alerts = []
        for elder_id in ids:
            alert = ElderAlert(elder_id=elder_id, day=day, opened_at=opened, step=0, step_at=opened,
                               status=AlertStatus.OPEN, version=1)
            session.add(alert)
            alerts.append(alert)
        await session.flush()
        minute = timedelta(minutes=1)
        # A false alarm: acknowledged after 10 minutes, resolved after 40.
        await morning_signal.acknowledge(session, alerts[0], setting.head, opened + 10 * minute)
        await morning_signal.resolve(session, alerts[0], AlertOutcome.FALSE_ALARM, setting.head, opened + 40 * minute, "去买菜了")
        # Safe: acknowledged after 30 minutes, resolved after 80 (1 h 20 min).
        await morning_signal.acknowledge(session, alerts[1], setting.volunteer, opened + 30 * minute)
        await morning_signal.resolve(session, alerts[1], AlertOutcome.SAFE, setting.volunteer, opened + 80 * minute)
        # Closed by the elder's late signal after 15 minutes: counts as resolved, not in the time to resolve.
        elder = await session.get(Elder, ids[2])
        assert elder is not None
        await morning_signal.check_in(session, elder, at=opened + 15 * minute, method=CheckInMethod.SELF, by_user_id=None,
                                      now=opened + 15 * minute, tz=settings.tz)
        # alerts[3] stays open. An alert older than 30 days is left out.
        session.add(ElderAlert(elder_id=ids[3], day=(now - timedelta(days=40)).date(), opened_at=now - timedelta(days=40),
                               step=0, step_at=now - timedelta(days=40), status=AlertStatus.RESOLVED, outcome=AlertOutcome.FALSE_ALARM,
                               version=1))

    await in_session(settings, arrange)

    async def figures(session: AsyncSession) -> morning_signal.StaffFigures:
        return await morning_signal.staff_figures(session, now - timedelta(days=30), now)

    f = await in_session(settings, figures)
    assert (f.alerts, f.resolved, f.false_alarms, f.late_signals, f.open) == (4, 3, 1, 1, 1)
    assert f.false_alarm_rate == pytest.approx(1 / 3)
    assert f.mean_acknowledge == timedelta(minutes=20)
    assert f.mean_resolve == timedelta(minutes=60)
    load = {h.user_id: (h.acknowledged, h.resolved) for h in f.load or []}
    assert load == {setting.head: (1, 1), setting.volunteer: (1, 1)}

    await staff(web, people)
    page = await client.get("/signals/elders")
    assert "33%" in page.text and "20 min" in page.text and "1 h 0 min" in page.text
    assert "测试building_head" in page.text and "测试volunteer" in page.text


async def test_no_alerts_no_figures(settings: Settings, db: AsyncSession) -> None:
    now = datetime.now(UTC)
    f = await morning_signal.staff_figures(db, now - timedelta(days=30), now)
    assert (f.alerts, f.false_alarm_rate, f.mean_acknowledge, f.mean_resolve, f.load) == (0, None, None, None, [])


# --- Who may see it ------------------------------------------------------------------------------------------------------


async def test_only_staff_and_grid_workers_reach_the_elders_pages(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings
) -> None:
    setting = await make_setting(settings)
    elder_id = await enrol_direct(settings, "褚奶奶", setting, now=datetime.now(UTC))
    path = f"/signals/elders/{elder_id}"
    gets = ["/signals/elders", "/signals/elders/new", path, f"{path}/edit", f"{path}/card"]
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/signals/elders/new", form(setting)), (f"{path}/edit", form(setting, name="改名")),
        (f"{path}/pauses", {"start_on": "2026-12-01", "end_on": "2026-12-02"}), (f"{path}/token", {}),
        (f"{path}/end", {"end_reason": "x"}),
    ]
    token = (await load(settings, elder_id)).token
    # A grid worker reaches these pages, for the elders of their chain only: tests below.
    for principal in ("anonymous", Role.VOLUNTEER, Role.BUILDING_HEAD, Role.SUPERVISOR):
        if principal != "anonymous":
            assert (await web.login(people[principal], TEST_PASSWORD)).status_code == 303
        for target in gets:
            response = await client.get(target)
            assert response.status_code in {401, 403} or response.headers.get("location", "").startswith("/login?next="), target
            assert "褚奶奶" not in response.text and token not in response.text
        for target, data in posts:
            response = await web.post_form(target, data)
            assert response.status_code in {401, 403} or response.headers.get("location", "").startswith("/login?next="), target
        if principal != "anonymous":
            await web.logout()
    elder = await load(settings, elder_id)
    assert (elder.name, elder.token, elder.ended_at, elder.version) == ("褚奶奶", token, None, 1)

    async def count(session: AsyncSession) -> tuple[int, int]:
        return (len(list(await session.scalars(select(Elder)))), len(list(await session.scalars(select(ElderPause)))))

    assert await in_session(settings, count) == (1, 0)


# --- A grid worker: the elders of their chain --------------------------------------------------------------------------


async def grid_worker(web: Web, people: dict[Role, str], settings: Settings) -> UUID:
    response = await web.login(people[Role.GRID_WORKER], TEST_PASSWORD)
    assert response.status_code == 303, response.text
    worker = await in_session(settings, lambda s: s.scalar(select(User.id).where(User.username == people[Role.GRID_WORKER])))
    assert worker is not None
    return worker


async def enrol_with(settings: Settings, name: str, setting: Setting, worker: UUID | None) -> UUID:
    """Enrolled by staff: the building head, then (when given) the grid worker."""
    async def work(session: AsyncSession) -> UUID:
        chain = [HelperInput("building_head", "孙楼长", user_id=setting.head)]
        if worker is not None:
            chain.append(HelperInput("grid_worker", "网格员小刘", user_id=worker))
        elder = await morning_signal.enrol(session, ElderInput(name=name, place_id=setting.compound), chain, now=datetime.now(UTC))
        return elder.id

    return await in_session(settings, work)


async def chain_users(settings: Settings, elder_id: UUID) -> list[tuple[str, UUID | None]]:
    async def work(session: AsyncSession) -> list[tuple[str, UUID | None]]:
        return [(h.kind.value, h.user_id) for h in (await morning_signal.chain_of(session, [elder_id]))[elder_id]]

    return await in_session(settings, work)


async def test_a_grid_worker_enrols_an_elder_and_is_always_in_the_chain(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    worker = await grid_worker(web, people, settings)
    page = await client.get("/signals/elders/new")
    assert page.status_code == 200 and 'value="09:30"' in page.text
    assert "you are added at the end of the chain, as the grid worker" in page.text
    assert 'href="/signals/elders">My elders</a>' in page.text  # the menu
    field = await client.get("/field/signals")
    assert field.status_code == 200 and 'href="/signals/elders/new"' in field.text

    # They did not choose themselves: they are added at the end, as the grid worker.
    elder_id = elder_id_of(await enrol_form(web, form(setting)))
    assert await chain_users(settings, elder_id) == [
        ("building_head", setting.head), ("volunteer", setting.volunteer), ("family", None), ("grid_worker", worker)]
    record = await client.get(f"/signals/elders/{elder_id}")
    assert record.status_code == 200
    assert "is enrolled" in record.text and "You were added at the end of the chain, as the grid worker." in record.text
    assert "测试grid_worker" in record.text

    # They chose themselves (first, as a volunteer would be): the chain stays as they made it.
    second = elder_id_of(await enrol_form(web, form(setting, name="钱爷爷", helper_kind_0="grid_worker", helper_user_id_0=str(worker))))
    assert await chain_users(settings, second) == [("grid_worker", worker), ("volunteer", setting.volunteer), ("family", None)]

    # A chain left empty: the worker alone is enough.
    empty = {k: v for k, v in form(setting, name="孙奶奶").items() if not k.startswith("helper_") or k == "helper_rows"}
    third = elder_id_of(await enrol_form(web, empty))
    assert await chain_users(settings, third) == [("grid_worker", worker)]

    # On their list (without the staff figures) and on their board.
    listing = await client.get("/signals/elders")
    assert listing.status_code == 200
    assert "My elders" in listing.text and "3 elders enrolled" in listing.text
    for elder in (elder_id, second, third):
        assert f'href="/signals/elders/{elder}"' in listing.text
    assert "False-alarm rate" not in listing.text and "Helpers&#39; load" not in listing.text
    board = await client.get("/signals")
    assert board.status_code == 200 and "张奶奶" in board.text and "钱爷爷" in board.text


async def test_a_grid_worker_sees_and_changes_only_the_elders_of_their_chain(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setting = await make_setting(settings)
    worker = await in_session(settings, lambda s: s.scalar(select(User.id).where(User.username == people[Role.GRID_WORKER])))
    assert worker is not None
    mine = await enrol_with(settings, "王奶奶", setting, worker)
    other = await enrol_with(settings, "褚奶奶", setting, None)
    other_token = (await load(settings, other)).token
    await grid_worker(web, people, settings)

    # The list: their elder only.
    with caplog.at_level(logging.INFO, logger="shanzhi.audit"):
        listing = await client.get("/signals/elders")
        record = await client.get(f"/signals/elders/{mine}")
    assert listing.status_code == 200 and "王奶奶" in listing.text and "褚奶奶" not in listing.text
    assert "1 elder enrolled" in listing.text
    assert record.status_code == 200 and "王奶奶" in record.text and "孙楼长" in record.text
    lines = [r.getMessage() for r in caplog.records if r.name == "shanzhi.audit"]
    assert f"morning_signal action=list user={worker} elder=-" in lines
    assert f"morning_signal action=view user={worker} elder={mine}" in lines

    # Another elder: not found, whatever the page; nothing changes.
    path = f"/signals/elders/{other}"
    for target in (path, f"{path}/edit", f"{path}/card"):
        response = await client.get(target)
        assert response.status_code == 404, target
        assert "褚奶奶" not in response.text and other_token not in response.text
    posts: list[tuple[str, dict[str, Any]]] = [
        (f"{path}/edit", form(setting, name="改名")), (f"{path}/pauses", {"start_on": "2026-12-01", "end_on": "2026-12-02"}),
        (f"{path}/token", {}), (f"{path}/end", {"end_reason": "x"}),
    ]
    for target, data in posts:
        response = await web.post_form(target, data, token_from="/signals/elders")
        assert response.status_code == 404, target
    elder = await load(settings, other)
    assert (elder.name, elder.token, elder.ended_at, elder.version) == ("褚奶奶", other_token, None, 1)

    async def pauses_of(session: AsyncSession) -> dict[UUID, int]:
        rows = list(await session.scalars(select(ElderPause)))
        return {i: sum(1 for p in rows if p.elder_id == i) for i in (mine, other)}

    assert await in_session(settings, pauses_of) == {mine: 0, other: 0}

    # Their own elder: as for staff.
    path = f"/signals/elders/{mine}"
    old_token = (await load(settings, mine)).token
    with caplog.at_level(logging.INFO, logger="shanzhi.audit"):
        card = await client.get(f"{path}/card")
        assert card.status_code == 200 and f"/checkin/{old_token}" in card.text
        response = await web.post_form(f"{path}/pauses", {"start_on": "2026-12-01", "end_on": "2026-12-10", "reason": "住院"},
                                       token_from=path)
        assert response.status_code == 303 and response.headers["location"] == f"{path}#pauses"
        response = await web.post_form(f"{path}/token", {}, token_from=path)
        assert response.status_code == 303
        edit = await client.get(f"{path}/edit")
        assert edit.status_code == 200 and 'value="王奶奶"' in edit.text
        data = form(setting, name="王奶奶", window_start="07:00", helper_kind_0="building_head", helper_user_id_0=str(setting.head),
                    helper_kind_1="grid_worker", helper_user_id_1=str(worker), helper_team_1="", helper_name_2="", helper_phone_2="")
        response = await web.post_form(f"{path}/edit", data, token_from=f"{path}/edit")
        assert response.status_code == 303 and response.headers["location"] == path
    elder = await load(settings, mine)
    assert elder.token != old_token and elder.window_start == time(7, 0)
    assert await chain_users(settings, mine) == [("building_head", setting.head), ("grid_worker", worker)]
    assert await in_session(settings, pauses_of) == {mine: 1, other: 0}
    lines = [r.getMessage() for r in caplog.records if r.name == "shanzhi.audit"]
    for action in ("view_card", "pause", "reissue_token", "view_edit", "edit"):
        assert f"morning_signal action={action} user={worker} elder={mine}" in lines

    # Ending it: the record (with the end) stays theirs to read.
    response = await web.post_form(f"{path}/end", {"end_reason": "搬去女儿家"}, token_from=path)
    assert response.status_code == 303 and response.headers["location"] == path
    page = await client.get(path)
    assert page.status_code == 200 and "搬去女儿家" in page.text
    assert (await load(settings, mine)).ended_at is not None


async def test_a_grid_worker_who_leaves_the_chain_confirms_first(
    web: Web, client: AsyncTestClient, people: dict[Role, str], settings: Settings, english: None
) -> None:
    setting = await make_setting(settings)
    worker = await in_session(settings, lambda s: s.scalar(select(User.id).where(User.username == people[Role.GRID_WORKER])))
    assert worker is not None
    elder_id = await enrol_with(settings, "李爷爷", setting, worker)
    await grid_worker(web, people, settings)
    path = f"/signals/elders/{elder_id}"
    without_me = form(setting, name="李爷爷", helper_kind_0="building_head", helper_user_id_0=str(setting.head),
                      helper_kind_1="volunteer", helper_user_id_1=str(setting.volunteer), helper_name_2="", helper_phone_2="")
    refused = await web.post_form(f"{path}/edit", without_me, token_from=f"{path}/edit")
    assert refused.status_code == 400
    assert "you will no longer see this elder" in refused.text and 'name="leave_chain"' in refused.text
    assert await chain_users(settings, elder_id) == [("building_head", setting.head), ("grid_worker", worker)]
    assert (await load(settings, elder_id)).version == 1

    response = await web.post_form(f"{path}/edit", {**without_me, "leave_chain": "1"}, token_from=f"{path}/edit")
    assert response.status_code == 303 and response.headers["location"] == "/signals/elders"
    assert await chain_users(settings, elder_id) == [("building_head", setting.head), ("volunteer", setting.volunteer)]
    listing = await client.get("/signals/elders")
    assert "You have left their chain" in listing.text and f'href="{path}"' not in listing.text
    assert (await client.get(path)).status_code == 404
