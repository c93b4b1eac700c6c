"""The community canteen ledger (L5, 社区食堂收支): entries, reversals, meals per day, the monthly close, the
figures of the public board and of the overview. docs/boards.md, "canteen".

Rules (all enforced here, whoever calls):
- Amounts are whole fen; a form gives yuan with at most two decimals, positive, at most MAX_AMOUNT_FEN.
- Append-only: an entry is never changed or deleted. A wrong entry is cancelled by its reversal (the same
  day, category and amount negated, with a required reason); an entry is reversed at most once, and a
  reversal is never reversed (record the entry again instead).
- A month is closed once it has ended; after that no entry, reversal or meal count dated in it is taken,
  and its totals (kept on the month's row at the close) are final. Closing twice changes nothing.
- Every write dated in a month first locks that month's row (`SELECT … FOR UPDATE` on PostgreSQL; on
  SQLite the app's write queue serialises writers), so a close never crosses an entry.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext
from server.models import CanteenCategory, CanteenDirection, CanteenEntry, CanteenMealDay, CanteenMonth, User
from server.services import boards, overview
from server.services.charts import Chart, Series, bar_chart, line_chart
from server.services.errors import InvalidInput, ServiceError, past_day
from server.services.exports import csv_bytes
from server.services.photos import process_photos, save_photo

INCOME_CATEGORIES = (CanteenCategory.MEAL_SALES, CanteenCategory.MEAL_SUBSIDY, CanteenCategory.DONATION, CanteenCategory.OTHER_INCOME)
EXPENSE_CATEGORIES = (CanteenCategory.INGREDIENTS, CanteenCategory.WAGES, CanteenCategory.UTILITIES, CanteenCategory.RENT,
                      CanteenCategory.EQUIPMENT, CanteenCategory.OTHER_EXPENSE)
DIRECTION_OF = {**{c: CanteenDirection.INCOME for c in INCOME_CATEGORIES}, **{c: CanteenDirection.EXPENSE for c in EXPENSE_CATEGORIES}}
CATEGORY_LABELS = {
    CanteenCategory.MEAL_SALES: N_("Meal sales"),
    CanteenCategory.MEAL_SUBSIDY: N_("Government meal subsidy"),
    CanteenCategory.DONATION: N_("Donations"),
    CanteenCategory.OTHER_INCOME: N_("Other income"),
    CanteenCategory.INGREDIENTS: N_("Ingredients"),
    CanteenCategory.WAGES: N_("Wages"),
    CanteenCategory.UTILITIES: N_("Water, power and gas"),
    CanteenCategory.RENT: N_("Rent"),
    CanteenCategory.EQUIPMENT: N_("Equipment"),
    CanteenCategory.OTHER_EXPENSE: N_("Other spending"),
}
DIRECTION_LABELS = {CanteenDirection.INCOME: N_("Income"), CanteenDirection.EXPENSE: N_("Spending")}
MAX_AMOUNT_FEN = 100_000_000  # one million yuan: more than any single entry of a community canteen
MAX_MEALS = 5000  # meals a day
MAX_NOTE = 500
MAX_REASON = 500
BOARD_MONTHS = 6  # months on the board's monthly chart
PAGE_SIZE = 50
AMOUNT_RE = re.compile(r"^(\d{1,30})(?:\.(\d{1,2}))?$")
THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
MEALS_RE = re.compile(r"[0-9]{1,9}")  # a meal count, ASCII digits only (fullmatch)


# --- Parsing ---------------------------------------------------------------------------------------------


def parse_yuan(text: str, field_name: str = "amount") -> int:
    """Fen from what a person types: "12", "12.5", "1,234.56", "￥12", "12元" (full-width digits too).
    Positive, at most two decimals, at most MAX_AMOUNT_FEN. ServiceError otherwise."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().replace(" ", "")
    cleaned = cleaned.removeprefix("¥").removesuffix("元").strip()
    if "," in cleaned:  # thousands separators only ("1,234.5"); "12,5" is not 125
        if not THOUSANDS_RE.match(cleaned):
            raise ServiceError(N_("Please enter the amount as a number of yuan, e.g. 1280.50."), field=field_name)
        cleaned = cleaned.replace(",", "")
    if not cleaned:
        raise ServiceError(N_("Please enter the amount in yuan."), field=field_name)
    if cleaned.startswith("-"):
        raise ServiceError(N_("Amounts are positive. To correct an entry, reverse it."), field=field_name)
    match = AMOUNT_RE.match(cleaned)
    if not match:
        if re.match(r"^\d+\.\d{3,}$", cleaned):
            raise ServiceError(N_("Please enter at most two decimals (fen)."), field=field_name)
        raise ServiceError(N_("Please enter the amount as a number of yuan, e.g. 1280.50."), field=field_name)
    fen = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if fen <= 0:
        raise ServiceError(N_("The amount must be more than zero."), field=field_name)
    if fen > MAX_AMOUNT_FEN:
        raise ServiceError(N_("This amount is too large for one entry (at most %(max)s yuan)."), field=field_name,
                           max=f"{MAX_AMOUNT_FEN // 100:,}")
    return fen


def yuan(fen: int | None) -> str:
    """Fen as yuan with two decimals and thousands separators: 123456 -> "1,234.56"."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def parse_month(text: str | None) -> date | None:
    """The first day of a month from "2026-11" (or None when it is not one)."""
    try:
        year, month = (int(part) for part in str(text or "").strip().split("-"))
        return date(year, month, 1) if 2000 <= year <= 2100 else None
    except ValueError:
        return None


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


# --- Months ----------------------------------------------------------------------------------------------


class MonthClosed(ServiceError):
    pass


async def _locked_month(session: AsyncSession, month: date) -> CanteenMonth:
    """The month's row, locked until the transaction ends (created when the month has none yet)."""
    query = select(CanteenMonth).where(CanteenMonth.month == month).with_for_update().execution_options(populate_existing=True)
    row = await session.scalar(query)
    if row is not None:
        return row
    try:
        async with session.begin_nested():
            row = CanteenMonth(month=month)
            session.add(row)
            await session.flush()
    except IntegrityError:  # another writer created it first: take theirs, after them
        row = await session.scalar(query)
        assert row is not None
    return row


def _refuse_if_closed(row: CanteenMonth, field_name: str = "day") -> None:
    if row.closed_at is not None:
        raise MonthClosed(N_("%(month)s is closed: its figures are final and take no new entry or reversal."), field=field_name,
                          month=row.month.strftime("%Y-%m"))


async def closed_months(session: AsyncSession) -> dict[date, CanteenMonth]:
    rows = await session.scalars(select(CanteenMonth).where(CanteenMonth.closed_at.is_not(None)))
    return {row.month: row for row in rows}


async def month_row(session: AsyncSession, month: date) -> CanteenMonth | None:
    return await session.scalar(select(CanteenMonth).where(CanteenMonth.month == month))


# --- Entries ---------------------------------------------------------------------------------------------


@dataclass
class EntryInput:
    category: str = ""
    amount: str = ""  # yuan, as typed
    day: str = ""  # YYYY-MM-DD
    note: str = ""


class InvalidEntry(InvalidInput):
    pass


async def record_entry(
    session: AsyncSession, data: EntryInput, *, actor_id: UUID | None, now: datetime, tz: ZoneInfo,
    receipt: bytes | None = None, uploads_dir: Path | None = None,
) -> CanteenEntry:
    """Add an income or expense to the ledger (InvalidEntry with every problem, nothing written)."""
    problems: list[ServiceError] = []
    category = CanteenCategory(data.category) if data.category in {c.value for c in CanteenCategory} else None
    if category is None:
        problems.append(ServiceError(N_("Please choose one of the options."), field="category"))
    amount = None
    try:
        amount = parse_yuan(data.amount)
    except ServiceError as error:
        problems.append(error)
    day = past_day(data.day, "day", local_today(now, tz), problems)
    note = data.note.strip()
    if len(note) > MAX_NOTE:
        problems.append(ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE))
    if problems:
        raise InvalidEntry(problems)
    assert category is not None and amount is not None and day is not None
    photo = None
    if receipt:
        if uploads_dir is None:
            raise ValueError("uploads_dir is needed to keep a receipt")
        try:
            [photo] = await process_photos([receipt])  # decoded off the loop, before any lock is taken
        except ServiceError as error:
            raise InvalidEntry([ServiceError(error.message, field="receipt", **error.params)]) from error
    try:
        _refuse_if_closed(await _locked_month(session, month_of(day)))
    except MonthClosed as error:
        raise InvalidEntry([error]) from error
    # Written only once the entry is taken: a refused entry leaves no private photo behind.
    sha = save_photo(photo, uploads_dir).sha256 if photo is not None and uploads_dir is not None else None
    entry = CanteenEntry(day=day, direction=DIRECTION_OF[category], category=category, amount_fen=amount, note=note,
                         receipt_sha=sha, recorded_by_id=actor_id, recorded_at=now)
    session.add(entry)
    await session.flush()
    return entry


async def reverse(session: AsyncSession, entry_id: UUID, reason: str, *, actor_id: UUID | None, now: datetime) -> CanteenEntry:
    """Cancel an entry by its reversal (same day and category, amount negated, with the reason)."""
    reason = reason.strip()
    if not reason:
        raise InvalidEntry([ServiceError(N_("Please give the reason for the reversal."), field="reason")])
    if len(reason) > MAX_REASON:
        raise InvalidEntry([ServiceError(N_("Please keep the reason under %(n)d characters."), field="reason", n=MAX_REASON)])
    original = await session.scalar(select(CanteenEntry).where(CanteenEntry.id == entry_id).with_for_update()
                                    .execution_options(populate_existing=True))
    if original is None:
        raise InvalidEntry([ServiceError(N_("This entry does not exist."), field="reason")])
    if original.reverses_id is not None:
        raise InvalidEntry([ServiceError(N_("A reversal cannot be reversed; record the entry again instead."), field="reason")])
    if await session.scalar(select(CanteenEntry.id).where(CanteenEntry.reverses_id == original.id)) is not None:
        raise InvalidEntry([ServiceError(N_("This entry has already been reversed."), field="reason")])
    try:
        _refuse_if_closed(await _locked_month(session, month_of(original.day)), "reason")
    except MonthClosed as error:
        raise InvalidEntry([error]) from error
    reversal = CanteenEntry(day=original.day, direction=original.direction, category=original.category, amount_fen=-original.amount_fen,
                            note="", reverses_id=original.id, reason=reason, recorded_by_id=actor_id, recorded_at=now)
    session.add(reversal)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # a reversal of the same entry committed meanwhile
        raise InvalidEntry([ServiceError(N_("This entry has already been reversed."), field="reason")]) from None
    return reversal


# --- Meals per day ---------------------------------------------------------------------------------------


async def record_meals(session: AsyncSession, day_text: str, meals_text: str, *, actor_id: UUID | None, now: datetime,
                       tz: ZoneInfo) -> CanteenMealDay:
    """Set the meals served on a day (replacing the day's earlier figure while its month is open)."""
    problems: list[ServiceError] = []
    day = past_day(day_text, "meal_day", local_today(now, tz), problems)
    text = unicodedata.normalize("NFKC", meals_text or "").strip()  # full-width digits become 0-9
    # ASCII digits only: str.isdigit() also takes "᧚" (a New Tai Lue digit), which int() refuses.
    meals = int(text) if MEALS_RE.fullmatch(text) else -1
    if not text:
        problems.append(ServiceError(N_("Please enter how many meals were served."), field="meals"))
    elif meals < 0 or meals > MAX_MEALS:
        problems.append(ServiceError(N_("Please enter the meals as a whole number from 0 to %(max)d."), field="meals", max=MAX_MEALS))
    if problems:
        raise InvalidEntry(problems)
    assert day is not None
    try:
        _refuse_if_closed(await _locked_month(session, month_of(day)), "meal_day")
    except MonthClosed as error:
        raise InvalidEntry([error]) from error
    row = await session.scalar(select(CanteenMealDay).where(CanteenMealDay.day == day).with_for_update()
                               .execution_options(populate_existing=True))
    if row is None:
        row = CanteenMealDay(day=day, meals=meals, recorded_by_id=actor_id)
        session.add(row)
    else:
        row.meals, row.recorded_by_id = meals, actor_id
    await session.flush()
    return row


# --- The monthly close -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    income_fen: int = 0
    expense_fen: int = 0
    entries: int = 0

    @property
    def balance_fen(self) -> int:
        return self.income_fen - self.expense_fen


async def totals(session: AsyncSession, start: date, end: date) -> Totals:
    """Sums of the entries dated in [start, end) (reversals included: they are negative)."""
    income = func.coalesce(func.sum(case((CanteenEntry.direction == CanteenDirection.INCOME, CanteenEntry.amount_fen), else_=0)), 0)
    expense = func.coalesce(func.sum(case((CanteenEntry.direction == CanteenDirection.EXPENSE, CanteenEntry.amount_fen), else_=0)), 0)
    row = (await session.execute(select(income, expense, func.count()).where(CanteenEntry.day >= start, CanteenEntry.day < end))).one()
    return Totals(int(row[0]), int(row[1]), int(row[2]))


async def meals_total(session: AsyncSession, start: date, end: date) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(CanteenMealDay.meals), 0))
                                    .where(CanteenMealDay.day >= start, CanteenMealDay.day < end)) or 0)


async def close_month(session: AsyncSession, month: date, *, actor_id: UUID | None, now: datetime, tz: ZoneInfo) -> tuple[CanteenMonth, bool]:
    """Close a month that has ended: (the month, True) when this call closed it, (the month, False) when it
    already was (nothing changes). A month still running (or to come) is refused."""
    month = month_of(month)
    if next_month(month) > local_today(now, tz):
        raise ServiceError(N_("Only a month that has ended can be closed; %(month)s is not over yet."), field="month",
                           month=month.strftime("%Y-%m"))
    row = await _locked_month(session, month)
    if row.closed_at is not None:
        return row, False
    figures = await totals(session, month, next_month(month))
    row.income_fen, row.expense_fen = figures.income_fen, figures.expense_fen
    row.meals = await meals_total(session, month, next_month(month))
    row.closed_at, row.closed_by_id = now, actor_id
    await session.flush()
    return row, True


# --- Reading the ledger ----------------------------------------------------------------------------------


@dataclass
class LedgerFilter:
    month: date | None = None
    direction: str = ""
    category: str = ""
    page: int = 1


@dataclass
class LedgerPage:
    rows: list[CanteenEntry]
    total: int
    page: int
    pages: int
    reversed_ids: set[UUID] = field(default_factory=set)
    names: dict[UUID, str] = field(default_factory=dict)


def _where(f: LedgerFilter) -> list[Any]:
    conditions: list[Any] = []
    if f.month is not None:
        conditions += [CanteenEntry.day >= f.month, CanteenEntry.day < next_month(f.month)]
    if f.direction in {d.value for d in CanteenDirection}:
        conditions.append(CanteenEntry.direction == CanteenDirection(f.direction))
    if f.category in {c.value for c in CanteenCategory}:
        conditions.append(CanteenEntry.category == CanteenCategory(f.category))
    return conditions


async def user_names(session: AsyncSession, ids: set[UUID | None]) -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))).all())


async def ledger_page(session: AsyncSession, f: LedgerFilter) -> LedgerPage:
    conditions = _where(f)
    total = int(await session.scalar(select(func.count()).select_from(CanteenEntry).where(*conditions)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    rows = list(await session.scalars(select(CanteenEntry).where(*conditions)
                                      .order_by(CanteenEntry.day.desc(), CanteenEntry.recorded_at.desc(), CanteenEntry.id.desc())
                                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    ids = [r.id for r in rows]
    reversed_ids = set(await session.scalars(select(CanteenEntry.reverses_id).where(CanteenEntry.reverses_id.in_(ids)))) if ids else set()
    names = await user_names(session, {r.recorded_by_id for r in rows})
    return LedgerPage(rows, total, page, pages, reversed_ids, names)


async def by_category(session: AsyncSession, start: date, end: date) -> list[tuple[CanteenCategory, int]]:
    rows = (await session.execute(select(CanteenEntry.category, func.sum(CanteenEntry.amount_fen))
                                  .where(CanteenEntry.day >= start, CanteenEntry.day < end).group_by(CanteenEntry.category))).all()
    sums = {CanteenCategory(c): int(s or 0) for c, s in rows}
    return [(c, sums[c]) for c in (*INCOME_CATEGORIES, *EXPENSE_CATEGORIES) if sums.get(c)]


async def meal_days(session: AsyncSession, start: date, end: date) -> dict[date, int]:
    return dict((await session.execute(select(CanteenMealDay.day, CanteenMealDay.meals)
                                       .where(CanteenMealDay.day >= start, CanteenMealDay.day < end))).all())


async def monthly(session: AsyncSession, first: date, end: date) -> dict[date, Totals]:
    """Totals per month from `first` (a month's first day) up to `end`: summed per day in SQL, folded here."""
    income = func.sum(case((CanteenEntry.direction == CanteenDirection.INCOME, CanteenEntry.amount_fen), else_=0))
    expense = func.sum(case((CanteenEntry.direction == CanteenDirection.EXPENSE, CanteenEntry.amount_fen), else_=0))
    rows = (await session.execute(select(CanteenEntry.day, income, expense, func.count())
                                  .where(CanteenEntry.day >= first, CanteenEntry.day < end).group_by(CanteenEntry.day))).all()
    folded: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, inc, exp, n in rows:
        sums = folded[month_of(day)]
        sums[0] += int(inc or 0)
        sums[1] += int(exp or 0)
        sums[2] += int(n)
    result = {}
    month = first
    while month < end:
        sums = folded.get(month, [0, 0, 0])
        result[month] = Totals(sums[0], sums[1], sums[2])
        month = next_month(month)
    return result


# --- CSV export (X5) -------------------------------------------------------------------------------------


async def export_csv(session: AsyncSession, month: date | None, tz: ZoneInfo) -> bytes:
    """Every entry (of a month, or all), oldest first. Amounts are in yuan and shown unsigned, with the
    kind of line (entry or reversal) in its own column: a leading minus would be neutralised by the
    formula-safe export, and a ledger reads better that way."""
    conditions = _where(LedgerFilter(month=month))
    rows = list(await session.scalars(select(CanteenEntry).where(*conditions).order_by(CanteenEntry.day, CanteenEntry.recorded_at, CanteenEntry.id)))
    names = await user_names(session, {r.recorded_by_id for r in rows})
    closed = await closed_months(session)
    header = [gettext("Date"), gettext("Income or spending"), gettext("Category"), gettext("Line"), gettext("Amount (yuan)"),
              gettext("Effect on the balance (yuan)"), gettext("Note"), gettext("Reverses the entry of"), gettext("Reason"),
              gettext("Receipt"), gettext("Recorded by"), gettext("Recorded at"), gettext("Month closed")]
    by_id = {r.id: r for r in rows}
    lines = []
    for r in rows:
        effect = r.amount_fen if r.direction is CanteenDirection.INCOME else -r.amount_fen
        reversed_entry = by_id.get(r.reverses_id) if r.reverses_id else None
        lines.append([
            r.day.isoformat(), gettext(DIRECTION_LABELS[r.direction]), gettext(CATEGORY_LABELS[r.category]),
            gettext("Reversal") if r.reverses_id else gettext("Entry"), yuan(abs(r.amount_fen)).replace(",", ""),
            (gettext("increase %(amount)s") if effect > 0 else gettext("decrease %(amount)s")) % {"amount": yuan(abs(effect)).replace(",", "")},
            r.note, reversed_entry.recorded_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if reversed_entry else "",
            r.reason or "", gettext("yes") if r.receipt_sha else "", names.get(r.recorded_by_id, "") if r.recorded_by_id else "",
            r.recorded_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), gettext("yes") if month_of(r.day) in closed else "",
        ])
    return csv_bytes(header, lines)


# --- The public board and the overview -----------------------------------------------------------------------


@dataclass(frozen=True)
class BoardCharts:
    """The board's charts, drawn when the page is rendered (titles and series in the reader's language;
    the board's figures are computed once for everyone)."""

    days: list[int]
    meals: list[float | None]
    months: list[str]
    income_yuan: list[float | None]
    expense_yuan: list[float | None]

    def meals_chart(self) -> Chart:
        return bar_chart([str(d) for d in self.days], [Series(gettext("Meals served"), self.meals)], title=gettext("Meals served per day"))

    def monthly_chart(self) -> Chart:
        # places=2: the table under the chart shows the ledger's figures to the fen (45,678.95, not 45,679.0).
        return line_chart(self.months, [Series(gettext("Income"), self.income_yuan), Series(gettext("Spending"), self.expense_yuan)],
                          title=gettext("Income and spending by month (yuan)"), places=2)


@boards.board("canteen", N_("Community canteen accounts"), CanteenEntry, CanteenMealDay, CanteenMonth)
async def canteen_board(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """This month's income, spending and balance, by category; meals per day; the last months, closed ones marked.
    Aggregates only: no receipt, no note, no name."""
    today = local_today(now, tz)
    this_month = month_of(today)
    end = next_month(this_month)
    first = this_month
    for _ in range(BOARD_MONTHS - 1):
        first = previous_month(first)
    earliest = await session.scalar(select(func.min(CanteenEntry.day)))
    if earliest is not None and month_of(earliest) > first:  # no empty months before the ledger began
        first = month_of(earliest)
    months = await monthly(session, first, end)
    closed = await closed_months(session)
    current = months[this_month]
    meals = await meal_days(session, this_month, end)
    days = list(range(1, today.day + 1))
    charts = BoardCharts(
        days=days,
        meals=[float(meals[this_month.replace(day=d)]) if this_month.replace(day=d) in meals else None for d in days],
        months=[m.strftime("%Y-%m") for m in months],
        income_yuan=[t.income_fen / 100 for t in months.values()],
        expense_yuan=[t.expense_fen / 100 for t in months.values()],
    )
    return {
        "month": this_month,
        "today": today,
        "income_fen": current.income_fen,
        "expense_fen": current.expense_fen,
        "balance_fen": current.balance_fen,
        "by_category": [{"category": c.value, "label": CATEGORY_LABELS[c], "direction": DIRECTION_OF[c].value, "amount_fen": s}
                        for c, s in await by_category(session, this_month, end)],
        "meals_total": sum(meals.values()),
        "meals_days": len(meals),
        "months": [{"month": m, "income_fen": t.income_fen, "expense_fen": t.expense_fen, "balance_fen": t.balance_fen,
                    "closed": m in closed, "closed_at": closed[m].closed_at if m in closed else None}
                   for m, t in reversed(months.items())],
        "charts": charts,
        "yuan": yuan,
    }


@overview.contributes(CanteenEntry)
async def canteen_figures(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """This month's canteen figures (the subdistrict's month containing `now`), in fen."""
    this_month = month_of(local_today(now, tz))
    figures = await totals(session, this_month, next_month(this_month))
    return {
        "canteen_income_fen_this_month": figures.income_fen,
        "canteen_spending_fen_this_month": figures.expense_fen,
        "canteen_balance_fen_this_month": figures.balance_fen,
    }
