"""The canteen ledger's rules (docs/boards.md, "canteen"), on SQLite and PostgreSQL: entries are only ever
added, a wrong one is cancelled by its reversal (with a reason, once), a closed month takes nothing more,
the totals are the sums of the entries, and the board and the overview show exactly those sums. Also what
happens when two writers meet (real concurrent connections)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, date, datetime
from uuid import UUID

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import mark_writer, session_scope
from server.models import CanteenEntry, CanteenMealDay, CanteenMonth, Role, User
from server.services import canteen, overview
from server.services.canteen import EntryInput, InvalidEntry
from server.settings import Settings

# A fixed clock: 20 March 2026, noon in Jinan. "This month" is March; February has ended.
NOW = datetime(2026, 3, 20, 4, 0, tzinfo=UTC)


async def _manager(db: AsyncSession) -> UUID:
    user_id = await db.scalar(select(User.id).where(User.role == Role.CANTEEN_MANAGER))
    assert user_id is not None
    return user_id


async def record(db: AsyncSession, settings: Settings, category: str, amount: str, day: str, note: str = "", *,
                 actor: UUID | None = None, now: datetime = NOW) -> CanteenEntry:
    return await canteen.record_entry(db, EntryInput(category, amount, day, note), actor_id=actor, now=now, tz=settings.tz)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 160, 90)).save(out, "JPEG")
    return out.getvalue()


async def _count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(CanteenEntry)) or 0)


async def test_an_entry_is_recorded_in_fen_and_a_bad_one_writes_nothing(db: AsyncSession, settings: Settings, people: dict) -> None:
    manager = await _manager(db)
    entry = await record(db, settings, "meal_sales", "1,680.50", "2026-03-19", "午餐", actor=manager)
    assert (entry.amount_fen, entry.direction, entry.day, entry.recorded_by_id) == (168050, "income", date(2026, 3, 19), manager)
    await db.commit()
    with pytest.raises(InvalidEntry) as refused:
        await record(db, settings, "caviar", "-5", "2026-03-21")
    problems = {p.field: p.message for p in refused.value.problems}
    assert problems == {"category": "Please choose one of the options.",
                        "amount": "Amounts are positive. To correct an entry, reverse it.",
                        "day": "The date is in the future."}
    await db.rollback()
    assert await _count(db) == 1


async def test_a_reversal_cancels_an_entry_once_with_a_reason(db: AsyncSession, settings: Settings, people: dict) -> None:
    wrong = await record(db, settings, "ingredients", "3860", "2026-03-02", "蔬菜")
    await db.commit()
    with pytest.raises(InvalidEntry) as no_reason:
        await canteen.reverse(db, wrong.id, "   ", actor_id=None, now=NOW)
    assert no_reason.value.message == "Please give the reason for the reversal."
    reversal = await canteen.reverse(db, wrong.id, "重复录入", actor_id=None, now=NOW)
    await db.commit()
    assert (reversal.amount_fen, reversal.category, reversal.day, reversal.reverses_id) == (-386000, wrong.category, wrong.day, wrong.id)
    # The wrong entry is still there, unchanged: the month's spending is back to zero.
    await db.refresh(wrong)
    assert wrong.amount_fen == 386000
    assert (await canteen.totals(db, date(2026, 3, 1), date(2026, 4, 1))).expense_fen == 0
    for target, message in ((wrong.id, "This entry has already been reversed."),
                            (reversal.id, "A reversal cannot be reversed; record the entry again instead.")):
        with pytest.raises(InvalidEntry) as refused:
            await canteen.reverse(db, target, "再来一次", actor_id=None, now=NOW)
        assert refused.value.message == message
        await db.rollback()
    assert await _count(db) == 2


async def test_a_closed_month_takes_no_entry_reversal_or_meals(db: AsyncSession, settings: Settings, people: dict) -> None:
    manager = await _manager(db)
    sale_id = (await record(db, settings, "meal_sales", "1500", "2026-02-27")).id
    await record(db, settings, "wages", "14800", "2026-02-05")
    await canteen.record_meals(db, "2026-02-27", "150", actor_id=manager, now=NOW, tz=settings.tz)
    await db.commit()
    month, newly = await canteen.close_month(db, date(2026, 2, 1), actor_id=manager, now=NOW, tz=settings.tz)
    await db.commit()
    assert newly and (month.income_fen, month.expense_fen, month.meals, month.closed_by_id) == (150000, 1480000, 150, manager)
    closed_at = month.closed_at

    attempts = [
        lambda: record(db, settings, "donation", "100", "2026-02-10"),
        lambda: canteen.reverse(db, sale_id, "金额有误", actor_id=None, now=NOW),
        lambda: canteen.record_meals(db, "2026-02-27", "160", actor_id=None, now=NOW, tz=settings.tz),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidEntry) as refused:
            await attempt()
        assert refused.value.message == "%(month)s is closed: its figures are final and take no new entry or reversal."
        assert refused.value.translated() == "2026-02 已结账：当月数据已定，不能再记账或冲正。"  # zh-CN first
        await db.rollback()
    assert await _count(db) == 2
    assert await db.scalar(select(CanteenMealDay.meals)) == 150
    # Refused with a receipt: the private photo is not kept either (the uploads hold no file of it).
    uploads = settings.uploads_dir
    with pytest.raises(InvalidEntry) as refused:
        await canteen.record_entry(db, EntryInput("equipment", "2680", "2026-02-10"), actor_id=manager, now=NOW, tz=settings.tz,
                                   receipt=_jpeg(), uploads_dir=uploads)
    assert refused.value.message.startswith("%(month)s is closed")
    await db.rollback()
    assert [p for p in uploads.rglob("*") if p.is_file()] == [] and await _count(db) == 2

    # Closing again changes nothing; March is still running and cannot be closed; an entry in March is fine.
    again, newly = await canteen.close_month(db, date(2026, 2, 1), actor_id=None, now=NOW, tz=settings.tz)
    assert not newly and again.closed_at == closed_at and again.closed_by_id == manager
    with pytest.raises(canteen.ServiceError) as running:
        await canteen.close_month(db, date(2026, 3, 1), actor_id=manager, now=NOW, tz=settings.tz)
    assert running.value.message == "Only a month that has ended can be closed; %(month)s is not over yet."
    await db.rollback()
    await record(db, settings, "donation", "100", "2026-03-01")


async def test_a_meal_count_is_ascii_digits_only(db: AsyncSession, settings: Settings, people: dict) -> None:
    """A count such as "᧚" (a New Tai Lue digit) passes str.isdigit() but not int(): refused with the usual message, not a crash.
    Full-width digits are fine (a Chinese keyboard types them)."""
    for typed in ("᧚", "٣", "12.5", "-3", "5001"):
        with pytest.raises(InvalidEntry) as refused:
            await canteen.record_meals(db, "2026-03-19", typed, actor_id=None, now=NOW, tz=settings.tz)
        assert refused.value.message == "Please enter the meals as a whole number from 0 to %(max)d."
        assert refused.value.translated() == "供餐份数须为 0 到 5000 之间的整数。"
        await db.rollback()
    assert (await canteen.record_meals(db, "2026-03-19", "１２０", actor_id=None, now=NOW, tz=settings.tz)).meals == 120


async def test_totals_board_and_overview_are_the_sums_of_the_records(db: AsyncSession, settings: Settings, people: dict) -> None:
    """A known data set over two months; every figure checked against hand-made sums."""
    rows = [("meal_sales", "1200", "2026-03-02"), ("meal_sales", "1350.5", "2026-03-03"), ("meal_subsidy", "6800", "2026-03-10"),
            ("donation", "500", "2026-03-12"), ("ingredients", "4200", "2026-03-02"), ("wages", "14800", "2026-03-05"),
            ("utilities", "2899.99", "2026-03-15"), ("rent", "3000", "2026-03-01"),
            ("meal_sales", "999", "2026-02-20"), ("ingredients", "100", "2026-02-21")]
    made = [await record(db, settings, *row) for row in rows]
    await canteen.reverse(db, made[1].id, "少算了一桌", actor_id=None, now=NOW)  # 1350.50 of sales cancelled
    await record(db, settings, "meal_sales", "1530.5", "2026-03-03")
    for day, meals in (("2026-03-02", "120"), ("2026-03-03", "131"), ("2026-02-20", "90")):
        await canteen.record_meals(db, day, meals, actor_id=None, now=NOW, tz=settings.tz)
    await canteen.record_meals(db, "2026-03-03", "133", actor_id=None, now=NOW, tz=settings.tz)  # corrected
    await canteen.close_month(db, date(2026, 2, 1), actor_id=None, now=NOW, tz=settings.tz)
    await db.commit()

    income = 120000 + 153050 + 680000 + 50000
    spending = 420000 + 1480000 + 289999 + 300000
    march = await canteen.totals(db, date(2026, 3, 1), date(2026, 4, 1))
    assert (march.income_fen, march.expense_fen, march.balance_fen) == (income, spending, income - spending)

    board = await canteen.canteen_board(db, NOW, settings.tz)
    assert (board["income_fen"], board["expense_fen"], board["balance_fen"]) == (income, spending, income - spending)
    assert {c["category"]: c["amount_fen"] for c in board["by_category"]} == {
        "meal_sales": 273050, "meal_subsidy": 680000, "donation": 50000, "ingredients": 420000, "wages": 1480000,
        "utilities": 289999, "rent": 300000}
    assert (board["meals_total"], board["meals_days"]) == (253, 2)
    by_month = {m["month"]: m for m in board["months"]}
    assert by_month[date(2026, 2, 1)] | {"closed_at": None} == {"month": date(2026, 2, 1), "income_fen": 99900, "expense_fen": 10000,
                                                                "balance_fen": 89900, "closed": True, "closed_at": None}
    assert not by_month[date(2026, 3, 1)]["closed"]
    assert list(by_month) == [date(2026, 3, 1), date(2026, 2, 1)]  # newest first, none before the ledger began
    assert board["charts"].meals[:3] == [None, 120.0, 133.0]
    assert board["charts"].meals_chart().rows[1] == ("2", ["120"])
    assert board["charts"].income_yuan[-2:] == [999.0, income / 100]
    # The chart's text alternative shows the ledger's figures to the fen.
    assert board["charts"].monthly_chart().rows == [("2026-02", ["999.00", "100.00"]), ("2026-03", ["10,030.50", "24,899.99"])]

    figures = await overview.compute(db, NOW, settings.tz)
    assert figures["canteen_income_fen_this_month"] == income
    assert figures["canteen_spending_fen_this_month"] == spending
    assert figures["canteen_balance_fen_this_month"] == income - spending
    closed = await db.scalar(select(CanteenMonth).where(CanteenMonth.month == date(2026, 2, 1)))
    assert closed is not None and (closed.income_fen, closed.expense_fen, closed.meals) == (99900, 10000, 90)


# --- Two writers at once ---------------------------------------------------------------------------------------


async def test_racing_reversals_of_one_entry_write_one(config: SQLAlchemyAsyncConfig, settings: Settings, people: dict) -> None:
    async with session_scope(config) as session:
        entry_id = (await record(session, settings, "ingredients", "4000", "2026-03-02")).id

    async def reverse(n: int) -> str:
        mark_writer()  # a POST
        async with config.get_session() as session:
            try:
                await canteen.reverse(session, entry_id, f"第{n}次更正", actor_id=None, now=NOW)
            except InvalidEntry as refused:
                await session.rollback()
                return refused.message
            await session.commit()
            return "reversed"

    outcomes = await asyncio.gather(*(reverse(n) for n in range(4)))
    assert sorted(outcomes) == ["This entry has already been reversed."] * 3 + ["reversed"]
    async with session_scope(config) as session:
        assert (await canteen.totals(session, date(2026, 3, 1), date(2026, 4, 1))).expense_fen == 0
        assert await session.scalar(select(func.count()).select_from(CanteenEntry)) == 2


async def test_a_close_waits_for_an_entry_being_written_in_its_month(config: SQLAlchemyAsyncConfig, settings: Settings,
                                                                     people: dict) -> None:
    """The entry holds the month; the close that comes meanwhile counts it (or, had it come first, the entry
    would have been refused): the closed totals always equal the month's entries."""
    async with session_scope(config) as session:  # the month's row exists already: only its lock can order the two
        await record(session, settings, "meal_sales", "100", "2026-02-13")
    entry_has_month = asyncio.Event()
    let_entry_commit = asyncio.Event()

    async def enter() -> None:
        mark_writer()
        async with config.get_session() as session:
            await record(session, settings, "donation", "888", "2026-02-14")
            entry_has_month.set()
            await let_entry_commit.wait()
            await session.commit()

    async def close() -> CanteenMonth:
        mark_writer()
        async with config.get_session() as session:
            row, _newly = await canteen.close_month(session, date(2026, 2, 1), actor_id=None, now=NOW, tz=settings.tz)
            await session.commit()
            return row

    entering = asyncio.create_task(enter())
    await entry_has_month.wait()
    closing = asyncio.create_task(close())
    await asyncio.sleep(0.2)  # let the close reach the month's lock (it must wait there, whatever the timing)
    let_entry_commit.set()
    await entering
    closed = await closing
    async with session_scope(config) as session:
        figures = await canteen.totals(session, date(2026, 2, 1), date(2026, 3, 1))
    assert closed.income_fen == figures.income_fen == 98800
