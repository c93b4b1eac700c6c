"""Reconciliation: apply a batch of device mutations exactly once, through the operations areas register
(sync/ops.py), recording conflicts instead of dropping writes. No web framework and no area service
here; the route is a thin shell.

Set-wise: the receipts of the batch are loaded with one query, each operation's `prepare` loads what
its mutations need with one query per kind; each mutation then runs in the batch's savepoint (or its
own), so one refused mutation never undoes another. The caller commits once and only then answers
(docs/sync.md, "Acknowledged means committed").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from server.i18n import N_
from server.models import SyncConflict, SyncDevice, SyncMutation, current_actor
from server.services.errors import ServiceError
from sync import ops
from sync import protocol as p
from sync.hlc import HLC, ClockDriftError
from sync.ops import Context, Rejected

MAX_AGE = timedelta(days=30)


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


class DeviceBoundError(Exception):
    """The device id belongs to another user."""


@dataclass
class Batch:
    ctx: Context
    receipts: dict[UUID, str]
    device: SyncDevice
    cache: dict[str, Any] = field(default_factory=dict)


# -- devices -----------------------------------------------------------------------------------------


async def bind_device(session: AsyncSession, device_id: UUID, ctx: Context) -> SyncDevice:
    """The device row (locked: its counters are updated), created and bound to this sender on first
    contact; another sender's device is refused."""
    device = await session.get(SyncDevice, device_id, with_for_update=True)
    if device is None:
        device = SyncDevice(user_id=ctx.sender.user_id, credential=ctx.sender.credential,
                            user_agent=(ctx.user_agent or "")[:255] or None, first_seen_at=ctx.now())
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
    if (device.user_id, device.credential) != (ctx.sender.user_id, ctx.sender.credential):
        raise DeviceBoundError
    return device


# -- push --------------------------------------------------------------------------------------------


async def _load(session: AsyncSession, batch: p.PushRequest, ctx: Context, device: SyncDevice) -> Batch:
    """The receipts, and what each operation needs for its mutations, one query per kind."""
    ids = [m.mutation_id for m in batch.mutations]
    receipts = dict((await session.execute(select(SyncMutation.id, SyncMutation.outcome).where(SyncMutation.id.in_(ids)))).all()) if ids else {}
    state = Batch(ctx=ctx, receipts=receipts, device=device)
    grouped: dict[tuple[str, str], list[p.Mutation]] = defaultdict(list)
    for mutation in batch.mutations:
        if mutation.mutation_id not in receipts:
            grouped[(mutation.entity, mutation.op)].append(mutation)
    for key, mutations in grouped.items():
        operation = ops.OPERATIONS.get(key)
        if operation is not None and operation.prepare is not None and ctx.sender.role in operation.senders:
            await operation.prepare(session, mutations, ctx, state.cache)
    return state


async def push(session: AsyncSession, batch: p.PushRequest, ctx: Context) -> list[Outcome]:
    """Apply a decoded batch in order; one outcome per mutation. The caller commits, then answers.

    Fast path: the whole batch in one savepoint, written by one flush at the end (the operations check
    everything before they write, so a refused mutation leaves nothing behind). Only a self-contained
    operation (a visit, which writes several cases) gets a savepoint of its own. If the database still
    refuses the batch (a concurrent push of the same mutations committed first, or a reused record id),
    the batch is rolled back and applied again mutation by mutation, each in its own savepoint."""
    device = await bind_device(session, batch.device_id, ctx)
    mutations = batch.mutations
    # Rows made by the batch name the sender as their author (created_by), whoever calls the engine.
    token = current_actor.set(ctx.sender.id)
    try:
        state = await _load(session, batch, ctx, device)
        try:
            async with session.begin_nested():
                outcomes = [await _one(session, mutation, state, isolate=False) for mutation in mutations]
                await session.flush()
        except IntegrityError:
            state = await _load(session, batch, ctx, device)
            outcomes = [await _one(session, mutation, state, isolate=True) for mutation in mutations]
        for hook in ops.AFTER_BATCH:
            await hook(session, ctx, state.cache, list(zip(mutations, outcomes, strict=True)))
    finally:
        current_actor.reset(token)
    device.last_push_at = ctx.now()
    device.last_seq = max([device.last_seq, *(m.seq for m in mutations)])
    device.mutation_count += sum(o.status in {p.APPLIED, p.CONFLICT} for o in outcomes)
    device.rejected_count += sum(o.status == p.REJECTED for o in outcomes)
    await session.flush()
    return outcomes


def _malformed() -> Rejected:
    return Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))


async def _one(session: AsyncSession, mutation: p.Mutation, state: Batch, *, isolate: bool) -> Outcome:
    seen = state.receipts.get(mutation.mutation_id)
    if seen is not None:
        return Outcome(mutation.mutation_id, p.DUPLICATE, original=seen)
    try:
        stamp = HLC.parse(mutation.hlc)
    except ValueError:
        return _rejected(mutation, _malformed())
    try:
        state.ctx.server_clock.observe(stamp)
    except ClockDriftError:
        return _rejected(mutation, Rejected(p.CLOCK_AHEAD, ServiceError(N_("The device clock is too far ahead. Please correct the time on the phone."))))
    try:
        operation = ops.OPERATIONS.get((mutation.entity, mutation.op))
        if operation is None:
            raise Rejected(p.UNKNOWN_OPERATION, ServiceError(N_("This kind of change is not known to the server.")))
        if state.ctx.sender.role not in operation.senders:
            raise Rejected.forbidden(N_("Your account may not send this kind of change."))
        request = ops.Request(
            session=session, mutation=mutation, fields=ops.decode_fields(operation, mutation.fields),
            at=_recorded_at(mutation, state.ctx), ctx=state.ctx, batch=state.cache,
            isolated=isolate or operation.self_contained,
        )
        if not isolate and not operation.self_contained:
            outcome = await _apply(session, request, operation, flush=False)
        else:
            try:
                async with session.begin_nested():
                    outcome = await _apply(session, request, operation, flush=True)
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


async def _apply(session: AsyncSession, request: ops.Request, operation: ops.Operation, *, flush: bool) -> Outcome:
    mutation = request.mutation
    applied = await operation.apply(request)
    status = p.CONFLICT if applied.conflict is not None else p.APPLIED
    receipt = SyncMutation(
        device_id=mutation.device_id, user_id=request.ctx.sender.user_id, seq=mutation.seq, entity=mutation.entity,
        entity_id=mutation.entity_id, op=mutation.op, outcome=status, hlc=mutation.hlc,
        version=applied.version, conflict_id=applied.conflict.id if applied.conflict is not None else None,
    )
    receipt.id = mutation.mutation_id
    session.add(receipt)
    if flush:
        await session.flush()
    return Outcome(mutation.mutation_id, status, version=applied.version, conflict=applied.conflict)


def _rejected(mutation: p.Mutation, rejected: Rejected) -> Outcome:
    return Outcome(mutation.mutation_id, p.REJECTED, code=rejected.code, error=rejected.error, errors=rejected.errors)


def _recorded_at(mutation: p.Mutation, ctx: Context) -> datetime:
    """When the change was made on the device: at most 30 days ago; a time ahead of the server's
    (a phone clock a little fast) is taken as the server's time, so nothing is dated in the future."""
    now = ctx.now()
    at = mutation.recorded_at
    if at is None:
        return now
    if at.tzinfo is None:
        raise _malformed()
    at = at.astimezone(UTC)
    if at < now - MAX_AGE:
        raise Rejected(p.TOO_OLD, ServiceError(N_("This change is more than 30 days old; please enter it again or ask staff.")))
    return min(at, now)


def photos_named(mutation: p.Mutation) -> list[str]:
    """The staged photos (hashes of what the phone sent) a mutation uses, as its operation declares."""
    operation = ops.OPERATIONS.get((mutation.entity, mutation.op))
    if operation is None:
        return []
    try:
        return operation.photos(ops.decode_fields(operation, mutation.fields))
    except Rejected:
        return []


# -- conflicts ---------------------------------------------------------------------------------------------


def conflict(
    request: ops.Request, kind: Any, *, detail: dict[str, Any], fields: list[str], applied: bool, other: UUID | None
) -> SyncConflict:
    """A conflict row for this mutation (added to the session by the caller's operation)."""
    m = request.mutation
    return SyncConflict(
        id=uuid7(),
        mutation_id=m.mutation_id, device_id=m.device_id, user_id=request.ctx.sender.user_id, other_user_id=other,
        entity=m.entity, entity_id=m.entity_id, op=m.op, kind=kind, detail=detail, fields=fields, applied=applied,
        recorded_at=request.ctx.now(),
    )
