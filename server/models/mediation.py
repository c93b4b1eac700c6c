"""Mediation cases (L6, 行走的矛盾调解室). docs/boards.md, "canteen".

Parties are personal data: only staff, admins and the case's mediator see them. The public sees counts
by type and outcome, never a case.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import Date, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase

__all__ = ["MediationCase", "MediationKind", "MediationOutcome", "MediationSession", "MediationStatus"]


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class MediationKind(enum.StrEnum):
    NEIGHBOURS = "neighbours"  # 邻里纠纷
    PROPERTY = "property"  # 物业纠纷
    FAMILY = "family"  # 家庭矛盾
    NOISE = "noise"  # 噪音扰民
    LEAK = "leak"  # 漏水
    PARKING = "parking"  # 停车
    OTHER = "other"  # 其他


class MediationStatus(enum.StrEnum):
    OPEN = "open"  # 已受理: no session yet
    IN_PROGRESS = "in_progress"  # 调解中
    CLOSED = "closed"  # 已结案: an outcome is recorded


class MediationOutcome(enum.StrEnum):
    SUCCESS = "success"  # 调解成功
    PARTIAL = "partial"  # 部分达成
    FAILED = "failed"  # 未达成
    REFERRED = "referred"  # 转办


class MediationCase(AuditedBase):
    __tablename__ = "mediation_case"

    reference: Mapped[str] = mapped_column(String(16), unique=True)  # e.g. TJ2026-007
    kind: Mapped[MediationKind] = mapped_column(_enum(MediationKind), index=True)
    opened_on: Mapped[date] = mapped_column(Date, index=True)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True, default=None)
    summary: Mapped[str] = mapped_column(Text, default="")  # private, like the parties
    parties: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # [{"name": ..., "phone": ...}], private
    mediator_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True, default=None)
    status: Mapped[MediationStatus] = mapped_column(_enum(MediationStatus), default=MediationStatus.OPEN, index=True)
    outcome: Mapped[MediationOutcome | None] = mapped_column(_enum(MediationOutcome), index=True, default=None)
    outcome_note: Mapped[str] = mapped_column(Text, default="")
    closed_on: Mapped[date | None] = mapped_column(Date, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)


class MediationSession(AuditedBase):
    """One sitting of a mediation: when, where, what was said and agreed (private notes)."""

    __tablename__ = "mediation_session"

    case_id: Mapped[UUID] = mapped_column(ForeignKey("mediation_case.id", ondelete="CASCADE"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    venue: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    mediator_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)
