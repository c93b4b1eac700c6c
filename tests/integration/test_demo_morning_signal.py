"""晨曦信号's demo month (issue 14, item 7): about 45 elders in 东舍坊 and 文华园, each with a chain that the demo
volunteer, building head and grid worker are part of, a month of signals, late signals, false alarms with
their reasons and one real emergency that climbed the chain to 何志愿; loaded once, fast."""

from __future__ import annotations

import time as clock
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    AlertOutcome,
    AlertStatus,
    CheckIn,
    CheckInMethod,
    Elder,
    ElderAlert,
    ElderAlertEvent,
    ElderHelper,
    ElderPause,
    Notification,
    Place,
    User,
)
from server.services import demo, morning_signal
from server.services.demo_morning_signal import has_morning_signal_demo, load_demo_morning_signal
from server.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 3, 16, 8, 10, tzinfo=TZ).astimezone(UTC)  # a Monday morning: some have not signalled yet


async def count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def clear(session: AsyncSession) -> None:
    """Once `load_demo` loads the month too, the snapshot has it (dated by the clock): start again at END."""
    await session.execute(delete(Notification).where(Notification.kind.like("morning_signal%")))
    for model in (ElderAlertEvent, ElderAlert, CheckIn, ElderPause, ElderHelper, Elder):
        await session.execute(delete(model))
    await session.flush()


async def test_a_month_of_morning_signals(demo_data: demo.DemoReport, db: AsyncSession, settings: Settings) -> None:
    if await has_morning_signal_demo(db):  # the base demo loads it
        assert await count(db, Elder) == 45
        await clear(db)
    assert not await has_morning_signal_demo(db)
    started = clock.perf_counter()
    report = await load_demo_morning_signal(db, settings, end=END)
    elapsed = clock.perf_counter() - started
    assert elapsed < 4, f"the loader took {elapsed:.2f}s"  # ~1 s on SQLite; it runs in every demo load
    assert await has_morning_signal_demo(db)

    elders = list(await db.scalars(select(Elder)))
    assert len(elders) == report.elders == 45
    assert all(e.ended_at is None and e.token for e in elders)
    places = {p.id: p.name for p in await db.scalars(select(Place).where(Place.name.in_(["东舍坊小区", "文华园小区"])))}
    assert Counter(places[e.place_id] for e in elders if e.place_id) == {"东舍坊小区": 24, "文华园小区": 21}
    assert all(e.address.startswith(places[e.place_id]) for e in elders if e.place_id)
    assert 30 <= sum(e.phone is not None for e in elders) < 45  # some have no phone
    windows = Counter((e.window_start, e.window_end) for e in elders)
    assert windows.most_common(1)[0][0] == morning_signal.DEFAULT_WINDOW and len(windows) >= 3
    today = END.astimezone(TZ).date()
    assert all(30 <= (today - e.enrolled_at.astimezone(TZ).date()).days <= 40 for e in elders)

    # The chains: two to four helpers each, every one reachable; the demo helpers in some.
    chains = await morning_signal.chain_of(db, [e.id for e in elders])
    assert all(2 <= len(chain) <= 4 for chain in chains.values())
    assert all(h.user_id or h.phone for chain in chains.values() for h in chain)
    assert all([h.position for h in chain] == list(range(len(chain))) for chain in chains.values())
    users = {u.username: u.id for u in await db.scalars(select(User).where(User.username.in_(["buildinghead", "volunteer", "grid"])))}
    in_chains = Counter(h.user_id for chain in chains.values() for h in chain if h.user_id)
    assert all(in_chains[users[name]] >= 5 for name in ("buildinghead", "volunteer", "grid")), in_chains
    teams = {h.team for h in await db.scalars(select(ElderHelper)) if h.team}
    assert {"励新党员服务队", "幸福合伙人"} <= teams

    # A month of signals: nearly every elder every day, a few given by helpers, today's only before END.
    checkins = list(await db.scalars(select(CheckIn)))
    assert len(checkins) == report.checkins > 45 * 28
    methods = Counter(c.method for c in checkins)
    assert methods[CheckInMethod.SELF] > 0.9 * len(checkins)
    assert methods[CheckInMethod.IN_PERSON] + methods[CheckInMethod.PHONE] >= 20
    assert all(c.by_user_id is not None for c in checkins if c.method != CheckInMethod.SELF)
    assert all(c.at <= END for c in checkins)
    signalled_today = {c.elder_id for c in checkins if c.day == today}
    assert 10 < len(signalled_today) < 45
    assert len({(c.elder_id, c.day) for c in checkins}) == len(checkins)  # one signal per elder and day
    pauses = list(await db.scalars(select(ElderPause)))
    assert len(pauses) == report.pauses >= 4
    assert not any(c.elder_id == p.elder_id and p.start_on <= c.day <= p.end_on for c in checkins for p in pauses)

    # The days that went wrong, every alert answered; none opened for today (the worker does that).
    alerts = list(await db.scalars(select(ElderAlert)))
    assert len(alerts) == report.alerts == report.late + report.false_alarms + report.emergencies
    assert all(a.status == AlertStatus.RESOLVED and a.day < today for a in alerts)
    outcomes = Counter(a.outcome for a in alerts)
    assert outcomes[AlertOutcome.LATE_SIGNAL] == report.late >= 3
    assert outcomes[AlertOutcome.FALSE_ALARM] == report.false_alarms >= 2
    for alert in alerts:
        plan = morning_signal.schedule(next(e for e in elders if e.id == alert.elder_id), alert.day, TZ)
        assert alert.opened_at == plan.alert_at  # opened at window end + grace, to the minute
        if alert.outcome == AlertOutcome.FALSE_ALARM:
            assert alert.note and alert.acknowledged_by_id == users["buildinghead"]
            assert timedelta(minutes=5) <= alert.acknowledged_at - alert.opened_at <= timedelta(minutes=12)
        if alert.outcome == AlertOutcome.LATE_SIGNAL:  # closed by the elder's own signal, at its time
            signal = next(c for c in checkins if c.elder_id == alert.elder_id and c.day == alert.day)
            assert signal.method == CheckInMethod.SELF and alert.resolved_at == signal.at > alert.opened_at
    assert any(a.step >= 1 for a in alerts if a.outcome == AlertOutcome.LATE_SIGNAL)  # one climbed before the signal

    # The one emergency: unanswered by the first helper, escalated to 何志愿, who went round.
    (emergency,) = [a for a in alerts if a.outcome == AlertOutcome.HOSPITAL]
    assert report.emergencies == 1
    assert emergency.acknowledged_by_id == emergency.resolved_by_id == users["volunteer"]
    assert emergency.note and "送医" in emergency.note
    events = await morning_signal.timeline(db, emergency.id)
    assert [(e.kind, e.step) for e in events] == [
        ("opened", None), ("sent", 0), ("escalated", 1), ("acknowledged", 1), ("resolved", 1)
    ]
    assert events[2].at - events[0].at == timedelta(minutes=20)
    assert events[2].at < events[3].at < events[4].at
    chain = chains[emergency.elder_id]
    assert chain[0].user_id is None and chain[1].user_id == users["volunteer"]
    assert not any(c.elder_id == emergency.elder_id and c.day == emergency.day for c in checkins)
    assert any(p.elder_id == emergency.elder_id and p.start_on == emergency.day + timedelta(days=1) for p in pauses)

    # The notices the history sent are dated then and read; 何志愿 was told at the escalation.
    notices = list(await db.scalars(select(Notification).where(Notification.kind.like("morning_signal%"))))
    assert notices and all(n.read_at is not None and n.created_at < END for n in notices)
    told = [n for n in notices if n.user_id == users["volunteer"] and n.kind == "morning_signal_alert"]
    assert any(n.created_at == events[2].at for n in told)

    # Loaded once: a second run adds nothing.
    again = await load_demo_morning_signal(db, settings, end=END + timedelta(days=1))
    assert again.elders == 0
    assert (await count(db, Elder), await count(db, CheckIn), await count(db, ElderAlert)) == (45, len(checkins), len(alerts))

