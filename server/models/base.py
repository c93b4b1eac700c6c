"""Shared model bases: UUIDv7 keys, audit timestamps, and who created / last changed a row."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

# Set by the auth middleware for a request, and by the CLI for a command; read at flush time.
current_actor: ContextVar[UUID | None] = ContextVar("current_actor", default=None)


class ActorColumns:
    """Who created and who last updated a row (X3 audit). Plain UUIDs: a user row may be removed."""

    created_by_id: Mapped[UUID | None] = mapped_column(default=None, nullable=True)
    updated_by_id: Mapped[UUID | None] = mapped_column(default=None, nullable=True)


class AuditedBase(UUIDv7AuditBase, ActorColumns):
    """Base of every Shanzhi table: UUIDv7 id, created_at / updated_at (UTC), created_by / updated_by."""

    __abstract__ = True


@event.listens_for(Session, "before_flush")
def _stamp_actor(session: Session, _flush_context: Any, _instances: Any) -> None:
    actor = current_actor.get()
    if actor is None:
        return
    for obj in session.new:
        if isinstance(obj, ActorColumns):
            if obj.created_by_id is None:
                obj.created_by_id = actor
            obj.updated_by_id = actor
    for obj in session.dirty:
        if isinstance(obj, ActorColumns) and session.is_modified(obj, include_collections=False):
            obj.updated_by_id = actor
