"""晨曦信号 (L3): the rules of the daily check-in, the check-in itself, and the sweep that reminds, opens
alerts and escalates them along each elder's chain. docs/morning-signal.md.

The rules are pure functions of an elder's settings, the day and the clock (tested with a moved clock);
the sweep applies them set-wise and is idempotent: one alert per elder and day (a unique constraint),
each escalation step claimed by a conditional update (`step = old`), each notice sent once (dedupe
keys), so two workers on one PostgreSQL database send nothing twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import case, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from server.i18n import N_
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
    HelperKind,
)
from server import live
from server.services import notifications
from server.services.errors import InvalidInput, ServiceError

DEFAULT_WINDOW = (time(6, 0), time(9, 30))
DEFAULT_GRACE = 30
DEFAULT_REMINDER = 30
DEFAULT_STEP = 20
TOKEN_BYTES = 24  # the personal link: 32 URL-safe characters
OUTCOME_LABELS = {
    AlertOutcome.SAFE: N_("Safe"),  # 平安
    AlertOutcome.HOSPITAL: N_("Taken to hospital"),  # 已送医
    AlertOutcome.VISITED: N_("Not reachable, visited at home"),  # 联系不上已上门
    AlertOutcome.FALSE_ALARM: N_("False alarm"),  # 误报
    AlertOutcome.LATE_SIGNAL: N_("The elder signalled, after the window"),  # 老人已报平安（晚于时段）
}
METHOD_LABELS = {
    CheckInMethod.SELF: N_("By the elder"),
    CheckInMethod.IN_PERSON: N_("Seen in person"),  # 见面
    CheckInMethod.PHONE: N_("By phone"),  # 电话
    CheckInMethod.OTHER: N_("Other"),  # 其他
}


# --- The rules (pure) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When things happen for one elder on one day, in UTC."""

    day: date
    opens: datetime  # the window's start
    closes: datetime  # the window's end
    reminder_at: datetime  # the first helper is reminded if no signal yet
    alert_at: datetime  # the window's end plus the grace: no signal by now opens an alert


def schedule(elder: Any, day: date, tz: ZoneInfo) -> Schedule:
    """The day's window in the subdistrict's time (a window that ends at or before it starts runs past
    midnight into the next day), the reminder before its end (never before it opens), the alert after
    its grace."""
    opens = datetime.combine(day, elder.window_start, tzinfo=tz)
    closes = datetime.combine(day, elder.window_end, tzinfo=tz)
    if closes <= opens:
        closes = datetime.combine(day + timedelta(days=1), elder.window_end, tzinfo=tz)
    reminder = max(opens, closes - timedelta(minutes=elder.reminder_minutes))
    return Schedule(day, opens.astimezone(UTC), closes.astimezone(UTC), reminder.astimezone(UTC),
                    (closes + timedelta(minutes=elder.grace_minutes)).astimezone(UTC))


def day_of(elder: Any, moment: datetime, tz: ZoneInfo) -> date:
    """The day a signal at `moment` counts for: the local date, or the day before while a window that runs
    past midnight is still open."""
    local = moment.astimezone(tz)
    yesterday = local.date() - timedelta(days=1)
    if elder.window_end <= elder.window_start and moment < schedule(elder, yesterday, tz).alert_at:
        return yesterday
    return local.date()


def paused(pauses: Sequence[Any], day: date) -> bool:
    return any(p.start_on <= day <= p.end_on for p in pauses)


def due_step(alert_opened: datetime, step_minutes: int, chain_length: int, now: datetime) -> int:
    """The chain position an unacknowledged alert has reached by `now`: 0 when it opens, one more every
    `step_minutes`; `chain_length` (past the last helper) means staff."""
    if now < alert_opened:
        return 0
    return min(chain_length, int((now - alert_opened) / timedelta(minutes=step_minutes)))


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


async def by_token(session: AsyncSession, token: str) -> Elder | None:
    """The enrolled elder a check-in link belongs to; None for an unknown, reissued or ended one."""
    if not 16 <= len(token) <= 64:
        return None
    return await session.scalar(select(Elder).where(Elder.token == token, Elder.ended_at.is_(None)))


# --- Check-ins ------------------------------------------------------------------------------------------------


class InvalidCheckIn(ServiceError):
    pass


async def chain_of(session: AsyncSession, elder_ids: Sequence[UUID]) -> dict[UUID, list[ElderHelper]]:
    found: dict[UUID, list[ElderHelper]] = {i: [] for i in elder_ids}
    if elder_ids:
        for helper in await session.scalars(select(ElderHelper).where(ElderHelper.elder_id.in_(elder_ids)).order_by(ElderHelper.position)):
            found[helper.elder_id].append(helper)
    return found


async def check_in(
    session: AsyncSession, elder: Elder, *, at: datetime, method: CheckInMethod, by_user_id: UUID | None, now: datetime,
    tz: ZoneInfo, note: str | None = None, checkin_id: UUID | None = None,
) -> CheckIn:
    """Record a signal given at `at` (a press queued offline keeps its time; never later than now). A signal
    for a day whose alert is still open closes it as a late signal and tells everyone it reached, once."""
    if elder.ended_at is not None:
        raise InvalidCheckIn(N_("This elder's check-in has ended."))
    at = min(at, now)
    day = day_of(elder, at, tz)
    live.announce(session, "signals")
    elder.version += 1  # moves the elder in the change feed: phones of the chain learn the last signal
    row = CheckIn(elder_id=elder.id, day=day, at=at, method=method, by_user_id=by_user_id, note=(note or "").strip() or None)
    if checkin_id is not None:
        row.id = checkin_id  # the id the phone gave it (its outbox record)
    session.add(row)
    await session.flush()
    alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder.id, ElderAlert.day == day).with_for_update())
    if alert is not None and alert.status != AlertStatus.RESOLVED:
        await _resolve(session, alert, AlertOutcome.LATE_SIGNAL, by_user_id, now, note=None)
        chain = (await chain_of(session, [elder.id]))[elder.id]
        await _tell(session, elder, alert, chain[: alert.step + 1], staff=alert.step >= len(chain), kind="morning_signal_late",
                    text=N_("%(elder)s has signalled (after the window): the alert is closed."), dedupe=f"ms:late:{alert.id}")
    return row


async def _resolve(session: AsyncSession, alert: ElderAlert, outcome: AlertOutcome, user_id: UUID | None, now: datetime,
                   note: str | None) -> None:
    live.announce(session, "signals")
    alert.status = AlertStatus.RESOLVED
    alert.outcome = outcome
    alert.resolved_at = now
    alert.resolved_by_id = user_id
    alert.note = note
    alert.version += 1
    session.add(ElderAlertEvent(alert_id=alert.id, at=now, kind="resolved", step=alert.step, user_id=user_id,
                                data={"outcome": outcome.value, "note": note}))


async def _tell(session: AsyncSession, elder: Elder, alert: ElderAlert | None, helpers: Sequence[ElderHelper], *, staff: bool,
                kind: str, text: str, dedupe: str, texts: bool = True) -> int:
    """In the app for helpers with an account (and the outbound channels), by text message for a family
    contact without one (`texts`: only where the caller has claimed the step, since a text has no dedupe
    key), and to staff when the chain is exhausted. In-app notices are sent once per `dedupe`; returns how
    many were new."""
    users = [h.user_id for h in helpers if h.user_id]
    if staff:
        users += await notifications.staff_ids(session)
    params = {"elder": elder.name, "alert": str(alert.id) if alert else None}
    sent = 0
    if users:
        sent = await notifications.notify(session, list(dict.fromkeys(users)), kind=kind, text=text, params=params, dedupe=dedupe)
    if texts:
        for helper in helpers:
            if helper.user_id is None and helper.phone:
                notifications.text_phone(session, helper.phone, kind, text, params)
                sent += 1
    return sent


# --- The sweep ---------------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    reminders: int = 0
    opened: int = 0
    escalated: int = 0


async def sweep(session: AsyncSession, now: datetime, tz: ZoneInfo) -> SweepReport:
    """Once a minute (the worker): remind, open alerts, escalate unanswered ones. Idempotent."""
    report = SweepReport()
    elders = list(await session.scalars(select(Elder).where(Elder.ended_at.is_(None))))
    if not elders:
        return report
    ids = [e.id for e in elders]
    today = now.astimezone(tz).date()
    days = (today - timedelta(days=1), today)
    signalled = set((await session.execute(
        select(CheckIn.elder_id, CheckIn.day).where(CheckIn.elder_id.in_(ids), CheckIn.day.in_(days))
    )).tuples().all())
    pauses: dict[UUID, list[ElderPause]] = {i: [] for i in ids}
    for pause in await session.scalars(select(ElderPause).where(ElderPause.elder_id.in_(ids), ElderPause.end_on >= days[0])):
        pauses[pause.elder_id].append(pause)
    alerts = {(a.elder_id, a.day): a for a in await session.scalars(
        select(ElderAlert).where(ElderAlert.elder_id.in_(ids), ElderAlert.day.in_(days)))}
    chains = await chain_of(session, ids)
    for elder in elders:
        chain = chains[elder.id]
        for day in days:
            plan = schedule(elder, day, tz)
            if (elder.id, day) in signalled or paused(pauses[elder.id], day) or now < plan.reminder_at or plan.opens < elder.enrolled_at:
                continue
            if now < plan.alert_at:
                with_account = [h for h in chain if h.user_id]
                if now < plan.closes and with_account:
                    # In the app, to the first helper who has an account (a reminder is not claimed like an
                    # alert step, so it sends no text message; the alert itself does).
                    report.reminders += bool(await _tell(
                        session, elder, None, with_account[:1], staff=False, kind="morning_signal_reminder",
                        text=N_("No morning signal from %(elder)s yet: please check on them before the window closes."),
                        dedupe=f"ms:reminder:{elder.id}:{day.isoformat()}", texts=False))
                continue
            alert = alerts.get((elder.id, day)) or await _open(session, elder, day, plan.alert_at, report)
            if alert is None or alert.status != AlertStatus.OPEN:
                continue
            await _escalate(session, elder, alert, chain, now, report)
    return report


async def _open(session: AsyncSession, elder: Elder, day: date, at: datetime, report: SweepReport) -> ElderAlert | None:
    """Insert the day's alert unless another worker already did (ON CONFLICT DO NOTHING on (elder, day))."""
    values = {"id": uuid7(), "elder_id": elder.id, "day": day, "opened_at": at, "step": -1, "step_at": at,
              "status": AlertStatus.OPEN.value, "version": 1, "change_seq": 0, "created_at": at, "updated_at": at}
    dialect = session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(ElderAlert.__table__).values(**values)
    created = (await session.execute(statement.on_conflict_do_nothing(index_elements=["elder_id", "day"]).returning(
        ElderAlert.__table__.c.id))).scalar_one_or_none()
    if created is None:
        return await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == elder.id, ElderAlert.day == day))
    report.opened += 1
    live.announce(session, "signals")
    await session.execute(insert(ElderAlertEvent.__table__).values(
        id=uuid7(), alert_id=created, at=at, kind="opened", step=None, data={}, created_at=at, updated_at=at))
    return await session.get(ElderAlert, created)


async def _escalate(session: AsyncSession, elder: Elder, alert: ElderAlert, chain: list[ElderHelper], now: datetime,
                    report: SweepReport) -> None:
    """Send the alert to each step it has reached and not been sent to; each step is claimed first."""
    target = due_step(alert.opened_at, elder.step_minutes, len(chain), now)
    while alert.step < target:
        step = alert.step + 1
        claimed = (await session.execute(
            update(ElderAlert.__table__).where(ElderAlert.__table__.c.id == alert.id, ElderAlert.__table__.c.step == alert.step,
                                              ElderAlert.__table__.c.status == AlertStatus.OPEN.value)
            .values(step=step, step_at=now, version=ElderAlert.__table__.c.version + 1)
        )).rowcount
        if claimed != 1:  # another worker took this step (or someone answered meanwhile)
            await session.refresh(alert)
            return
        alert.step = step
        live.announce(session, "signals")
        helpers = chain[step : step + 1]
        to_staff = step >= len(chain)
        await _tell(session, elder, alert, helpers, staff=to_staff, kind="morning_signal_alert",
                    text=N_("No morning signal from %(elder)s: please visit or call them, and say so in the app."),
                    dedupe=f"ms:alert:{alert.id}:{step}")
        session.add(ElderAlertEvent(alert_id=alert.id, at=now, kind="sent" if step == 0 else "escalated", step=step,
                                    data={"to": [h.name for h in helpers], "staff": to_staff}))
        report.escalated += step > 0
    await session.flush()


# --- Helpers answering --------------------------------------------------------------------------------------------


async def acknowledge(session: AsyncSession, alert: ElderAlert, user_id: UUID, now: datetime) -> ElderAlert:
    """A helper is on it: the alert stops climbing the chain."""
    if alert.status != AlertStatus.OPEN:
        raise InvalidCheckIn(N_("This alert has already been answered."))
    live.announce(session, "signals")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by_id = user_id
    alert.version += 1
    session.add(ElderAlertEvent(alert_id=alert.id, at=now, kind="acknowledged", step=alert.step, user_id=user_id, data={}))
    await session.flush()
    return alert


async def resolve(session: AsyncSession, alert: ElderAlert, outcome: AlertOutcome, user_id: UUID, now: datetime,
                  note: str | None = None) -> ElderAlert:
    """Close an alert with its outcome; a false alarm needs its reason."""
    if alert.status == AlertStatus.RESOLVED:
        raise InvalidCheckIn(N_("This alert is already resolved."))
    if outcome == AlertOutcome.LATE_SIGNAL:
        raise InvalidCheckIn(N_("Please choose one of the options."), field="outcome")
    if outcome == AlertOutcome.FALSE_ALARM and not (note or "").strip():
        raise InvalidCheckIn(N_("Say why it was a false alarm."), field="note")
    if alert.status == AlertStatus.OPEN:
        await acknowledge(session, alert, user_id, now)
    await _resolve(session, alert, outcome, user_id, now, (note or "").strip() or None)
    await session.flush()
    return alert


async def timeline(session: AsyncSession, alert_id: UUID) -> list[ElderAlertEvent]:
    # Same moment: in the order things happen (an alert is opened, then sent …).
    order = case({kind: i for i, kind in enumerate(("opened", "sent", "escalated", "acknowledged", "resolved"))},
                 value=ElderAlertEvent.kind, else_=9)
    return list(await session.scalars(select(ElderAlertEvent).where(ElderAlertEvent.alert_id == alert_id)
                                      .order_by(ElderAlertEvent.at, order, ElderAlertEvent.created_at)))


# --- Enrolment ------------------------------------------------------------------------------------------------------


@dataclass
class HelperInput:
    kind: str
    name: str
    user_id: UUID | None = None
    phone: str | None = None
    team: str | None = None


@dataclass
class ElderInput:
    name: str
    address: str = ""
    phone: str | None = None
    place_id: UUID | None = None
    window_start: time = DEFAULT_WINDOW[0]
    window_end: time = DEFAULT_WINDOW[1]
    grace_minutes: int = DEFAULT_GRACE
    reminder_minutes: int = DEFAULT_REMINDER
    step_minutes: int = DEFAULT_STEP


def validate(data: ElderInput, chain: Sequence[HelperInput]) -> list[ServiceError]:
    problems = []
    if not data.name.strip():
        problems.append(ServiceError(N_("Please enter the elder's name."), field="name"))
    if data.window_start == data.window_end:
        problems.append(ServiceError(N_("The window must last some time."), field="window_end"))
    for name, value, low, high in (("grace_minutes", data.grace_minutes, 0, 240), ("reminder_minutes", data.reminder_minutes, 0, 240),
                                   ("step_minutes", data.step_minutes, 5, 240)):
        if not low <= value <= high:
            problems.append(ServiceError(N_("Please enter a number of minutes from %(low)d to %(high)d."), field=name, low=low, high=high))
    if not chain:
        problems.append(ServiceError(N_("An elder needs at least one helper in the chain."), field="chain"))
    for helper in chain:
        if helper.kind not in {k.value for k in HelperKind}:
            problems.append(ServiceError(N_("Please choose one of the options."), field="chain"))
        if not helper.name.strip() or (helper.user_id is None and not (helper.phone or "").strip()):
            problems.append(ServiceError(N_("Each helper needs a name, and an account or a phone number."), field="chain"))
    return problems


async def enrol(session: AsyncSession, data: ElderInput, chain: Sequence[HelperInput], *, now: datetime) -> Elder:
    """Enrol an elder with the ordered chain of helpers (the first is reminded and alerted first)."""
    problems = validate(data, chain)
    if problems:
        raise InvalidElder(problems)
    elder = Elder(
        name=data.name.strip(), address=data.address.strip(), phone=(data.phone or "").strip() or None, place_id=data.place_id,
        window_start=data.window_start, window_end=data.window_end, grace_minutes=data.grace_minutes,
        reminder_minutes=data.reminder_minutes, step_minutes=data.step_minutes, token=new_token(), token_issued_at=now,
        enrolled_at=now, version=1,
    )
    session.add(elder)
    await session.flush()
    await set_chain(session, elder, chain)
    return elder


class InvalidElder(InvalidInput):
    pass


# --- Staff: editing enrolment (elders pages) ---------------------------------------------------------------------

MAX_PAUSE_DAYS = 366  # a pause longer than a year is a mistake (or an enrolment to end)


async def update_elder(session: AsyncSession, elder: Elder, data: ElderInput, chain: Sequence[HelperInput]) -> Elder:
    """Change an enrolled elder's details, window, timings and chain (the chain is replaced, in order).
    The token stays: the printed card keeps working."""
    if elder.ended_at is not None:
        raise InvalidElder([ServiceError(N_("This elder's check-in has ended."))])
    problems = validate(data, chain)
    if problems:
        raise InvalidElder(problems)
    elder.name = data.name.strip()
    elder.address = data.address.strip()
    elder.phone = (data.phone or "").strip() or None
    elder.place_id = data.place_id
    elder.window_start, elder.window_end = data.window_start, data.window_end
    elder.grace_minutes, elder.reminder_minutes, elder.step_minutes = data.grace_minutes, data.reminder_minutes, data.step_minutes
    elder.version += 1
    await set_chain(session, elder, chain)
    return elder


async def set_chain(session: AsyncSession, elder: Elder, chain: Sequence[HelperInput]) -> list[ElderHelper]:
    """Replace the elder's chain with `chain`, in order (position 0 first). An open alert keeps its step:
    its next step goes to whoever is at the next position now."""
    for helper in await session.scalars(select(ElderHelper).where(ElderHelper.elder_id == elder.id)):
        await session.delete(helper)
    await session.flush()  # the old positions go before the new ones take them (unique (elder, position))
    rows = [ElderHelper(elder_id=elder.id, position=i, kind=HelperKind(h.kind), user_id=h.user_id, name=h.name.strip(),
                        phone=(h.phone or "").strip() or None, team=(h.team or "").strip() or None) for i, h in enumerate(chain)]
    session.add_all(rows)
    await session.flush()
    return rows


async def add_pause(session: AsyncSession, elder: Elder, start_on: date | None, end_on: date | None, reason: str) -> ElderPause:
    """No check-in expected from `start_on` to `end_on`, both included."""
    if elder.ended_at is not None:
        raise InvalidElder([ServiceError(N_("This elder's check-in has ended."))])
    problems = []
    if start_on is None:
        problems.append(ServiceError(N_("Please enter a date."), field="start_on"))
    if end_on is None:
        problems.append(ServiceError(N_("Please enter a date."), field="end_on"))
    if start_on and end_on and end_on < start_on:
        problems.append(ServiceError(N_("The last day cannot be before the first."), field="end_on"))
    elif start_on and end_on and (end_on - start_on).days >= MAX_PAUSE_DAYS:
        problems.append(ServiceError(N_("A pause can last at most %(n)d days."), field="end_on", n=MAX_PAUSE_DAYS))
    if len(reason.strip()) > 200:
        problems.append(ServiceError(N_("Please keep it under %(n)d characters."), field="reason", n=200))
    if problems or start_on is None or end_on is None:
        raise InvalidElder(problems)
    pause = ElderPause(elder_id=elder.id, start_on=start_on, end_on=end_on, reason=reason.strip())
    session.add(pause)
    await session.flush()
    return pause


async def end_enrolment(session: AsyncSession, elder: Elder, reason: str, now: datetime) -> Elder:
    """No more check-ins, reminders or alerts for this elder (the sweep skips ended elders); the personal
    link stops working. An alert already open stays for its helpers to resolve."""
    if elder.ended_at is not None:
        raise InvalidElder([ServiceError(N_("This elder's check-in has ended."))])
    if not reason.strip():
        raise InvalidElder([ServiceError(N_("Please say why the enrolment ends."), field="end_reason")])
    elder.ended_at = now
    elder.end_reason = reason.strip()
    elder.version += 1
    await session.flush()
    return elder


async def reissue_token(session: AsyncSession, elder: Elder, now: datetime) -> str:
    """A new personal link: the old one (and any card printed with it) stops working at once."""
    if elder.ended_at is not None:
        raise InvalidElder([ServiceError(N_("This elder's check-in has ended."))])
    elder.token = new_token()
    elder.token_issued_at = now
    elder.version += 1
    await session.flush()
    return elder.token


@dataclass(frozen=True)
class DayMark:
    """One elder's day as staff see it. `state`: signalled | late (signalled after the window) | missed (no
    signal by the alert time) | paused | waiting (today, not due yet) | upcoming (the window has not opened)
    | not_enrolled | ended."""

    day: date
    state: str
    checkins: tuple[CheckIn, ...] = ()
    alert: ElderAlert | None = None


def mark_day(elder: Any, day: date, now: datetime, tz: ZoneInfo, checkins: Sequence[Any], is_paused: bool,
             alert: Any | None) -> DayMark:
    """The state of one day (pure: the rows of that day are given)."""
    plan = schedule(elder, day, tz)
    ordered = tuple(sorted(checkins, key=lambda c: c.at))
    if ordered:
        return DayMark(day, "late" if ordered[0].at > plan.closes else "signalled", ordered, alert)
    if elder.ended_at is not None and elder.ended_at <= plan.opens:
        return DayMark(day, "ended", (), alert)
    if plan.opens < elder.enrolled_at:
        return DayMark(day, "not_enrolled", (), alert)
    if is_paused:
        return DayMark(day, "paused", (), alert)
    if alert is not None or now >= plan.alert_at:
        return DayMark(day, "missed", (), alert)
    return DayMark(day, "upcoming" if now < plan.opens else "waiting", (), alert)


async def marks_of(session: AsyncSession, elders: Sequence[Elder], first: date, last: date, now: datetime,
                   tz: ZoneInfo) -> dict[UUID, list[DayMark]]:
    """Each elder's days from `first` to `last` (both included), oldest first: four queries however many."""
    ids = [e.id for e in elders]
    found: dict[UUID, list[DayMark]] = {i: [] for i in ids}
    if not ids:
        return found
    checkins: dict[tuple[UUID, date], list[CheckIn]] = {}
    for row in await session.scalars(select(CheckIn).where(CheckIn.elder_id.in_(ids), CheckIn.day >= first, CheckIn.day <= last)):
        checkins.setdefault((row.elder_id, row.day), []).append(row)
    pauses: dict[UUID, list[ElderPause]] = {i: [] for i in ids}
    for pause in await session.scalars(select(ElderPause).where(ElderPause.elder_id.in_(ids), ElderPause.end_on >= first,
                                                                ElderPause.start_on <= last)):
        pauses[pause.elder_id].append(pause)
    alerts = {(a.elder_id, a.day): a for a in await session.scalars(
        select(ElderAlert).where(ElderAlert.elder_id.in_(ids), ElderAlert.day >= first, ElderAlert.day <= last))}
    for elder in elders:
        day = first
        while day <= last:
            found[elder.id].append(mark_day(elder, day, now, tz, checkins.get((elder.id, day), []), paused(pauses[elder.id], day),
                                            alerts.get((elder.id, day))))
            day += timedelta(days=1)
    return found


@dataclass
class HelperLoad:
    user_id: UUID
    acknowledged: int = 0
    resolved: int = 0


@dataclass
class StaffFigures:
    """Alerts opened from `since` to `until`, and how they were answered."""

    since: datetime
    until: datetime
    alerts: int = 0
    open: int = 0
    resolved: int = 0
    false_alarms: int = 0
    late_signals: int = 0  # closed by the elder's own signal after the window
    mean_acknowledge: timedelta | None = None  # opened → acknowledged, over the acknowledged ones
    mean_resolve: timedelta | None = None  # opened → resolved by a helper (not by a late signal)
    load: list[HelperLoad] | None = None  # per helper (user), most alerts answered first

    @property
    def false_alarm_rate(self) -> float | None:
        """False alarms among resolved alerts (None when none is resolved)."""
        return self.false_alarms / self.resolved if self.resolved else None


async def staff_figures(session: AsyncSession, since: datetime, until: datetime) -> StaffFigures:
    """The staff figures of the alerts opened in [since, until): one query (alerts are one per elder and day)."""
    figures = StaffFigures(since, until, load=[])
    rows = (await session.execute(
        select(ElderAlert.opened_at, ElderAlert.status, ElderAlert.outcome, ElderAlert.acknowledged_at, ElderAlert.acknowledged_by_id,
               ElderAlert.resolved_at, ElderAlert.resolved_by_id)
        .where(ElderAlert.opened_at >= since, ElderAlert.opened_at < until)
    )).all()
    acknowledging: list[timedelta] = []
    resolving: list[timedelta] = []
    load: dict[UUID, HelperLoad] = {}
    for opened_at, status, outcome, acknowledged_at, acknowledged_by, resolved_at, resolved_by in rows:
        figures.alerts += 1
        figures.open += status == AlertStatus.OPEN
        if acknowledged_at is not None:
            acknowledging.append(acknowledged_at - opened_at)
        if acknowledged_by is not None:
            load.setdefault(acknowledged_by, HelperLoad(acknowledged_by)).acknowledged += 1
        if status == AlertStatus.RESOLVED:
            figures.resolved += 1
            figures.false_alarms += outcome == AlertOutcome.FALSE_ALARM
            figures.late_signals += outcome == AlertOutcome.LATE_SIGNAL
            if outcome != AlertOutcome.LATE_SIGNAL and resolved_at is not None:
                resolving.append(resolved_at - opened_at)
            if resolved_by is not None:
                load.setdefault(resolved_by, HelperLoad(resolved_by)).resolved += 1
    figures.mean_acknowledge = sum(acknowledging, timedelta()) / len(acknowledging) if acknowledging else None
    figures.mean_resolve = sum(resolving, timedelta()) / len(resolving) if resolving else None
    figures.load = sorted(load.values(), key=lambda h: (-(h.acknowledged + h.resolved), str(h.user_id)))
    return figures
