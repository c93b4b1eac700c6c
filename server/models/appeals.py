"""Appeals (诉求): the case, its timeline, photos, whistle summons, return visits, and departments."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import AuditedBase
from server.models.feed import ChangeFeed


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class AppealStatus(enum.StrEnum):
    RECEIVED = "received"  # 已受理
    TRANSFERRED = "transferred"  # 已转办
    IN_PROGRESS = "in_progress"  # 办理中
    RESOLVED = "resolved"  # 已办结
    EVALUATED = "evaluated"  # 已评价
    CLOSED = "closed"  # 已闭环
    REJECTED = "rejected"  # 不予受理
    MERGED = "merged"  # 已合并（重复）


class AppealChannel(enum.StrEnum):
    SUGGESTION_BOX = "suggestion_box"  # 线上意见箱
    QR = "qr"  # 扫码（楼宇/园区/小区）
    HOTLINE = "hotline"  # 12345 热线转办
    EVENT = "event"  # 活动现场
    VISIT = "visit"  # 网格员走访
    OPEN311 = "open311"  # 外部系统


class SubmitterKind(enum.StrEnum):
    ENTERPRISE = "enterprise"
    RESIDENT = "resident"


class Evaluation(enum.StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class VisitMethod(enum.StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"


class Department(AuditedBase):
    """A district department (区直部门) that takes transferred cases and answers whistles."""

    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Appeal(ChangeFeed, AuditedBase):
    __tablename__ = "appeal"

    # Human reference for phone calls and paper ledgers, e.g. 2026-00042.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    # Unguessable (>= 80 bits) code for the submitter's tracking link.
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True)
    # 查询码: six digits a person can read over the phone; with the reference it opens the tracking
    # page at /track (lookups are rate-limited per client and per reference: docs/appeals.md).
    query_code: Mapped[str | None] = mapped_column(String(8))
    channel: Mapped[AppealChannel] = mapped_column(_enum(AppealChannel), index=True)
    submitter_kind: Mapped[SubmitterKind] = mapped_column(_enum(SubmitterKind))
    category: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str] = mapped_column(Text)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    # Personal data: shown only to staff-side roles, never on public pages.
    submitter_name: Mapped[str | None] = mapped_column(String(64))
    submitter_phone: Mapped[str | None] = mapped_column(String(32))
    location_detail: Mapped[str | None] = mapped_column(String(255))

    status: Mapped[AppealStatus] = mapped_column(_enum(AppealStatus), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    response_due_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    resolve_due_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    is_complex: Mapped[bool] = mapped_column(Boolean, default=False)
    complex_reason: Mapped[str | None] = mapped_column(Text)

    department_id: Mapped[UUID | None] = mapped_column(ForeignKey("department.id", ondelete="SET NULL"), index=True)
    assignee_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    merged_into_id: Mapped[UUID | None] = mapped_column(ForeignKey("appeal.id", ondelete="SET NULL"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    rejection_reason: Mapped[str | None] = mapped_column(Text)

    # The evaluation that counts: the resident's own when they gave one, else the one recorded at a
    # return visit (what the resident said to the visitor). Both are kept for the metrics.
    evaluation: Mapped[Evaluation | None] = mapped_column(_enum(Evaluation))
    evaluation_comment: Mapped[str | None] = mapped_column(Text)
    resident_evaluation: Mapped[Evaluation | None] = mapped_column(_enum(Evaluation))
    visit_evaluation: Mapped[Evaluation | None] = mapped_column(_enum(Evaluation))
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped on every change; the offline sync uses it as the base version of an edit.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The visit (走访) on which a grid worker collected this case: the "N" of 1+N+1.
    visit_id: Mapped[UUID | None] = mapped_column(ForeignKey("visit.id", ondelete="SET NULL"), index=True, default=None)
    # The event (政策直通车, 民生面对面 ...) where it was raised, for channel = event.
    event_id: Mapped[UUID | None] = mapped_column(ForeignKey("community_event.id", ondelete="SET NULL"), index=True, default=None)

    department: Mapped[Department | None] = relationship(lazy="raise")


class AppealEvent(AuditedBase):
    """One step of a case's timeline (invariant: every state change leaves a trace)."""

    __tablename__ = "appeal_event"

    appeal_id: Mapped[UUID] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[AppealStatus | None] = mapped_column(_enum(AppealStatus))
    to_status: Mapped[AppealStatus | None] = mapped_column(_enum(AppealStatus))
    actor_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # Who acted, as shown on the timeline: a role label for staff, "提交人" for the submitter.
    actor_label: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    # Shown on the submitter's tracking page (never includes personal data).
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    # The note too (a public reply to the submitter); internal unless the author chose otherwise.
    note_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    # Set for events a job may try to record twice (e.g. "overdue:response:<id>"): the unique
    # constraint makes the second attempt, even from another worker, a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class AppealPhoto(AuditedBase):
    """A photo attached to an appeal or one of its events; the file is content-addressed under var/."""

    __tablename__ = "appeal_photo"

    appeal_id: Mapped[UUID] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[UUID | None] = mapped_column(ForeignKey("appeal_event.id", ondelete="SET NULL"))
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)


class Summons(AuditedBase):
    """A department summoned by a whistle (街道吹哨) and its report-in (部门报到)."""

    __tablename__ = "appeal_summons"
    __table_args__ = (UniqueConstraint("appeal_id", "department_id", "whistle_event_id"),)

    appeal_id: Mapped[UUID] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[UUID] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"), index=True)
    whistle_event_id: Mapped[UUID] = mapped_column(ForeignKey("appeal_event.id", ondelete="CASCADE"))
    report_by: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    reported_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    reported_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    report_note: Mapped[str | None] = mapped_column(Text)

    department: Mapped[Department] = relationship(lazy="raise")


class ReturnVisit(AuditedBase):
    """The return visit (回访) that confirms a resolved case: who, when, how."""

    __tablename__ = "appeal_return_visit"

    appeal_id: Mapped[UUID] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    visitor_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    visited_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    method: Mapped[VisitMethod] = mapped_column(_enum(VisitMethod))
    note: Mapped[str | None] = mapped_column(Text)
    # The field visit this return visit was made on, when a grid worker recorded it there.
    visit_id: Mapped[UUID | None] = mapped_column(ForeignKey("visit.id", ondelete="SET NULL"), default=None)


class Notification(AuditedBase):
    """An in-app notice (X6). dedupe_key makes repeated jobs notify once."""

    __tablename__ = "notification"

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    appeal_id: Mapped[UUID | None] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(String(255))  # an untranslated msgid
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class OutboundStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt; an admin may send it again


class OutboundMessage(AuditedBase):
    """A notification for an outbound channel (webhook, SMS, WeChat), stored in the transaction that
    caused it and delivered by the worker, at least once, with retries (`id` is its idempotency key)."""

    __tablename__ = "outbound_message"

    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(255))  # an untranslated msgid, as in Notification
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    appeal_id: Mapped[UUID | None] = mapped_column(ForeignKey("appeal.id", ondelete="SET NULL"))
    status: Mapped[OutboundStatus] = mapped_column(_enum(OutboundStatus), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time of the next attempt; while an attempt is under way, the end of its lease.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    last_error: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class ApiKey(AuditedBase):
    """An Open311 API key; only its hash is stored."""

    __tablename__ = "api_key"

    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(12), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
