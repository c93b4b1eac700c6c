"""Reconciliation: apply a batch of device mutations exactly once, through the same services as the online
forms, recording conflicts instead of dropping writes. No web framework here; the route is a thin shell.

Set-wise: the receipts, target records and field stamps a batch needs are loaded with one query each
before the loop; each mutation then runs in its own savepoint, so one refused mutation never undoes
another. The caller commits once and only then answers (docs/sync.md, "Acknowledged means committed").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from server.i18n import N_
from server.models import (
    Appeal,
    AppealChannel,
    AppealStatus,
    ConflictKind,
    Place,
    Evaluation,
    SubmitterKind,
    SyncConflict,
    SyncDevice,
    SyncFieldStamp,
    SyncMutation,
    Visit,
    VisitMethod,
    VisitPurpose,
    VisitSubject,
    current_actor,
)
from server.services import appeals, notifications, visits
from server.services.appeal_workflow import OPEN, Action
from server.services.appeals import Actor, ActionInput, AppealInput, InvalidAppeal, ScopeError, WorkflowError
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.services.photos import MAX_PHOTOS, ProcessedPhoto, staged_photo
from sync import protocol as p
from sync.hlc import HLC, Clock, ClockDriftError

MAX_AGE = timedelta(days=30)
MAX_AHEAD = timedelta(minutes=5)
# The plain fields of an appeal a grid worker may edit in the field (field-level last-writer-wins).
APPEAL_PLAIN_FIELDS = ("description", "location_detail", "submitter_name", "submitter_phone")


@dataclass(frozen=True)
class Worker:
    """The signed-in user pushing: a grid worker and their grid."""

    id: UUID
    display_name: str
    role: Any
    grid_id: UUID | None

    def actor(self) -> Actor:
        return Actor(principal=self.role, label=self.display_name, user_id=self.id)


@dataclass
class Context:
    worker: Worker
    limits: TimeLimits
    uploads_dir: Path
    server_clock: Clock
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    user_agent: str | None = None

    @property
    def staging_dir(self) -> Path:
        return self.uploads_dir / "incoming"


@dataclass
class Outcome:
    """The answer for one mutation. Messages are msgids (ServiceError); the route translates them."""

    mutation_id: UUID
    status: str
    version: int | None = None
    original: str | None = None
    code: str | None = None
    error: ServiceError | None = None
    errors: list[ServiceError] = field(default_factory=list)
    conflict: SyncConflict | None = None


class Rejected(Exception):
    def __init__(self, code: str, error: ServiceError, errors: list[ServiceError] | None = None) -> None:
        super().__init__(error.message)
        self.code = code
        self.error = error
        self.errors = errors or []


class DeviceBoundError(Exception):
    """The device id belongs to another user."""


@dataclass
class Batch:
    """What the batch needs from the database, loaded set-wise up front."""

    ctx: Context
    receipts: dict[UUID, str]
    appeals: dict[UUID, Appeal]
    stamps: dict[tuple[UUID, str], SyncFieldStamp]
    grid_places: set[UUID]
    device: SyncDevice
    places: list[Place] = field(default_factory=list)
    created_references: list[str] = field(default_factory=list)


# -- devices -----------------------------------------------------------------------------------------


async def bind_device(session: AsyncSession, device_id: UUID, ctx: Context) -> SyncDevice:
    """The device row (locked: its counters are updated), created and bound to this user on first
    contact; another user's device is refused."""
    device = await session.get(SyncDevice, device_id, with_for_update=True)
    if device is None:
        device = SyncDevice(user_id=ctx.worker.id, user_agent=(ctx.user_agent or "")[:255] or None, first_seen_at=ctx.now())
        device.id = device_id
        try:
            async with session.begin_nested():
                session.add(device)
                await session.flush()
        except IntegrityError:
            # Two first requests raced: the other one bound it.
            device = await session.get(SyncDevice, device_id, populate_existing=True, with_for_update=True)
            if device is None:
                raise
    if device.user_id != ctx.worker.id:
        raise DeviceBoundError
    return device


# -- push --------------------------------------------------------------------------------------------


async def _load(session: AsyncSession, batch: p.PushRequest, ctx: Context, device: SyncDevice) -> Batch:
    """Everything the batch needs, one query per kind."""
    mutations = batch.mutations
    ids = [m.mutation_id for m in mutations]
    receipts = dict((await session.execute(select(SyncMutation.id, SyncMutation.outcome).where(SyncMutation.id.in_(ids)))).all()) if ids else {}
    targets = {m.entity_id for m in mutations if m.entity == "appeal" and m.op != "create"}
    # Locked (in id order) before their field stamps are read: a concurrent push or staff action on
    # the same cases waits for this one to commit, so last-writer-wins sees every earlier write.
    loaded = await appeals.lock(session, list(targets)) if targets else []
    stamp_rows = (
        await session.scalars(
            select(SyncFieldStamp).where(SyncFieldStamp.entity == "appeal", SyncFieldStamp.entity_id.in_(targets)).execution_options(populate_existing=True)
        )
        if targets
        else []
    )
    grid_places = await visits.grid_place_ids(session, ctx.worker.grid_id)
    return Batch(
        ctx=ctx,
        receipts=receipts,
        appeals={a.id: a for a in loaded},
        stamps={(s.entity_id, s.field): s for s in stamp_rows},
        grid_places=grid_places,
        device=device,
        # Held here so the services' place checks are answered from the session, not the database.
        places=list(await session.scalars(select(Place).where(Place.id.in_(grid_places)))) if grid_places else [],
    )


async def push(session: AsyncSession, batch: p.PushRequest, ctx: Context) -> list[Outcome]:
    """Apply a decoded batch in order; one outcome per mutation. The caller commits, then answers.

    Fast path: the whole batch in one savepoint, written by one flush at the end (the handlers check
    everything before they write, so a refused mutation leaves nothing behind). Only a visit, which
    writes several cases, gets a savepoint of its own. If the database still refuses the batch (a
    concurrent push of the same mutations committed first, or a reused record id), the batch is rolled
    back and applied again mutation by mutation, each in its own savepoint."""
    device = await bind_device(session, batch.device_id, ctx)
    mutations = batch.mutations
    # Rows made by the batch name the worker as their author (created_by), whoever calls the engine.
    token = current_actor.set(ctx.worker.id)
    try:
        state = await _load(session, batch, ctx, device)
        try:
            async with session.begin_nested():
                outcomes = [await _one(session, mutation, state, isolate=False) for mutation in mutations]
                await session.flush()
        except IntegrityError:
            state = await _load(session, batch, ctx, device)
            outcomes = [await _one(session, mutation, state, isolate=True) for mutation in mutations]
    finally:
        current_actor.reset(token)
    if state.created_references:
        # One notice per sync for staff, not one per case: a day of field work arrives at once.
        first = next(o.mutation_id for o in outcomes if o.status == p.APPLIED)
        await notifications.notify(
            session, await notifications.staff_ids(session), kind="field_sync",
            text=N_("%(worker)s synced new appeals from the field: %(count)d"),
            params={"worker": ctx.worker.display_name, "count": len(state.created_references), "references": state.created_references[:50]},
            dedupe=f"sync:{first}",
        )
    now = ctx.now()
    device.last_push_at = now
    device.last_seq = max([device.last_seq, *(m.seq for m in mutations)])
    device.mutation_count += sum(o.status in {p.APPLIED, p.CONFLICT} for o in outcomes)
    device.rejected_count += sum(o.status == p.REJECTED for o in outcomes)
    await session.flush()
    return outcomes


# Handlers that write several records and may refuse after the first: always in a savepoint of their own.
SELF_CONTAINED = {("visit", "create")}


async def _one(session: AsyncSession, mutation: p.Mutation, state: Batch, *, isolate: bool) -> Outcome:
    seen = state.receipts.get(mutation.mutation_id)
    if seen is not None:
        return Outcome(mutation.mutation_id, p.DUPLICATE, original=seen)
    try:
        stamp = HLC.parse(mutation.hlc)
    except ValueError:
        return _rejected(mutation, Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read."))))
    try:
        state.ctx.server_clock.observe(stamp)
    except ClockDriftError:
        return _rejected(mutation, Rejected(p.CLOCK_AHEAD, ServiceError(N_("The device clock is too far ahead. Please correct the time on the phone."))))
    try:
        at = _recorded_at(mutation, state.ctx)
        handler = HANDLERS.get((mutation.entity, mutation.op))
        if handler is None:
            raise Rejected(p.UNKNOWN_OPERATION, ServiceError(N_("This kind of change is not known to the server.")))
        if not isolate and (mutation.entity, mutation.op) not in SELF_CONTAINED:
            outcome = await _apply(session, mutation, state, at, handler, flush=False)
        else:
            try:
                async with session.begin_nested():
                    outcome = await _apply(session, mutation, state, at, handler, flush=True)
            except IntegrityError:
                if not isolate:
                    raise  # the fast path gives up: the batch is applied again one by one
                # The same mutation committed meanwhile by a concurrent push (its receipt won), or a
                # record with this id already exists.
                original = await session.scalar(select(SyncMutation.outcome).where(SyncMutation.id == mutation.mutation_id))
                if original is not None:
                    return Outcome(mutation.mutation_id, p.DUPLICATE, original=original)
                raise Rejected(p.INVALID, ServiceError(N_("A record with this id already exists."))) from None
    except Rejected as rejected:
        return _rejected(mutation, rejected)
    except ServiceError as error:
        return _rejected(mutation, Rejected(p.INVALID, error, [error]))
    state.receipts[mutation.mutation_id] = outcome.status
    return outcome


async def _apply(session: AsyncSession, mutation: p.Mutation, state: Batch, at: datetime, handler: Any, *, flush: bool) -> Outcome:
    outcome = await handler(session, mutation, state, at)
    receipt = SyncMutation(
        device_id=mutation.device_id, user_id=state.ctx.worker.id, seq=mutation.seq, entity=mutation.entity,
        entity_id=mutation.entity_id, op=mutation.op, outcome=outcome.status, hlc=mutation.hlc,
        version=outcome.version, conflict_id=outcome.conflict.id if outcome.conflict else None,
    )
    receipt.id = mutation.mutation_id
    session.add(receipt)
    if flush:
        await session.flush()
    return outcome


def _rejected(mutation: p.Mutation, rejected: Rejected) -> Outcome:
    return Outcome(mutation.mutation_id, p.REJECTED, code=rejected.code, error=rejected.error, errors=rejected.errors)


def _recorded_at(mutation: p.Mutation, ctx: Context) -> datetime:
    now = ctx.now()
    at = mutation.recorded_at
    if at is None:
        return now
    if at.tzinfo is None:
        raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))
    at = at.astimezone(UTC)
    if at < now - MAX_AGE:
        raise Rejected(p.TOO_OLD, ServiceError(N_("This change is more than 30 days old; please enter it again or ask staff.")))
    return min(at, now)


# -- handlers ----------------------------------------------------------------------------------------


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(p.INVALID, ServiceError(N_("This value is not valid."), field=name), [ServiceError(N_("This value is not valid."), field=name)])
    return value


def _choice(fields: dict[str, Any], name: str, enum: Any, *, required: bool = True) -> Any:
    value = fields.get(name)
    if value is None and not required:
        return None
    try:
        return enum(value)
    except ValueError:
        error = ServiceError(N_("Please choose one of the options."), field=name)
        raise Rejected(p.INVALID, error, [error]) from None


def _uuid(fields: dict[str, Any], name: str) -> UUID | None:
    value = fields.get(name)
    if value in (None, ""):
        return None
    try:
        return UUID(str(value))
    except ValueError:
        error = ServiceError(N_("This value is not valid."), field=name)
        raise Rejected(p.INVALID, error, [error]) from None


def _photos(fields: dict[str, Any], ctx: Context, prefix: str = "") -> list[ProcessedPhoto]:
    """The photos a mutation names, as processed when the phone uploaded them (no image work here)."""
    digests = fields.get("photos") or []
    if not isinstance(digests, list) or len(digests) > MAX_PHOTOS:
        error = ServiceError(N_("At most %(n)d photos."), field=f"{prefix}photos", n=MAX_PHOTOS)
        raise Rejected(p.INVALID, error, [error])
    photos = []
    for digest in digests:
        photo = staged_photo(ctx.staging_dir, str(digest))
        if photo is None:
            raise Rejected(p.PHOTO_MISSING, ServiceError(N_("A photo has not reached the server yet; it will be sent again."), field=f"{prefix}photos"))
        photos.append(photo)
    return photos


def photos_named(mutation: p.Mutation) -> list[str]:
    """The staged photos (hashes of what the phone sent) a mutation uses, its appeals' included."""
    found: list[str] = []
    for source in [mutation.fields, *(a for a in mutation.fields.get("appeals") or [] if isinstance(a, dict))]:
        names = source.get("photos") or []
        if isinstance(names, list):
            found += [str(n) for n in names]
    return found


def _appeal_input(fields: dict[str, Any], ctx: Context, prefix: str = "") -> AppealInput:
    return AppealInput(
        channel=AppealChannel.VISIT,
        submitter_kind=_choice(fields, "submitter_kind", SubmitterKind),
        category=_text(fields, "category") or "",
        description=_text(fields, "description") or "",
        place_id=_uuid(fields, "place_id"),
        submitter_name=_text(fields, "submitter_name"),
        submitter_phone=_text(fields, "submitter_phone"),
        location_detail=_text(fields, "location_detail"),
        photos=_photos(fields, ctx, prefix),
    )


def _invalid(error: InvalidAppeal) -> Rejected:
    return Rejected(p.INVALID, ServiceError(error.message, field=error.field, **error.params), error.problems)


async def _create_appeal(session: AsyncSession, m: p.Mutation, state: Batch, at: datetime) -> Outcome:
    data = _appeal_input(m.fields, state.ctx)
    if data.place_id is not None and data.place_id not in state.grid_places:
        error = ServiceError(N_("This place is not in your grid."), field="place_id")
        raise Rejected(p.FORBIDDEN, error, [error])
    try:
        appeal = await appeals.submit(
            session, data, actor=state.ctx.worker.actor(), limits=state.ctx.limits, uploads_dir=state.ctx.uploads_dir,
            clock=lambda: at, appeal_id=m.entity_id, notify_staff=False,
        )
    except InvalidAppeal as error:
        raise _invalid(error) from None
    state.created_references.append(appeal.reference)
    return Outcome(m.mutation_id, p.APPLIED, version=appeal.version)


async def _create_visit(session: AsyncSession, m: p.Mutation, state: Batch, at: datetime) -> Outcome:
    fields = m.fields
    raw_appeals = fields.get("appeals") or []
    if not isinstance(raw_appeals, list) or not all(isinstance(a, dict) for a in raw_appeals):
        raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))
    collected = []
    for index, raw in enumerate(raw_appeals):
        appeal_id = _uuid(raw, "id")
        if appeal_id is None:
            raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))
        collected.append((appeal_id, _appeal_input(raw, state.ctx, prefix=f"appeals.{index}.")))
    policies = fields.get("policies") or []
    if not isinstance(policies, list) or not all(isinstance(x, str) for x in policies):
        error = ServiceError(N_("This value is not valid."), field="policies")
        raise Rejected(p.INVALID, error, [error])
    data = visits.VisitInput(
        subject_kind=_choice(fields, "subject_kind", VisitSubject),
        subject_name=_text(fields, "subject_name") or "",
        purpose=_choice(fields, "purpose", VisitPurpose),
        place_id=_uuid(fields, "place_id"),
        notes=_text(fields, "notes"),
        policies=policies,
        appeals=collected,
    )
    try:
        visit, collected_appeals = await visits.record_visit(
            session, data, actor=state.ctx.worker.actor(), limits=state.ctx.limits, uploads_dir=state.ctx.uploads_dir,
            clock=lambda: at, visit_id=m.entity_id, allowed_places=state.grid_places, notify_staff=False,
        )
    except InvalidAppeal as error:
        raise _invalid(error) from None
    state.created_references += [a.reference for a in collected_appeals]
    return Outcome(m.mutation_id, p.APPLIED, version=visit.version)


def _target(m: p.Mutation, state: Batch) -> Appeal:
    appeal = state.appeals.get(m.entity_id)
    if appeal is None:
        raise Rejected(p.NOT_FOUND, ServiceError(N_("This appeal does not exist on the server.")))
    return appeal


def _conflict(m: p.Mutation, state: Batch, kind: ConflictKind, *, detail: dict[str, Any], fields: list[str], applied: bool, other: UUID | None) -> SyncConflict:
    return SyncConflict(
        id=uuid7(),
        mutation_id=m.mutation_id, device_id=m.device_id, user_id=state.ctx.worker.id, other_user_id=other,
        entity=m.entity, entity_id=m.entity_id, op=m.op, kind=kind, detail=detail, fields=fields, applied=applied,
        recorded_at=state.ctx.now(),
    )


async def _return_visit(session: AsyncSession, m: p.Mutation, state: Batch, at: datetime) -> Outcome:
    appeal = _target(m, state)
    fields = m.fields
    payload = ActionInput(
        method=_choice(fields, "method", VisitMethod),
        evaluation=_choice(fields, "evaluation", Evaluation, required=False),
        note=_text(fields, "note"),
        visit_id=_uuid(fields, "visit_id"),
    )
    if payload.visit_id is not None and await session.get(Visit, payload.visit_id) is None:
        payload.visit_id = None  # the visit was refused or not sent: keep the return visit anyway
    # A return visit cannot precede the resolution it confirms on the timeline.
    when = max(at, appeal.resolved_at or appeal.received_at)
    try:
        await appeals.act(
            session, appeal, Action.RETURN_VISIT, state.ctx.worker.actor(), payload,
            limits=state.ctx.limits, uploads_dir=state.ctx.uploads_dir, clock=lambda: when,
        )
    except ScopeError as error:
        raise Rejected(p.FORBIDDEN, error) from None
    except WorkflowError as error:
        # No longer legal (reopened, already evaluated, closed...): kept as a conflict, never dropped.
        conflict = _conflict(
            m, state, ConflictKind.TRANSITION,
            detail={"fields": fields, "status": appeal.status.value, "reason": error.message, "params": error.params, "base_version": m.base_version, "version": appeal.version},
            fields=sorted(fields), applied=False, other=appeal.updated_by_id,
        )
        session.add(conflict)
        await session.flush()
        return Outcome(m.mutation_id, p.CONFLICT, version=appeal.version, conflict=conflict)
    except ServiceError as error:
        raise Rejected(p.INVALID, error, [error]) from None
    return Outcome(m.mutation_id, p.APPLIED, version=appeal.version)


def _may_edit(appeal: Appeal, state: Batch) -> bool:
    worker = state.ctx.worker.id
    return appeal.assignee_id == worker or appeal.created_by_id == worker or appeal.place_id in state.grid_places


async def _update_appeal(session: AsyncSession, m: p.Mutation, state: Batch, at: datetime) -> Outcome:
    appeal = _target(m, state)
    changes = {name: value for name, value in m.fields.items()}
    unknown = set(changes) - set(APPEAL_PLAIN_FIELDS)
    if unknown or not changes or m.base_version is None:
        raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))
    if not _may_edit(appeal, state):
        raise Rejected(p.FORBIDDEN, ServiceError(N_("This case is not assigned to you.")))
    for name, value in changes.items():
        if value is not None and not isinstance(value, str):
            error = ServiceError(N_("This value is not valid."), field=name)
            raise Rejected(p.INVALID, error, [error])
    problems = appeals.validate_details(changes)
    if problems:
        raise Rejected(p.INVALID, problems[0], problems)
    if appeal.status not in OPEN:
        # The case moved on (resolved, closed...) while the phone was offline: keep the edit as a conflict.
        conflict = _conflict(
            m, state, ConflictKind.TRANSITION,
            detail={"fields": changes, "status": appeal.status.value, "reason": N_("Only an open case can be edited."), "params": {}, "base_version": m.base_version, "version": appeal.version},
            fields=sorted(changes), applied=False, other=appeal.updated_by_id,
        )
        session.add(conflict)
        await session.flush()
        return Outcome(m.mutation_id, p.CONFLICT, version=appeal.version, conflict=conflict)
    new_version = appeal.version + 1
    stale: dict[str, dict[str, Any]] = {}
    other: UUID | None = None
    applied_any = False
    for name, value in changes.items():
        value = (value or "").strip() or None
        stamp = state.stamps.get((appeal.id, name))
        wins = True
        if stamp is not None and stamp.version > m.base_version:
            # Written after the device last saw the case: last writer by clock wins. Someone else's write
            # makes it a conflict; the worker's own earlier edit (a second edit before a pull) does not.
            wins = m.hlc > stamp.hlc
            if stamp.user_id != state.ctx.worker.id:
                stale[name] = {"device": value, "server": getattr(appeal, name), "applied": wins}
                other = stamp.user_id
        if not wins:
            continue
        setattr(appeal, name, value)
        applied_any = True
        if stamp is None:
            stamp = SyncFieldStamp(entity="appeal", entity_id=appeal.id, field=name, hlc=m.hlc, version=new_version, user_id=state.ctx.worker.id)
            session.add(stamp)
            state.stamps[(appeal.id, name)] = stamp
        else:
            stamp.hlc, stamp.version, stamp.user_id = m.hlc, new_version, state.ctx.worker.id
    conflict = None
    if stale:
        conflict = _conflict(
            m, state, ConflictKind.FIELD, detail={"fields": stale, "base_version": m.base_version}, fields=sorted(stale),
            applied=all(v["applied"] for v in stale.values()), other=other,
        )
        session.add(conflict)
    if applied_any:
        appeal.version = new_version
        session.add(appeals._event(
            appeal, Action.EDIT, state.ctx.worker.actor(), max(at, appeal.received_at), appeal.status, appeal.status,
            note=None, data={"fields": sorted(n for n in changes if n not in stale or stale[n]["applied"])}, public=False,
        ))
    return Outcome(m.mutation_id, p.CONFLICT if conflict else p.APPLIED, version=appeal.version, conflict=conflict)


HANDLERS = {
    ("visit", "create"): _create_visit,
    ("appeal", "create"): _create_appeal,
    ("appeal", "return_visit"): _return_visit,
    ("appeal", "update"): _update_appeal,
}
