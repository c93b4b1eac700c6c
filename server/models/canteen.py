"""Community canteen ledger (L5, 社区食堂收支). docs/boards.md, "canteen".

The ledger is append-only: an entry is never updated or deleted; a wrong one is cancelled by a reversing
entry (the same amount negated, with a reason). A month's figures are the sums of its entries. A closed
month (`CanteenMonth.closed_at` set) takes no entry and no reversal any more; its totals are kept as closed.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Date, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase

__all__ = ["CanteenCategory", "CanteenDirection", "CanteenEntry", "CanteenMealDay", "CanteenMonth"]


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class CanteenDirection(enum.StrEnum):
    INCOME = "income"  # 收入
    EXPENSE = "expense"  # 支出


class CanteenCategory(enum.StrEnum):
    MEAL_SALES = "meal_sales"  # 餐费收入
    MEAL_SUBSIDY = "meal_subsidy"  # 政府助餐补贴
    DONATION = "donation"  # 社会捐赠
    OTHER_INCOME = "other_income"  # 其他收入
    INGREDIENTS = "ingredients"  # 食材采购
    WAGES = "wages"  # 人员工资
    UTILITIES = "utilities"  # 水电燃气
    RENT = "rent"  # 房租
    EQUIPMENT = "equipment"  # 设备
    OTHER_EXPENSE = "other_expense"  # 其他支出


class CanteenEntry(AuditedBase):
    """One line of the ledger. `amount_fen` is positive for a recorded income or expense and negative for
    the reversal of one (same category and day as the entry it reverses)."""

    __tablename__ = "canteen_entry"

    day: Mapped[date] = mapped_column(Date, index=True)  # the subdistrict's date the money moved
    direction: Mapped[CanteenDirection] = mapped_column(_enum(CanteenDirection), index=True)
    category: Mapped[CanteenCategory] = mapped_column(_enum(CanteenCategory), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    receipt_sha: Mapped[str | None] = mapped_column(String(64), default=None)  # a stored photo; never public
    # A reversal names the entry it cancels (at most one reversal each) and why.
    reverses_id: Mapped[UUID | None] = mapped_column(ForeignKey("canteen_entry.id", ondelete="RESTRICT"), unique=True, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    recorded_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class CanteenMealDay(AuditedBase):
    """Meals served on one day (one row a day; recorded again while the month is open, it is replaced)."""

    __tablename__ = "canteen_meal_day"

    day: Mapped[date] = mapped_column(Date, unique=True)
    meals: Mapped[int] = mapped_column(Integer)
    recorded_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)


class CanteenMonth(AuditedBase):
    """A month of the ledger (`month` = its first day). Every write to a month locks this row first, so
    a close and an entry never cross; once closed, the figures are final and kept here as closed."""

    __tablename__ = "canteen_month"

    month: Mapped[date] = mapped_column(Date, unique=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    closed_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)
    income_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)  # the totals at the close
    expense_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    meals: Mapped[int | None] = mapped_column(Integer, default=None)
