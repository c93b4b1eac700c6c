"""Appeal time limits (A3) in the subdistrict's time zone: due dates, time left, due soon, overdue."""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_

from server.services.sql_time import epoch_seconds
from server.settings import Settings


class Urgency(enum.StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"  # 即将超时
    OVERDUE = "overdue"  # 已超时
    MET = "met"  # done within the limit
    MISSED = "missed"  # done, but late


@dataclass(frozen=True)
class TimeLimits:
    response: timedelta
    resolve_days: int
    complex_months: int
    due_soon_ratio: float
    tz: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> TimeLimits:
        return cls(
            response=timedelta(hours=settings.appeal_response_hours),
            resolve_days=settings.appeal_resolve_days,
            complex_months=settings.appeal_complex_resolve_months,
            due_soon_ratio=settings.appeal_due_soon_ratio,
            tz=settings.tz,
        )

    def response_due(self, received_at: datetime) -> datetime:
        return received_at + self.response

    def resolve_due(self, received_at: datetime, *, complex_case: bool) -> datetime:
        if complex_case:
            return add_months(received_at, self.complex_months, self.tz)
        # Days are calendar days in the subdistrict: 7 days after 09:00 on the 1st is 09:00 on the 8th,
        # whatever the UTC offset does in between.
        local = received_at.astimezone(self.tz)
        return (local + timedelta(days=self.resolve_days)).astimezone(received_at.tzinfo)

    def urgency(self, start: datetime, due: datetime, done_at: datetime | None, now: datetime) -> Urgency:
        if done_at is not None:
            return Urgency.MET if done_at <= due else Urgency.MISSED
        if now > due:
            return Urgency.OVERDUE
        if (due - now) < (due - start) * self.due_soon_ratio:
            return Urgency.DUE_SOON
        return Urgency.ON_TRACK


def limit_urgency_clause(
    wanted: Urgency, limits: TimeLimits, now: datetime, *, start: Any, due: Any
) -> ColumnElement[bool]:
    """`TimeLimits.urgency` as SQL for a limit still running (not done): overdue or due soon at `now`."""
    now_s = now.timestamp()
    due_s = epoch_seconds(due)
    if wanted is Urgency.OVERDUE:
        return due_s < now_s
    if wanted is Urgency.DUE_SOON:
        # not overdue, and (due - now) < (due - start) * ratio
        return and_(due_s >= now_s, (due_s - now_s) < (due_s - epoch_seconds(start)) * limits.due_soon_ratio)
    raise ValueError(f"no SQL form for {wanted}")


def add_months(moment: datetime, months: int, tz: ZoneInfo) -> datetime:
    """The same local wall time `months` later; the day is clamped to the month's end (Jan 31 -> Feb 28)."""
    local = moment.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(moment.tzinfo)


def time_left(due: datetime, now: datetime) -> timedelta:
    return due - now


# Dates people may ask about (filters, API ranges): anything outside is refused with a message, not
# carried into date arithmetic that overflows (year 1, year 9999).
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def in_date_range(day: date) -> bool:
    return EARLIEST_DATE <= day <= LATEST_DATE
