"""Pull: the reference data in a grid worker's scope that changed since a cursor, in pages (docs/sync.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import Appeal, Place, SyncConflict, Visit
from server.models.feed import low_watermark
from server.services import visits
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import ACTIVE, STATUS_LABELS
from sync import cursor as cursors
from sync.engine import Worker

DEFAULT_LIMIT = 200
MAX_LIMIT = 500
RECENT = timedelta(days=30)
ENTITIES = ("place", "appeal", "visit", "conflict")


@dataclass
class Page:
    reset: bool
    records: list[dict[str, Any]]
    cursor: str
    more: bool


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _place(place: Place) -> dict[str, Any]:
    return {"name": place.name, "code": place.code, "kind": place.kind.value, "parent_id": str(place.parent_id) if place.parent_id else None, "address": place.address}


def _appeal(appeal: Appeal) -> dict[str, Any]:
    category = BY_CODE.get(appeal.category)
    return {
        "reference": appeal.reference,
        "status": appeal.status.value,
        "status_label": gettext(STATUS_LABELS[appeal.status]),
        "category": appeal.category,
        "category_label": gettext(category.label) if category else appeal.category,
        "submitter_kind": appeal.submitter_kind.value,
        "description": appeal.description,
        "place_id": str(appeal.place_id) if appeal.place_id else None,
        "location_detail": appeal.location_detail,
        "submitter_name": appeal.submitter_name,
        "submitter_phone": appeal.submitter_phone,
        "received_at": _iso(appeal.received_at),
        "response_due_at": _iso(appeal.response_due_at),
        "resolve_due_at": _iso(appeal.resolve_due_at),
        "first_response_at": _iso(appeal.first_response_at),
        "resolved_at": _iso(appeal.resolved_at),
        "resolution_note": appeal.resolution_note,
        "evaluation": appeal.evaluation.value if appeal.evaluation else None,
        "is_complex": appeal.is_complex,
        "visit_id": str(appeal.visit_id) if appeal.visit_id else None,
        "assignee_id": str(appeal.assignee_id) if appeal.assignee_id else None,
        "created_by_id": str(appeal.created_by_id) if appeal.created_by_id else None,
    }


def _visit(visit: Visit) -> dict[str, Any]:
    return {
        "subject_kind": visit.subject_kind.value,
        "subject_name": visit.subject_name,
        "purpose": visit.purpose.value,
        "place_id": str(visit.place_id) if visit.place_id else None,
        "notes": visit.notes,
        "policies": visit.policies,
        "visited_at": _iso(visit.visited_at),
    }


def _conflict(conflict: SyncConflict, worker_id: UUID, references: dict[UUID, str]) -> dict[str, Any]:
    detail = conflict.detail or {}
    reason = detail.get("reason")
    return {
        "kind": conflict.kind.value,
        "entity": conflict.entity,
        "entity_id": str(conflict.entity_id),
        "reference": references.get(conflict.entity_id),
        "op": conflict.op,
        "mutation_id": str(conflict.mutation_id),
        "fields": conflict.fields,
        "detail": detail,
        "applied": conflict.applied,
        "mine": conflict.user_id == worker_id,
        "message": (gettext(reason) % (detail.get("params") or {})) if reason else None,
        "recorded_at": _iso(conflict.recorded_at),
        "resolved_at": _iso(conflict.resolved_at),
        "resolution": conflict.resolution.value if conflict.resolution else None,
        "resolution_note": conflict.resolution_note,
    }


def _after(model: Any, low: int, mark: tuple[int, UUID] | None) -> Any:
    if mark is None:
        return model.change_seq >= low
    seq, ident = mark
    return or_(model.change_seq > seq, and_(model.change_seq == seq, model.id > ident))


async def pull(
    session: AsyncSession, worker: Worker, *, cursor: str | None, secret: str, now: datetime, limit: int = DEFAULT_LIMIT
) -> Page:
    """One page of changes since `cursor` (None: a full snapshot). Raises cursors.CursorError for a bad cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        state = cursors.decode(cursor, secret, user_id=worker.id, grid_id=worker.grid_id, now=now)
    else:
        state = cursors.Cursor(user_id=worker.id, grid_id=worker.grid_id, issued_at=now)
    # Read before the records: every transaction below it has ended, so its writes are in what we
    # read next (or were delivered before); anything at or above it is delivered (again) next time.
    watermark = state.watermark
    if watermark is None:
        watermark = await session.run_sync(lambda sync_session: low_watermark(sync_session.connection()))
    grid = await visits.grid_place_ids(session, worker.grid_id)
    recent = now - RECENT
    scopes: dict[str, tuple[Any, Any]] = {
        "place": (Place, Place.id.in_(grid) if grid else False),
        "appeal": (
            Appeal,
            and_(
                or_(Appeal.place_id.in_(grid) if grid else False, Appeal.assignee_id == worker.id, Appeal.created_by_id == worker.id),
                or_(Appeal.status.in_(ACTIVE), Appeal.updated_at >= recent),
            ),
        ),
        "visit": (Visit, and_(Visit.worker_id == worker.id, Visit.visited_at >= recent)),
        "conflict": (
            SyncConflict,
            and_(
                or_(SyncConflict.user_id == worker.id, SyncConflict.other_user_id == worker.id),
                or_(SyncConflict.resolved_at.is_(None), SyncConflict.updated_at >= recent),
            ),
        ),
    }
    records: list[dict[str, Any]] = []
    more = False
    marks = dict(state.marks)
    for entity in ENTITIES:
        model, where = scopes[entity]
        rows = list(
            await session.scalars(
                select(model).where(where, _after(model, state.low, marks.get(entity))).order_by(model.change_seq, model.id).limit(limit + 1)
            )
        )
        if len(rows) > limit:
            more = True
            rows = rows[:limit]
        if rows:
            marks[entity] = (rows[-1].change_seq, rows[-1].id)
        references: dict[UUID, str] = {}
        if entity == "conflict" and rows:
            ids = {r.entity_id for r in rows}
            references = dict((await session.execute(select(Appeal.id, Appeal.reference).where(Appeal.id.in_(ids)))).all())
        for row in rows:
            data = {
                "place": _place, "appeal": _appeal, "visit": _visit,
            }[entity](row) if entity != "conflict" else _conflict(row, worker.id, references)
            records.append({"entity": entity, "id": str(row.id), "version": getattr(row, "version", 1), "deleted": False, "data": data, "updated_at": _iso(row.updated_at)})
    if more:
        next_cursor = cursors.Cursor(
            user_id=worker.id, grid_id=worker.grid_id, issued_at=state.issued_at, low=state.low, watermark=watermark, marks=marks
        )
    else:
        next_cursor = cursors.Cursor(user_id=worker.id, grid_id=worker.grid_id, issued_at=now, low=watermark)
    return Page(reset=cursor is None, records=records, cursor=cursors.encode(next_cursor, secret), more=more)
