"""晨曦信号 end to end on a real database with a moved clock (docs/morning-signal.md): the reminder, the
alert at window end + grace, one step up the chain every 20 minutes to staff, nothing sent twice however
often or however concurrently the sweep runs, a late signal closing the alert and telling everyone it
reached once, pauses, and answering an alert."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import func, select

from server.db import make_alchemy_config, session_scope
from server.models import AlertOutcome, AlertStatus, CheckInMethod, Elder, ElderAlert, ElderPause, Notification, Role
from server.services import accounts, morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from server.settings import Settings

DAY = date(2026, 11, 27)


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=UTC) - timedelta(hours=8)  # Beijing time, stored in UTC


@dataclass
class Chain:
    elder: UUID
    head: UUID  # 楼栋长 (first)
    volunteer: UUID  # 志愿者 (second)
    staff: UUID


@pytest.fixture
async def chain(config: SQLAlchemyAsyncConfig) -> Chain:
    async with session_scope(config) as session:
        users = {}
        for username, role in (("head", Role.BUILDING_HEAD), ("vol", Role.VOLUNTEER), ("staff", Role.STAFF)):
            users[username] = (await accounts.create_user(session, username=username, password="x" * 12, role=role,
                                                          display_name=username)).id
        elder = await morning_signal.enrol(session, ElderInput(name="张奶奶", address="东舍坊小区3号楼"), [
            HelperInput("building_head", "孙楼长", user_id=users["head"]),
            HelperInput("volunteer", "何志愿", user_id=users["vol"], team="励新党员服务队"),
            HelperInput("family", "张女儿", phone="13800000000"),
        ], now=at(0, 0))  # enrolled at midnight: today is its first day
        return Chain(elder.id, users["head"], users["vol"], users["staff"])


async def sweep(config: SQLAlchemyAsyncConfig, settings: Settings, now: datetime) -> morning_signal.SweepReport:
    async with session_scope(config) as session:
        return await morning_signal.sweep(session, now, settings.tz)


async def told(config: SQLAlchemyAsyncConfig, kind: str) -> list[UUID]:
    async with session_scope(config) as session:
        return list(await session.scalars(select(Notification.user_id).where(Notification.kind == kind).order_by(Notification.created_at)))


async def the_alert(config: SQLAlchemyAsyncConfig, elder: UUID) -> ElderAlert | None:
    async with session_scope(config) as session:
        return await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder, ElderAlert.day == DAY))


async def test_no_signal_climbs_the_chain_at_the_right_minutes(config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain) -> None:
    assert (await sweep(config, settings, at(8, 59))).reminders == 0
    await sweep(config, settings, at(9, 0))  # 30 minutes before the window closes: the first helper is reminded
    await sweep(config, settings, at(9, 1))
    assert await told(config, "morning_signal_reminder") == [chain.head]
    await sweep(config, settings, at(9, 59))
    assert await the_alert(config, chain.elder) is None
    await sweep(config, settings, at(10, 0))  # 09:30 + 30 minutes of grace
    assert await told(config, "morning_signal_alert") == [chain.head]
    await sweep(config, settings, at(10, 19))
    assert await told(config, "morning_signal_alert") == [chain.head]
    await sweep(config, settings, at(10, 20))  # unanswered for 20 minutes: the volunteer
    await sweep(config, settings, at(10, 40))  # then the family contact (a text message)
    await sweep(config, settings, at(11, 0))  # then staff
    await sweep(config, settings, at(11, 30))
    assert await told(config, "morning_signal_alert") == [chain.head, chain.volunteer, chain.staff]
    alert = await the_alert(config, chain.elder)
    assert alert is not None and alert.opened_at == at(10, 0) and alert.step == 3
    async with session_scope(config) as session:
        events = [(e.kind, e.step, e.at) for e in await morning_signal.timeline(session, alert.id)]
    assert events == [("opened", None, at(10, 0)), ("sent", 0, at(10, 0)), ("escalated", 1, at(10, 20)),
                      ("escalated", 2, at(10, 40)), ("escalated", 3, at(11, 0))]


async def test_a_late_signal_closes_the_alert_and_tells_everyone_it_reached_once(
    config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain
) -> None:
    await sweep(config, settings, at(10, 0))
    await sweep(config, settings, at(10, 25))
    async with session_scope(config) as session:
        elder = await session.get(Elder, chain.elder)
        assert elder is not None
        # Pressed at 10:30 on a phone with no signal, arriving at 10:50: it counts from 10:30.
        row = await morning_signal.check_in(session, elder, at=at(10, 30), method=CheckInMethod.SELF, by_user_id=None,
                                            now=at(10, 50), tz=settings.tz)
        assert row.day == DAY and row.at == at(10, 30)
    alert = await the_alert(config, chain.elder)
    assert alert is not None and alert.status == AlertStatus.RESOLVED and alert.outcome == AlertOutcome.LATE_SIGNAL
    assert sorted(await told(config, "morning_signal_late")) == sorted([chain.head, chain.volunteer])
    # The sweep goes on: nothing more for today; a second press changes nothing either.
    await sweep(config, settings, at(11, 30))
    async with session_scope(config) as session:
        elder = await session.get(Elder, chain.elder)
        assert elder is not None
        await morning_signal.check_in(session, elder, at=at(11, 40), method=CheckInMethod.SELF, by_user_id=None, now=at(11, 40), tz=settings.tz)
    assert await told(config, "morning_signal_alert") == [chain.head, chain.volunteer]
    assert sorted(await told(config, "morning_signal_late")) == sorted([chain.head, chain.volunteer])


async def test_a_signal_in_the_window_means_no_reminder_and_no_alert(config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain) -> None:
    async with session_scope(config) as session:
        elder = await session.get(Elder, chain.elder)
        assert elder is not None
        await morning_signal.check_in(session, elder, at=at(7, 12), method=CheckInMethod.SELF, by_user_id=None, now=at(7, 12), tz=settings.tz)
    for moment in (at(9, 0), at(10, 0), at(12, 0)):
        await sweep(config, settings, moment)
    assert await told(config, "morning_signal_reminder") == [] and await the_alert(config, chain.elder) is None


async def test_a_paused_elder_is_not_expected(config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain) -> None:
    async with session_scope(config) as session:
        session.add(ElderPause(elder_id=chain.elder, start_on=DAY - timedelta(days=1), end_on=DAY, reason="住院"))
    for moment in (at(9, 0), at(10, 0), at(12, 0)):
        await sweep(config, settings, moment)
    assert await the_alert(config, chain.elder) is None
    # The pause ended: the next day is expected again.
    await sweep(config, settings, at(10, 0, DAY + timedelta(days=1)))
    async with session_scope(config) as session:
        assert await session.scalar(select(func.count()).select_from(ElderAlert).where(ElderAlert.day == DAY + timedelta(days=1))) == 1


async def test_two_workers_sweeping_at_once_send_each_step_once(config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain) -> None:
    other = make_alchemy_config(settings)  # a second worker process: its own engine and connections
    try:
        for moment in (at(9, 0), at(10, 0), at(10, 20), at(10, 40), at(11, 0)):
            reports = await asyncio.gather(
                *(morning_signal_sweep(c, settings, moment) for c in (config, other, config, other)))
            assert sum(r.opened for r in reports) <= 1
    finally:
        await other.get_engine().dispose()
    assert await told(config, "morning_signal_reminder") == [chain.head]
    assert await told(config, "morning_signal_alert") == [chain.head, chain.volunteer, chain.staff]
    async with session_scope(config) as session:
        assert await session.scalar(select(func.count()).select_from(ElderAlert)) == 1


async def morning_signal_sweep(config: SQLAlchemyAsyncConfig, settings: Settings, now: datetime) -> morning_signal.SweepReport:
    from server.db import mark_writer

    mark_writer()
    return await sweep(config, settings, now)


async def test_a_helper_answers_and_the_alert_stops_climbing(config: SQLAlchemyAsyncConfig, settings: Settings, chain: Chain) -> None:
    await sweep(config, settings, at(10, 0))
    async with session_scope(config) as session:
        alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == chain.elder))
        assert alert is not None
        await morning_signal.acknowledge(session, alert, chain.head, at(10, 5))
    await sweep(config, settings, at(10, 40))
    assert await told(config, "morning_signal_alert") == [chain.head]
    async with session_scope(config) as session:
        alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == chain.elder))
        assert alert is not None
        with pytest.raises(morning_signal.InvalidCheckIn):
            await morning_signal.resolve(session, alert, AlertOutcome.FALSE_ALARM, chain.head, at(10, 30))  # a reason is needed
        await morning_signal.resolve(session, alert, AlertOutcome.SAFE, chain.head, at(10, 30), note="上门看过，老人在午睡")
    alert = await the_alert(config, chain.elder)
    assert alert is not None and (alert.status, alert.outcome, alert.resolved_by_id) == (AlertStatus.RESOLVED, AlertOutcome.SAFE, chain.head)
