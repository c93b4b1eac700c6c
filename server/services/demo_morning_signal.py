"""晨曦信号's part of the demo (issue 14, item 7): 45 elders living alone in 东舍坊小区 and 文华园小区 with a
month of history, made by the real service with a moved clock. Loaded once.

Each elder is enrolled 30 to 40 days before `end` with an ordered chain of two to four helpers: the building
head first (孙楼长, the demo user, in 东舍坊; a named 楼长 without an account in 文华园), a volunteer (何志愿,
the demo user, for some; named members of 励新党员服务队 and 幸福合伙人 otherwise), family, and the grid worker
王网格 (the demo user) in 东舍坊. Every day up to yesterday (in `settings.tz`) each elder signals within the
window at about their usual time, now and then a helper does it for them after seeing or calling them; a
few pauses (with family, in hospital) leave days out. The days that went wrong are played through the
service at the minutes they happened: the sweep at the reminder, at window end + grace and at each step
the alert climbed, then the late signal (closing the alert as late_signal), the building head's
acknowledgement and false alarm with its reason, and one real emergency: unanswered by the first helper,
escalated to 何志愿, who went round and found the elder had fallen (resolved as hospital). Today's signals
are the ones given before `end`; the sweep is never run for today (the worker does that).

Plain check-ins are written in one batch (the same rows `check_in` writes; no alert exists for those days);
the sweep runs only at the moments the missed days need, after every check-in is in place, so a sweep at
a past minute opens alerts only for the elders who really had not signalled. The in-app notices those
sweeps send are dated when they were sent and marked read (they are a month old), and the outbound
messages they would queue are dropped: history is not delivered again. Deterministic (a seeded random and
times relative to `end`); names, addresses and phone numbers are fictional.
"""

from __future__ import annotations

import random
from functools import partial
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    AlertOutcome,
    CheckIn,
    CheckInMethod,
    Elder,
    ElderAlert,
    ElderPause,
    HelperKind,
    Notification,
    OutboundMessage,
    Place,
    User,
)
from server.services import morning_signal
from server.services.morning_signal import ElderInput, HelperInput
from server.settings import Settings

SEED = 14
ELDERS_AT = {"东舍坊小区": 24, "文华园小区": 21}
BUILDING_HEAD, VOLUNTEER, GRID = "buildinghead", "volunteer", "grid"  # the demo users (server/services/demo.py)
DEMO_HELPERS = {BUILDING_HEAD: "孙楼长", VOLUNTEER: "何志愿", GRID: "王网格"}
VOLUNTEER_TEAM = "励新党员服务队"  # 何志愿's
NAMED_VOLUNTEERS = [  # members without an account, reached by text message
    ("赵淑敏", "励新党员服务队"), ("钱立新", "励新党员服务队"), ("高玉霞", "励新党员服务队"),
    ("陈海波", "幸福合伙人"), ("马建华", "幸福合伙人"), ("杨晓燕", "幸福合伙人"),
]
WENHUA_HEADS = ["冯建华", "褚玉琴", "卫国庆", "蒋秀梅"]  # 文华园's 楼长, one for every two buildings
SURNAMES = "张王李刘陈杨赵黄周吴徐孙胡朱高林何郭马罗宋郑梁谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶潘杜戴夏钟汪田任姜范方石姚谭邹金陆孔白崔康毛邱秦江史顾侯邵孟段雷汤常武贺"
WOMEN = ("秀英 桂兰 淑珍 玉兰 凤英 秀兰 桂英 淑英 玉珍 秀珍 凤兰 桂芳 秀云 淑兰 玉梅 秀芝 桂珍 淑芬 凤琴 秀华 "
         "玉英 桂荣 素珍 兰英 玉芬 淑琴 翠英 金凤 月英 桂香").split()
MEN = "德福 长海 振华 宝山 永昌 建民 守信 福海 庆祥 立本".split()
SONS = "建军 建国 卫东 志强 晓东 海波 伟 军 磊 涛".split()
DAUGHTERS = "红梅 丽华 海燕 秀梅 丽娟 晓燕 敏 静 红 燕".split()
RELATIONS = {"儿子": SONS, "女儿": DAUGHTERS, "侄女": DAUGHTERS, "外甥": SONS}
# Custom windows (elder index -> (start, end)); everyone else keeps the default 06:00–09:30.
CUSTOM_WINDOWS = {3: (time(7, 0), time(10, 0)), 11: (time(5, 30), time(8, 0)), 17: (time(7, 0), time(10, 0)),
                  30: (time(7, 0), time(10, 0)), 38: (time(6, 30), time(9, 0))}
# (first day, last day) relative to today, and the reason; in the compound given.
PAUSES = [("东舍坊小区", -26, -20, "去女儿家小住一周"), ("文华园小区", -17, -15, "住院做白内障手术"),
          ("文华园小区", -8, -7, "回老家参加亲戚婚礼"), ("东舍坊小区", -3, 4, "去儿子家住几天")]
EMERGENCY_DAY = -12  # relative to today; the elder is in hospital for the week after
EMERGENCY_PAUSE = (1, 7, "住院治疗（在家摔倒后送医）")
EMERGENCY_NOTE = "上门发现老人在卫生间摔倒，已拨打120送医，家属已到医院"
FALSE_ALARMS = ["老人去早市买菜，手机没带", "老人早起去公园晨练，忘了报平安", "手机没电关机了，老人在家一切正常"]
LATE_MINUTES = [7, 13, 26, 9, 33]  # after window end + grace; 26 and 33 come after the alert climbed one step
HISTORY_DAYS = 28  # the specials fall in the last four weeks (everyone is enrolled by then)
ON_BEHALF = 0.04  # the share of days a helper signals for the elder (more for elders without a phone)
ON_BEHALF_NO_PHONE = 0.15
BEHALF_METHODS = [CheckInMethod.IN_PERSON, CheckInMethod.IN_PERSON, CheckInMethod.PHONE]  # 见面 mostly, 电话 some


@dataclass(frozen=True)
class DemoSignalReport:
    elders: int = 0
    checkins: int = 0
    alerts: int = 0
    false_alarms: int = 0
    late: int = 0
    emergencies: int = 0
    pauses: int = 0


@dataclass
class _Plan:
    data: ElderInput
    chain: list[HelperInput]
    compound: str
    enrolled_at: datetime
    first_day: date  # the day after enrolment (enrolled in the afternoon)
    habit: int  # minutes after the window opens the elder usually signals
    elder: Elder = field(init=False)


@dataclass
class _Missed:
    """A day without a signal in time: `answer` minutes after the alert someone answers (the elder's late
    signal, or a helper's acknowledgement), `closed` minutes after it a helper resolves it."""

    plan: _Plan
    day: date
    kind: str  # late | false_alarm | emergency
    answer: int
    closed: int = 0
    note: str | None = None


async def has_morning_signal_demo(session: AsyncSession) -> bool:
    return await session.scalar(select(Elder.id).limit(1)) is not None


async def load_demo_morning_signal(session: AsyncSession, settings: Settings, *, end: datetime) -> DemoSignalReport:
    """Enrol the demo elders and play their month through the service; nothing when elders exist already."""
    if await has_morning_signal_demo(session):
        return DemoSignalReport()
    rng = random.Random(SEED)
    tz = settings.tz
    started = datetime.now(UTC)
    today = end.astimezone(tz).date()
    places = {p.name: p for p in await session.scalars(select(Place).where(Place.name.in_(list(ELDERS_AT))))}
    users = {u.username: u for u in await session.scalars(select(User).where(User.username.in_(list(DEMO_HELPERS))))}

    plans = _plan_elders(rng, today, tz, places, users)
    for plan in plans:
        plan.elder = await morning_signal.enrol(session, plan.data, plan.chain, now=plan.enrolled_at)

    pauses = _plan_pauses(rng, plans, today)
    missed = _plan_missed(rng, plans, pauses, today, tz)
    session.add_all(pause for rows in pauses.values() for pause in rows)
    skip = {(m.plan.elder.id, m.day) for m in missed}
    rows = _checkins(rng, plans, pauses, skip, today, end, tz)
    session.add_all(rows)
    await session.flush()

    checkins = len(rows)
    alerts = 0
    for day in sorted({m.day for m in missed}):
        made, opened = await _play_day(session, [m for m in missed if m.day == day], tz, started)
        checkins += made
        alerts += opened
    # History is not sent again: drop what the sweeps queued for the outbound channels (none are configured
    # when `shanzhi demo` runs; a server's may be).
    await session.execute(delete(OutboundMessage).where(OutboundMessage.kind.like("morning_signal%"),
                                                        OutboundMessage.created_at >= started)
                          .execution_options(synchronize_session=False))
    await session.flush()
    return DemoSignalReport(
        elders=len(plans), checkins=checkins, alerts=alerts,
        false_alarms=sum(m.kind == "false_alarm" for m in missed), late=sum(m.kind == "late" for m in missed),
        emergencies=sum(m.kind == "emergency" for m in missed), pauses=sum(len(p) for p in pauses.values()),
    )


# --- Who ---------------------------------------------------------------------------------------------------------


def _phone(rng: random.Random) -> str:
    return f"1390531{rng.randrange(10000):04d}"  # fictional


def _plan_elders(rng: random.Random, today: date, tz: ZoneInfo, places: dict[str, Place], users: dict[str, User]) -> list[_Plan]:
    def demo_helper(kind: HelperKind, username: str, team: str | None = None) -> HelperInput:
        user = users.get(username)  # without the demo users (a bare database) they are named contacts
        return HelperInput(kind.value, DEMO_HELPERS[username], user_id=user.id if user else None,
                           phone=None if user else _phone(rng), team=team)

    volunteers = [HelperInput(HelperKind.VOLUNTEER.value, name, phone=_phone(rng), team=team) for name, team in NAMED_VOLUNTEERS]
    heads = [HelperInput(HelperKind.BUILDING_HEAD.value, name, phone=_phone(rng)) for name in WENHUA_HEADS]
    names: set[str] = set()
    plans = []
    index = 0
    for compound, count in ELDERS_AT.items():
        dongshe = compound == "东舍坊小区"
        with_he = set(rng.sample(range(count), 6 if dongshe else 10))  # 何志愿 is in these elders' chains
        for i in range(count):
            while True:
                name = rng.choice(SURNAMES) + rng.choice(WOMEN if rng.random() < 0.8 else MEN)
                if name not in names:
                    names.add(name)
                    break
            building = rng.randint(1, 12 if dongshe else 8)
            address = f"{compound}{building}号楼{rng.randint(1, 3)}单元{rng.randint(1, 6)}0{rng.randint(1, 2)}"
            chain = [demo_helper(HelperKind.BUILDING_HEAD, BUILDING_HEAD) if dongshe else heads[(building - 1) // 2]]
            if i in with_he:
                chain.append(demo_helper(HelperKind.VOLUNTEER, VOLUNTEER, VOLUNTEER_TEAM))
            elif not dongshe or rng.random() < 0.75:
                chain.append(rng.choice(volunteers))
            if rng.random() < 0.8 or len(chain) < 2:
                relation = rng.choice(["儿子", "女儿", "女儿", "儿子", "侄女", "外甥"])
                chain.append(HelperInput(HelperKind.FAMILY.value, f"{rng.choice(SURNAMES)}{rng.choice(RELATIONS[relation])}（{relation}）",
                                         phone=_phone(rng)))
            if dongshe:
                chain.append(demo_helper(HelperKind.GRID_WORKER, GRID))
            start, end = CUSTOM_WINDOWS.get(index, morning_signal.DEFAULT_WINDOW)
            place = places.get(compound)
            data = ElderInput(name=name, address=address, phone=_phone(rng) if rng.random() < 0.8 else None,
                              place_id=place.id if place else None, window_start=start, window_end=end)
            enrolled_on = today - timedelta(days=rng.randint(30, 40))
            enrolled = datetime.combine(enrolled_on, time(rng.randint(14, 16), rng.randrange(60)), tzinfo=tz).astimezone(UTC)
            reminder = _minutes(start, end) - data.reminder_minutes
            plans.append(_Plan(data, chain, compound, enrolled, enrolled_on + timedelta(days=1),
                               habit=rng.randint(15, max(20, reminder - 60))))
            index += 1
    return plans


def _minutes(start: time, end: time) -> int:
    length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return length if length > 0 else length + 24 * 60


# --- What happened ---------------------------------------------------------------------------------------------------


def _emergency_elder(plans: list[_Plan]) -> _Plan | None:
    """A 文华园 elder whose chain goes from a 楼长 without an account to 何志愿."""
    for plan in plans:
        if (plan.compound == "文华园小区" and len(plan.chain) >= 2 and plan.chain[0].user_id is None
                and plan.chain[1].kind == HelperKind.VOLUNTEER.value and plan.chain[1].user_id is not None):
            return plan
    return None


def _plan_pauses(rng: random.Random, plans: list[_Plan], today: date) -> dict[int, list[ElderPause]]:
    """Pauses by plan index: the emergency's week in hospital, and a few stays with family."""
    found: dict[int, list[ElderPause]] = {}
    emergency = _emergency_elder(plans)
    if emergency is not None:
        first, last, reason = EMERGENCY_PAUSE
        day = today + timedelta(days=EMERGENCY_DAY)
        found[plans.index(emergency)] = [ElderPause(elder_id=emergency.elder.id, start_on=day + timedelta(days=first),
                                                    end_on=day + timedelta(days=last), reason=reason)]
    for compound, first, last, reason in PAUSES:
        index = rng.choice([i for i, p in enumerate(plans) if p.compound == compound and i not in found])
        found[index] = [ElderPause(elder_id=plans[index].elder.id, start_on=today + timedelta(days=first),
                                   end_on=today + timedelta(days=last), reason=reason)]
    return found


def _paused(pauses: dict[int, list[ElderPause]], index: int, day: date) -> bool:
    return morning_signal.paused(pauses.get(index, []), day)


def _plan_missed(rng: random.Random, plans: list[_Plan], pauses: dict[int, list[ElderPause]], today: date, tz: ZoneInfo) -> list[_Missed]:
    missed: list[_Missed] = []
    taken: set[tuple[int, date]] = set()
    emergency = _emergency_elder(plans)
    if emergency is not None:
        day = today + timedelta(days=EMERGENCY_DAY)
        missed.append(_Missed(emergency, day, "emergency", answer=emergency.data.step_minutes + 4,
                              closed=emergency.data.step_minutes + 45, note=EMERGENCY_NOTE))
        taken.add((plans.index(emergency), day))
    others = [i for i, p in enumerate(plans) if p is not emergency]

    def pick(candidates: list[int]) -> tuple[int, date]:
        while True:
            index = rng.choice(candidates)
            day = today - timedelta(days=rng.randint(1, HISTORY_DAYS))
            if (index, day) not in taken and day >= plans[index].first_day and not _paused(pauses, index, day):
                taken.add((index, day))
                return index, day

    answerable = [i for i in others if plans[i].chain[0].user_id is not None]  # 孙楼长 first: he answers
    for reason in FALSE_ALARMS if answerable else []:
        index, day = pick(answerable)
        answer = rng.randint(6, 10)  # 孙楼长 sees it within ten minutes
        missed.append(_Missed(plans[index], day, "false_alarm", answer=answer, closed=answer + rng.randint(12, 30), note=reason))
    for minutes in LATE_MINUTES:
        index, day = pick(others)
        missed.append(_Missed(plans[index], day, "late", answer=minutes))
    return missed


def _checkins(rng: random.Random, plans: list[_Plan], pauses: dict[int, list[ElderPause]], skip: set[tuple[object, date]],
              today: date, end: datetime, tz: ZoneInfo) -> list[CheckIn]:
    """Every ordinary day's signal, from the first day after enrolment to today (today's only before `end`)."""
    rows = []
    for index, plan in enumerate(plans):
        elder = plan.elder
        with_account = [h for h in plan.chain if h.user_id is not None]
        rate = ON_BEHALF if elder.phone else ON_BEHALF_NO_PHONE
        latest = _minutes(elder.window_start, elder.window_end) - elder.reminder_minutes - 1  # before the reminder
        day = plan.first_day
        while day <= today:
            minutes = min(latest, max(1, round(rng.gauss(plan.habit, 15))))
            helper = rng.choice(with_account) if with_account and rng.random() < rate else None
            method = rng.choice(BEHALF_METHODS) if helper else CheckInMethod.SELF
            if helper:  # a helper saw or called them later in the morning
                minutes = min(latest, minutes + rng.randint(20, 60))
            local = datetime.combine(day, elder.window_start, tzinfo=tz) + timedelta(minutes=minutes, seconds=rng.randrange(60))
            at = local.astimezone(UTC)
            if (elder.id, day) not in skip and not _paused(pauses, index, day) and at <= end:
                rows.append(CheckIn(elder_id=elder.id, day=day, at=at, created_at=at, updated_at=at, method=method,
                                    by_user_id=helper.user_id if helper else None))
            day += timedelta(days=1)
    return rows


# --- Playing a day that went wrong -------------------------------------------------------------------------------------


async def _play_day(session: AsyncSession, missed: list[_Missed], tz: ZoneInfo, started: datetime) -> tuple[int, int]:
    """The sweep at each minute the day's missed signals need (their reminder, their alert, each step it
    climbed before an answer), and the answers, in time order. Returns (check-ins made, alerts opened)."""
    steps: list[tuple[datetime, int, Callable[[], Awaitable[int]]]] = []
    moments: set[datetime] = set()
    made = 0
    opened = 0

    async def sweep_at(moment: datetime) -> int:
        nonlocal opened
        opened += (await morning_signal.sweep(session, moment, tz)).opened
        return 0

    for item in missed:
        elder = item.plan.elder
        plan = morning_signal.schedule(elder, item.day, tz)
        moments.update({plan.reminder_at, plan.alert_at})
        moments.update(plan.alert_at + timedelta(minutes=k * elder.step_minutes) for k in range(1, item.answer // elder.step_minutes + 1))
        answer_at = plan.alert_at + timedelta(minutes=item.answer, seconds=17)
        steps.append((answer_at, 1, _answer(session, item, answer_at, tz)))
        if item.kind != "late":
            closed_at = plan.alert_at + timedelta(minutes=item.closed, seconds=41)
            steps.append((closed_at, 2, _close(session, item, closed_at, tz)))
    steps += [(moment, 0, partial(sweep_at, moment)) for moment in moments]
    for moment, _order, action in sorted(steps, key=lambda s: (s[0], s[1])):
        made += await action()
        await _date_notices(session, moment, started)
    return made, opened


def _answer(session: AsyncSession, item: _Missed, at: datetime, tz: ZoneInfo) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        elder = item.plan.elder
        if item.kind == "late":  # the elder presses the button after all: the alert closes as a late signal
            await morning_signal.check_in(session, elder, at=at, method=CheckInMethod.SELF, by_user_id=None, now=at, tz=tz)
            return 1
        alert = await _alert(session, item)
        helper = item.plan.chain[min(item.answer // elder.step_minutes, len(item.plan.chain) - 1)]
        assert helper.user_id is not None  # planned so: the one it reached by then has an account
        await morning_signal.acknowledge(session, alert, helper.user_id, at)
        return 0

    return run


def _close(session: AsyncSession, item: _Missed, at: datetime, tz: ZoneInfo) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        alert = await _alert(session, item)
        assert alert.acknowledged_by_id is not None
        if item.kind == "emergency":
            await morning_signal.resolve(session, alert, AlertOutcome.HOSPITAL, alert.acknowledged_by_id, at, note=item.note)
            return 0
        await morning_signal.resolve(session, alert, AlertOutcome.FALSE_ALARM, alert.acknowledged_by_id, at, note=item.note)
        # The building head found the elder well: the day's signal, given for them.
        await morning_signal.check_in(session, item.plan.elder, at=at, method=CheckInMethod.IN_PERSON,
                                      by_user_id=alert.acknowledged_by_id, now=at, tz=tz)
        return 1

    return run


async def _alert(session: AsyncSession, item: _Missed) -> ElderAlert:
    alert = await session.scalar(select(ElderAlert).where(ElderAlert.elder_id == item.plan.elder.id, ElderAlert.day == item.day))
    assert alert is not None, "the sweep opens it"
    return alert


async def _date_notices(session: AsyncSession, moment: datetime, started: datetime) -> None:
    """The in-app notices just sent are dated when they were sent, and read: they are history."""
    await session.execute(
        update(Notification).where(Notification.kind.like("morning_signal%"), Notification.read_at.is_(None),
                                   Notification.created_at >= started)
        .values(created_at=moment, updated_at=moment, read_at=moment).execution_options(synchronize_session=False)
    )


__all__ = ["DemoSignalReport", "has_morning_signal_demo", "load_demo_morning_signal"]
