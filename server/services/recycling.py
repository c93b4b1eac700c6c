"""Recycling points (L4, 垃圾分类积分兑换): every write of the area and its public figures. docs/boards.md,
section "recycling".

Rules:
- A drop-off is one or more lines (category, weight); each line earns `round(kg × points per kg)` at the
  rate in force when the drop-off was recorded (`recorded_at`: the press on the operator's phone, also
  offline). Weights are whole grams, more than 0 and at most MAX_LINE_GRAMS per line.
- The points ledger is append-only. A household's balance is the sum of its entries and never negative:
  a redemption beyond the balance, or a reversal that would take the balance below zero, is refused.
- A redemption changes the balance and the good's stock together; stock is never negative.
- A wrong entry is reversed by an entry of the opposite sign with a reason (once; a reversal is not
  reversed). Reversing a redemption puts its goods back in stock.
- Every read-modify-write takes row locks (PostgreSQL: SELECT … FOR UPDATE; SQLite: the write queue lets
  one writer in at a time), so racing writes cannot both spend the same points or the last item.
- Lock order, everywhere: the station, then the household, then the good (`lock_station`, `_lock`).
  A drop-off (online, or each one of a sync push, which applies many in one transaction), a redemption,
  a reversal and a card replacement all lock their station row first; the sync push locks every station
  of its batch up front, in id order (recycling_sync.prepare). So two transactions never hold a
  household each while waiting for the other's: two phones pushing cards A, B and B, A queue up at
  the station instead of deadlocking. A stock change locks its good alone. Nothing locks a station
  after a household or a good. The station lock is FOR NO KEY UPDATE, so rows that only reference the
  station (a new card, a drop-off's foreign key) are not held up by it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, distinct, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server.i18n import N_, gettext
from server.models import (
    PointsEntry,
    PointsKind,
    RecyclingCategory,
    RecyclingDropoff,
    RecyclingDropoffLine,
    RecyclingGood,
    RecyclingHousehold,
    RecyclingRate,
    RecyclingRedemption,
    RecyclingStation,
    Role,
)
from server.services import boards, overview
from server.services.charts import Series, bar_chart
from server.services.errors import InvalidInput, ServiceError
from server.services.shared_cache import watch

# A household's card page (/r/<token>) is kept between requests until a commit writes one of these.
CARD_TOPIC = "recycling_cards"
for _model in (RecyclingHousehold, PointsEntry, RecyclingDropoff, RecyclingDropoffLine, RecyclingRedemption, RecyclingGood, RecyclingStation,
               RecyclingCategory):
    watch(_model, CARD_TOPIC)

MAX_LINE_GRAMS = 200_000  # 200 kg on one line: more is a typing mistake
MAX_LINES = 8
MAX_QUANTITY = 20
MAX_POINTS_PER_KG = 1000
MAX_GOOD_POINTS = 100_000
MAX_STOCK = 100_000
CARD_DIGITS = 8
TOKEN_BYTES = 18
BOARD_LATEST = 12
BOARD_MONTHS = 6
REASON_MIN = 2

MANAGERS = frozenset({Role.ADMIN, Role.STAFF})
WORKERS = MANAGERS | {Role.STATION_OPERATOR}
READERS = WORKERS | {Role.SUPERVISOR}

KIND_LABELS = {PointsKind.DROPOFF: N_("Drop-off"), PointsKind.REDEMPTION: N_("Redemption"), PointsKind.REVERSAL: N_("Reversal")}


class InvalidRecycling(InvalidInput):
    """Every problem of one recycling form or offline drop-off."""


# --- Who works where ------------------------------------------------------------------------------------------


def may_work_at(user: Any, station: RecyclingStation) -> bool:
    """Staff everywhere; a station operator at the stations of their compound (`user.place_id`)."""
    if user.role in MANAGERS:
        return True
    return user.role == Role.STATION_OPERATOR and station.place_id is not None and station.place_id == user.place_id


def may_read(user: Any, station: RecyclingStation) -> bool:
    return user.role == Role.SUPERVISOR or may_work_at(user, station)


async def stations_for(session: AsyncSession, user: Any) -> list[RecyclingStation]:
    query = select(RecyclingStation).order_by(RecyclingStation.name, RecyclingStation.id)
    if user.role == Role.STATION_OPERATOR:
        if user.place_id is None:
            return []
        query = query.where(RecyclingStation.place_id == user.place_id)
    return list(await session.scalars(query))


# --- Parsing what people type -----------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def parse_kg(text: str, field: str = "kg") -> int:
    """A weight typed in kg ("3.2", "0.45") as whole grams; ServiceError for anything else."""
    value = (text or "").strip().replace("，", ".").replace(",", ".")
    if not value:
        raise ServiceError(N_("Enter the weight in kg."), field=field)
    if value.startswith("-"):
        raise ServiceError(N_("The weight must be more than 0 kg."), field=field)
    if not _NUMBER.match(value):
        raise ServiceError(N_("Enter the weight as a number of kg, such as 3.2."), field=field)
    try:
        grams = Decimal(value) * 1000
    except InvalidOperation:
        raise ServiceError(N_("Enter the weight as a number of kg, such as 3.2."), field=field) from None
    if grams != grams.to_integral_value():
        raise ServiceError(N_("Weigh to the gram at most (three decimals)."), field=field)
    if grams <= 0:
        raise ServiceError(N_("The weight must be more than 0 kg."), field=field)
    if grams > MAX_LINE_GRAMS:
        raise ServiceError(N_("At most %(max)d kg on one line: check the weight, or split it."), field=field,
                           max=MAX_LINE_GRAMS // 1000)
    return int(grams)


def parse_whole(text: str, field: str, *, low: int, high: int) -> int:
    value = (text or "").strip()
    try:
        number = int(value)
    except ValueError:
        raise ServiceError(N_("Enter a whole number."), field=field) from None
    if not low <= number <= high:
        raise ServiceError(N_("Enter a whole number from %(low)d to %(high)d."), field=field, low=low, high=high)
    return number


def normalise_card(text: str) -> str:
    """A card number as typed or scanned: digits only ("1234 5678", "1234-5678" → "12345678")."""
    return re.sub(r"[\s\-]", "", text or "")


def kg(grams: int | None) -> str:
    """Grams as kg for people: "3.2", "12", "0.45"."""
    value = Decimal(grams or 0) / 1000
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def line_points(grams: int, points_per_kg: int) -> int:
    """Points of one line: kg × rate, rounded half up to whole points."""
    return (grams * points_per_kg + 500) // 1000


def format_card(number: str) -> str:
    return f"{number[:4]} {number[4:]}" if len(number) == CARD_DIGITS else number


# --- Stations, categories and rates --------------------------------------------------------------------------------


async def create_station(session: AsyncSession, *, name: str, place_id: UUID | None, opening_hours: str = "") -> RecyclingStation:
    name = (name or "").strip()
    problems = []
    if not name:
        problems.append(ServiceError(N_("Enter a name."), field="name"))
    elif await session.scalar(select(RecyclingStation.id).where(RecyclingStation.name == name)):
        problems.append(ServiceError(N_("There is already a station with this name."), field="name"))
    if problems:
        raise InvalidRecycling(problems)
    station = RecyclingStation(name=name[:120], place_id=place_id, opening_hours=(opening_hours or "").strip()[:120])
    session.add(station)
    await session.flush()
    return station


async def categories_of(session: AsyncSession, station_id: UUID, *, active_only: bool = True) -> list[RecyclingCategory]:
    query = select(RecyclingCategory).where(RecyclingCategory.station_id == station_id)
    if active_only:
        query = query.where(RecyclingCategory.is_active.is_(True))
    return list(await session.scalars(query.order_by(RecyclingCategory.position, RecyclingCategory.name)))


async def add_category(session: AsyncSession, station: RecyclingStation, *, name: str, points_per_kg: str,
                       now: datetime) -> RecyclingCategory:
    name = (name or "").strip()
    problems: list[ServiceError] = []
    if not name:
        problems.append(ServiceError(N_("Enter a name."), field="name"))
    elif len(name) > 40:
        problems.append(ServiceError(N_("At most %(max)d characters."), field="name", max=40))
    elif await session.scalar(select(RecyclingCategory.id).where(RecyclingCategory.station_id == station.id,
                                                                  RecyclingCategory.name == name)):
        problems.append(ServiceError(N_("This station already has a category with this name."), field="name"))
    try:
        rate = parse_whole(points_per_kg, "points_per_kg", low=0, high=MAX_POINTS_PER_KG)
    except ServiceError as error:
        problems.append(error)
    if problems:
        raise InvalidRecycling(problems)
    position = await session.scalar(select(func.coalesce(func.max(RecyclingCategory.position), 0))
                                     .where(RecyclingCategory.station_id == station.id)) or 0
    category = RecyclingCategory(station_id=station.id, name=name, position=position + 1)
    session.add(category)
    await session.flush()
    session.add(RecyclingRate(category_id=category.id, points_per_kg=rate, effective_from=now))
    await session.flush()
    return category


def start_of(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


async def set_rate(session: AsyncSession, category: RecyclingCategory, *, points_per_kg: str, effective_on: str,
                   now: datetime, tz: ZoneInfo) -> RecyclingRate:
    """A new rate from the start of `effective_on` (a local date, today or later; today means from now on):
    drop-offs already recorded keep the rate they were recorded with."""
    problems: list[ServiceError] = []
    rate = 0
    try:
        rate = parse_whole(points_per_kg, "points_per_kg", low=0, high=MAX_POINTS_PER_KG)
    except ServiceError as error:
        problems.append(error)
    today = now.astimezone(tz).date()
    start = now
    if (effective_on or "").strip():
        try:
            day = date.fromisoformat(effective_on.strip())
        except ValueError:
            problems.append(ServiceError(N_("Enter a date such as 2026-05-01."), field="effective_on"))
        else:
            if day < today:
                problems.append(ServiceError(N_("A new rate starts today or later: drop-offs already recorded keep their rate."),
                                             field="effective_on"))
            elif day > today:
                start = start_of(day, tz)
    if not problems and await session.scalar(select(RecyclingRate.id).where(RecyclingRate.category_id == category.id,
                                                                             RecyclingRate.effective_from == start)):
        problems.append(ServiceError(N_("This category already has a rate from that day."), field="effective_on"))
    if problems:
        raise InvalidRecycling(problems)
    row = RecyclingRate(category_id=category.id, points_per_kg=rate, effective_from=start)
    session.add(row)
    await session.flush()
    return row


async def rates_at(session: AsyncSession, category_ids: Sequence[UUID], at: datetime) -> dict[UUID, int]:
    """The points per kg in force at `at` for each category (absent: no rate yet)."""
    if not category_ids:
        return {}
    latest = (select(RecyclingRate.category_id, func.max(RecyclingRate.effective_from).label("since"))
              .where(RecyclingRate.category_id.in_(list(category_ids)), RecyclingRate.effective_from <= at)
              .group_by(RecyclingRate.category_id).subquery())
    rows = await session.execute(select(RecyclingRate.category_id, RecyclingRate.points_per_kg).join(
        latest, and_(RecyclingRate.category_id == latest.c.category_id, RecyclingRate.effective_from == latest.c.since)))
    return {category_id: rate for category_id, rate in rows.tuples()}


async def rate_history(session: AsyncSession, station_id: UUID) -> dict[UUID, list[RecyclingRate]]:
    rows = await session.scalars(select(RecyclingRate).join(RecyclingCategory, RecyclingRate.category_id == RecyclingCategory.id)
                                 .where(RecyclingCategory.station_id == station_id).order_by(RecyclingRate.effective_from.desc()))
    history: dict[UUID, list[RecyclingRate]] = {}
    for row in rows:
        history.setdefault(row.category_id, []).append(row)
    return history


# --- Households (cards) --------------------------------------------------------------------------------------------


async def issue_card(session: AsyncSession, station: RecyclingStation, *, note: str, now: datetime) -> RecyclingHousehold:
    """A new household account with a random card number and a secret token for its own page."""
    note = (note or "").strip()
    if len(note) > 200:
        raise InvalidRecycling([ServiceError(N_("At most %(max)d characters."), field="note", max=200)])
    number = await _new_card_number(session)
    household = RecyclingHousehold(station_id=station.id, card_number=number, token=secrets.token_urlsafe(TOKEN_BYTES),
                                   note=note, balance=0, issued_at=now)
    session.add(household)
    await session.flush()
    return household


async def _new_card_number(session: AsyncSession) -> str:
    while True:
        number = f"{secrets.randbelow(9 * 10 ** (CARD_DIGITS - 1)) + 10 ** (CARD_DIGITS - 1)}"
        if await session.scalar(select(RecyclingHousehold.id).where(RecyclingHousehold.card_number == number)) is None:
            return number


async def replace_card(session: AsyncSession, household: RecyclingHousehold, *, now: datetime) -> tuple[RecyclingHousehold, str]:
    """A lost or damaged card: the same household (balance, history) gets a new card number and a new
    token; the old number and the old QR link stop working at once. Returns (household, old number).
    Locks the station, then the household (module docstring, "Lock order")."""
    await lock_stations(session, [household.station_id])
    locked = await _lock(session, RecyclingHousehold, household.id)
    old = locked.card_number
    locked.card_number = await _new_card_number(session)
    locked.token = secrets.token_urlsafe(TOKEN_BYTES)
    locked.issued_at = now
    await session.flush()
    return locked, old


async def by_token(session: AsyncSession, token: str) -> RecyclingHousehold | None:
    if not token or len(token) > 64:
        return None
    return await session.scalar(select(RecyclingHousehold).where(RecyclingHousehold.token == token))


async def by_card(session: AsyncSession, station_id: UUID, card: str) -> RecyclingHousehold | None:
    number = normalise_card(card)
    if not number or len(number) > 16:
        return None
    return await session.scalar(select(RecyclingHousehold).where(RecyclingHousehold.card_number == number,
                                                                 RecyclingHousehold.station_id == station_id))


async def _lock(session: AsyncSession, model: Any, row_id: UUID) -> Any:
    """The row as last committed, locked for the rest of the transaction (PostgreSQL; SQLite's writers
    already run one at a time). Mind the lock order of the module docstring: station, household, good."""
    return await session.scalar(select(model).where(model.id == row_id).with_for_update()
                                .execution_options(populate_existing=True))


async def lock_stations(session: AsyncSession, station_ids: Sequence[UUID]) -> list[RecyclingStation]:
    """Lock these stations' rows, in id order, before any household or good of the transaction: the
    first lock of every write of the area (module docstring, "Lock order"). FOR NO KEY UPDATE: inserts
    that merely reference a station (foreign keys take FOR KEY SHARE) are not blocked by it."""
    if not station_ids:
        return []
    return list(await session.scalars(
        select(RecyclingStation).where(RecyclingStation.id.in_(sorted(set(station_ids))))
        .order_by(RecyclingStation.id).with_for_update(key_share=True).execution_options(populate_existing=True)))


async def lock_station(session: AsyncSession, station: RecyclingStation) -> None:
    await lock_stations(session, [station.id])


async def _household_for_card(session: AsyncSession, station: RecyclingStation, card: str) -> RecyclingHousehold:
    number = normalise_card(card)
    if not number:
        raise ServiceError(N_("Enter the card number."), field="card")
    household = await by_card(session, station.id, number)
    if household is None:
        raise ServiceError(N_("No card %(card)s at this station: check the number on the card."), field="card", card=number)
    return household


# --- Drop-offs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    category_id: UUID | None
    kg: str


def _line_field(index: int, name: str) -> str:
    return f"lines.{index}.{name}"


async def record_dropoff(session: AsyncSession, station: RecyclingStation, *, card: str, lines: Sequence[LineInput],
                         at: datetime, by_user_id: UUID | None, dropoff_id: UUID | None = None) -> RecyclingDropoff:
    """Weigh in: the lines' points at the rates in force at `at`, added to the household's balance.
    `dropoff_id` (the offline mutation's entity id) makes a second delivery a no-op. Locks the station,
    then the household."""
    await lock_station(session, station)
    if dropoff_id is not None:
        existing = await session.get(RecyclingDropoff, dropoff_id)
        if existing is not None:
            return existing
    problems: list[ServiceError] = []
    household = None
    try:
        household = await _household_for_card(session, station, card)
    except ServiceError as error:
        problems.append(error)
    categories = {c.id: c for c in await categories_of(session, station.id)}
    used = [(i, line) for i, line in enumerate(lines) if line.category_id is not None or (line.kg or "").strip()]
    if not used:
        problems.append(ServiceError(N_("Enter at least one category and its weight."), field="lines"))
    if len(used) > MAX_LINES:
        problems.append(ServiceError(N_("At most %(max)d lines in one drop-off."), field="lines", max=MAX_LINES))
    rates = await rates_at(session, list(categories), at)
    parsed: list[tuple[UUID, int, int]] = []
    for index, line in used:
        category = categories.get(line.category_id) if line.category_id else None
        if category is None:
            problems.append(ServiceError(N_("Choose a category this station takes."), field=_line_field(index, "category_id")))
        elif category.id not in rates:
            problems.append(ServiceError(N_("%(category)s has no points rate yet: ask the staff to set one."),
                                         field=_line_field(index, "category_id"), category=category.name))
        try:
            grams = parse_kg(line.kg, _line_field(index, "kg"))
        except ServiceError as error:
            problems.append(error)
            continue
        if category is not None and category.id in rates:
            parsed.append((category.id, grams, rates[category.id]))
    if problems:
        raise InvalidRecycling(problems)
    assert household is not None
    household = await _lock(session, RecyclingHousehold, household.id)
    dropoff = RecyclingDropoff(station_id=station.id, household_id=household.id, recorded_at=at, recorded_by_id=by_user_id,
                               grams=sum(g for _c, g, _r in parsed), points=sum(line_points(g, r) for _c, g, r in parsed))
    if dropoff_id is not None:
        dropoff.id = dropoff_id
    session.add(dropoff)
    await session.flush()
    session.add_all([RecyclingDropoffLine(dropoff_id=dropoff.id, category_id=c, grams=g, points_per_kg=r, points=line_points(g, r))
                     for c, g, r in parsed])
    session.add(PointsEntry(station_id=station.id, household_id=household.id, kind=PointsKind.DROPOFF, points=dropoff.points,
                            at=at, dropoff_id=dropoff.id, by_user_id=by_user_id))
    household.balance += dropoff.points
    await session.flush()
    return dropoff


# --- Goods and redemptions ----------------------------------------------------------------------------------------


async def goods_of(session: AsyncSession, station_id: UUID, *, active_only: bool = False) -> list[RecyclingGood]:
    query = select(RecyclingGood).where(RecyclingGood.station_id == station_id)
    if active_only:
        query = query.where(RecyclingGood.is_active.is_(True))
    return list(await session.scalars(query.order_by(RecyclingGood.points, RecyclingGood.name)))


async def add_good(session: AsyncSession, station: RecyclingStation, *, name: str, points: str, stock: str) -> RecyclingGood:
    name = (name or "").strip()
    problems: list[ServiceError] = []
    if not name:
        problems.append(ServiceError(N_("Enter a name."), field="name"))
    elif len(name) > 60:
        problems.append(ServiceError(N_("At most %(max)d characters."), field="name", max=60))
    elif await session.scalar(select(RecyclingGood.id).where(RecyclingGood.station_id == station.id, RecyclingGood.name == name)):
        problems.append(ServiceError(N_("This station already has a good with this name."), field="name"))
    values = {}
    for field, low, high in (("points", 1, MAX_GOOD_POINTS), ("stock", 0, MAX_STOCK)):
        try:
            values[field] = parse_whole(points if field == "points" else stock, field, low=low, high=high)
        except ServiceError as error:
            problems.append(error)
    if problems:
        raise InvalidRecycling(problems)
    good = RecyclingGood(station_id=station.id, name=name, points=values["points"], stock=values["stock"])
    session.add(good)
    await session.flush()
    return good


async def adjust_stock(session: AsyncSession, good: RecyclingGood, *, change: str) -> RecyclingGood:
    """Goods delivered (+) or taken out of stock (−, broken, expired); the stock never goes below 0."""
    try:
        delta = parse_whole(change, "change", low=-MAX_STOCK, high=MAX_STOCK)
    except ServiceError as error:
        raise InvalidRecycling([error]) from None
    if delta == 0:
        raise InvalidRecycling([ServiceError(N_("Enter how many came in (such as 20) or went out (such as -2)."), field="change")])
    locked = await _lock(session, RecyclingGood, good.id)
    if locked.stock + delta < 0:
        raise InvalidRecycling([ServiceError(N_("Only %(stock)d in stock: at most %(stock)d can be taken out."), field="change",
                                             stock=locked.stock)])
    if locked.stock + delta > MAX_STOCK:
        raise InvalidRecycling([ServiceError(N_("At most %(max)d in stock."), field="change", max=MAX_STOCK)])
    locked.stock += delta
    await session.flush()
    return locked


async def redeem(session: AsyncSession, station: RecyclingStation, *, card: str, good_id: UUID | None, quantity: str,
                 at: datetime, by_user_id: UUID | None) -> RecyclingRedemption:
    """Goods for points: balance and stock change together, checked on the locked rows (station, then
    household, then good)."""
    await lock_station(session, station)
    problems: list[ServiceError] = []
    household = None
    try:
        household = await _household_for_card(session, station, card)
    except ServiceError as error:
        problems.append(error)
    good = await session.get(RecyclingGood, good_id) if good_id else None
    if good is None or good.station_id != station.id or not good.is_active:
        problems.append(ServiceError(N_("Choose a good from this station's catalogue."), field="good_id"))
    count = 0
    try:
        count = parse_whole(quantity, "quantity", low=1, high=MAX_QUANTITY)
    except ServiceError as error:
        problems.append(error)
    if problems:
        raise InvalidRecycling(problems)
    assert household is not None and good is not None
    household = await _lock(session, RecyclingHousehold, household.id)  # the station, then the household, then the good
    good = await _lock(session, RecyclingGood, good.id)
    price = good.points * count
    if good.stock < count:
        problems.append(ServiceError(N_("Only %(stock)d of %(good)s left in stock."), field="quantity", stock=good.stock, good=good.name)
                        if good.stock else ServiceError(N_("%(good)s is out of stock."), field="good_id", good=good.name))
    if household.balance < price:
        problems.append(ServiceError(N_("This needs %(price)d points; the card has %(balance)d."), field="quantity",
                                     price=price, balance=household.balance))
    if problems:
        raise InvalidRecycling(problems)
    redemption = RecyclingRedemption(station_id=station.id, household_id=household.id, good_id=good.id, quantity=count,
                                     points=price, at=at, by_user_id=by_user_id)
    session.add(redemption)
    await session.flush()
    session.add(PointsEntry(station_id=station.id, household_id=household.id, kind=PointsKind.REDEMPTION, points=-price, at=at,
                            redemption_id=redemption.id, by_user_id=by_user_id))
    household.balance -= price
    good.stock -= count
    await session.flush()
    return redemption


# --- Reversals -------------------------------------------------------------------------------------------------------


async def reverse(session: AsyncSession, entry_id: UUID, *, reason: str, at: datetime, by_user_id: UUID | None) -> PointsEntry:
    """Undo a wrong drop-off or redemption with an entry of the opposite sign and a reason; refused when
    it would take the balance below zero, or when the entry is a reversal or reversed already."""
    reason = (reason or "").strip()
    entry = await session.get(PointsEntry, entry_id)
    if entry is None:
        raise InvalidRecycling([ServiceError(N_("This entry does not exist."), field="form")])
    problems: list[ServiceError] = []
    if len(reason) < REASON_MIN:
        problems.append(ServiceError(N_("Say why this entry is reversed."), field="reason"))
    elif len(reason) > 500:
        problems.append(ServiceError(N_("At most %(max)d characters."), field="reason", max=500))
    if entry.kind == PointsKind.REVERSAL:
        problems.append(ServiceError(N_("A reversal cannot be reversed: record the drop-off or redemption again instead."), field="form"))
    if problems:
        raise InvalidRecycling(problems)
    await lock_stations(session, [entry.station_id])  # the station, then the household, then the good
    household = await _lock(session, RecyclingHousehold, entry.household_id)
    good = None
    redemption = await session.get(RecyclingRedemption, entry.redemption_id) if entry.redemption_id else None
    if redemption is not None:
        good = await _lock(session, RecyclingGood, redemption.good_id)
    if await session.scalar(select(PointsEntry.id).where(PointsEntry.reverses_id == entry.id)):
        raise InvalidRecycling([ServiceError(N_("This entry has been reversed already."), field="form")])
    if household.balance - entry.points < 0:
        raise InvalidRecycling([ServiceError(
            N_("Reversing %(points)d points would leave the card at %(balance)d: the points have been spent. Reverse the redemption first."),
            field="form", points=entry.points, balance=household.balance - entry.points)])
    if good is not None and redemption is not None and good.stock + redemption.quantity > MAX_STOCK:
        raise InvalidRecycling([ServiceError(N_("At most %(max)d in stock."), field="form", max=MAX_STOCK)])
    reversal = PointsEntry(station_id=entry.station_id, household_id=household.id, kind=PointsKind.REVERSAL, points=-entry.points,
                           at=at, reverses_id=entry.id, reason=reason, by_user_id=by_user_id)
    session.add(reversal)
    household.balance -= entry.points
    if good is not None and redemption is not None:
        good.stock += redemption.quantity  # the goods were not handed out after all
    await session.flush()
    return reversal


# --- Reading the ledger ---------------------------------------------------------------------------------------------


Reversal = aliased(PointsEntry)


def not_reversed() -> Any:
    """An entry that no reversal names."""
    return ~exists(select(Reversal.id).where(Reversal.reverses_id == PointsEntry.id))


@dataclass(frozen=True)
class EntryRow:
    entry: PointsEntry
    detail: str  # "纸类 3.2 kg, 塑料 1 kg" / "洗衣液 × 1" / the reason
    card_number: str
    reversed: bool


async def entry_rows(session: AsyncSession, query: Any) -> list[EntryRow]:
    """Ledger entries with what each was (lines, goods), set-wise."""
    entries = list(await session.scalars(query))
    dropoffs = [e.dropoff_id for e in entries if e.dropoff_id]
    redemptions = [e.redemption_id for e in entries if e.redemption_id]
    lines: dict[UUID, list[str]] = {}
    if dropoffs:
        for dropoff_id, name, grams in (await session.execute(
            select(RecyclingDropoffLine.dropoff_id, RecyclingCategory.name, RecyclingDropoffLine.grams)
            .join(RecyclingCategory, RecyclingDropoffLine.category_id == RecyclingCategory.id)
            .where(RecyclingDropoffLine.dropoff_id.in_(dropoffs)).order_by(RecyclingCategory.position))).tuples():
            lines.setdefault(dropoff_id, []).append(f"{name} {kg(grams)} kg")
    goods: dict[UUID, str] = {}
    if redemptions:
        for redemption_id, name, quantity in (await session.execute(
            select(RecyclingRedemption.id, RecyclingGood.name, RecyclingRedemption.quantity)
            .join(RecyclingGood, RecyclingRedemption.good_id == RecyclingGood.id)
            .where(RecyclingRedemption.id.in_(redemptions)))).tuples():
            goods[redemption_id] = f"{name} × {quantity}"
    ids = [e.id for e in entries]
    reversed_ids = set(await session.scalars(select(PointsEntry.reverses_id).where(PointsEntry.reverses_id.in_(ids)))) if ids else set()
    cards = dict((await session.execute(select(RecyclingHousehold.id, RecyclingHousehold.card_number).where(
        RecyclingHousehold.id.in_({e.household_id for e in entries})))).tuples().all()) if entries else {}
    rows = []
    for e in entries:
        if e.dropoff_id:
            detail = ", ".join(lines.get(e.dropoff_id, []))
        elif e.redemption_id:
            detail = goods.get(e.redemption_id, "")
        else:
            detail = e.reason or ""
        rows.append(EntryRow(e, detail, cards.get(e.household_id, ""), e.id in reversed_ids))
    return rows


def ledger_query(*, station_id: UUID | None = None, household_id: UUID | None = None) -> Any:
    query = select(PointsEntry)
    if station_id is not None:
        query = query.where(PointsEntry.station_id == station_id)
    if household_id is not None:
        query = query.where(PointsEntry.household_id == household_id)
    return query.order_by(PointsEntry.at.desc(), PointsEntry.id.desc())


async def ledger_csv_rows(session: AsyncSession, station_id: UUID, tz: ZoneInfo) -> list[list[Any]]:
    """Every entry of the station, oldest first, for the CSV export: points in and out as separate
    non-negative columns (a cell starting with "-" would be neutralised as a formula)."""
    rows = await entry_rows(session, ledger_query(station_id=station_id).order_by(None).order_by(PointsEntry.at, PointsEntry.id))
    out = []
    for row in rows:
        e = row.entry
        out.append([e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"), str(e.id), row.card_number, e.kind.value,
                    e.points if e.points > 0 else "", -e.points if e.points < 0 else "", row.detail,
                    str(e.reverses_id or ""), e.reason or "", "yes" if row.reversed else ""])
    return out


# --- Figures: the board, the station page, the overview ---------------------------------------------------------------


def month_bounds(now: datetime, tz: ZoneInfo, back: int = 0) -> tuple[datetime, datetime]:
    """The UTC start and end of the local month `back` months before the one containing `now`."""
    local = now.astimezone(tz).date().replace(day=1)
    year, month = local.year, local.month - back
    while month < 1:
        month += 12
        year -= 1
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return start_of(first, tz), start_of(following, tz)


def _dropoff_not_reversed() -> Any:
    """A drop-off whose ledger entry no reversal names: a reversed one is not counted nor shown anywhere public.
    The reversed drop-offs are few: their ids are found once per query (not once per drop-off row)."""
    reversed_ids = (select(PointsEntry.dropoff_id).join(Reversal, Reversal.reverses_id == PointsEntry.id)
                    .where(PointsEntry.dropoff_id.is_not(None)))
    return RecyclingDropoff.id.not_in(reversed_ids)


def _dropoffs_between(start: datetime, end: datetime, station_id: UUID | None = None) -> Any:
    """Drop-offs recorded in [start, end) whose ledger entry was not reversed."""
    condition = and_(RecyclingDropoff.recorded_at >= start, RecyclingDropoff.recorded_at < end, _dropoff_not_reversed())
    if station_id is not None:
        condition = and_(condition, RecyclingDropoff.station_id == station_id)
    return condition


async def month_figures(session: AsyncSession, now: datetime, tz: ZoneInfo, station_id: UUID | None = None) -> dict[str, Any]:
    start, end = month_bounds(now, tz)
    where = _dropoffs_between(start, end, station_id)
    grams, households, count, issued = (await session.execute(select(
        func.coalesce(func.sum(RecyclingDropoff.grams), 0), func.count(distinct(RecyclingDropoff.household_id)), func.count(),
        func.coalesce(func.sum(RecyclingDropoff.points), 0)).where(where))).one()
    redeemed_where = and_(PointsEntry.kind == PointsKind.REDEMPTION, PointsEntry.at >= start, PointsEntry.at < end, not_reversed())
    if station_id is not None:
        redeemed_where = and_(redeemed_where, PointsEntry.station_id == station_id)
    redeemed = await session.scalar(select(func.coalesce(-func.sum(PointsEntry.points), 0)).where(redeemed_where))
    return {"grams": int(grams), "kg": kg(int(grams)), "households": int(households), "dropoffs": int(count),
            "points_issued": int(issued or 0), "points_redeemed": int(redeemed or 0)}


async def kg_by_category(session: AsyncSession, start: datetime, end: datetime, station_id: UUID | None = None) -> list[tuple[str, int]]:
    rows = await session.execute(
        select(RecyclingCategory.name, func.sum(RecyclingDropoffLine.grams))
        .join(RecyclingDropoffLine, RecyclingDropoffLine.category_id == RecyclingCategory.id)
        .join(RecyclingDropoff, RecyclingDropoffLine.dropoff_id == RecyclingDropoff.id)
        .where(_dropoffs_between(start, end, station_id))
        .group_by(RecyclingCategory.name).order_by(func.sum(RecyclingDropoffLine.grams).desc()))
    return [(name, int(grams or 0)) for name, grams in rows.tuples()]


async def kg_by_month(session: AsyncSession, now: datetime, tz: ZoneInfo, months: int = BOARD_MONTHS) -> list[tuple[str, int]]:
    """(label "2026-05", grams) for the last `months` months, oldest first, in one query."""
    bounds = [month_bounds(now, tz, back) for back in range(months - 1, -1, -1)]
    bucket = case(*[(and_(RecyclingDropoff.recorded_at >= a, RecyclingDropoff.recorded_at < b), i) for i, (a, b) in enumerate(bounds)],
                  else_=None)
    rows = dict((await session.execute(
        select(bucket, func.sum(RecyclingDropoff.grams)).where(_dropoffs_between(bounds[0][0], bounds[-1][1])).group_by(bucket)
    )).tuples().all())
    return [(a.astimezone(tz).strftime("%Y-%m"), int(rows.get(i) or 0)) for i, (a, _b) in enumerate(bounds)]


async def latest_lines(session: AsyncSession, limit: int = BOARD_LATEST, station_id: UUID | None = None) -> list[tuple[datetime, str, int]]:
    """The last drop-off lines (time, category, grams) of drop-offs not reversed: nothing about who. The last
    `limit` drop-offs hold them (each has at least one line): found first, newest first along the time index."""
    latest = select(RecyclingDropoff.id).where(_dropoff_not_reversed())
    if station_id is not None:
        latest = latest.where(RecyclingDropoff.station_id == station_id)
    latest = latest.order_by(RecyclingDropoff.recorded_at.desc(), RecyclingDropoff.id.desc()).limit(limit)
    query = (select(RecyclingDropoff.recorded_at, RecyclingCategory.name, RecyclingDropoffLine.grams)
             .join(RecyclingDropoffLine, RecyclingDropoffLine.dropoff_id == RecyclingDropoff.id)
             .join(RecyclingCategory, RecyclingDropoffLine.category_id == RecyclingCategory.id)
             .where(RecyclingDropoff.id.in_(latest.scalar_subquery()))
             .order_by(RecyclingDropoff.recorded_at.desc(), RecyclingDropoffLine.id).limit(limit))
    return [(at, name, int(grams)) for at, name, grams in (await session.execute(query)).tuples()]


@boards.board("recycling", N_("Recycling station"), RecyclingDropoff, RecyclingDropoffLine, PointsEntry, RecyclingStation,
              RecyclingCategory)
async def recycling_board(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The public board: this month's kg by category, households served, points issued and redeemed, kg per
    month, and the latest drop-offs as "HH:MM 纸类 3.2 kg" (never a card or a household)."""
    start, end = month_bounds(now, tz)
    figures = await month_figures(session, now, tz)
    by_category = await kg_by_category(session, start, end)
    months = await kg_by_month(session, now, tz)
    chart = bar_chart([label for label, _g in months], [Series(gettext("Weight (kg)"), [round(g / 1000, 1) for _l, g in months])],
                      title=gettext("Kilograms collected per month"), unit=" kg")
    stations = list(await session.scalars(select(RecyclingStation.name).where(RecyclingStation.is_active.is_(True))
                                          .order_by(RecyclingStation.name)))
    latest = [(at.astimezone(tz).strftime("%H:%M"), at.astimezone(tz).strftime("%m-%d"), name, kg(grams))
              for at, name, grams in await latest_lines(session)]
    return {"month": now.astimezone(tz).strftime("%Y-%m"), "figures": figures, "by_category": [(n, kg(g)) for n, g in by_category],
            "chart": chart, "latest": latest, "stations": stations}


@overview.contributes(RecyclingDropoff, PointsEntry)
async def recycling_overview(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """This month's (in `tz`) kg collected (one decimal) and households that dropped something off."""
    figures = await month_figures(session, now, tz)
    return {"recycling_kg_this_month": round(figures["grams"] / 1000, 1),
            "recycling_households_this_month": figures["households"]}

