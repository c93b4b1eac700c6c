"""Demo data of the canteen and mediation areas (issue 15). Loaded by server/services/demo.py, once.

The community canteen of 东舍坊社区 (managed by 郑经理): three months of entries up to today (daily meal
sales and meals served, a monthly government meal subsidy, donations, ingredients twice a week, wages,
utilities, rent, one piece of equipment, one duplicate entry reversed), the oldest month closed. Mediation:
the seed's 18 cases of 行走的矛盾调解室 ("今年已成功化解邻里矛盾、物业纠纷等问题18件"), all settled.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import (
    CanteenCategory,
    CanteenEntry,
    CanteenMealDay,
    CanteenMonth,
    MediationCase,
    MediationKind,
    MediationOutcome,
    MediationSession,
    MediationStatus,
    Place,
    User,
)
from server.services.canteen import DIRECTION_OF, meals_total, month_of, next_month, previous_month, totals
from server.settings import Settings

C = CanteenCategory


async def load_demo_canteen(session: AsyncSession, settings: Settings, *, end: datetime) -> None:
    """Create the demo records if there are none yet; running it twice changes nothing."""
    users = {u.username: u.id for u in await session.scalars(select(User).where(User.username.in_(["canteen", "staff", "volunteer"])))}
    if await session.scalar(select(CanteenEntry.id).limit(1)) is None:
        await _canteen(session, settings, end=end, manager=users.get("canteen"))
    if await session.scalar(select(MediationCase.id).limit(1)) is None:
        await _mediation(session, settings, end=end, mediators=[users.get("staff"), users.get("volunteer")])


def _at(day: date, hour: int, settings: Settings) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=settings.tz)


async def _canteen(session: AsyncSession, settings: Settings, *, end: datetime, manager: object) -> None:
    rng = random.Random(15)
    today = end.astimezone(settings.tz).date()
    first = previous_month(previous_month(month_of(today)))
    entries: list[CanteenEntry] = []
    meals_rows: list[CanteenMealDay] = []

    def add(day: date, category: CanteenCategory, fen: int, note: str) -> CanteenEntry:
        entry = CanteenEntry(day=day, direction=DIRECTION_OF[category], category=category, amount_fen=fen, note=note,
                             recorded_by_id=manager, recorded_at=_at(day, 20, settings))
        entries.append(entry)
        return entry

    day = first
    while day <= today:
        weekend = day.weekday() >= 5
        meals = rng.randint(85, 120) if weekend else rng.randint(125, 175)
        meals_rows.append(CanteenMealDay(day=day, meals=meals, recorded_by_id=manager))
        add(day, C.MEAL_SALES, meals * 1200 - rng.randint(0, 30) * 100, "堂食及老年助餐")
        if day.weekday() in (0, 3):
            add(day, C.INGREDIENTS, rng.randint(3000, 4000) * 100, "蔬菜、肉蛋、米面油采购")
        if day.day == 1:
            add(day, C.RENT, 300000, "食堂场地月租")
        if day.day == 5:
            add(day, C.WAGES, 1480000, "厨师及服务人员工资（4人）")
        if day.day == 10:
            add(day, C.MEAL_SUBSIDY, rng.randint(62, 72) * 10000, "区民政局老年助餐补贴")
        if day.day == 15:
            add(day, C.UTILITIES, rng.randint(2600, 3200) * 100, "水费、电费、燃气费")
        day += timedelta(days=1)
    # Donations, one piece of equipment, and a duplicate entry reversed (in the second month, still open).
    second = next_month(first)
    add(first + timedelta(days=11), C.DONATION, 200000, "爱心企业捐赠")
    add(second + timedelta(days=17), C.DONATION, 50000, "居民自发捐赠")
    add(second + timedelta(days=8), C.EQUIPMENT, 268000, "更换消毒柜一台")
    session.add_all(entries)
    session.add_all(meals_rows)
    await session.flush()
    duplicate = add(second + timedelta(days=2), C.INGREDIENTS, 386000, "蔬菜、肉蛋、米面油采购")
    session.add(duplicate)
    await session.flush()
    session.add(CanteenEntry(day=duplicate.day, direction=duplicate.direction, category=duplicate.category,
                             amount_fen=-duplicate.amount_fen, note="", reverses_id=duplicate.id, reason="同一张采购单重复录入",
                             recorded_by_id=manager, recorded_at=_at(duplicate.day + timedelta(days=1), 9, settings)))
    await session.flush()
    # The oldest month is closed by the manager a few days after it ended.
    figures = await totals(session, first, second)
    session.add(CanteenMonth(month=first, closed_at=_at(min(second + timedelta(days=2), today), 17, settings), closed_by_id=manager,
                             income_fen=figures.income_fen, expense_fen=figures.expense_fen,
                             meals=await meals_total(session, first, second)))
    await session.flush()


# (kind, summary, outcome, number of sessions)
CASES: list[tuple[MediationKind, str, MediationOutcome, int]] = [
    (MediationKind.LEAK, "楼上卫生间渗水至楼下顶棚，双方就维修费用分担有分歧", MediationOutcome.SUCCESS, 2),
    (MediationKind.NEIGHBOURS, "楼道堆放杂物影响通行，邻里多次争吵", MediationOutcome.SUCCESS, 1),
    (MediationKind.PROPERTY, "业主对物业费上调有异议，拒缴物业费", MediationOutcome.SUCCESS, 3),
    (MediationKind.NOISE, "楼上夜间装修噪音影响休息", MediationOutcome.SUCCESS, 1),
    (MediationKind.PARKING, "小区车位被长期占用，车主之间发生纠纷", MediationOutcome.PARTIAL, 2),
    (MediationKind.NEIGHBOURS, "宠物狗在楼道便溺，邻居不满", MediationOutcome.SUCCESS, 1),
    (MediationKind.PROPERTY, "电梯频繁故障，业主与物业公司就维修责任争执", MediationOutcome.SUCCESS, 2),
    (MediationKind.LEAK, "空调冷凝水滴落楼下窗台", MediationOutcome.SUCCESS, 1),
    (MediationKind.FAMILY, "老人赡养费用分担，子女之间意见不一", MediationOutcome.SUCCESS, 3),
    (MediationKind.NOISE, "广场舞音响声音过大，临街住户投诉", MediationOutcome.SUCCESS, 2),
    (MediationKind.NEIGHBOURS, "公共绿地私自种菜，邻里产生矛盾", MediationOutcome.SUCCESS, 1),
    (MediationKind.PROPERTY, "物业未按公示标准清运垃圾，业主集体反映", MediationOutcome.SUCCESS, 2),
    (MediationKind.LEAK, "屋顶防水层老化，顶层住户与物业就维修资金使用有争议", MediationOutcome.PARTIAL, 3),
    (MediationKind.NEIGHBOURS, "加装电梯低层住户与高层住户意见分歧", MediationOutcome.SUCCESS, 3),
    (MediationKind.PARKING, "电动车楼道充电、占用消防通道", MediationOutcome.SUCCESS, 1),
    (MediationKind.NOISE, "沿街商铺夜间经营噪音扰民", MediationOutcome.SUCCESS, 2),
    (MediationKind.PROPERTY, "物业“试用期”内服务不达标，业主要求整改", MediationOutcome.SUCCESS, 2),
    (MediationKind.NEIGHBOURS, "楼上住户阳台晾晒滴水，邻里争执", MediationOutcome.SUCCESS, 1),
]
PARTY_NAMES = ["王秀兰", "刘建国", "张桂芳", "李志强", "陈玉梅", "杨德明", "赵淑珍", "孙立新", "周红霞", "吴长海", "郑春燕", "冯国庆"]
VENUES = ["东舍坊社区党群服务中心调解室", "当事人家中（行走的矛盾调解室上门）", "小区议事亭", "文华园社区星火小屋"]
SESSION_NOTES = [
    "分别听取双方陈述，现场查看情况，讲解相关规定。",
    "组织双方面对面沟通，提出解决方案，双方同意回去考虑。",
    "双方就方案达成一致，签订调解协议。",
]


async def _mediation(session: AsyncSession, settings: Settings, *, end: datetime, mediators: list[object]) -> None:
    today = end.astimezone(settings.tz).date()
    compounds = [p.id for p in await session.scalars(select(Place).where(Place.name.in_(["东舍坊小区", "文华园小区"])).order_by(Place.name))]
    span = 300
    numbers: dict[int, int] = {}
    for i, (kind, summary, outcome, n_sessions) in enumerate(CASES):
        opened = today - timedelta(days=span - i * (span - 12) // len(CASES))
        numbers[opened.year] = numbers.get(opened.year, 0) + 1
        names = PARTY_NAMES[(2 * i) % len(PARTY_NAMES)], PARTY_NAMES[(2 * i + 1) % len(PARTY_NAMES)]
        mediator = mediators[i % len(mediators)]
        held = [min(opened + timedelta(days=2 + 4 * k), today) for k in range(n_sessions)]
        case = MediationCase(
            reference=f"TJ{opened.year}-{numbers[opened.year]:03d}", kind=kind, opened_on=opened,
            place_id=compounds[i % len(compounds)] if compounds else None, summary=summary,
            parties=[{"name": names[0], "phone": f"1390531{1000 + 2 * i:04d}"}, {"name": names[1], "phone": f"1390531{1001 + 2 * i:04d}"}],
            mediator_id=mediator, status=MediationStatus.CLOSED, outcome=outcome,
            outcome_note="双方签订调解协议，约定履行期限。" if outcome is MediationOutcome.SUCCESS else "主要分歧已解决，剩余事项转物业跟进。",
            closed_on=held[-1],
        )
        session.add(case)
        await session.flush()
        for k, day in enumerate(held):
            note = SESSION_NOTES[min(k, len(SESSION_NOTES) - 1)] if k < n_sessions - 1 else SESSION_NOTES[-1]
            session.add(MediationSession(case_id=case.id, held_on=day, venue=VENUES[(i + k) % len(VENUES)], notes=note, mediator_id=mediator))
    await session.flush()
