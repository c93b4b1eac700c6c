"""Field-level last-writer-wins (docs/sync.md, "Conflict rules"): each plain field of a record keeps the
clock stamp, record version and author of its last write; an edit made from an older version is
decided by clock and, when someone else wrote the field meanwhile, recorded as a conflict."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import SyncFieldStamp

Stamps = dict[tuple[UUID, str], SyncFieldStamp]


async def load(session: AsyncSession, entity: str, ids: Iterable[UUID]) -> Stamps:
    """The stamps of these records (read after the records were locked, so they are current)."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.scalars(
        select(SyncFieldStamp).where(SyncFieldStamp.entity == entity, SyncFieldStamp.entity_id.in_(wanted)).execution_options(populate_existing=True)
    )
    return {(s.entity_id, s.field): s for s in rows}


@dataclass
class Decision:
    """Which of an edit's fields win, which were stale (someone else wrote them after the device's base)."""

    winners: dict[str, Any] = field(default_factory=dict)
    stale: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"device", "server", "applied"}
    other: UUID | None = None  # who wrote the value a stale edit collided with


def decide(record: Any, changes: dict[str, Any], *, base_version: int, hlc: str, author: UUID, stamps: Stamps) -> Decision:
    """Last writer by clock wins for each field written after `base_version`; a field the device's own
    user wrote last is no conflict (a second edit before a pull)."""
    decision = Decision()
    for name, value in changes.items():
        stamp = stamps.get((record.id, name))
        wins = True
        if stamp is not None and stamp.version > base_version:
            wins = hlc > stamp.hlc
            if stamp.user_id != author:
                decision.stale[name] = {"device": value, "server": getattr(record, name), "applied": wins}
                decision.other = stamp.user_id
        if wins:
            decision.winners[name] = value
    return decision


def stamp(session: AsyncSession, entity: str, record_id: UUID, names: Iterable[str], *, hlc: str, version: int, author: UUID | None, stamps: Stamps) -> None:
    """Record the writes of these fields (new stamps, or the existing ones moved on)."""
    for name in names:
        row = stamps.get((record_id, name))
        if row is None:
            row = SyncFieldStamp(entity=entity, entity_id=record_id, field=name, hlc=hlc, version=version, user_id=author)
            session.add(row)
            stamps[(record_id, name)] = row
        else:
            row.hlc, row.version, row.user_id = hlc, version, author
