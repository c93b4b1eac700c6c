"""Sync conflicts and devices for staff (F5): who syncs from where, which writes collided, and their resolution.

A conflict is recorded by the sync engine (docs/sync.md, "Conflict rules"); here staff read them and resolve
each one exactly once: keep the current value or take the device's (kind `field`), re-apply the workflow step
through the same appeal service as online, or dismiss it with a note (kind `transition`). Every resolution
records who, when, what and why. All queries are set-wise: one statement per table, never one per row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, current_locale, gettext
from server.models import (
    Appeal,
    AppealEvent,
    AppealStatus,
    Evaluation,
    SyncConflict,
    SyncDevice,
    SyncFieldStamp,
    User,
    Visit,
    VisitMethod,
)
from server.models.field import ConflictKind, ConflictResolution
from server.services import appeals
from server.services.appeal_workflow import OPEN, Action
from server.services.appeals import MAX_NOTE, ActionInput, Actor, WorkflowError, utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from sync import stamps
from sync.hlc import HLC, ClockDriftError
from sync.hlc import Clock as HybridClock

Clock = Callable[[], datetime]

# The details of an appeal a device may edit (appeal.update), with their labels: the appeals service's list.
APPEAL_FIELD_LABELS = appeals.EDITABLE_DETAILS
# Personal data that only the roles seeing phones may read (appeal_ledger.SEES_PHONE).
PHONE_FIELDS = frozenset({"submitter_phone"})

CHOICES: dict[ConflictKind, tuple[ConflictResolution, ...]] = {
    ConflictKind.FIELD: (ConflictResolution.KEEP_CURRENT, ConflictResolution.TAKE_DEVICE),
    ConflictKind.TRANSITION: (ConflictResolution.REAPPLIED, ConflictResolution.DISMISSED),
}
RESOLUTION_LABELS: dict[ConflictResolution, str] = {
    ConflictResolution.KEEP_CURRENT: N_("Keep the current value"),
    ConflictResolution.TAKE_DEVICE: N_("Take the device's value"),
    ConflictResolution.REAPPLIED: N_("Re-apply the step"),
    ConflictResolution.DISMISSED: N_("Dismiss"),
}
KIND_LABELS: dict[ConflictKind, str] = {
    ConflictKind.FIELD: N_("Edited on both sides"),
    ConflictKind.TRANSITION: N_("Step no longer possible"),
}
OP_LABELS: dict[str, str] = {
    "update": N_("Edit of the case"),
    "return_visit": N_("Return visit"),
}


# --- Devices -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    device: SyncDevice
    user_name: str | None
    open_conflicts: int

    @property
    def last_sync_at(self) -> datetime | None:
        times = [t for t in (self.device.last_push_at, self.device.last_pull_at) if t is not None]
        return max(times) if times else None


async def list_devices(session: AsyncSession) -> list[DeviceRow]:
    """Every device with its user and its open conflicts, most recently synced first (one statement)."""
    open_counts = (
        select(SyncConflict.device_id, func.count().label("n"))
        .where(SyncConflict.resolved_at.is_(None))
        .group_by(SyncConflict.device_id)
        .subquery()
    )
    rows = await session.execute(
        select(SyncDevice, User.display_name, func.coalesce(open_counts.c.n, 0))
        .outerjoin(User, User.id == SyncDevice.user_id)
        .outerjoin(open_counts, open_counts.c.device_id == SyncDevice.id)
    )
    devices = [DeviceRow(device, name, int(count)) for device, name, count in rows.all()]
    devices.sort(key=lambda row: (row.last_sync_at or row.device.first_seen_at), reverse=True)
    return devices


# --- Reading conflicts ---------------------------------------------------------------------------------


async def open_conflicts(session: AsyncSession, *, user_id: UUID | None = None) -> list[SyncConflict]:
    """Unresolved conflicts, oldest first (the longest waiting on top); of one worker's pushes if `user_id`."""
    query = select(SyncConflict).where(SyncConflict.resolved_at.is_(None))
    if user_id is not None:
        query = query.where(SyncConflict.user_id == user_id)
    return list(await session.scalars(query.order_by(SyncConflict.recorded_at, SyncConflict.id)))


async def conflicts_for_worker(session: AsyncSession, user_id: UUID) -> list[SyncConflict]:
    """Every conflict that involves a worker: their own write, or the write theirs collided with."""
    query = select(SyncConflict).where(or_(SyncConflict.user_id == user_id, SyncConflict.other_user_id == user_id))
    return list(await session.scalars(query.order_by(SyncConflict.recorded_at, SyncConflict.id)))


async def recently_resolved(session: AsyncSession, *, limit: int = 20) -> list[SyncConflict]:
    query = select(SyncConflict).where(SyncConflict.resolved_at.is_not(None))
    return list(await session.scalars(query.order_by(SyncConflict.resolved_at.desc()).limit(limit)))


async def get_conflict(session: AsyncSession, conflict_id: UUID) -> SyncConflict | None:
    return await session.get(SyncConflict, conflict_id)


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    device: Any
    server: Any  # the server's value when the conflict was recorded
    current: Any  # the value now
    applied: bool  # whether the device's value won when it arrived


@dataclass
class ConflictView:
    """One conflict as staff read it: the case, both people, and what the device sent against the server."""

    conflict: SyncConflict
    reference: str | None
    appeal_status: AppealStatus | None
    worker: str | None
    other_worker: str | None
    resolver: str | None
    fields: list[FieldView] = field(default_factory=list)
    step: dict[str, Any] = field(default_factory=dict)  # transition: the fields the device sent
    status_then: AppealStatus | None = None

    @property
    def choices(self) -> tuple[ConflictResolution, ...]:
        return CHOICES[self.conflict.kind]


def _masked(value: Any, name: str, sees_phone: bool) -> Any:
    if name in PHONE_FIELDS and not sees_phone and value:
        return "***"
    return value


async def describe(session: AsyncSession, conflicts: list[SyncConflict], *, sees_phone: bool = True) -> list[ConflictView]:
    """Views of these conflicts, with their cases and people loaded in one statement each."""
    appeal_ids = {c.entity_id for c in conflicts if c.entity == "appeal"}
    user_ids = {uid for c in conflicts for uid in (c.user_id, c.other_user_id, c.resolved_by_id) if uid}
    cases = {a.id: a for a in await session.scalars(select(Appeal).where(Appeal.id.in_(appeal_ids)))} if appeal_ids else {}
    names = dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))).all()) if user_ids else {}
    views = []
    for c in conflicts:
        case = cases.get(c.entity_id)
        view = ConflictView(
            conflict=c,
            reference=case.reference if case else None,
            appeal_status=case.status if case else None,
            worker=names.get(c.user_id) if c.user_id else None,
            other_worker=names.get(c.other_user_id) if c.other_user_id else None,
            resolver=names.get(c.resolved_by_id) if c.resolved_by_id else None,
        )
        detail = c.detail or {}
        if c.kind is ConflictKind.TRANSITION:
            view.status_then = AppealStatus._value2member_map_.get(str(detail.get("status")))  # type: ignore[assignment]
        if c.kind is ConflictKind.FIELD or c.op == "update":
            for name, info in (detail.get("fields") or {}).items():
                if c.kind is ConflictKind.TRANSITION:  # an edit that arrived after the case left the open states
                    info = {"device": info, "server": None, "applied": False}
                info = info if isinstance(info, dict) else {}
                current = getattr(case, name, None) if case is not None and name in APPEAL_FIELD_LABELS else None
                view.fields.append(
                    FieldView(
                        name=name,
                        label=gettext(APPEAL_FIELD_LABELS[name]) if name in APPEAL_FIELD_LABELS else name,
                        device=_masked(info.get("device"), name, sees_phone),
                        server=_masked(info.get("server"), name, sees_phone),
                        current=_masked(current, name, sees_phone),
                        applied=bool(info.get("applied")),
                    )
                )
        else:
            view.step = dict(detail.get("fields") or {})
        views.append(view)
    return views


# --- Resolving ---------------------------------------------------------------------------------------


def _note(note: str | None, *, required: bool) -> str | None:
    text = (note or "").strip()
    if required and not text:
        raise ServiceError(N_("Please give the reason for dismissing it."), field="note")
    if len(text) > MAX_NOTE:
        raise ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE)
    return text or None


def _choice(conflict: SyncConflict, choice: ConflictResolution | str) -> ConflictResolution:
    chosen = ConflictResolution._value2member_map_.get(str(getattr(choice, "value", choice)))
    if chosen not in CHOICES[conflict.kind]:
        raise ServiceError(N_("Choose how to resolve this conflict."), field="choice")
    return chosen  # type: ignore[return-value]


async def _appeal_of(session: AsyncSession, conflict: SyncConflict) -> Appeal:
    """The conflict's case, locked for the rest of the transaction and read as last committed (a push or
    a staff action writing it at the same moment goes first or waits: no write of either is lost)."""
    found = await appeals.lock(session, [conflict.entity_id]) if conflict.entity == "appeal" else []
    if not found:
        raise ServiceError(N_("The case of this conflict no longer exists."))
    return found[0]


async def _server_stamp(session: AsyncSession, appeal: Appeal, names: list[str]) -> str:
    """A server clock stamp greater than every stamp these fields carry (a phone may run a little ahead)."""
    hybrid = HybridClock(node="server")
    latest = await session.scalar(
        select(func.max(SyncFieldStamp.hlc)).where(
            SyncFieldStamp.entity == "appeal", SyncFieldStamp.entity_id == appeal.id, SyncFieldStamp.field.in_(names)
        )
    )
    if latest:
        try:
            hybrid.observe(HLC.parse(latest))
        except (ValueError, ClockDriftError):
            pass  # a malformed or far-future stamp: the engine refuses those; the server's own time stands
    return hybrid.tick().pack()


def _sent_values(conflict: SyncConflict) -> dict[str, Any]:
    """The plain field values the device sent: per field {"device": v, ...} for a stale edit, the bare values for
    an edit that arrived after the case was no longer open."""
    fields = (conflict.detail or {}).get("fields") or {}
    if conflict.kind is ConflictKind.FIELD:
        return {name: info.get("device") for name, info in fields.items() if name in APPEAL_FIELD_LABELS and isinstance(info, dict)}
    return {name: value for name, value in fields.items() if name in APPEAL_FIELD_LABELS}


async def _write_fields(
    session: AsyncSession, conflict: SyncConflict, appeal: Appeal, actor: Actor, note: str | None, now: datetime,
    resolution: ConflictResolution,
) -> None:
    """Write the device's values to the case through the one details-edit path (checked like the forms,
    new version, an internal timeline entry saying what changed and why), then stamp them."""
    sent = _sent_values(conflict)
    if not sent:
        raise ServiceError(N_("This conflict has no value to take."))
    values = {name: None if value is None else str(value) for name, value in sent.items()}
    stamp = await _server_stamp(session, appeal, list(sent))
    try:
        await appeals.edit_details(
            session, appeal, values, actor, at=now, note=_timeline_note(_changes(appeal, values), note),
            data={"sync_conflict": str(conflict.id), "resolution": resolution.value},
        )
    except appeals.InvalidAppeal as invalid:
        raise invalid.problems[0] from None
    table = await stamps.load(session, "appeal", [appeal.id])
    stamps.stamp(session, "appeal", appeal.id, sent, hlc=stamp, version=appeal.version, author=actor.user_id, stamps=table)


def _changes(appeal: Appeal, values: dict[str, str | None]) -> dict[str, tuple[Any, Any]]:
    """What taking these values changes, {name: (old, new)}, for the timeline note."""
    changes = {}
    for name, value in values.items():
        new = appeals.normalise_detail(name, value)
        if getattr(appeal, name) != new:
            changes[name] = (getattr(appeal, name), new)
    return changes


def _timeline_note(changes: dict[str, tuple[Any, Any]], note: str | None) -> str:
    """The internal timeline note of a value taken from a device, in the working language (zh-CN) like the
    ledger export: the record reads the same whoever looks. Phone numbers are named, never written out."""
    token = current_locale.set("zh_CN")
    try:
        lines = [gettext("Sync conflict resolved: the value recorded on the grid worker's device was taken.")]
        for name, (old, new) in changes.items():
            label = gettext(APPEAL_FIELD_LABELS[name])
            if name in PHONE_FIELDS:
                lines.append(gettext("%(field)s: changed") % {"field": label})
            else:
                lines.append(f"{label}: {old or '—'} → {new or '—'}")
        if note:
            lines.append(note)
    finally:
        current_locale.reset(token)
    return "\n".join(lines)


def _step_input(step: dict[str, Any]) -> ActionInput:
    visit_id = None
    if step.get("visit_id"):
        try:
            visit_id = UUID(str(step["visit_id"]))
        except ValueError:
            visit_id = None
    return ActionInput(
        method=VisitMethod._value2member_map_.get(str(step.get("method") or "")),  # type: ignore[arg-type]
        evaluation=Evaluation._value2member_map_.get(str(step.get("evaluation") or "")),  # type: ignore[arg-type]
        note=str(step.get("note") or "") or None,
        visit_id=visit_id,
    )


async def _reapply(
    session: AsyncSession, conflict: SyncConflict, actor: Actor, note: str | None, *, limits: TimeLimits,
    uploads_dir: Path | None, clock: Clock,
) -> None:
    appeal = await _appeal_of(session, conflict)
    if conflict.op == "update":
        # An edit that arrived when the case was no longer open: it can go in once the case is open again.
        await _write_fields(session, conflict, appeal, actor, note, clock(), ConflictResolution.REAPPLIED)
        return
    if conflict.op != Action.RETURN_VISIT.value:
        raise WorkflowError(N_("This step cannot be re-applied."))
    worker = await session.get(User, conflict.user_id) if conflict.user_id else None
    if worker is None or not worker.is_active:
        raise WorkflowError(N_("The grid worker who made this step no longer has an account."))
    payload = _step_input((conflict.detail or {}).get("fields") or {})
    if payload.visit_id is not None and await session.get(Visit, payload.visit_id) is None:
        payload.visit_id = None  # as the engine does: the visit never arrived, the return visit still counts
    # The step is the worker's: it runs as them, through the same service and checks as online.
    event = await appeals.act(
        session, appeal, Action.RETURN_VISIT, Actor.for_user(worker), payload, limits=limits, uploads_dir=uploads_dir, clock=clock,
    )
    event.data = {**(event.data or {}), "sync_conflict": str(conflict.id), "reapplied_by": actor.label}


async def resolve(
    session: AsyncSession,
    conflict: SyncConflict,
    choice: ConflictResolution | str,
    *,
    actor: Actor,
    note: str | None,
    limits: TimeLimits,
    uploads_dir: Path | None,
    clock: Clock = utc_now,
) -> SyncConflict:
    """Resolve a conflict once, recording who, when, what and why; refused (nothing changed) otherwise."""
    if conflict.resolved_at is not None:
        raise WorkflowError(N_("This conflict has already been resolved."))
    chosen = _choice(conflict, choice)
    text = _note(note, required=chosen is ConflictResolution.DISMISSED)
    now = clock()
    async with session.begin_nested():  # a refused re-application leaves nothing behind
        # Claim it first: of two staff resolving at once, exactly one gets the row.
        claimed = await session.execute(
            update(SyncConflict)
            .where(SyncConflict.id == conflict.id, SyncConflict.resolved_at.is_(None))
            .values(resolved_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise WorkflowError(N_("This conflict has already been resolved."))
        if chosen is ConflictResolution.TAKE_DEVICE:
            await _write_fields(session, conflict, await _appeal_of(session, conflict), actor, text, now, chosen)
            conflict.applied = True
        elif chosen is ConflictResolution.REAPPLIED:
            await _reapply(session, conflict, actor, text, limits=limits, uploads_dir=uploads_dir, clock=clock)
            conflict.applied = True
        conflict.resolved_at = now
        conflict.resolved_by_id = actor.user_id
        conflict.resolution = chosen
        conflict.resolution_note = text
        await session.flush()
    return conflict
