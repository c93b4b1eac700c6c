"""Appeals closed loop (A1-A7): intake, every workflow step, time limits and the overdue job. All writes here."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

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
from server.services.appeal_workflow import (
    OPEN,
    STATUS_LABELS,
    STAFF_SIDE,
    SUBMITTER,
    Action,
    CaseFacts,
    Principal,
    Refusal,
    refusal,
    target_of,
    transition_for,
)
from server.services.deadlines import TimeLimits, Urgency, limit_urgency_clause
from server.services.errors import InvalidInput, ServiceError
from server.services.photos import MAX_PHOTOS, ProcessedPhoto, save_photo

Clock = Callable[[], datetime]

MIN_DESCRIPTION = 5
MAX_DESCRIPTION = 2000
MAX_NOTE = 2000
PHONE_RE = re.compile(r"^[0-9+\-() ]{5,20}$")
TRACKING_BYTES = 15  # 120 bits, comfortably over the 80 the issue asks for

# The query-code SMS as worded before it carried an absolute link: kept for messages queued before then.
QUERY_CODE_BEFORE_LINK = N_("Your case %(reference)s has been received. Query code: %(query_code)s. Enter both on the case tracking page (/track).")


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
        return cls(principal=SUBMITTER, label=SUBMITTER_LABEL)

    @classmethod
    def system(cls) -> Actor:
        return cls(principal="system", label=SYSTEM_LABEL)


SUBMITTER_LABEL = N_("Submitter")
SYSTEM_LABEL = N_("System")
# The only actor labels that are texts of ours (msgids); every other label is a name (data).
ACTOR_MSGIDS = frozenset({SUBMITTER_LABEL, SYSTEM_LABEL})


def actor_text(label: str) -> str:
    """An actor as shown on a timeline: ours translated, a person's or a system's name as it is (data
    never goes through gettext: it would be %-formatted and marked safe)."""
    from server.i18n import gettext

    return gettext(label) if label in ACTOR_MSGIDS else label


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
    event_id: UUID | None = None  # raised at this event (政策直通车, 民生面对面 ...), channel = event


MAX_LOCATION = 255

# The details of a case that may be corrected after intake (in the field, or by staff taking a
# device's value in a conflict), with their labels.
EDITABLE_DETAILS: dict[str, str] = {
    "description": N_("Description"),
    "location_detail": N_("Exact location"),
    "submitter_name": N_("Name"),
    "submitter_phone": N_("Phone"),
}


def normalise_detail(name: str, value: str | None) -> str | None:
    """How a detail is stored: trimmed; an empty optional detail is None (the description is required)."""
    text = (value or "").strip()
    return text if name == "description" else (text or None)


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
    problems += validate_details(
        {
            "description": data.description, "submitter_phone": data.submitter_phone, "submitter_name": data.submitter_name,
            "location_detail": data.location_detail,
        }
    )
    if len(data.photos) > MAX_PHOTOS:
        problems.append(ServiceError(N_("At most %(n)d photos."), field="photos", n=MAX_PHOTOS))
    return problems


class InvalidAppeal(InvalidInput):
    """Every problem with an appeal's input."""


REFERENCES_KEY = "shanzhi.last_reference"


async def next_reference(session: AsyncSession, now: datetime, tz: Any) -> str:
    """The next free reference of the year. Within one transaction the last number is remembered, so a
    batch of new cases (a phone's sync) asks the database once; forget_references after a rollback."""
    year = now.astimezone(tz).year
    prefix = f"{year}-"
    cache: dict[int, int] = session.sync_session.info.setdefault(REFERENCES_KEY, {})
    if year not in cache:
        if session.get_bind().dialect.name == "postgresql":
            # Transactions that number new cases take turns (until commit), as every writer does on
            # SQLite: without this, concurrent pushes pick the same numbers, one waits on the other's
            # unique key and then fails, and the sync engine falls back to one by one (the soak found
            # 18 s batches with 200 phones on two processes).
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFERENCE_LOCK_BASE + year})
        last = await session.scalar(
            select(func.max(Appeal.reference)).where(Appeal.reference.like(f"{prefix}%"))
        )
        cache[year] = int(last.split("-")[1]) if last else 0
    cache[year] += 1
    return f"{prefix}{cache[year]:05d}"


REFERENCE_LOCK_BASE = 0x5348_5A48_0000  # + the year: the advisory lock key of that year's numbering


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
    batched: bool = False,
) -> Appeal:
    """Create a case (A1): validated, photos normalised, deadlines set, staff notified (unless the caller
    sends one notice for a whole batch: notify_staff=False). Returns the new case.

    `batched=True` (a sync push's fast path): ids are given here, nothing is flushed and no savepoint is
    taken; the caller flushes the whole batch once. A reference another transaction took meanwhile then
    fails that flush, and the sync engine applies the batch again one by one (this path, unbatched)."""
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
            version=1,
            reference=reference,
            tracking_code=secrets.token_urlsafe(TRACKING_BYTES),
            query_code=new_query_code(),
            channel=data.channel,
            submitter_kind=data.submitter_kind,
            category=data.category,
            description=data.description.strip(),
            place_id=data.place_id,
            submitter_name=normalise_detail("submitter_name", data.submitter_name),
            submitter_phone=normalise_detail("submitter_phone", data.submitter_phone),
            location_detail=normalise_detail("location_detail", data.location_detail),
            status=AppealStatus.RECEIVED,
            received_at=now,
            response_due_at=limits.response_due(now),
            resolve_due_at=limits.resolve_due(now, complex_case=False),
            visit_id=data.visit_id,
            event_id=data.event_id,
        )
        appeal.id = appeal_id or uuid7()
        if batched:
            session.add(appeal)
            break
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
    event.id = uuid7()
    session.add(event)
    for photo in stored:
        session.add(
            AppealPhoto(
                appeal_id=appeal.id, event_id=event.id, sha256=photo.sha256, media_type=photo.media_type,
                width=photo.width, height=photo.height, size=photo.size,
            )
        )
    if appeal.submitter_phone:
        # The resident left a number: the reference and 查询码 reach them by SMS too (X6 channels). Messages
        # are translated when sent: the wording before the absolute link stays in the catalogs for rows
        # queued before it changed (QUERY_CODE_BEFORE_LINK).
        notifications.text_phone(
            session, appeal.submitter_phone, "query_code",
            N_("Your case %(reference)s has been received. Query code: %(query_code)s. Enter both on the case tracking page (%(track_url)s)."),
            {"reference": appeal.reference, "query_code": appeal.query_code, "track_url": notifications.public_link("/track")},
            appeal_id=appeal.id,
        )
    if not batched:
        await session.flush()
    if notify_staff:
        await notifications.notify(
            session, await notifications.staff_ids(session), kind="new_appeal", text=N_("New appeal %(reference)s"),
            params={"reference": appeal.reference}, dedupe=f"new:{appeal.id}", appeal_id=appeal.id,
        )
    return appeal


QUERY_CODE_DIGITS = 6


def new_query_code() -> str:
    """查询码: uniformly random digits (secrets), e.g. "047318"."""
    return f"{secrets.randbelow(10**QUERY_CODE_DIGITS):0{QUERY_CODE_DIGITS}d}"


async def get_by_reference_and_query_code(session: AsyncSession, reference: str, query_code: str) -> Appeal | None:
    """The case whose reference and 查询码 both match, or None (the caller rate-limits the attempts)."""
    appeal = await get_by_reference(session, reference.strip())
    if appeal is None or appeal.query_code is None:
        return None
    return appeal if hmac.compare_digest(appeal.query_code, query_code.strip()) else None


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
    note_public: bool = False  # the author chose to reply to the submitter (see note_is_public)


# Who reads a note. The submitter's own words and the answers written for them (how the problem
# was resolved, why it was not accepted) are public; a comment is internal; any other note is
# internal unless its author chose to reply to the submitter.
NOTE_ALWAYS_PUBLIC = frozenset({Action.RESOLVE, Action.REJECT})
NOTE_ALWAYS_INTERNAL = frozenset({Action.COMMENT, Action.EDIT, Action.OVERDUE, Action.RECLASSIFY})


def note_is_public(action: Action, actor: Actor, chosen: bool) -> bool:
    if actor.principal == SUBMITTER or action in NOTE_ALWAYS_PUBLIC:
        return True
    if action in NOTE_ALWAYS_INTERNAL:
        return False
    return chosen


def note_choice(action: Action) -> bool:
    """Whether the author of this action's note chooses who reads it (the form offers the choice)."""
    return action not in NOTE_ALWAYS_PUBLIC and action not in NOTE_ALWAYS_INTERNAL


def _require_note(note: str | None, message: str) -> str:
    text = (note or "").strip()
    if not text:
        raise ServiceError(message, field="note")
    if len(text) > MAX_NOTE:
        raise ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE)
    return text


class ScopeError(WorkflowError):
    """The actor's role may take the action, but not on this case (another department's, another worker's)."""


def _summoned_here(actor: Actor) -> bool:
    return actor.principal == Role.DEPARTMENT and actor.department_id is not None


def facts_of(appeal: Appeal, actor: Actor, *, has_return_visit: bool, summons: Sequence[Summons]) -> CaseFacts:
    """What the workflow's guards need, from what is loaded (`summons`: the case's, or at least the
    actor's department's): the one place they are put together, for `act` and for the case page."""
    mine = [s for s in summons if _summoned_here(actor) and s.department_id == actor.department_id]
    return CaseFacts(
        status=appeal.status, department_id=appeal.department_id, assignee_id=appeal.assignee_id,
        created_by_id=appeal.created_by_id, is_complex=appeal.is_complex, evaluation=appeal.evaluation,
        has_return_visit=has_return_visit, summoned=bool(mine), summoned_unreported=any(s.reported_at is None for s in mine),
    )


async def case_facts(session: AsyncSession, appeal: Appeal, actor: Actor) -> CaseFacts:
    """What the workflow's guards need, read once for this case and actor."""
    has_return_visit = await session.scalar(select(ReturnVisit.id).where(ReturnVisit.appeal_id == appeal.id).limit(1)) is not None
    summons: list[Summons] = []
    if _summoned_here(actor):
        summons = list(await session.scalars(
            select(Summons).where(Summons.appeal_id == appeal.id, Summons.department_id == actor.department_id)
        ))
    return facts_of(appeal, actor, has_return_visit=has_return_visit, summons=summons)


def _refuse(found: Refusal) -> WorkflowError:
    return (ScopeError if found.scope else WorkflowError)(found.message, field=found.field, **found.params)


class StaleCase(WorkflowError):
    """The case changed after the user's page showed it: they act on what they can see, not on a guess."""


async def edit_details(
    session: AsyncSession,
    appeal: Appeal,
    values: dict[str, str | None],
    actor: Actor,
    *,
    at: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, tuple[str | None, str | None]]:
    """Correct details of an open case (EDITABLE_DETAILS): checked like intake, stored as intake stores
    them, a new version, an internal timeline entry. Returns {name: (old, new)} of what changed.
    The one write path for details: field edits (sync) and staff taking a device's value."""
    unknown = set(values) - set(EDITABLE_DETAILS)
    if unknown:
        raise ServiceError(N_("This value is not valid."), field=sorted(unknown)[0])
    if appeal.status not in OPEN:
        raise WorkflowError(N_("Only an open case can be edited."))
    problems = validate_details(values)
    if problems:
        raise InvalidAppeal(problems)
    changes: dict[str, tuple[str | None, str | None]] = {}
    for name, value in values.items():
        new = normalise_detail(name, value)
        old = getattr(appeal, name)
        if old != new:
            changes[name] = (old, new)
            setattr(appeal, name, new)
    appeal.version += 1
    session.add(_event(
        appeal, Action.EDIT, actor, max(at, appeal.received_at), appeal.status, appeal.status,
        note=note, data={"fields": sorted(values), **(data or {})}, public=False,
    ))
    return changes


async def reclassify(
    session: AsyncSession,
    appeal: Appeal,
    actor: Actor,
    *,
    category: str,
    place_id: UUID | None,
    clock: Clock = utc_now,
    seen_version: int | None = None,
) -> dict[str, list[str | None]]:
    """Staff correct a case's category (one of its audience's) and place (a general-box case has
    none): a new version and an internal timeline entry with both values before and after. Any
    status: the statistics count the corrected values. Returns what changed."""
    if actor.principal not in STAFF_SIDE:
        raise ScopeError(N_("Your role cannot take this action."))
    await lock_as_seen(session, appeal, seen_version)
    chosen = BY_CODE.get(category)
    if chosen is None or chosen.audience != appeal.submitter_kind:
        raise ServiceError(N_("Choose a category."), field="category")
    place = await session.get(Place, place_id) if place_id else None
    if place_id is not None and place is None:
        raise ServiceError(N_("This place code is unknown."), field="place")
    old_place = await session.get(Place, appeal.place_id) if appeal.place_id else None
    changes: dict[str, list[str | None]] = {}
    if appeal.category != category:
        changes["category"] = [appeal.category, category]
    if appeal.place_id != place_id:
        changes["place"] = [old_place.name if old_place else None, place.name if place else None]
    if not changes:
        raise ServiceError(N_("Nothing was changed."), field="category")
    appeal.category = category
    appeal.place_id = place_id
    appeal.version += 1
    session.add(_event(appeal, Action.RECLASSIFY, actor, clock(), appeal.status, appeal.status, note=None, data=changes, public=False))
    await session.flush()
    return changes


LOCKED_KEY = "shanzhi.locked_appeals"


async def lock_as_seen(session: AsyncSession, appeal: Appeal, seen_version: int | None) -> None:
    """Lock the case (see `lock`); when someone changed it since the user's page showed
    `seen_version`, StaleCase: people act on what they can see, not on a guess."""
    await lock(session, [appeal])
    if seen_version is not None and seen_version != appeal.version:
        raise StaleCase(N_("Someone else updated this case a moment ago. Please look at its current state and try again."))


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
    the version the user's page showed; when someone changed the case since, StaleCase. Who may act
    and when is the transition table's (`appeal_workflow.refusal`); what each action does is its
    handler in STEPS."""
    payload = payload or ActionInput()
    await lock_as_seen(session, appeal, seen_version)
    found = refusal(await case_facts(session, appeal, actor), action, actor, payload)
    if found is not None:
        raise _refuse(found)
    before = appeal.status
    step = Step(session, appeal, actor, payload, clock(), limits, note=(payload.note or "").strip() or None)
    await STEPS[action](step)
    after = target_of(before, action, payload)
    if after is AppealStatus.IN_PROGRESS and before in {AppealStatus.RESOLVED, AppealStatus.EVALUATED} and action is not Action.REOPEN:
        # 不满意: the evaluation sent the case back; whoever handles it hears about it.
        _reopen(appeal)
        step.tell(await _handlers(session, appeal), "reopened", N_("Case %(reference)s was reopened"))
    now = step.now
    if transition_for(action).responds and appeal.first_response_at is None:
        appeal.first_response_at = now
    appeal.status = after
    appeal.version += 1
    event = _event(appeal, action, actor, now, before, after, note=step.note, data=step.data or None, public=step.public)
    event.note_public = step.note is not None and note_is_public(action, actor, payload.note_public)
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
    if step.message and step.recipients:
        kind, text = step.message
        await notifications.notify(
            session, [r for r in step.recipients if r != actor.user_id], kind=kind, text=text,
            params={"reference": appeal.reference}, dedupe=f"{kind}:{event.id}", appeal_id=appeal.id,
        )
    return event


@dataclass
class Step:
    """One action being applied: its inputs, and what its handler decides (timeline data, who hears of it)."""

    session: AsyncSession
    appeal: Appeal
    actor: Actor
    payload: ActionInput
    now: datetime
    limits: TimeLimits
    note: str | None
    data: dict[str, Any] = field(default_factory=dict)
    public: bool = True
    recipients: list[UUID] = field(default_factory=list)
    message: tuple[str, str] | None = None  # (kind, msgid)

    def tell(self, recipients: Sequence[UUID], kind: str, text: str) -> None:
        self.recipients += list(recipients)
        self.message = (kind, text)


async def _transfer(step: Step) -> None:
    payload, session, appeal = step.payload, step.session, step.appeal
    if payload.department_id is None and payload.assignee_id is None:
        raise ServiceError(N_("Choose a department or a person to transfer to."), field="department_id")
    # Both targets are checked before either is assigned: a refused transfer changes nothing.
    department = await session.get(Department, payload.department_id) if payload.department_id else None
    if payload.department_id is not None and department is None:
        raise ServiceError(N_("Unknown department."), field="department_id")
    assignee = await session.get(User, payload.assignee_id) if payload.assignee_id else None
    if payload.assignee_id is not None and (assignee is None or not assignee.is_active):
        raise ServiceError(N_("Unknown person."), field="assignee_id")
    recipients: list[UUID] = []
    if department is not None:
        appeal.department_id = department.id
        step.data["department"] = department.name
        recipients += await notifications.department_user_ids(session, [department.id])
    if assignee is not None:
        appeal.assignee_id = assignee.id
        step.data["assignee"] = assignee.display_name
        recipients.append(assignee.id)
    step.tell(recipients, "transfer", N_("Case %(reference)s was transferred to you"))


async def _accept(step: Step) -> None:
    return None


async def _whistle(step: Step) -> None:
    payload = step.payload
    if not payload.department_ids:
        raise ServiceError(N_("Choose at least one department to summon."), field="department_ids")
    if payload.report_by is None or payload.report_by <= step.now:
        raise ServiceError(N_("Choose a report-in deadline in the future."), field="report_by")
    departments = list(await step.session.scalars(select(Department).where(Department.id.in_(payload.department_ids))))
    if len(departments) != len(set(payload.department_ids)):
        raise ServiceError(N_("Unknown department."), field="department_ids")
    step.data["departments"] = [d.name for d in departments]
    step.data["report_by"] = payload.report_by.isoformat()
    step.tell(
        await notifications.department_user_ids(step.session, [d.id for d in departments]),
        "summons", N_("Your department is summoned for case %(reference)s"),
    )


async def _report_in(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please say what your department will do."))
    summons = await step.session.scalar(
        select(Summons).where(
            Summons.appeal_id == step.appeal.id, Summons.department_id == step.actor.department_id, Summons.reported_at.is_(None)
        )
    )
    assert summons is not None  # the guard checked that the department is summoned and has not reported in
    summons.reported_at = step.now
    summons.reported_by_id = step.actor.user_id
    summons.report_note = step.note
    step.data["late"] = step.now > summons.report_by


async def _mark_complex(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please give the reason the case is complex."))
    appeal = step.appeal
    appeal.is_complex = True
    appeal.complex_reason = step.note
    appeal.resolve_due_at = step.limits.resolve_due(appeal.received_at, complex_case=True)
    step.data["resolve_due_at"] = appeal.resolve_due_at.isoformat()


async def _resolve(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please write how the problem was resolved."))
    step.appeal.resolution_note = step.note
    step.appeal.resolved_at = step.now
    step.tell(await notifications.staff_ids(step.session), "resolved", N_("Case %(reference)s was resolved"))


async def _return_visit(step: Step) -> None:
    payload, appeal = step.payload, step.appeal
    if payload.method is None:
        raise ServiceError(N_("Choose how the return visit was made."), field="method")
    # An evaluation on a case evaluated already is the table's to refuse (its check), before this runs.
    step.session.add(ReturnVisit(
        appeal_id=appeal.id, visitor_id=step.actor.user_id, visited_at=step.now, method=payload.method, note=step.note,
        visit_id=payload.visit_id,
    ))
    step.data["method"] = payload.method.value
    if payload.evaluation is not None:
        _record_evaluation(appeal, payload.evaluation, step.note, step.now, by_resident=False)
        step.data["evaluation"] = payload.evaluation.value


async def _evaluate(step: Step) -> None:
    if step.payload.evaluation is None:
        raise ServiceError(N_("Please choose an evaluation."), field="evaluation")
    if step.note and len(step.note) > MAX_NOTE:
        raise ServiceError(N_("Please keep the note under %(n)d characters."), field="note", n=MAX_NOTE)
    by_resident = step.actor.principal == SUBMITTER
    _record_evaluation(step.appeal, step.payload.evaluation, step.note, step.now, by_resident=by_resident)
    step.data["evaluation"] = step.payload.evaluation.value
    step.data["by"] = "resident" if by_resident else "recorded"


async def _close(step: Step) -> None:
    step.appeal.closed_at = step.now


async def _reject(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please give the reason for not accepting the case."))
    step.appeal.rejection_reason = step.note


async def _merge(step: Step) -> None:
    target = await step.session.scalar(select(Appeal).where(Appeal.reference == (step.payload.target_reference or "").strip()))
    if target is None or target.id == step.appeal.id or target.status is AppealStatus.MERGED:
        raise ServiceError(N_("Enter the reference of another open case."), field="target_reference")
    step.appeal.merged_into_id = target.id
    step.data["merged_into"] = target.reference


async def _reopen_case(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please give the reason for reopening."))
    _reopen(step.appeal)
    step.tell(await _handlers(step.session, step.appeal), "reopened", N_("Case %(reference)s was reopened"))


async def _comment(step: Step) -> None:
    step.note = _require_note(step.note, N_("Please write a note."))
    step.public = False


STEPS: dict[Action, Callable[[Step], Awaitable[None]]] = {
    Action.TRANSFER: _transfer,
    Action.ACCEPT: _accept,
    Action.WHISTLE: _whistle,
    Action.REPORT_IN: _report_in,
    Action.MARK_COMPLEX: _mark_complex,
    Action.RESOLVE: _resolve,
    Action.RETURN_VISIT: _return_visit,
    Action.EVALUATE: _evaluate,
    Action.CLOSE: _close,
    Action.REJECT: _reject,
    Action.MERGE: _merge,
    Action.REOPEN: _reopen_case,
    Action.COMMENT: _comment,
}


def _record_evaluation(appeal: Appeal, evaluation: Evaluation, comment: str | None, now: datetime, *, by_resident: bool) -> None:
    """Who gave it is kept apart (the metrics count the two sources separately); the latest counts.
    One recorded for the resident (at a return visit, or by staff) is taken only while the case is
    not evaluated yet (the table's guards), and the resident may change theirs until the case is
    closed, so the resident's own prevails. Where the case goes next (不满意: back to be handled) is
    the transition table's target."""
    if by_resident:
        appeal.resident_evaluation = evaluation
    else:
        appeal.visit_evaluation = evaluation
    appeal.evaluation = evaluation
    appeal.evaluation_comment = comment
    appeal.evaluated_at = now


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
    """The time-limit job: record each missed limit once, and tell the people responsible once.

    Set-wise (issue 11): one query per limit for the late cases, one lookup of the keys already
    recorded, the new events in one savepoint (one per event only when another worker wrote some of
    them first), and the notices through `notify_many`: a backlog of thousands costs seconds, not minutes."""
    now = clock()
    open_statuses = [AppealStatus.RECEIVED, AppealStatus.TRANSFERRED, AppealStatus.IN_PROGRESS]
    late = {
        "response": and_(Appeal.first_response_at.is_(None), Appeal.response_due_at < now),
        "resolution": and_(Appeal.resolved_at.is_(None), Appeal.resolve_due_at < now),
    }
    # Keys from two plain columns; case objects only for the limits not recorded yet (most late cases
    # were recorded by an earlier run, and loading them all each minute would hold the event loop).
    candidates: list[tuple[str, str, UUID]] = []
    for kind, condition in late.items():
        rows = await session.execute(
            select(Appeal.id, Appeal.reopen_count).where(condition, Appeal.status.in_(open_statuses)).order_by(Appeal.id)
        )
        candidates += [(f"overdue:{kind}:{appeal_id}:{reopen}", kind, appeal_id) for appeal_id, reopen in rows]
    done = await notifications.values_present(session, AppealEvent.dedupe_key, [key for key, _kind, _id in candidates])
    new_ids = list(dict.fromkeys(appeal_id for key, _kind, appeal_id in candidates if key not in done))
    loaded: dict[UUID, Appeal] = {}
    for i in range(0, len(new_ids), notifications.KEYS_PER_QUERY):
        chunk = new_ids[i : i + notifications.KEYS_PER_QUERY]
        loaded.update({a.id: a for a in await session.scalars(select(Appeal).where(Appeal.id.in_(chunk)))})
    todo = [(key, kind, loaded[appeal_id]) for key, kind, appeal_id in candidates if key not in done]

    def event_for(key: str, kind: str, appeal: Appeal) -> AppealEvent:
        return _event(appeal, Action.OVERDUE, Actor.system(), now, appeal.status, appeal.status,
                      note=None, data={"limit": kind}, public=False, dedupe_key=key)

    recorded: list[tuple[str, str, Appeal]] = []
    try:
        async with session.begin_nested():
            session.add_all([event_for(*entry) for entry in todo])
            await session.flush()
        recorded = todo
    except IntegrityError:
        for entry in todo:  # another worker recorded some of them first
            try:
                async with session.begin_nested():
                    session.add(event_for(*entry))
                    await session.flush()
            except IntegrityError:
                continue
            recorded.append(entry)
    notices = [
        notifications.Notice(
            tuple(await _handlers(session, appeal)), "overdue", N_("Case %(reference)s is overdue"), key, appeal.id,
            {"reference": appeal.reference},
        )
        for key, _kind, appeal in recorded
    ]
    await notifications.notify_many(session, notices)
    return len(recorded)


async def record_due_soon(session: AsyncSession, *, limits: TimeLimits, clock: Clock = utc_now) -> int:
    """Tell the people responsible, once per limit, that a case is about to miss it (即将超时).

    The database picks the cases whose limit is due soon (the rule of `TimeLimits.urgency` as SQL), so
    a run costs the due-soon cases, not every open case (issue 11)."""
    now = clock()
    open_now = Appeal.status.in_([AppealStatus.RECEIVED, AppealStatus.TRANSFERRED, AppealStatus.IN_PROGRESS])
    due_soon = {
        "response": and_(
            Appeal.first_response_at.is_(None),
            limit_urgency_clause(Urgency.DUE_SOON, limits, now, start=Appeal.received_at, due=Appeal.response_due_at),
        ),
        "resolution": and_(
            Appeal.resolved_at.is_(None),
            limit_urgency_clause(Urgency.DUE_SOON, limits, now, start=Appeal.received_at, due=Appeal.resolve_due_at),
        ),
    }
    notices: list[notifications.Notice] = []
    for kind, condition in due_soon.items():
        for appeal in await session.scalars(select(Appeal).where(open_now, condition).order_by(Appeal.id)):
            notices.append(
                notifications.Notice(
                    tuple(await _handlers(session, appeal)), "due_soon", N_("Case %(reference)s is due soon"),
                    f"due_soon:{kind}:{appeal.id}:{appeal.reopen_count}", appeal.id, {"reference": appeal.reference},
                )
            )
    return await notifications.notify_many(session, notices)


# Statements built once: building a select() costs more Python than running it for the one-case pages
# (the tracking page is public and the most visited), and the compiled form is cached by SQLAlchemy anyway.
_BY_REFERENCE = select(Appeal).where(Appeal.reference == bindparam("reference"))
_BY_TRACKING_CODE = select(Appeal).where(Appeal.tracking_code == bindparam("code"))
_TIMELINE = select(AppealEvent).where(AppealEvent.appeal_id == bindparam("appeal_id")).order_by(AppealEvent.at, AppealEvent.created_at)
_PUBLIC_TIMELINE = (
    select(AppealEvent)
    .where(AppealEvent.appeal_id == bindparam("appeal_id"), AppealEvent.public.is_(True))
    .order_by(AppealEvent.at, AppealEvent.created_at)
)
_PHOTOS = select(AppealPhoto).where(AppealPhoto.appeal_id == bindparam("appeal_id")).order_by(AppealPhoto.created_at)


async def get_by_reference(session: AsyncSession, reference: str) -> Appeal | None:
    return await session.scalar(_BY_REFERENCE, {"reference": reference})


async def get_by_tracking_code(session: AsyncSession, code: str) -> Appeal | None:
    if not code or len(code) > 64:
        return None
    return await session.scalar(_BY_TRACKING_CODE, {"code": code})


async def timeline(session: AsyncSession, appeal_id: UUID, *, public_only: bool) -> list[AppealEvent]:
    return list(await session.scalars(_PUBLIC_TIMELINE if public_only else _TIMELINE, {"appeal_id": appeal_id}))


async def summons_of(session: AsyncSession, appeal_id: UUID) -> list[Summons]:
    from sqlalchemy.orm import selectinload

    rows = await session.scalars(
        select(Summons).where(Summons.appeal_id == appeal_id).options(selectinload(Summons.department)).order_by(Summons.created_at)
    )
    return list(rows)


async def photos_of(session: AsyncSession, appeal_id: UUID) -> list[AppealPhoto]:
    return list(await session.scalars(_PHOTOS, {"appeal_id": appeal_id}))


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
