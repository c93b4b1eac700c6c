"""The field work area's offline operations and pull sources, registered in the sync op table
(sync/ops.py): a grid worker's phone creates appeals and visits (1+N+1), records return visits and
corrects case details offline, and downloads its grid, its cases, its visits and its conflicts.

Each operation calls the same services as the online forms (appeals.submit, visits.record_visit,
appeals.act, appeals.edit_details), so a refusal reads the same as on a form.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext
from server.models import (
    Appeal,
    Enterprise,
    Policy,
    PolicyPush,
    PolicyStatus,
    PushOutcome,
    AppealChannel,
    ConflictKind,
    Evaluation,
    Place,
    Role,
    SubmitterKind,
    SyncConflict,
    Visit,
    VisitMethod,
    VisitPurpose,
    VisitSubject,
)
from server.services import appeal_scope, appeals, enterprises, notifications, policies, visits
from server.services import policy_facets as facets
from server.services.enterprises import PushInput
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import ACTIVE, OPEN, STATUS_LABELS, Action
from server.services.appeals import Actor, ActionInput, AppealInput, InvalidAppeal, ScopeError, WorkflowError
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.services.photos import MAX_PHOTOS, ProcessedPhoto, staged_photo
from sync import engine, ops, stamps
from sync import protocol as p
from sync.ops import Applied, Context, Rejected, Request

GRID_WORKER = frozenset({Role.GRID_WORKER.value})
RECENT = timedelta(days=30)
Photos = Annotated[list[str], msgspec.Meta(max_length=MAX_PHOTOS)]


# --- Field schemas (what each operation's `fields` hold; docs/sync.md, "Operations") ---------------------


class AppealFields(msgspec.Struct, kw_only=True):
    submitter_kind: SubmitterKind
    category: str = ""
    description: str = ""
    place_id: str | None = None
    location_detail: str | None = None
    submitter_name: str | None = None
    submitter_phone: str | None = None
    photos: Photos = msgspec.field(default_factory=list)


class VisitAppealFields(AppealFields, kw_only=True):
    id: UUID


class VisitFields(msgspec.Struct, kw_only=True):
    subject_kind: VisitSubject
    subject_name: str = ""
    purpose: VisitPurpose
    place_id: str | None = None
    notes: str | None = None
    policies: list[str] = msgspec.field(default_factory=list)  # free texts (phones older than the policy library)
    enterprise_id: str | None = None  # an enterprise of the grid's registry (pulled as "enterprise")
    policy_ids: Annotated[list[UUID], msgspec.Meta(max_length=visits.MAX_POLICIES)] = msgspec.field(default_factory=list)
    # Why a policy the enterprise does not match was pushed anyway, by policy id (optional).
    policy_reasons: dict[str, str] = msgspec.field(default_factory=dict)
    appeals: Annotated[list[VisitAppealFields], msgspec.Meta(max_length=visits.MAX_APPEALS)] = msgspec.field(default_factory=list)


class ReturnVisitFields(msgspec.Struct, kw_only=True):
    method: VisitMethod
    evaluation: Evaluation | None = None
    note: str | None = None
    note_public: bool = False  # the worker chose to reply to the submitter (default: internal)
    visit_id: str | None = None


class OutcomeChoice(enum.StrEnum):
    APPLIED = PushOutcome.APPLIED.value
    GRANTED = PushOutcome.GRANTED.value
    INELIGIBLE = PushOutcome.INELIGIBLE.value


class PushOutcomeFields(msgspec.Struct, kw_only=True):
    outcome: OutcomeChoice
    amount_yuan: int | None = None  # with granted: whole yuan
    note: str | None = None


class AppealUpdateFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the details sent are changed; a detail sent as null (or "") is cleared."""

    # Exactly appeals.EDITABLE_DETAILS (a test of /sync/schema.json holds them equal).
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    location_detail: str | None | msgspec.UnsetType = msgspec.UNSET
    submitter_name: str | None | msgspec.UnsetType = msgspec.UNSET
    submitter_phone: str | None | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, str | None]:
        return {name: value for name in appeals.EDITABLE_DETAILS if (value := getattr(self, name)) is not msgspec.UNSET}


# --- Helpers ------------------------------------------------------------------------------------------------


def context_for(user: Any, settings: Any, server_clock: Any, *, user_agent: str | None = None) -> Context:
    """The sync context of a signed-in user (a CurrentUser or a User row): the route's, a test's, a bench's."""
    role = user.role.value if hasattr(user.role, "value") else str(user.role)
    return Context(
        sender=ops.Sender(id=user.id, display_name=user.display_name, role=role, area_id=user.place_id),
        server_clock=server_clock, now=lambda: datetime.now(UTC), uploads_dir=settings.uploads_dir,
        extras={"limits": TimeLimits.from_settings(settings)}, user_agent=user_agent,
    )


def _actor(ctx: Context) -> Actor:
    return Actor(principal=Role(ctx.sender.role), label=ctx.sender.display_name, user_id=ctx.sender.id)


def _limits(ctx: Context) -> TimeLimits:
    return ctx.extras["limits"]


def _uuid(value: str | None, name: str) -> UUID | None:
    if value in (None, ""):
        return None
    try:
        return UUID(str(value))
    except ValueError:
        raise Rejected.invalid([ServiceError(N_("This value is not valid."), field=name)]) from None


def _photos(names: list[str], ctx: Context, prefix: str) -> list[ProcessedPhoto]:
    """The photos a mutation names, as processed when the phone uploaded them (no image work here)."""
    found = []
    for digest in names:
        photo = staged_photo(ctx.staging_dir, str(digest))
        if photo is None:
            raise Rejected(p.PHOTO_MISSING, ServiceError(N_("A photo has not reached the server yet; it will be sent again."), field=f"{prefix}photos"))
        found.append(photo)
    return found


async def _grid(session: AsyncSession, ctx: Context, batch: dict[str, Any]) -> set[UUID]:
    """The sender's grid and its places, once per batch (held in the session for the services' checks)."""
    if "grid_places" not in batch:
        batch["grid_places"] = await appeal_scope.grid_place_ids(session, ctx.sender.area_id)
        if batch["grid_places"]:
            batch["places"] = list(await session.scalars(select(Place).where(Place.id.in_(batch["grid_places"]))))
    return batch["grid_places"]


def _in_grid(place_id: UUID | None, grid: set[UUID], field: str) -> None:
    # One rule for every place a worker names, on a visit or alone: the same code and message.
    if place_id is not None and place_id not in grid:
        raise Rejected.forbidden(N_("This place is not in your grid."), field=field)


def _appeal_input(fields: AppealFields, ctx: Context, prefix: str = "") -> AppealInput:
    return AppealInput(
        channel=AppealChannel.VISIT,
        submitter_kind=fields.submitter_kind,
        category=fields.category,
        description=fields.description,
        place_id=_uuid(fields.place_id, f"{prefix}place_id"),
        submitter_name=fields.submitter_name,
        submitter_phone=fields.submitter_phone,
        location_detail=fields.location_detail,
        photos=_photos(fields.photos, ctx, prefix),
    )


def _appeal_photos(fields: Any) -> list[str]:
    if isinstance(fields, VisitFields):
        return [sha for a in fields.appeals for sha in a.photos]
    return list(getattr(fields, "photos", []))


# --- appeal.create: a quick appeal, outside a visit -------------------------------------------------------


async def _prepare_places(session: AsyncSession, _mutations: list[p.Mutation], ctx: Context, batch: dict[str, Any]) -> None:
    await _grid(session, ctx, batch)


async def create_appeal(request: Request) -> Applied:
    grid = await _grid(request.session, request.ctx, request.batch)
    data = _appeal_input(request.fields, request.ctx)
    _in_grid(data.place_id, grid, "place_id")
    try:
        appeal = await appeals.submit(
            request.session, data, actor=_actor(request.ctx), limits=_limits(request.ctx), uploads_dir=request.ctx.uploads_dir,
            clock=lambda: request.at, appeal_id=request.mutation.entity_id, notify_staff=False,
            batched=not request.isolated,
        )
    except InvalidAppeal as error:
        raise Rejected.invalid(error.problems) from None
    request.batch.setdefault("created", []).append(appeal.reference)
    return Applied(appeal.version)


# --- visit.create: one door knocked, with the N appeals collected there -----------------------------------


async def create_visit(request: Request) -> Applied:
    fields: VisitFields = request.fields
    grid = await _grid(request.session, request.ctx, request.batch)
    place_id = _uuid(fields.place_id, "place_id")
    _in_grid(place_id, grid, "place_id")
    collected = []
    for index, raw in enumerate(fields.appeals):
        prefix = f"appeals.{index}."
        appeal = _appeal_input(raw, request.ctx, prefix)
        _in_grid(appeal.place_id, grid, f"{prefix}place_id")
        collected.append((raw.id, appeal))
    enterprise_id = _uuid(fields.enterprise_id, "enterprise_id")
    if enterprise_id is not None:
        enterprise = await request.session.get(Enterprise, enterprise_id)
        if enterprise is not None and enterprise.place_id not in grid and enterprise.grid_worker_id != request.ctx.sender.id:
            raise Rejected.forbidden(N_("This enterprise is not in your grid."), field="enterprise_id")
    data = visits.VisitInput(
        subject_kind=fields.subject_kind, subject_name=fields.subject_name, purpose=fields.purpose, place_id=place_id,
        notes=fields.notes, policies=fields.policies, appeals=collected, enterprise_id=enterprise_id,
        pushes=[PushInput(pid, fields.policy_reasons.get(str(pid))) for pid in dict.fromkeys(fields.policy_ids)],
    )
    try:
        visit, created = await visits.record_visit(
            request.session, data, actor=_actor(request.ctx), limits=_limits(request.ctx), uploads_dir=request.ctx.uploads_dir,
            clock=lambda: request.at, visit_id=request.mutation.entity_id, notify_staff=False,
        )
    except InvalidAppeal as error:
        raise Rejected.invalid(error.problems) from None
    request.batch.setdefault("created", []).extend(a.reference for a in created)
    return Applied(visit.version)


# --- appeal.return_visit and appeal.update: steps on cases the phone pulled ---------------------------------


async def _prepare_cases(session: AsyncSession, mutations: list[p.Mutation], ctx: Context, batch: dict[str, Any]) -> None:
    """Lock the targeted cases (id order), then read their field stamps: a concurrent push or staff action on
    the same cases waits for this one, and last-writer-wins sees every earlier write."""
    await _grid(session, ctx, batch)
    ids = {m.entity_id for m in mutations} - set(batch.get("cases", {}))
    if not ids:
        return
    locked = await appeals.lock(session, list(ids))
    batch.setdefault("cases", {}).update({a.id: a for a in locked})
    batch.setdefault("stamps", {}).update(await stamps.load(session, "appeal", ids))


def _case(request: Request) -> Appeal:
    appeal = request.batch.get("cases", {}).get(request.mutation.entity_id)
    if appeal is None:
        raise Rejected(p.NOT_FOUND, ServiceError(N_("This appeal does not exist on the server.")))
    return appeal


def _transition_conflict(request: Request, appeal: Appeal, fields: dict[str, Any], reason: str, params: dict[str, Any]) -> Applied:
    """A step no longer legal when it arrived (reopened, evaluated, closed …): kept, never dropped."""
    row = engine.conflict(
        request, ConflictKind.TRANSITION,
        detail={"fields": fields, "status": appeal.status.value, "reason": reason, "params": params,
                "base_version": request.mutation.base_version, "version": appeal.version},
        fields=sorted(fields), applied=False, other=appeal.updated_by_id,
    )
    request.session.add(row)
    return Applied(appeal.version, conflict=row)


async def return_visit(request: Request) -> Applied:
    appeal = _case(request)
    fields: ReturnVisitFields = request.fields
    payload = ActionInput(
        method=fields.method, evaluation=fields.evaluation, note=fields.note, note_public=fields.note_public,
        visit_id=_uuid(fields.visit_id, "visit_id"),
    )
    if payload.visit_id is not None and await request.session.get(Visit, payload.visit_id) is None:
        payload.visit_id = None  # the visit was refused or not sent: keep the return visit anyway
    # A return visit cannot precede the resolution it confirms on the timeline.
    when = max(request.at, appeal.resolved_at or appeal.received_at)
    try:
        await appeals.act(
            request.session, appeal, Action.RETURN_VISIT, _actor(request.ctx), payload,
            limits=_limits(request.ctx), uploads_dir=request.ctx.uploads_dir, clock=lambda: when,
        )
    except ScopeError as error:
        raise Rejected.forbidden(error.message) from None
    except WorkflowError as error:
        # What is kept is what the device sent, as the schema read it (never keys a device made up).
        sent = {k: v for k, v in msgspec.to_builtins(fields).items() if k in request.mutation.fields}
        return _transition_conflict(request, appeal, sent, error.message, error.params)
    except ServiceError as error:
        raise Rejected.invalid([error]) from None
    return Applied(appeal.version)


async def update_appeal(request: Request) -> Applied:
    appeal = _case(request)
    changes = request.fields.changes()
    if not changes or request.mutation.base_version is None:
        raise Rejected(p.MALFORMED, ServiceError(N_("This change is damaged and cannot be read.")))
    if not appeal_scope.worker_sees(appeal, request.ctx.sender.id, await _grid(request.session, request.ctx, request.batch)):
        raise Rejected.forbidden(N_("This case is not assigned to you."))
    problems = appeals.validate_details(changes)
    if problems:
        raise Rejected.invalid(problems)
    if appeal.status not in OPEN:
        # The case moved on (resolved, closed...) while the phone was offline: keep the edit as a conflict.
        return _transition_conflict(request, appeal, changes, N_("Only an open case can be edited."), {})
    m = request.mutation
    table = request.batch.setdefault("stamps", {})
    decision = stamps.decide(appeal, {n: appeals.normalise_detail(n, v) for n, v in changes.items()},
                             base_version=m.base_version, hlc=m.hlc, author=request.ctx.sender.id, stamps=table)
    row = None
    if decision.stale:
        row = engine.conflict(
            request, ConflictKind.FIELD, detail={"fields": decision.stale, "base_version": m.base_version},
            fields=sorted(decision.stale), applied=all(v["applied"] for v in decision.stale.values()), other=decision.other,
        )
        request.session.add(row)
    if decision.winners:
        stamps.stamp(request.session, "appeal", appeal.id, decision.winners, hlc=m.hlc, version=appeal.version + 1,
                     author=request.ctx.sender.id, stamps=table)
        await appeals.edit_details(request.session, appeal, decision.winners, _actor(request.ctx), at=request.at)
    return Applied(appeal.version, conflict=row)


# --- policy_push.outcome: what came of a policy pushed to an enterprise (已申报 / 已获批 / 不符合条件) -----------


async def _prepare_pushes(session: AsyncSession, mutations: list[p.Mutation], ctx: Context, batch: dict[str, Any]) -> None:
    """The pushes the batch records outcomes for, with their enterprises, in one read each."""
    await _grid(session, ctx, batch)  # the scope check reads batch["grid_places"]
    ids = {m.entity_id for m in mutations}
    rows = {r.id: r for r in await session.scalars(select(PolicyPush).where(PolicyPush.id.in_(ids)))}
    firms = {e.id: e for e in await session.scalars(select(Enterprise).where(Enterprise.id.in_({r.enterprise_id for r in rows.values()})))}
    batch.setdefault("pushes", {}).update(rows)
    batch.setdefault("push_firms", {}).update(firms)


async def push_outcome(request: Request) -> Applied:
    row: PolicyPush | None = request.batch.get("pushes", {}).get(request.mutation.entity_id)
    if row is None:
        raise Rejected(p.NOT_FOUND, ServiceError(N_("This policy push does not exist on the server.")))
    firm = request.batch["push_firms"].get(row.enterprise_id)
    if firm is None or (firm.place_id not in request.batch["grid_places"] and firm.grid_worker_id != request.ctx.sender.id):
        raise Rejected.forbidden(N_("This enterprise is not in your grid."))
    fields: PushOutcomeFields = request.fields
    if row.outcome_at is not None and row.outcome_at > request.at:
        # Someone recorded a later outcome while this phone was offline: the later one stays, this one is kept.
        sent = {k: v for k, v in msgspec.to_builtins(fields).items() if k in request.mutation.fields}
        conflict = engine.conflict(
            request, ConflictKind.TRANSITION,
            detail={"fields": sent, "status": row.outcome.value, "reason": N_("A later outcome was recorded for this push."), "params": {},
                    "base_version": request.mutation.base_version, "version": row.version},
            fields=sorted(sent), applied=False, other=row.outcome_by_id,
        )
        request.session.add(conflict)
        return Applied(row.version, conflict=conflict)
    try:
        await enterprises.record_outcome(request.session, row, fields.outcome.value, amount=fields.amount_yuan, note=fields.note,
                                         actor_id=request.ctx.sender.id, at=request.at)
    except enterprises.InvalidEnterprise as error:
        raise Rejected.invalid(error.problems) from None
    return Applied(row.version)


# --- After a push: one notice to staff for the appeals it brought -------------------------------------------


async def tell_staff(session: AsyncSession, ctx: Context, cache: dict[str, Any], results: list[tuple[p.Mutation, Any]]) -> None:
    """One notice per sync for staff, not one per case: a day of field work arrives at once."""
    created: list[str] = cache.get("created", [])
    if not created:
        return
    first = next(m.mutation_id for m, o in results if o.status == p.APPLIED)
    await notifications.notify(
        session, await notifications.staff_ids(session), kind="field_sync",
        text=N_("%(worker)s synced new appeals from the field: %(count)d"),
        params={"worker": ctx.sender.display_name, "count": len(created), "references": created[:50]},
        dedupe=f"sync:{first}",
    )


# --- Registration ---------------------------------------------------------------------------------------------

ops.register(ops.Operation(
    "appeal", "create", AppealFields, GRID_WORKER, create_appeal, prepare=_prepare_places, photos=_appeal_photos,
    summary="A quick appeal collected outside a visit (channel 网格员走访).",
))
ops.register(ops.Operation(
    "visit", "create", VisitFields, GRID_WORKER, create_visit, prepare=_prepare_places, photos=_appeal_photos,
    self_contained=True, summary="A visit (走访) with the N appeals collected on it, all or nothing.",
))
ops.register(ops.Operation(
    "appeal", "return_visit", ReturnVisitFields, GRID_WORKER, return_visit, prepare=_prepare_cases,
    summary="The return visit (回访) of a resolved case, with the evaluation given there.",
))
ops.register(ops.Operation(
    "appeal", "update", AppealUpdateFields, GRID_WORKER, update_appeal, prepare=_prepare_cases,
    summary="Corrected details of an open case (field-level last writer wins).",
))
ops.register(ops.Operation(
    "policy_push", "outcome", PushOutcomeFields, GRID_WORKER, push_outcome, prepare=_prepare_pushes,
    summary="What came of a policy pushed to an enterprise: applied, granted (with the amount) or not eligible.",
))
ops.after_batch(tell_staff)


# --- Pull sources: the grid, its cases, the worker's visits and conflicts ----------------------------------


class PlaceData(msgspec.Struct):
    name: str
    code: str
    kind: str
    parent_id: str | None
    address: str | None


class AppealData(msgspec.Struct):
    reference: str
    status: str
    status_label: str
    category: str
    category_label: str
    submitter_kind: str
    description: str
    place_id: str | None
    location_detail: str | None
    submitter_name: str | None
    submitter_phone: str | None
    received_at: str | None
    response_due_at: str | None
    resolve_due_at: str | None
    first_response_at: str | None
    resolved_at: str | None
    resolution_note: str | None
    evaluation: str | None
    is_complex: bool
    visit_id: str | None
    assignee_id: str | None
    created_by_id: str | None


class VisitData(msgspec.Struct):
    subject_kind: str
    subject_name: str
    purpose: str
    place_id: str | None
    notes: str | None
    policies: list[str]
    visited_at: str | None
    enterprise_id: str | None


class EnterpriseData(msgspec.Struct):
    name: str
    credit_code: str
    industry: str | None
    size: str | None
    stage: str | None
    place_id: str | None
    place_kind: str | None
    is_key: bool
    registered_on: str | None
    contact_name: str | None
    contact_phone: str | None
    last_visited_at: str | None
    pushed_policy_ids: list[str]


class PolicyPushData(msgspec.Struct):
    enterprise_id: str
    policy_id: str
    visit_id: str | None
    pushed_at: str | None
    matched: bool
    outcome: str
    amount_yuan: int | None
    outcome_note: str | None
    outcome_at: str | None


class PolicyData(msgspec.Struct):
    title: str
    summary: str
    category: str
    category_label: str
    status: str  # published | withdrawn (a withdrawn policy leaves the phone's lists)
    deadline: str | None
    long_term: bool
    department: str
    phone: str
    industries: list[str]
    sizes: list[str]
    stages: list[str]
    place_kinds: list[str]


class ConflictData(msgspec.Struct):
    kind: str
    entity: str
    entity_id: str
    reference: str | None
    op: str
    mutation_id: str
    fields: list[str]
    detail: dict[str, Any]
    applied: bool
    mine: bool
    message: str | None
    recorded_at: str | None
    resolved_at: str | None
    resolution: str | None
    resolution_note: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _str(value: Any) -> str | None:
    return str(value) if value else None


def _place_data(place: Place, _ctx: Context, _extra: dict[str, Any]) -> dict[str, Any]:
    return {"name": place.name, "code": place.code, "kind": place.kind.value, "parent_id": _str(place.parent_id), "address": place.address}


def _appeal_data(appeal: Appeal, _ctx: Context, _extra: dict[str, Any]) -> dict[str, Any]:
    category = BY_CODE.get(appeal.category)
    return {
        "reference": appeal.reference,
        "status": appeal.status.value,
        "status_label": gettext(STATUS_LABELS[appeal.status]),
        "category": appeal.category,
        "category_label": gettext(category.label) if category else appeal.category,
        "submitter_kind": appeal.submitter_kind.value,
        "description": appeal.description,
        "place_id": _str(appeal.place_id),
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
        "visit_id": _str(appeal.visit_id),
        "assignee_id": _str(appeal.assignee_id),
        "created_by_id": _str(appeal.created_by_id),
    }


def _visit_data(visit: Visit, _ctx: Context, _extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "subject_kind": visit.subject_kind.value, "subject_name": visit.subject_name, "purpose": visit.purpose.value,
        "place_id": _str(visit.place_id), "notes": visit.notes, "policies": visit.policies, "visited_at": _iso(visit.visited_at),
        "enterprise_id": _str(visit.enterprise_id),
    }


async def _enterprise_extra(session: AsyncSession, rows: list[Enterprise], _ctx: Context) -> dict[str, Any]:
    ids = [e.id for e in rows]
    pushed: dict[Any, list[str]] = {i: [] for i in ids}
    for enterprise_id, policy_id in (await session.execute(
        select(PolicyPush.enterprise_id, PolicyPush.policy_id).where(PolicyPush.enterprise_id.in_(ids)).distinct()
    )).all():
        pushed[enterprise_id].append(str(policy_id))
    place_ids = {e.place_id for e in rows if e.place_id}
    kinds = dict((await session.execute(select(Place.id, Place.kind).where(Place.id.in_(place_ids)))).all()) if place_ids else {}
    return {"pushed": pushed, "kinds": {k: v.value for k, v in kinds.items()}}


def _enterprise_data(e: Enterprise, _ctx: Context, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": e.name, "credit_code": e.credit_code, "industry": e.industry, "size": e.size, "stage": e.stage,
        "place_id": _str(e.place_id), "place_kind": extra["kinds"].get(e.place_id), "is_key": e.is_key,
        "registered_on": e.registered_on.isoformat() if e.registered_on else None,
        "contact_name": e.contact_name, "contact_phone": e.contact_phone, "last_visited_at": _iso(e.last_visited_at),
        "pushed_policy_ids": sorted(extra["pushed"].get(e.id, [])),
    }


def _policy_data(policy: Policy, _ctx: Context, _extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": policy.title, "summary": policy.summary, "category": policy.category.value,
        "category_label": gettext(policies.CATEGORY_LABELS[policy.category]), "status": policy.status.value,
        "deadline": policy.deadline.isoformat() if policy.deadline else None, "long_term": policy.long_term,
        "department": policy.department, "phone": policy.phone, **facets.lists_of(policy),
    }


def _push_data(row: PolicyPush, _ctx: Context, _extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "enterprise_id": str(row.enterprise_id), "policy_id": str(row.policy_id), "visit_id": _str(row.visit_id),
        "pushed_at": _iso(row.pushed_at), "matched": row.matched, "outcome": row.outcome.value, "amount_yuan": row.amount_yuan,
        "outcome_note": row.outcome_note, "outcome_at": _iso(row.outcome_at),
    }


def _grid_enterprises(ctx: Context, _now: datetime) -> Any:
    return select(Enterprise).where(enterprises.worker_scope(ctx.sender.id, appeal_scope.grid_places_clause(ctx.sender.area_id)))


async def _conflict_references(session: AsyncSession, rows: list[SyncConflict], _ctx: Context) -> dict[str, Any]:
    ids = {r.entity_id for r in rows}
    return {"references": dict((await session.execute(select(Appeal.id, Appeal.reference).where(Appeal.id.in_(ids)))).all())}


def _conflict_data(conflict: SyncConflict, ctx: Context, extra: dict[str, Any]) -> dict[str, Any]:
    detail = conflict.detail or {}
    reason = detail.get("reason")
    return {
        "kind": conflict.kind.value,
        "entity": conflict.entity,
        "entity_id": str(conflict.entity_id),
        "reference": extra.get("references", {}).get(conflict.entity_id),
        "op": conflict.op,
        "mutation_id": str(conflict.mutation_id),
        "fields": conflict.fields,
        "detail": detail,
        "applied": conflict.applied,
        "mine": conflict.user_id == ctx.sender.id,
        "message": ServiceError(reason, **(detail.get("params") or {})).translated() if reason else None,
        "recorded_at": _iso(conflict.recorded_at),
        "resolved_at": _iso(conflict.resolved_at),
        "resolution": conflict.resolution.value if conflict.resolution else None,
        "resolution_note": conflict.resolution_note,
    }


ops.register_pull(ops.PullSource(
    "place", GRID_WORKER, Place,
    lambda ctx, _now: select(Place).where(Place.id.in_(appeal_scope.grid_places_clause(ctx.sender.area_id))),
    _place_data, schema=PlaceData,
))
ops.register_pull(ops.PullSource(
    "appeal", GRID_WORKER, Appeal,
    lambda ctx, now: select(Appeal).where(
        appeal_scope.worker_cases(ctx.sender.id, ctx.sender.area_id),
        or_(Appeal.status.in_(ACTIVE), Appeal.updated_at >= now - RECENT),
    ),
    _appeal_data, schema=AppealData,
))
ops.register_pull(ops.PullSource(
    "visit", GRID_WORKER, Visit,
    lambda ctx, now: select(Visit).where(Visit.worker_id == ctx.sender.id, Visit.visited_at >= now - RECENT),
    _visit_data, schema=VisitData,
))
ops.register_pull(ops.PullSource("enterprise", GRID_WORKER, Enterprise, _grid_enterprises, _enterprise_data,
                                 prepare=_enterprise_extra, schema=EnterpriseData))
ops.register_pull(ops.PullSource(
    "policy_push", GRID_WORKER, PolicyPush,
    lambda ctx, _now: select(PolicyPush).where(PolicyPush.enterprise_id.in_(_grid_enterprises(ctx, _now).with_only_columns(Enterprise.id))),
    _push_data, schema=PolicyPushData,
))
# Published and withdrawn policies (a withdrawn one is sent so the phone drops it); the phone hides expired ones.
ops.register_pull(ops.PullSource(
    "policy", GRID_WORKER, Policy, lambda _ctx, _now: select(Policy).where(Policy.status != PolicyStatus.DRAFT), _policy_data,
    schema=PolicyData,
))
ops.register_pull(ops.PullSource(
    "conflict", GRID_WORKER, SyncConflict,
    lambda ctx, now: select(SyncConflict).where(
        or_(SyncConflict.user_id == ctx.sender.id, SyncConflict.other_user_id == ctx.sender.id),
        or_(SyncConflict.resolved_at.is_(None), SyncConflict.updated_at >= now - RECENT),
    ),
    _conflict_data, prepare=_conflict_references, schema=ConflictData,
))
