"""晨曦信号 (morning_signal, L3): elders living alone check in every morning; when no signal comes, an
alert goes along their helpers' chain until someone answers. docs/morning-signal.md.

Elders' names, addresses and phones are personal data: their own chain and staff only.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Date, Enum, ForeignKey, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase
from server.models.feed import ChangeFeed


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Elder(ChangeFeed, AuditedBase):
    """An enrolled elder: the daily window, the grace and escalation timings, the personal check-in link."""

    __tablename__ = "elder"

    name: Mapped[str] = mapped_column(String(60))
    address: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32))
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    window_start: Mapped[time] = mapped_column(Time)  # local time (Asia/Shanghai), default 06:00
    window_end: Mapped[time] = mapped_column(Time)  # default 09:30
    grace_minutes: Mapped[int] = mapped_column(Integer, default=30)  # after the window, before the alert
    reminder_minutes: Mapped[int] = mapped_column(Integer, default=30)  # before the window ends, to the first helper
    step_minutes: Mapped[int] = mapped_column(Integer, default=20)  # unacknowledged this long: the next in the chain
    # The personal link /checkin/<token>: unguessable, revocable (a new one replaces it).
    token: Mapped[str] = mapped_column(String(64), unique=True)
    token_issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    enrolled_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)
    end_reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)


class HelperKind(enum.StrEnum):
    BUILDING_HEAD = "building_head"  # 楼栋长
    VOLUNTEER = "volunteer"  # 志愿者 (励新党员服务队, 幸福合伙人 …)
    FAMILY = "family"  # 家属
    GRID_WORKER = "grid_worker"  # 网格员


class ElderHelper(AuditedBase):
    """One link of an elder's escalation chain, in order. A helper with an account is reached in the app
    (and the outbound channels); a family contact without one by text message to their phone."""

    __tablename__ = "elder_helper"
    __table_args__ = (UniqueConstraint("elder_id", "position"),)

    elder_id: Mapped[UUID] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0 = first
    kind: Mapped[HelperKind] = mapped_column(_enum(HelperKind))
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(60))  # 励新党员服务队, 幸福合伙人 …


class ElderPause(AuditedBase):
    """No check-in expected from `start_on` to `end_on`, both included (with family, in hospital …)."""

    __tablename__ = "elder_pause"

    elder_id: Mapped[UUID] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200), default="")


class CheckInMethod(enum.StrEnum):
    SELF = "self"  # the elder pressed the button
    IN_PERSON = "in_person"  # 见面
    PHONE = "phone"  # 电话
    OTHER = "other"  # 其他


class CheckIn(ChangeFeed, AuditedBase):
    """A morning signal: the elder's press, or a helper's on their behalf; `at` is when it was given (a press
    queued on a phone with no network keeps the time it was pressed)."""

    __tablename__ = "elder_checkin"

    elder_id: Mapped[UUID] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)  # the local day it counts for
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    method: Mapped[CheckInMethod] = mapped_column(_enum(CheckInMethod))
    by_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)


class AlertStatus(enum.StrEnum):
    OPEN = "open"  # sent along the chain, nobody has answered
    ACKNOWLEDGED = "acknowledged"  # a helper is on it (visiting or calling)
    RESOLVED = "resolved"


class AlertOutcome(enum.StrEnum):
    SAFE = "safe"  # 平安
    HOSPITAL = "hospital"  # 已送医
    VISITED = "visited"  # 联系不上已上门
    FALSE_ALARM = "false_alarm"  # 误报 (with a reason)
    LATE_SIGNAL = "late_signal"  # 老人已报平安（晚于时段）: closed by the elder's own late check-in


class ElderAlert(ChangeFeed, AuditedBase):
    """No signal by the end of the window and its grace: one alert per elder and day, which climbs the
    chain one step every `step_minutes` until a helper acknowledges it (then staff)."""

    __tablename__ = "elder_alert"
    __table_args__ = (UniqueConstraint("elder_id", "day"),)

    elder_id: Mapped[UUID] = mapped_column(ForeignKey("elder.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    opened_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    step: Mapped[int] = mapped_column(Integer, default=0)  # the chain position alerted last (len(chain) = staff)
    step_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus), default=AlertStatus.OPEN, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    acknowledged_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    resolved_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    outcome: Mapped[AlertOutcome | None] = mapped_column(_enum(AlertOutcome))
    note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ElderAlertEvent(AuditedBase):
    """A step of an alert's timeline: opened, sent to whom, escalated, acknowledged, resolved."""

    __tablename__ = "elder_alert_event"

    alert_id: Mapped[UUID] = mapped_column(ForeignKey("elder_alert.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))  # opened | sent | escalated | acknowledged | resolved
    step: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
