"""Pull: the records in a sender's scope that changed since a cursor, in pages (docs/sync.md). Which
records, and what each holds, is the registered pull sources' (sync/ops.py); here: the change-feed
window, paging, and cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from server.models.feed import low_watermark
from sync import cursor as cursors
from sync import ops
from sync.ops import Context

DEFAULT_LIMIT = 200
MAX_LIMIT = 500


@dataclass
class Page:
    reset: bool
    records: list[dict[str, Any]]
    cursor: str
    more: bool


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _after(model: Any, low: int, mark: tuple[int, UUID] | None) -> Any:
    if mark is None:
        return model.change_seq >= low
    seq, ident = mark
    return or_(model.change_seq > seq, and_(model.change_seq == seq, model.id > ident))


async def pull(
    session: AsyncSession, ctx: Context, *, cursor: str | None, secret: str, now: datetime, limit: int = DEFAULT_LIMIT
) -> Page:
    """One page of changes since `cursor` (None: a full snapshot). Raises cursors.CursorError for a bad cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    sender = ctx.sender
    if cursor:
        state = cursors.decode(cursor, secret, user_id=sender.id, grid_id=sender.area_id, now=now)
    else:
        state = cursors.Cursor(user_id=sender.id, grid_id=sender.area_id, issued_at=now)
    # Read before the records: every transaction below it has ended, so its writes are in what we
    # read next (or were delivered before); anything at or above it is delivered (again) next time.
    watermark = state.watermark
    if watermark is None:
        watermark = await session.run_sync(lambda sync_session: low_watermark(sync_session.connection()))
    records: list[dict[str, Any]] = []
    more = False
    marks = dict(state.marks)
    for entity, source in ops.PULL_SOURCES.items():
        if sender.role not in source.senders:
            continue
        model = source.model
        query = source.query(ctx, now).where(_after(model, state.low, marks.get(entity))).order_by(model.change_seq, model.id).limit(limit + 1)
        rows = list(await session.scalars(query))
        if len(rows) > limit:
            more = True
            rows = rows[:limit]
        if rows:
            marks[entity] = (rows[-1].change_seq, rows[-1].id)
        extra = await source.prepare(session, rows, ctx) if source.prepare and rows else {}
        for row in rows:
            records.append({
                "entity": entity, "id": str(row.id), "version": source.version(row), "deleted": False,
                "data": source.data(row, ctx, extra), "updated_at": iso(row.updated_at),
            })
    if more:
        next_cursor = cursors.Cursor(
            user_id=sender.id, grid_id=sender.area_id, issued_at=state.issued_at, low=state.low, watermark=watermark, marks=marks
        )
    else:
        next_cursor = cursors.Cursor(user_id=sender.id, grid_id=sender.area_id, issued_at=now, low=watermark)
    return Page(reset=cursor is None, records=records, cursor=cursors.encode(next_cursor, secret), more=more)
