"""Appeals closed loop (A1-A7): intake, every workflow step, time limits and the overdue job. All writes here."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.i18n import N_
from server.models import (
    Appeal,
    AppealChannel,
    AppealEvent,
    AppealPhoto,
    AppealStatus,
    Department,
    Evaluation,
    Place,
    ReturnVisit,
    Role,
    SubmitterKind,
    Summons,
    User,
    VisitMethod,
)
from server.services import notifications
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import STATUS_LABELS, SUBMITTER, Action, Principal, is_allowed, target_of, transition_for
from server.services.deadlines import TimeLimits, Urgency
from server.services.errors import ServiceError
from server.services.photos import MAX_PHOTOS, ProcessedPhoto, save_photo

Clock = Callable[[], datetime]

MIN_DESCRIPTION = 5
MAX_DESCRIPTION = 2000
MAX_NOTE = 2000
PHONE_RE = re.compile(r"^[0-9+\-() ]{5,20}$")
TRACKING_BYTES = 15  # 120 bits, comfortably over the 80 the issue asks for


def utc_now() -> datetime:
    return datetime.now(UTC)


class WorkflowError(ServiceError):
    """An action the transition table (or the case's own state) does not allow."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user, the submitter holding the tracking code, or the system."""

    principal: Principal
    label: str
    user_id: UUID | None = None
    department_id: UUID | None = None

    @classmethod
    def for_user(cls, user: User | Any) -> Actor:
        return cls(principal=user.role, label=user.display_name, user_id=user.id, department_id=getattr(user, "department_id", None))

    @classmethod
    def submitter(cls) -> Actor:
        return cls(principal=SUBMITTER, label=N_("Submitter"))

    @classmethod
    def system(cls) -> Actor:
        return cls(principal="system", label=N_("System"))


@dataclass
class AppealInput:
    channel: AppealChannel
    submitter_kind: SubmitterKind
    category: str
    description: str
    place_id: UUID | None = None
    submitter_name: str | None = None
    submitter_phone: str | None = None
    location_detail: str | None = None
    photos: Sequence[ProcessedPhoto] = field(default_factory=list)  # already processed (photos.process_photos)
    visit_id: UUID | None = None  # collected on this field visit (1+N+1)


def _clean(value: str | None, limit: int) -> str | None:
    value = (value or "").strip()
    return value[:limit] if value else None


MAX_LOCATION = 255


def validate_details(values: dict[str, str | None]) -> list[ServiceError]:
    """The checks of a case's details (description, contact, exact location), for whichever of them
    `values` holds: shared by intake, by edits made in the field, and by staff resolving a conflict."""
    problems: list[ServiceError] = []
    if "description" in values:
        length = len((values["description"] or "").strip())
        if length < MIN_DESCRIPTION:
            problems.append(ServiceError(N_("Please describe the problem in at least %(n)d characters."), field="description", n=MIN_DESCRIPTION))
        elif length > MAX_DESCRIPTION:
            problems.append(ServiceError(N_("Please keep the description under %(n)d characters."), field="description", n=MAX_DESCRIPTION))
    phone = (values.get("submitter_phone") or "").strip()
    if phone and not PHONE_RE.match(phone):
        problems.append(ServiceError(N_("Please enter a valid phone number, or leave it empty."), field="submitter_phone"))
    if len((values.get("submitter_name") or "").strip()) > 64:
        problems.append(ServiceError(N_("Please keep the name under 64 characters."), field="submitter_name"))
    if len((values.get("location_detail") or "").strip()) > MAX_LOCATION:
        problems.append(ServiceError(N_("Please keep the location under 255 characters."), field="location_detail"))
    return problems


def validate_input(data: AppealInput) -> list[ServiceError]:
    """Every problem with the input at once, so the form can show them all."""
    problems: list[ServiceError] = []
    category = BY_CODE.get(data.category)
    if category is None or category.audience is not data.submitter_kind:
        problems.append(ServiceError(N_("Please choose a category."), field="category"))
    # The intake forms cut an over-long location to size (see submit), so it is not checked here.
    problems += validate_details(
        {"description": data.description, "submitter_phone": data.submitter_phone, "submitter_name": data.submitter_name}
    )
    if len(data.photos) > MAX_PHOTOS:
        problems.append(ServiceError(N_("At most %(n)d photos."), field="photos", n=MAX_PHOTOS))
    return problems


class InvalidAppeal(ServiceError):
    def __init__(self, problems: list[ServiceError]) -> None:
        super().__init__(problems[0].message, field=problems[0].field, **problems[0].params)
        self.problems = problems


REFERENCES_KEY = "shanzhi.last_reference"


async def next_reference(session: AsyncSession, now: datetime, tz: Any) -> str:
    """The next free reference of the year. Within one transaction the last number is remembered, so a
    batch of new cases (a phone's sync) asks the database once; forget_references after a rollback."""
    year = now.astimezone(tz).year
    prefix = f"{year}-"
    cache: dict[int, int] = session.sync_session.info.setdefault(REFERENCES_KEY, {})
    if year not in cache:
        last = await session.scalar(
            select(func.max(Appeal.reference)).where(Appeal.reference.like(f"{prefix}%"))
        )
        cache[year] = int(last.split("-")[1]) if last else 0
    cache[year] += 1
    return f"{prefix}{cache[year]:05d}"


def forget_references(session: AsyncSession) -> None:
    """After a rollback (or a clash with another transaction) the remembered numbers may be wrong."""
    session.sync_session.info.pop(REFERENCES_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_references_on_rollback(session: Session, _previous: Any) -> None:
    # Any rollback, a savepoint's included: numbers handed out inside it are free again.
    session.info.pop(REFERENCES_KEY, None)


@event.listens_for(Session, "after_commit")
def _forget_references_on_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(REFERENCES_KEY, None)  # the next transaction asks the database again


async def submit(
    session: AsyncSession,
    data: AppealInput,
    *,
    actor: Actor,
    limits: TimeLimits,
    uploads_dir: Path,
    clock: Clock = utc_now,
    appeal_id: UUID | None = None,
    notify_staff: bool = True,
) -> Appeal:
    """Create a case (A1): validated, photos normalised, deadlines set, staff notified (unless the caller
    sends one notice for a whole batch: notify_staff=False). Returns the new case."""
    problems = validate_input(data)
    if problems:
        raise InvalidAppeal(problems)
    if data.place_id is not None and await session.get(Place, data.place_id) is None:
        raise InvalidAppeal([ServiceError(N_("This place code is unknown."), field="place")])
    stored = [save_photo(photo, uploads_dir) for photo in data.photos]
    now = clock()
    anonymous = not (data.submitter_name or data.submitter_phone)
    for attempt in range(5):
        reference = await next_reference(session, now, limits.tz)
        appeal = Appeal(
            reference=reference,
            tracking_code=secrets.token_urlsafe(TRACKING_BYTES),
            channel=data.channel,
            submitter_kind=data.submitter_kind,
            category=data.category,
            description=data.description.strip(),
            place_id=data.place_id,
            submitter_name=_clean(data.submitter_name, 64),
            submitter_phone=_clean(data.submitter_phone, 32),
            location_detail=_clean(data.location_detail, 255),
            status=AppealStatus.RECEIVED,
            received_at=now,
            response_due_at=limits.response_due(now),
            resolve_due_at=limits.resolve_due(now, complex_case=False),
            visit_id=data.visit_id,
        )
        if appeal_id is not None:
            appeal.id = appeal_id
        try:
            async with session.begin_nested():
                session.add(appeal)
                await session.flush()
            break
        except IntegrityError:
            forget_references(session)  # another transaction took the number: ask the database again
            if attempt == 4:
                raise
    event = _event(appeal, Action.SUBMIT, actor, now, None, AppealStatus.RECEIVED, note=None, data={"anonymous": anonymous})
    session.add(event)
    await session.flush()
    for photo in stored:
        session.add(
            AppealPhoto(
                appeal_id=appeal.id, event_id=event.id, sha256=photo.sha256, media_type=photo.media_type,
                width=photo.width, height=photo.height, size=photo.size,
            )
        )
    await session.flush()
    if notify_staff:
        await notifications.notify(
            session, await notifications.staff_ids(session), kind="new_appeal", text=N_("New appeal %(reference)s"),
            params={"reference": appeal.reference}, dedupe=f"new:{appeal.id}", appeal_id=appeal.id,
        )
    return appeal


def _event(
    appeal: Appeal,
    action: Action,
    actor: Actor,
    at: datetime,
    from_status: AppealStatus | None,
    to_status: AppealStatus | None,
    *,
    note: str | None,
    data: dict[str, Any] | None = None,
    public: bool = True,
    dedupe_key: str | None = None,
) -> AppealEvent:
    return AppealEvent(
        appeal_id=appeal.id, action=action.value, from_status=from_status, to_status=to_status,
        actor_id=actor.user_id, actor_label=actor.label, at=at, note=note, public=public, data=data,
        dedupe_key=dedupe_key,
    )


@dataclass
class ActionInput:
    note: str | None = None
    department_id: UUID | None = None
    assignee_id: UUID | None = None
    department_ids: Sequence[UUID] = ()
    report_by: datetime | None = None
    evaluation: Evaluation | None = None
    method: VisitMethod | None = None
    target_reference: str | None = None
    photos: Sequence[ProcessedPhoto] = ()  # already processed (photos.process_photos)
    visit_id: UUID | None = None  # a return visit made on this field visit


def _require_note(note: str | None, message: str) -> str:
    text = (note or "").strip()
    if not text:
        raise ServiceError(message, field="note")
    if len(text) > MAX_NOTE:
        raise ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE)
    return text


class ScopeError(WorkflowError):
    """The actor's role may take the action, but not on this case (another department's, another worker's)."""


def scope_refusal(appeal: Appeal, action: Action, actor: Actor, *, summoned: bool) -> str | None:
    """Beyond the table: a department acts on its own cases, a grid worker on the cases assigned to them.

    The reason (a msgid) this actor may not act on this case, or None. `summoned`: the actor's
    department was summoned for the case (only asked for a department's report-in)."""
    if actor.principal == Role.DEPARTMENT:
        if action is Action.REPORT_IN:
            return None if summoned else N_("Your department was not summoned for this case.")
        if appeal.department_id is None or appeal.department_id != actor.department_id:
            return N_("This case is not assigned to your department.")
    if actor.principal == Role.GRID_WORKER and action is not Action.COMMENT and appeal.assignee_id != actor.user_id:
        # 1+N+1: the worker who collected a case on a visit makes its return visit (and takes the evaluation).
        collected = appeal.created_by_id is not None and appeal.created_by_id == actor.user_id
        if not (collected and action in {Action.RETURN_VISIT, Action.EVALUATE}):
            return N_("This case is not assigned to you.")
    return None


async def _check_scope(session: AsyncSession, appeal: Appeal, action: Action, actor: Actor) -> None:
    summoned = False
    if actor.principal == Role.DEPARTMENT and action is Action.REPORT_IN:
        summoned = await session.scalar(
            select(Summons.id).where(Summons.appeal_id == appeal.id, Summons.department_id == actor.department_id).limit(1)
        ) is not None
    refusal = scope_refusal(appeal, action, actor, summoned=summoned)
    if refusal is not None:
        raise ScopeError(refusal)


class StaleCase(WorkflowError):
    """The case changed after the user's page showed it: they act on what they can see, not on a guess."""


LOCKED_KEY = "shanzhi.locked_appeals"


async def lock(session: AsyncSession, appeals: Sequence[Appeal] | Sequence[UUID]) -> list[Appeal]:
    """Lock cases for the rest of the transaction and read them again as last committed.

    PostgreSQL: SELECT ... FOR UPDATE, in id order so two transactions locking overlapping sets
    never deadlock; a second writer waits here for the first to commit. SQLite has one writer at a
    time (the write queue of server/db.py), so there the read alone is enough. Cases already locked
    by this transaction are not read again."""
    ids = sorted({a.id if isinstance(a, Appeal) else a for a in appeals})
    held: set[UUID] = session.sync_session.info.setdefault(LOCKED_KEY, set())
    wanted = [i for i in ids if i not in held]
    if wanted:
        await session.execute(
            select(Appeal).where(Appeal.id.in_(wanted)).order_by(Appeal.id).with_for_update()
            .execution_options(populate_existing=True)
        )
        held.update(wanted)
    found = [await session.get(Appeal, i) for i in ids]
    return [a for a in found if a is not None]


@event.listens_for(Session, "after_commit")
def _forget_locks_on_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(LOCKED_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_locks_on_rollback(session: Session, _previous: Any) -> None:
    # Any rollback, a savepoint's included: a lock taken inside a rolled-back savepoint is gone.
    session.info.pop(LOCKED_KEY, None)


async def act(
    session: AsyncSession,
    appeal: Appeal,
    action: Action,
    actor: Actor,
    payload: ActionInput | None = None,
    *,
    limits: TimeLimits,
    uploads_dir: Path | None = None,
    clock: Clock = utc_now,
    seen_version: int | None = None,
) -> AppealEvent:
    """Apply one workflow action to a case, or refuse it with a clear reason and change nothing.

    The case is locked first (see `lock`), so two people acting at once take turns. `seen_version`:
    the version the user's page showed; when someone changed the case since, StaleCase."""
    payload = payload or ActionInput()
    await lock(session, [appeal])
    if seen_version is not None and seen_version != appeal.version:
        raise StaleCase(N_("Someone else updated this case a moment ago. Please look at its current state and try again."))
    if not is_allowed(appeal.status, action, actor.principal):
        if action in {Action.EVALUATE} and appeal.evaluation is not None:
            raise WorkflowError(N_("This case has already been evaluated."))
        raise WorkflowError(
            N_("This action is not possible at the current status: %(status)s."),
            status=STATUS_LABELS[appeal.status],
        )
    await _check_scope(session, appeal, action, actor)
    now = clock()
    before = appeal.status
    after = target_of(before, action)
    note = (payload.note or "").strip() or None
    data: dict[str, Any] = {}
    public = True
    recipients: list[UUID] = []
    message: tuple[str, str] | None = None  # (kind, msgid)

    if action is Action.TRANSFER:
        if payload.department_id is None and payload.assignee_id is None:
            raise ServiceError(N_("Choose a department or a person to transfer to."), field="department_id")
        # Both targets are checked before either is assigned: a refused transfer changes nothing.
        department = await session.get(Department, payload.department_id) if payload.department_id else None
        if payload.department_id is not None and department is None:
            raise ServiceError(N_("Unknown department."), field="department_id")
        assignee = await session.get(User, payload.assignee_id) if payload.assignee_id else None
        if payload.assignee_id is not None and (assignee is None or not assignee.is_active):
            raise ServiceError(N_("Unknown person."), field="assignee_id")
        if department is not None:
            appeal.department_id = department.id
            data["department"] = department.name
            recipients += await notifications.department_user_ids(session, [department.id])
        if assignee is not None:
            appeal.assignee_id = assignee.id
            data["assignee"] = assignee.display_name
            recipients.append(assignee.id)
        message = ("transfer", N_("Case %(reference)s was transferred to you"))
    elif action is Action.WHISTLE:
        if not payload.department_ids:
            raise ServiceError(N_("Choose at least one department to summon."), field="department_ids")
        if payload.report_by is None or payload.report_by <= now:
            raise ServiceError(N_("Choose a report-in deadline in the future."), field="report_by")
        departments = list(await session.scalars(select(Department).where(Department.id.in_(payload.department_ids))))
        if len(departments) != len(set(payload.department_ids)):
            raise ServiceError(N_("Unknown department."), field="department_ids")
        data["departments"] = [d.name for d in departments]
        data["report_by"] = payload.report_by.isoformat()
        if before is AppealStatus.RECEIVED:
            after = AppealStatus.TRANSFERRED
        recipients += await notifications.department_user_ids(session, [d.id for d in departments])
        message = ("summons", N_("Your department is summoned for case %(reference)s"))
    elif action is Action.REPORT_IN:
        note = _require_note(note, N_("Please say what your department will do."))
        summons = await session.scalar(
            select(Summons).where(Summons.appeal_id == appeal.id, Summons.department_id == actor.department_id, Summons.reported_at.is_(None))
        )
        if summons is None:
            raise WorkflowError(N_("Your department has already reported in."))
        summons.reported_at = now
        summons.reported_by_id = actor.user_id
        summons.report_note = note
        data["late"] = now > summons.report_by
    elif action is Action.MARK_COMPLEX:
        note = _require_note(note, N_("Please give the reason the case is complex."))
        if appeal.is_complex:
            raise WorkflowError(N_("This case is already marked as complex."))
        appeal.is_complex = True
        appeal.complex_reason = note
        appeal.resolve_due_at = limits.resolve_due(appeal.received_at, complex_case=True)
        data["resolve_due_at"] = appeal.resolve_due_at.isoformat()
    elif action is Action.RESOLVE:
        note = _require_note(note, N_("Please write how the problem was resolved."))
        appeal.resolution_note = note
        appeal.resolved_at = now
        recipients += await notifications.staff_ids(session)
        message = ("resolved", N_("Case %(reference)s was resolved"))
    elif action is Action.RETURN_VISIT:
        if payload.method is None:
            raise ServiceError(N_("Choose how the return visit was made."), field="method")
        if payload.evaluation is not None and before is not AppealStatus.RESOLVED:
            raise WorkflowError(N_("This case has already been evaluated."))
        session.add(ReturnVisit(appeal_id=appeal.id, visitor_id=actor.user_id, visited_at=now, method=payload.method, note=note, visit_id=payload.visit_id))
        data["method"] = payload.method.value
        if payload.evaluation is not None:
            after = _record_evaluation(appeal, payload.evaluation, note, now)
            data["evaluation"] = payload.evaluation.value
    elif action is Action.EVALUATE:
        if payload.evaluation is None:
            raise ServiceError(N_("Please choose an evaluation."), field="evaluation")
        if note and len(note) > MAX_NOTE:
            raise ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE)
        after = _record_evaluation(appeal, payload.evaluation, note, now)
        data["evaluation"] = payload.evaluation.value
    elif action is Action.CLOSE:
        has_visit = await session.scalar(select(ReturnVisit.id).where(ReturnVisit.appeal_id == appeal.id).limit(1))
        if has_visit is None:
            raise WorkflowError(N_("A case can be closed only after its return visit."))
        appeal.closed_at = now
    elif action is Action.REJECT:
        note = _require_note(note, N_("Please give the reason for not accepting the case."))
        appeal.rejection_reason = note
    elif action is Action.MERGE:
        target = await session.scalar(select(Appeal).where(Appeal.reference == (payload.target_reference or "").strip()))
        if target is None or target.id == appeal.id or target.status is AppealStatus.MERGED:
            raise ServiceError(N_("Enter the reference of another open case."), field="target_reference")
        appeal.merged_into_id = target.id
        data["merged_into"] = target.reference
    elif action is Action.REOPEN:
        note = _require_note(note, N_("Please give the reason for reopening."))
        _reopen(appeal)
        recipients += await _handlers(session, appeal)
        message = ("reopened", N_("Case %(reference)s was reopened"))
    elif action is Action.COMMENT:
        note = _require_note(note, N_("Please write a note."))
        public = False

    if after is AppealStatus.IN_PROGRESS and before in {AppealStatus.RESOLVED, AppealStatus.EVALUATED} and action is not Action.REOPEN:
        # 不满意: the evaluation sent the case back; whoever handles it hears about it.
        recipients += await _handlers(session, appeal)
        message = ("reopened", N_("Case %(reference)s was reopened"))
    if transition_for(action).responds and appeal.first_response_at is None:
        appeal.first_response_at = now
    appeal.status = after
    appeal.version += 1
    event = _event(appeal, action, actor, now, before, after, note=note, data=data or None, public=public)
    session.add(event)
    await session.flush()
    if action is Action.WHISTLE:
        for department_id in dict.fromkeys(payload.department_ids):
            session.add(Summons(appeal_id=appeal.id, department_id=department_id, whistle_event_id=event.id, report_by=payload.report_by))
    if payload.photos and uploads_dir is not None:
        for processed in payload.photos[:MAX_PHOTOS]:
            photo = save_photo(processed, uploads_dir)
            session.add(
                AppealPhoto(appeal_id=appeal.id, event_id=event.id, sha256=photo.sha256, media_type=photo.media_type,
                            width=photo.width, height=photo.height, size=photo.size)
            )
    await session.flush()
    if message and recipients:
        kind, text = message
        await notifications.notify(
            session, [r for r in recipients if r != actor.user_id], kind=kind, text=text,
            params={"reference": appeal.reference}, dedupe=f"{kind}:{event.id}", appeal_id=appeal.id,
        )
    return event


def _record_evaluation(appeal: Appeal, evaluation: Evaluation, comment: str | None, now: datetime) -> AppealStatus:
    appeal.evaluation = evaluation
    appeal.evaluation_comment = comment
    appeal.evaluated_at = now
    if evaluation is Evaluation.UNSATISFIED:
        _reopen(appeal)
        return AppealStatus.IN_PROGRESS
    return AppealStatus.EVALUATED


def _reopen(appeal: Appeal) -> None:
    appeal.reopen_count += 1
    appeal.resolved_at = None
    appeal.resolution_note = None


async def _handlers(session: AsyncSession, appeal: Appeal) -> list[UUID]:
    ids = await notifications.staff_ids(session)
    if appeal.department_id:
        ids += await notifications.department_user_ids(session, [appeal.department_id])
    if appeal.assignee_id:
        ids.append(appeal.assignee_id)
    return ids


async def record_overdue(session: AsyncSession, *, clock: Clock = utc_now) -> int:
    """The time-limit job: record each missed limit once, and tell the people responsible once."""
    now = clock()
    open_statuses = [AppealStatus.RECEIVED, AppealStatus.TRANSFERRED, AppealStatus.IN_PROGRESS]
    late_response = await session.scalars(
        select(Appeal).where(Appeal.first_response_at.is_(None), Appeal.response_due_at < now, Appeal.status.in_(open_statuses))
    )
    late_resolution = await session.scalars(
        select(Appeal).where(Appeal.resolved_at.is_(None), Appeal.resolve_due_at < now, Appeal.status.in_(open_statuses))
    )
    recorded = 0
    for kind, appeals in (("response", list(late_response)), ("resolution", list(late_resolution))):
        for appeal in appeals:
            key = f"overdue:{kind}:{appeal.id}:{appeal.reopen_count}"
            if await session.scalar(select(AppealEvent.id).where(AppealEvent.dedupe_key == key)) is not None:
                continue
            try:
                async with session.begin_nested():
                    session.add(
                        _event(appeal, Action.OVERDUE, Actor.system(), now, appeal.status, appeal.status,
                               note=None, data={"limit": kind}, public=False, dedupe_key=key)
                    )
                    await session.flush()
            except IntegrityError:
                continue  # another worker recorded it first
            recorded += 1
            await notifications.notify(
                session, await _handlers(session, appeal), kind="overdue",
                text=N_("Case %(reference)s is overdue"), params={"reference": appeal.reference},
                dedupe=key, appeal_id=appeal.id,
            )
    return recorded


async def record_due_soon(session: AsyncSession, *, limits: TimeLimits, clock: Clock = utc_now) -> int:
    """Tell the people responsible, once per limit, that a case is about to miss it (即将超时)."""
    now = clock()
    open_cases = await session.scalars(
        select(Appeal).where(
            Appeal.status.in_([AppealStatus.RECEIVED, AppealStatus.TRANSFERRED, AppealStatus.IN_PROGRESS])
        )
    )
    notified = 0
    for appeal in open_cases:
        limits_to_check = [("resolution", appeal.resolved_at, appeal.resolve_due_at)]
        if appeal.first_response_at is None:
            limits_to_check.append(("response", None, appeal.response_due_at))
        for kind, done_at, due in limits_to_check:
            if limits.urgency(appeal.received_at, due, done_at, now) is not Urgency.DUE_SOON:
                continue
            notified += await notifications.notify(
                session, await _handlers(session, appeal), kind="due_soon",
                text=N_("Case %(reference)s is due soon"), params={"reference": appeal.reference},
                dedupe=f"due_soon:{kind}:{appeal.id}:{appeal.reopen_count}", appeal_id=appeal.id,
            )
    return notified


async def get_by_reference(session: AsyncSession, reference: str) -> Appeal | None:
    return await session.scalar(select(Appeal).where(Appeal.reference == reference))


async def get_by_tracking_code(session: AsyncSession, code: str) -> Appeal | None:
    if not code or len(code) > 64:
        return None
    return await session.scalar(select(Appeal).where(Appeal.tracking_code == code))


async def timeline(session: AsyncSession, appeal_id: UUID, *, public_only: bool) -> list[AppealEvent]:
    query = select(AppealEvent).where(AppealEvent.appeal_id == appeal_id)
    if public_only:
        query = query.where(AppealEvent.public.is_(True))
    return list(await session.scalars(query.order_by(AppealEvent.at, AppealEvent.created_at)))


async def summons_of(session: AsyncSession, appeal_id: UUID) -> list[Summons]:
    from sqlalchemy.orm import selectinload

    rows = await session.scalars(
        select(Summons).where(Summons.appeal_id == appeal_id).options(selectinload(Summons.department)).order_by(Summons.created_at)
    )
    return list(rows)


async def photos_of(session: AsyncSession, appeal_id: UUID) -> list[AppealPhoto]:
    return list(await session.scalars(select(AppealPhoto).where(AppealPhoto.appeal_id == appeal_id).order_by(AppealPhoto.created_at)))


async def department_by_code(session: AsyncSession, code: str) -> Department | None:
    return await session.scalar(select(Department).where(Department.code == code.strip().lower()))


async def departments(session: AsyncSession) -> list[Department]:
    return list(await session.scalars(select(Department).order_by(Department.name)))


DEPARTMENTS = [("fgw", "区发改"), ("gxj", "区工信"), ("rsj", "区人社"), ("zjj", "区住建"), ("cgj", "区城管"), ("scjg", "区市场监管")]


async def seed_departments(session: AsyncSession) -> dict[str, Department]:
    """The district departments named in the issue; idempotent."""
    existing = {d.code: d for d in await departments(session)}
    for code, name in DEPARTMENTS:
        if code not in existing:
            existing[code] = Department(code=code, name=name)
            session.add(existing[code])
    await session.flush()
    return existing
