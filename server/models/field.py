"""Field work (F2) and the offline sync bookkeeping (F4, F5): visits, devices, mutation receipts,
per-field write stamps and conflicts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import AuditedBase
from server.models.feed import ChangeFeed


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class VisitSubject(enum.StrEnum):
    ENTERPRISE = "enterprise"  # 企业
    HOUSEHOLD = "household"  # 住户


class VisitPurpose(enum.StrEnum):
    FIRST = "first"  # 首次走访
    RETURN = "return"  # 回访


class Visit(ChangeFeed, AuditedBase):
    """One door knocked (走访): the "1" of 1+N+1. Its N appeals point back here (Appeal.visit_id)."""

    __tablename__ = "visit"

    worker_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    place_id: Mapped[UUID | None] = mapped_column(ForeignKey("place.id", ondelete="SET NULL"), index=True)
    subject_kind: Mapped[VisitSubject] = mapped_column(_enum(VisitSubject))
    # The enterprise's or household's name as the worker wrote it (personal data for households).
    subject_name: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[VisitPurpose] = mapped_column(_enum(VisitPurpose))
    notes: Mapped[str | None] = mapped_column(Text)
    # The enterprise of the registry visited (its pushes are PolicyPush rows pointing here).
    enterprise_id: Mapped[UUID | None] = mapped_column(ForeignKey("enterprise.id", ondelete="SET NULL"), index=True, default=None)
    # Policies explained as free text (phones older than the policy library, or policies not in it).
    policies: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    visited_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SyncDevice(AuditedBase):
    """A browser profile (or other client) that pushes mutations; bound to one user (or one credential).
    `id` is the device id."""

    __tablename__ = "sync_device"

    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    # Or the credential it is bound to instead of an account ("checkin_token:<elder id>": an elder's phone).
    credential: Mapped[str | None] = mapped_column(String(80), index=True)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    mutation_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)


class SyncMutation(AuditedBase):
    """The receipt of a committed mutation (`id` is the mutation id): seeing it again is a duplicate."""

    __tablename__ = "sync_mutation"

    device_id: Mapped[UUID] = mapped_column(ForeignKey("sync_device.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    seq: Mapped[int] = mapped_column(Integer)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[UUID] = mapped_column(index=True)
    op: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | conflict
    hlc: Mapped[str] = mapped_column(String(96))
    version: Mapped[int | None] = mapped_column(Integer)
    conflict_id: Mapped[UUID | None] = mapped_column()


class SyncFieldStamp(AuditedBase):
    """The last write of one plain field of one record: its clock stamp, the record version it made, who."""

    __tablename__ = "sync_field_stamp"
    __table_args__ = (UniqueConstraint("entity", "entity_id", "field"),)

    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[UUID] = mapped_column(index=True)
    field: Mapped[str] = mapped_column(String(64))
    hlc: Mapped[str] = mapped_column(String(96))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class ConflictKind(enum.StrEnum):
    FIELD = "field"  # a stale edit of a plain field (last writer by clock wins)
    TRANSITION = "transition"  # a workflow step no longer legal when it arrived


class ConflictResolution(enum.StrEnum):
    KEEP_CURRENT = "keep_current"
    TAKE_DEVICE = "take_device"
    REAPPLIED = "reapplied"
    DISMISSED = "dismissed"


class SyncConflict(ChangeFeed, AuditedBase):
    """A write that could not be applied as sent: kept, shown to both workers and to staff, resolvable."""

    __tablename__ = "sync_conflict"

    mutation_id: Mapped[UUID] = mapped_column(index=True)
    device_id: Mapped[UUID | None] = mapped_column(ForeignKey("sync_device.id", ondelete="SET NULL"))
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    # The other side: who wrote the value (or made the change) the mutation collided with.
    other_user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[UUID] = mapped_column(index=True)
    op: Mapped[str] = mapped_column(String(32))
    kind: Mapped[ConflictKind] = mapped_column(_enum(ConflictKind))
    # field: {"fields": {name: {"device": v, "server": v, "applied": bool}}};
    # transition: {"fields": <the mutation's fields>, "status": <server status when it arrived>}.
    detail: Mapped[dict[str, Any]] = mapped_column(JsonB)
    fields: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)
    resolved_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    resolution: Mapped[ConflictResolution | None] = mapped_column(_enum(ConflictResolution))
    resolution_note: Mapped[str | None] = mapped_column(Text)
