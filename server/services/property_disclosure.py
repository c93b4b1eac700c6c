"""Property disclosure (物业公示, L2) per compound: the reform plan, the service standards, the fee schedule
(items, unit prices in fen, unit) and the monthly figures (fee collection rate, 12345 complaints).
docs/boards.md, "Property disclosure".

Rules: a rate is 0–100 % with at most two decimals (stored in basis points: 4.5 % = 450); complaints are
whole numbers ≥ 0; one row per compound and month, and entering a month again replaces its figures; a
month still to come is refused. Prices are typed in yuan (at most two decimals) and stored in fen.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import Place, PlaceKind, PropertyDisclosure, PropertyMonth
from server.services.errors import InvalidInput, ServiceError

MAX_TEXT = 8000
MAX_FEES = 30
MAX_PRICE_FEN = 100_000_00  # 10 万元 per unit: anything above is a typing mistake
MAX_COMPLAINTS = 100_000
MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
PRICE_RE = re.compile(r"([0-9]{0,9})(?:\.([0-9]{0,2}))?")  # yuan, at most two decimals ("3", "0.85", ".5", "3.")


class InvalidDisclosure(InvalidInput):
    pass


def price_fen(text: str) -> int | None:
    """Yuan as typed ("0.85", "1,200", "¥3", full-width digits too) to fen; None when it is not a plain amount
    with at most two decimals. A strict pattern, not Decimal: "1e30" or "1E+27" are typing mistakes, not prices."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().replace(" ", "").replace(",", "")
    cleaned = cleaned.removeprefix("¥").removesuffix("元").strip()
    match = PRICE_RE.fullmatch(cleaned)
    if not match or not (match.group(1) or match.group(2)):
        return None
    return int(match.group(1) or "0") * 100 + int((match.group(2) or "").ljust(2, "0"))


def yuan(fen: int | None) -> str:
    """Fen as yuan for a page or a form: 85 → "0.85", 300 → "3.00"."""
    if fen is None:
        return ""
    return f"{fen // 100}.{fen % 100:02d}"


def rate_bp(text: str) -> int | None:
    """A percentage as typed ("4.5", "70 %") in basis points; None when it is not 0–100 with two decimals at most."""
    cleaned = text.strip().rstrip("%％").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value > 100 or value != value.quantize(Decimal("0.01")):
        return None
    return int(value * 100)


def percent(bp: int | None) -> float | None:
    return None if bp is None else bp / 100


def percent_text(bp: int | None) -> str:
    if bp is None:
        return ""
    text = f"{bp // 100}.{bp % 100:02d}".rstrip("0").rstrip(".")
    return text


def month_of(text: str) -> date | None:
    match = MONTH_RE.match(text.strip())
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


@dataclass
class DisclosureInput:
    reform_plan: str = ""
    service_standards: str = ""
    fees: list[tuple[str, str, str]] = field(default_factory=list)  # (item, price in yuan as typed, unit)


async def compounds(session: AsyncSession) -> list[Place]:
    return list(await session.scalars(select(Place).where(Place.kind == PlaceKind.RESIDENTIAL_COMPOUND).order_by(Place.name)))


async def compound_by_code(session: AsyncSession, code: str) -> Place | None:
    if not code or len(code) > 12:
        return None
    return await session.scalar(select(Place).where(Place.code == code.upper(), Place.kind == PlaceKind.RESIDENTIAL_COMPOUND))


async def disclosure_of(session: AsyncSession, place_id: UUID) -> PropertyDisclosure | None:
    return await session.scalar(select(PropertyDisclosure).where(PropertyDisclosure.place_id == place_id))


def has_content(row: PropertyDisclosure | None) -> bool:
    """Whether the compound has published anything of its own: a reform plan, service standards or fees.
    Until then it is not listed on /property and its public page does not exist (an empty row may exist,
    made by `_locked` when the monthly figures come first)."""
    return row is not None and bool(row.reform_plan.strip() or row.service_standards.strip() or row.fees)


async def published_disclosure(session: AsyncSession, place_id: UUID) -> PropertyDisclosure | None:
    """The compound's disclosure if it has content (see `has_content`), else None."""
    row = await disclosure_of(session, place_id)
    return row if has_content(row) else None


async def _locked(session: AsyncSession, place: Place) -> PropertyDisclosure:
    """The compound's disclosure, locked (PostgreSQL: FOR UPDATE), created empty the first time (an empty one
    is not public: `has_content`). Creating races are settled by the unique place_id: the loser's request
    fails and is retried by the user."""
    row = await session.scalar(select(PropertyDisclosure).where(PropertyDisclosure.place_id == place.id).with_for_update()
                               .execution_options(populate_existing=True))
    if row is None:
        row = PropertyDisclosure(place_id=place.id, reform_plan="", service_standards="", fees=[], version=0)
        session.add(row)
        await session.flush()
    return row


async def save(session: AsyncSession, place: Place, data: DisclosureInput) -> PropertyDisclosure:
    problems: list[ServiceError] = []
    if place.kind is not PlaceKind.RESIDENTIAL_COMPOUND:
        problems.append(ServiceError(N_("Property disclosure is kept for residential compounds.")))
    for name, text in (("reform_plan", data.reform_plan), ("service_standards", data.service_standards)):
        if len(text) > MAX_TEXT:
            problems.append(ServiceError(N_("Please keep this under %(n)d characters."), field=name, n=MAX_TEXT))
    fees: list[dict[str, Any]] = []
    for n, (item, price, unit) in enumerate(data.fees, start=1):
        item, price, unit = item.strip(), price.strip(), unit.strip()
        if not (item or price or unit):
            continue
        fen = price_fen(price)
        if not item:
            problems.append(ServiceError(N_("Line %(n)d of the fee schedule: please name the item."), field="fees", n=n))
        elif fen is None or fen > MAX_PRICE_FEN:
            problems.append(ServiceError(N_("Line %(n)d of the fee schedule: please enter the price in yuan, e.g. 0.85."), field="fees", n=n))
        elif not unit:
            problems.append(ServiceError(N_("Line %(n)d of the fee schedule: please give the unit, e.g. 元/㎡·月."), field="fees", n=n))
        elif len(item) > 60 or len(unit) > 30:
            problems.append(ServiceError(N_("Line %(n)d of the fee schedule is too long."), field="fees", n=n))
        else:
            fees.append({"item": item, "unit_price_fen": fen, "unit": unit})
    if len(fees) > MAX_FEES:
        problems.append(ServiceError(N_("A fee schedule keeps at most %(n)d items."), field="fees", n=MAX_FEES))
    if problems:
        raise InvalidDisclosure(problems)
    row = await _locked(session, place)
    row.reform_plan, row.service_standards, row.fees = data.reform_plan.strip(), data.service_standards.strip(), fees
    row.version += 1
    await session.flush()
    return row


async def record_month(session: AsyncSession, place: Place, *, month: str, rate: str, complaints: str, now: datetime,
                       tz: ZoneInfo) -> PropertyMonth:
    """Enter (or replace) one month's figures of the compound; a blank figure stays unknown."""
    problems: list[ServiceError] = []
    first = month_of(month)
    today = now.astimezone(tz).date()
    if first is None:
        problems.append(ServiceError(N_("Please enter the month as YYYY-MM, e.g. 2025-03."), field="month"))
    elif first > today.replace(day=1):
        problems.append(ServiceError(N_("This month has not begun yet."), field="month"))
    bp = None
    if rate.strip():
        bp = rate_bp(rate)
        if bp is None:
            problems.append(ServiceError(N_("Please enter the collection rate as a percentage from 0 to 100."), field="rate"))
    count = None
    if complaints.strip():
        try:
            count = int(complaints.strip())
        except ValueError:
            count = -1
        if not 0 <= count <= MAX_COMPLAINTS:
            problems.append(ServiceError(N_("Please enter the complaints as a whole number, 0 or more."), field="complaints"))
    if not rate.strip() and not complaints.strip():
        problems.append(ServiceError(N_("Please enter the collection rate, the complaints, or both."), field="rate"))
    if place.kind is not PlaceKind.RESIDENTIAL_COMPOUND:
        problems.append(ServiceError(N_("Property disclosure is kept for residential compounds.")))
    if problems:
        raise InvalidDisclosure(problems)
    assert first is not None
    await _locked(session, place)  # one writer per compound: the month's row is read and written under it
    row = await session.scalar(select(PropertyMonth).where(PropertyMonth.place_id == place.id, PropertyMonth.month == first))
    if row is None:
        row = PropertyMonth(place_id=place.id, month=first)
        session.add(row)
    row.collection_bp, row.complaints = bp, count
    await session.flush()
    return row


async def months(session: AsyncSession, place_id: UUID, limit: int = 36) -> list[PropertyMonth]:
    """The latest `limit` months, oldest first."""
    rows = list(await session.scalars(
        select(PropertyMonth).where(PropertyMonth.place_id == place_id).order_by(PropertyMonth.month.desc()).limit(limit)))
    return rows[::-1]


async def disclosed_compounds(session: AsyncSession) -> list[tuple[Place, PropertyDisclosure, PropertyMonth | None]]:
    """Compounds with a disclosure that has content (`has_content`), each with its latest month."""
    rows = (await session.execute(
        select(Place, PropertyDisclosure).join(PropertyDisclosure, PropertyDisclosure.place_id == Place.id).order_by(Place.name)
    )).all()
    latest_month = select(PropertyMonth.place_id, func.max(PropertyMonth.month).label("m")).group_by(PropertyMonth.place_id).subquery()
    latest = {m.place_id: m for m in await session.scalars(
        select(PropertyMonth).join(latest_month, (latest_month.c.place_id == PropertyMonth.place_id) & (latest_month.c.m == PropertyMonth.month))
    )}
    return [(place, disclosure, latest.get(place.id)) for place, disclosure in rows if has_content(disclosure)]


TREND_WINDOW = 3  # months at each end compared by the complaints trend


@dataclass(frozen=True)
class Trend:
    """What the page's summary sentence says: the first and latest known collection rate, and how the
    monthly complaints changed from the first months on record to the latest ones."""

    first_rate: PropertyMonth | None
    last_rate: PropertyMonth | None
    complaints_before: int | None  # complaints in the first TREND_WINDOW months with a figure
    complaints_after: int | None  # … and in the latest TREND_WINDOW (needs twice TREND_WINDOW months)

    @property
    def complaints_change_percent(self) -> int | None:
        """Change in whole percent (negative: fewer complaints), None without enough months."""
        if self.complaints_before is None or self.complaints_after is None or self.complaints_before == 0:
            return None
        return round(100 * (self.complaints_after - self.complaints_before) / self.complaints_before)


def trend(rows: list[PropertyMonth]) -> Trend:
    rated = [r for r in rows if r.collection_bp is not None]
    counted = [r.complaints for r in rows if r.complaints is not None]
    before = after = None
    if len(counted) >= 2 * TREND_WINDOW:
        before, after = sum(counted[:TREND_WINDOW]), sum(counted[-TREND_WINDOW:])  # equal windows compare like averages
    return Trend(rated[0] if rated else None, rated[-1] if rated else None, before, after)
