"""Livelihood projects (L1) and property disclosure (L2). docs/boards.md, "Livelihood projects".

A project (民生项目) belongs to one compound (a Place); its progress comes from its milestones when it has
them; staff post updates (with photos, optionally moving the status); residents comment without an account
(public once staff approve); at the end the compound's resident representatives and building heads sign
it off (居民代表+楼栋长), and it is 已验收 only when every required signature is in. Property disclosure
(物业公示) is per compound: texts, the fee schedule and monthly figures.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Date, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase

__all__ = [
    "CommentStatus",
    "Project",
    "ProjectComment",
    "ProjectKind",
    "ProjectMilestone",
    "ProjectSignoff",
    "ProjectStatus",
    "ProjectUpdate",
    "PropertyDisclosure",
    "PropertyMonth",
]


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class ProjectKind(enum.StrEnum):
    OLD_COMPOUND_RENOVATION = "old_compound_renovation"  # 老旧小区改造
    ELEVATOR_RENEWAL = "elevator_renewal"  # 电梯更新
    ELEVATOR_RETROFIT = "elevator_retrofit"  # 加装电梯
    PROPERTY_TRIAL = "property_trial"  # 物业"试用期"承诺
    PARKING = "parking"  # 停车位规划
    FACILITY_REPAIR = "facility_repair"  # 公共设施维修
    OTHER = "other"  # 其他


class ProjectStatus(enum.StrEnum):
    PLANNED = "planned"  # 计划中
    IN_PROGRESS = "in_progress"  # 实施中
    AWAITING_ACCEPTANCE = "awaiting_acceptance"  # 待验收
    ACCEPTED = "accepted"  # 已验收 (only by the last required signature)
    SUSPENDED = "suspended"  # 暂停


class Project(AuditedBase):
    __tablename__ = "project"

    title: Mapped[str] = mapped_column(String(120))
    kind: Mapped[ProjectKind] = mapped_column(_enum(ProjectKind), index=True)
    status: Mapped[ProjectStatus] = mapped_column(_enum(ProjectStatus), default=ProjectStatus.PLANNED, index=True)
    place_id: Mapped[UUID] = mapped_column(ForeignKey("place.id", ondelete="RESTRICT"), index=True)  # the compound
    description: Mapped[str] = mapped_column(Text, default="")
    supervision: Mapped[str] = mapped_column(Text, default="")  # 监督方式
    # [{"name": ..., "role": ..., "phone": ...}]: name and role are public, the phone is not.
    responsible: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    planned_start: Mapped[date | None] = mapped_column(Date)
    planned_end: Mapped[date | None] = mapped_column(Date)
    manual_progress: Mapped[int] = mapped_column(Integer, default=0)  # 0-100, used while there are no milestones
    acceptance_round: Mapped[int] = mapped_column(Integer, default=0)  # 1, 2, …: each request for acceptance
    acceptance_requested_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)
    last_activity_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)  # created, updated, signed
    version: Mapped[int] = mapped_column(Integer, default=1)


class ProjectMilestone(AuditedBase):
    __tablename__ = "project_milestone"

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(120))
    due_on: Mapped[date | None] = mapped_column(Date)
    done_on: Mapped[date | None] = mapped_column(Date)  # done when set


class ProjectUpdate(AuditedBase):
    """A progress report on the project's page; a status change is always one (the trace of the workflow)."""

    __tablename__ = "project_update"

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    posted_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ProjectStatus | None] = mapped_column(_enum(ProjectStatus))  # the status it moved to, if any
    photos: Mapped[list[Any]] = mapped_column(JsonB, default=list)  # sha256 of stored photos (public)
    author_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class CommentStatus(enum.StrEnum):
    PENDING = "pending"  # 待审核: not public
    APPROVED = "approved"  # 已公开
    REJECTED = "rejected"  # 未通过


class ProjectComment(AuditedBase):
    """A resident's comment, posted without an account; public only once staff approve it."""

    __tablename__ = "project_comment"

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    posted_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    author_name: Mapped[str | None] = mapped_column(String(30))  # optional, a pseudonym is fine
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[CommentStatus] = mapped_column(_enum(CommentStatus), default=CommentStatus.PENDING, index=True)
    moderated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    moderated_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class ProjectSignoff(AuditedBase):
    """One required signature of an acceptance round: the signers are snapshotted when acceptance is
    requested (the compound's resident representatives and building heads); `signed_at` when they sign."""

    __tablename__ = "project_signoff"
    __table_args__ = (UniqueConstraint("project_id", "round", "user_id"),)

    project_id: Mapped[UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    signer_name: Mapped[str] = mapped_column(String(60))  # as it was when asked
    signer_role: Mapped[str] = mapped_column(String(32))  # resident_rep / building_head
    signed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class PropertyDisclosure(AuditedBase):
    """物业公示 of one compound: the reform plan, the service standards and the fee schedule."""

    __tablename__ = "property_disclosure"

    place_id: Mapped[UUID] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), unique=True)
    reform_plan: Mapped[str] = mapped_column(Text, default="")
    service_standards: Mapped[str] = mapped_column(Text, default="")
    # [{"item": ..., "unit_price_fen": int, "unit": ...}], in the order published
    fees: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)


class PropertyMonth(AuditedBase):
    """One month's figures of a compound: fee collection rate (basis points, 0-10000 = 0-100 %) and the
    12345 hotline complaints. One row per month; an edit replaces that month's figures."""

    __tablename__ = "property_month"
    __table_args__ = (UniqueConstraint("place_id", "month"),)

    place_id: Mapped[UUID] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), index=True)
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    collection_bp: Mapped[int | None] = mapped_column(Integer)  # 4.5 % = 450
    complaints: Mapped[int | None] = mapped_column(Integer)
