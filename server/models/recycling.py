"""Recycling points (L4): stations, categories and rates, household cards, the points ledger, goods. docs/boards.md.

The points ledger (`recycling_points_entry`) is append-only: a household's balance is the sum of its
entries; a wrong entry is answered by a reversing entry with a reason, never edited or deleted (the
flush guard below refuses it). `RecyclingHousehold.balance` keeps that sum with every entry, under the
household's row lock, so a balance can be shown and checked without adding up the whole history. The
database refuses a negative balance or stock (CHECK constraints), whatever code path writes them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Enum, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.models.base import AuditedBase

__all__ = [
    "PointsEntry",
    "PointsKind",
    "RecyclingCategory",
    "RecyclingDropoff",
    "RecyclingDropoffLine",
    "RecyclingGood",
    "RecyclingHousehold",
    "RecyclingRate",
    "RecyclingRedemption",
    "RecyclingStation",
]


class RecyclingStation(AuditedBase):
    """A green recycling station (绿色回收驿站). Its operators are the station operators of its compound."""

    __tablename__ = "recycling_station"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    opening_hours: Mapped[str] = mapped_column(String(120), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class RecyclingCategory(AuditedBase):
    """What the station takes (纸类, 塑料 …); its points per kg are in `RecyclingRate`, with their history."""

    __tablename__ = "recycling_category"
    __table_args__ = (UniqueConstraint("station_id", "name"),)

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class RecyclingRate(AuditedBase):
    """Points per kg of a category from `effective_from` on (until the next rate). Rates are never edited."""

    __tablename__ = "recycling_rate"
    __table_args__ = (UniqueConstraint("category_id", "effective_from"),)

    category_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_category.id", ondelete="CASCADE"), index=True)
    points_per_kg: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class RecyclingHousehold(AuditedBase):
    """A household's account, known by its card: the number the operator types and a secret token for
    the household's own page (the QR code on the card). Nothing personal is needed; `note` is staff-only."""

    __tablename__ = "recycling_household"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id"), index=True)
    card_number: Mapped[str] = mapped_column(String(16), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    balance: Mapped[int] = mapped_column(BigInteger, default=0)  # the sum of its ledger entries, never negative
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class RecyclingDropoff(AuditedBase):
    """One weighing at the station: one or more lines (category, weight); `recorded_at` is when the
    operator pressed save (offline too). Its id is the sync mutation's entity id: applied once."""

    __tablename__ = "recycling_dropoff"

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id"), index=True)
    household_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_household.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    recorded_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    grams: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)


class RecyclingDropoffLine(AuditedBase):
    __tablename__ = "recycling_dropoff_line"

    dropoff_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_dropoff.id"), index=True)
    category_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_category.id"), index=True)
    grams: Mapped[int] = mapped_column(Integer)
    points_per_kg: Mapped[int] = mapped_column(Integer)  # the rate in force at the drop-off's recorded_at
    points: Mapped[int] = mapped_column(Integer)


class RecyclingGood(AuditedBase):
    """A good of the station's catalogue: its price in points and how many are in stock (never negative)."""

    __tablename__ = "recycling_good"
    __table_args__ = (UniqueConstraint("station_id", "name"), CheckConstraint("stock >= 0", name="stock_not_negative"))

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    points: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class RecyclingRedemption(AuditedBase):
    """Goods handed out for points: balance and stock change together, or not at all."""

    __tablename__ = "recycling_redemption"

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id"), index=True)
    household_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_household.id"), index=True)
    good_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_good.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)  # the whole price, positive
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    by_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class PointsKind(enum.StrEnum):
    DROPOFF = "dropoff"  # 投递
    REDEMPTION = "redemption"  # 兑换
    REVERSAL = "reversal"  # 冲正


class PointsEntry(AuditedBase):
    """One line of the points ledger (signed points). Append-only; a reversal names the entry it reverses
    (once: `reverses_id` is unique) and says why."""

    __tablename__ = "recycling_points_entry"

    station_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_station.id"), index=True)
    household_id: Mapped[UUID] = mapped_column(ForeignKey("recycling_household.id"), index=True)
    kind: Mapped[PointsKind] = mapped_column(
        Enum(PointsKind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    dropoff_id: Mapped[UUID | None] = mapped_column(ForeignKey("recycling_dropoff.id"), unique=True)
    redemption_id: Mapped[UUID | None] = mapped_column(ForeignKey("recycling_redemption.id"), unique=True)
    reverses_id: Mapped[UUID | None] = mapped_column(ForeignKey("recycling_points_entry.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    by_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


APPEND_ONLY = (PointsEntry, RecyclingDropoff, RecyclingDropoffLine, RecyclingRedemption, RecyclingRate)


class LedgerIsAppendOnly(Exception):
    """Code tried to change or delete a ledger row: a wrong entry is reversed, never edited."""


@event.listens_for(Session, "before_flush")
def _append_only(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, APPEND_ONLY):
            raise LedgerIsAppendOnly(f"{type(obj).__name__} rows are never deleted")
    for obj in session.dirty:
        if isinstance(obj, APPEND_ONLY) and session.is_modified(obj, include_collections=False):
            raise LedgerIsAppendOnly(f"{type(obj).__name__} rows are never edited")
