"""The appeals ledger (落实台账, A7): who sees which cases, filters and pages, deadlines as shown, case files,
the actions a viewer may take, and the appeal parts of the role homes. Read-only: writes go through appeals.act."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import ColumnElement, and_, case, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext
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
    Visit,
    VisitMethod,
)
from server.services import appeal_scope, appeals, places
from server.services.appeal_catalog import BY_CODE
from server.services.appeal_workflow import OPEN, Action, available
from server.services.deadlines import TimeLimits, Urgency, in_date_range, limit_urgency_clause

PAGE_SIZE = 50
# Roles that read every case; departments see their own and the ones they are summoned for,
# grid workers the ones assigned to them or registered by them.
SEES_ALL = frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})
# Supervisors (监督员) watch the work; they have no reason to phone the submitter.
SEES_PHONE = frozenset({Role.ADMIN, Role.STAFF, Role.DEPARTMENT, Role.GRID_WORKER})
ASSIGNABLE_ROLES = (Role.STAFF, Role.GRID_WORKER, Role.ADMIN)
DEADLINE_FILTERS = (Urgency.DUE_SOON, Urgency.OVERDUE)

URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ON_TRACK: N_("On track"),
    Urgency.DUE_SOON: N_("Due soon"),
    Urgency.OVERDUE: N_("Overdue"),
    Urgency.MET: N_("Done on time"),
    Urgency.MISSED: N_("Done late"),
}
URGENCY_BADGES: dict[Urgency, str] = {
    Urgency.ON_TRACK: "badge",
    Urgency.DUE_SOON: "badge badge-warning",
    Urgency.OVERDUE: "badge badge-danger",
    Urgency.MET: "badge badge-success",
    Urgency.MISSED: "badge",
}
LIMIT_LABELS = {"response": N_("Response"), "resolution": N_("Resolution")}
CHANNEL_LABELS: dict[AppealChannel, str] = {
    AppealChannel.SUGGESTION_BOX: N_("Online suggestion box"),
    AppealChannel.QR: N_("Place QR code"),
    AppealChannel.HOTLINE: N_("12345 hotline"),
    AppealChannel.EVENT: N_("Event"),
    AppealChannel.VISIT: N_("Grid worker visit"),
    AppealChannel.OPEN311: N_("Open311"),
}

AUDIENCE_LABELS: dict[SubmitterKind, str] = {SubmitterKind.ENTERPRISE: N_("Enterprise"), SubmitterKind.RESIDENT: N_("Resident")}
EVALUATION_LABELS: dict[Evaluation, str] = {
    Evaluation.SATISFIED: N_("Satisfied"),
    Evaluation.BASICALLY_SATISFIED: N_("Basically satisfied"),
    Evaluation.UNSATISFIED: N_("Unsatisfied"),
}
METHOD_LABELS: dict[VisitMethod, str] = {VisitMethod.IN_PERSON: N_("In person"), VisitMethod.PHONE: N_("By phone")}


@dataclass(frozen=True)
class Viewer:
    role: Role
    user_id: UUID
    department_id: UUID | None = None
    place_id: UUID | None = None  # a grid worker's grid

    @classmethod
    def of(cls, user: Any) -> Viewer:
        return cls(user.role, user.id, getattr(user, "department_id", None), getattr(user, "place_id", None))

    @property
    def sees_phone(self) -> bool:
        return self.role in SEES_PHONE


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """The cases this viewer may read, as a WHERE condition."""
    if viewer.role in SEES_ALL:
        return true()
    if viewer.role is Role.DEPARTMENT and viewer.department_id is not None:
        summoned = select(Summons.appeal_id).where(Summons.department_id == viewer.department_id)
        return or_(Appeal.department_id == viewer.department_id, Appeal.id.in_(summoned))
    if viewer.role is Role.GRID_WORKER:
        return appeal_scope.worker_cases(viewer.user_id, viewer.place_id)
    return false()


async def can_view(session: AsyncSession, appeal: Appeal, viewer: Viewer) -> bool:
    found = await session.scalar(select(Appeal.id).where(Appeal.id == appeal.id, visible_clause(viewer)))
    return found is not None


# --- Deadlines as shown on every list and case page (A3) -------------------------------------------


def duration_text(span: timedelta) -> str:
    minutes = int(abs(span.total_seconds()) // 60)
    days, hours, minutes = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return gettext("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    return gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


@dataclass(frozen=True)
class DeadlineState:
    limit: str  # "response" or "resolution"
    urgency: Urgency
    due: datetime
    left: timedelta  # negative once overdue

    @property
    def label(self) -> str:
        return URGENCY_LABELS[self.urgency]

    @property
    def limit_label(self) -> str:
        return LIMIT_LABELS[self.limit]

    @property
    def badge_class(self) -> str:
        return URGENCY_BADGES[self.urgency]

    def time_text(self) -> str:
        """'3 d 4 h left' or '5 h 10 min overdue' while the clock runs; empty once done."""
        if self.urgency is Urgency.OVERDUE:
            return gettext("%(duration)s overdue") % {"duration": duration_text(self.left)}
        if self.urgency in {Urgency.ON_TRACK, Urgency.DUE_SOON}:
            return gettext("%(duration)s left") % {"duration": duration_text(self.left)}
        return ""


def limit_state(appeal: Appeal, limit: str, limits: TimeLimits, now: datetime) -> DeadlineState:
    due, done = (
        (appeal.response_due_at, appeal.first_response_at) if limit == "response" else (appeal.resolve_due_at, appeal.resolved_at)
    )
    return DeadlineState(limit, limits.urgency(appeal.received_at, due, done, now), due, due - now)


def deadline_state(appeal: Appeal, limits: TimeLimits, now: datetime) -> DeadlineState | None:
    """The limit that matters now: the response while nobody has responded, then the resolution."""
    if appeal.status in OPEN:
        return limit_state(appeal, "response" if appeal.first_response_at is None else "resolution", limits, now)
    if appeal.resolved_at is not None:
        return limit_state(appeal, "resolution", limits, now)
    return None


def open_urgency_clause(wanted: Urgency, limits: TimeLimits, now: datetime) -> ColumnElement[bool]:
    """`deadline_state(...).urgency is wanted` for an open case, as SQL: the response limit while nobody
    has responded, then the resolution limit (a test holds the two forms equal)."""
    due = case((Appeal.first_response_at.is_(None), Appeal.response_due_at), else_=Appeal.resolve_due_at)
    return limit_urgency_clause(wanted, limits, now, start=Appeal.received_at, due=due)


# --- Filters and pages ------------------------------------------------------------------------------


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _date(value: str) -> date | None:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if in_date_range(day) else None


MAX_SEARCH = 100
REFERENCE_SEARCH = re.compile(r"^\d{4}-\d{1,}$")
PHONE_SEARCH = re.compile(r"^[\d\s+-]{7,}$")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_clause(q: str, viewer: Viewer) -> ColumnElement[bool]:
    """A case number (2026-00042, or its start), a phone number (only for those who see phones) or
    words of the description (each word must appear)."""
    if REFERENCE_SEARCH.match(q):
        return Appeal.reference.startswith(q, autoescape=True)
    if PHONE_SEARCH.match(q) and viewer.sees_phone:
        digits = re.sub(r"\D", "", q)
        return func.replace(func.replace(Appeal.submitter_phone, " ", ""), "-", "").like(_like(digits), escape="\\")
    return and_(*[Appeal.description.like(_like(word), escape="\\") for word in q.split()])


@dataclass(frozen=True)
class LedgerFilter:
    status: str = ""  # "", "open" or an AppealStatus value
    category: str = ""
    channel: str = ""
    department_id: UUID | None = None
    place_id: UUID | None = None
    deadline: str = ""  # "", "due_soon" or "overdue"
    received_from: date | None = None
    received_to: date | None = None
    q: str = ""  # a case number, a phone number (for those who see phones) or words of the description

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> LedgerFilter:
        """From query parameters; values that name nothing are dropped, so the form shows what applies."""
        status = params.get("status", "")
        channel = params.get("channel", "")
        deadline = params.get("deadline", "")
        return cls(
            status=status if status == "open" or status in AppealStatus._value2member_map_ else "",
            category=params.get("category", "") if params.get("category", "") in BY_CODE else "",
            channel=channel if channel in AppealChannel._value2member_map_ else "",
            department_id=_uuid(params.get("department", "")),
            place_id=_uuid(params.get("place", "")),
            deadline=deadline if deadline in {u.value for u in DEADLINE_FILTERS} else "",
            received_from=_date(params.get("from", "")),
            received_to=_date(params.get("to", "")),
            q=" ".join(params.get("q", "").split())[:MAX_SEARCH],
        )

    def params(self) -> dict[str, str]:
        values = {
            "status": self.status,
            "category": self.category,
            "channel": self.channel,
            "department": str(self.department_id or ""),
            "place": str(self.place_id or ""),
            "deadline": self.deadline,
            "from": self.received_from.isoformat() if self.received_from else "",
            "to": self.received_to.isoformat() if self.received_to else "",
            "q": self.q,
        }
        return {key: value for key, value in values.items() if value}

    def query_string(self, **extra: object) -> str:
        return urlencode({**self.params(), **{k: str(v) for k, v in extra.items()}})


@dataclass(frozen=True)
class LedgerRow:
    appeal: Appeal
    place_name: str | None
    department_name: str | None
    deadline: DeadlineState | None


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    total: int
    page: int
    pages: int


def _local_midnight(day: date, limits: TimeLimits) -> datetime:
    return datetime.combine(day, time(0), tzinfo=limits.tz)


async def place_subtree_ids(session: AsyncSession, place_id: UUID) -> list[UUID]:
    ids: list[UUID] = []

    def walk(nodes: Sequence[places.PlaceNode]) -> None:
        for node in nodes:
            ids.append(node.place.id)
            walk(node.children)

    walk(await places.place_tree(session, place_id))
    return ids


async def _conditions(
    session: AsyncSession, f: LedgerFilter, viewer: Viewer, limits: TimeLimits, now: datetime
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [visible_clause(viewer)]
    if f.status == "open":
        conditions.append(Appeal.status.in_(OPEN))
    elif f.status:
        conditions.append(Appeal.status == AppealStatus(f.status))
    if f.category:
        conditions.append(Appeal.category == f.category)
    if f.channel:
        conditions.append(Appeal.channel == AppealChannel(f.channel))
    if f.department_id:
        conditions.append(Appeal.department_id == f.department_id)
    if f.place_id:
        conditions.append(Appeal.place_id.in_(await place_subtree_ids(session, f.place_id)))
    if f.received_from:
        conditions.append(Appeal.received_at >= _local_midnight(f.received_from, limits))
    if f.received_to:
        conditions.append(Appeal.received_at < _local_midnight(f.received_to + timedelta(days=1), limits))
    if f.deadline:
        conditions += [Appeal.status.in_(OPEN), open_urgency_clause(Urgency(f.deadline), limits, now)]
    if f.q:
        conditions.append(search_clause(f.q, viewer))
    return conditions


def _rows_query(conditions: Sequence[ColumnElement[bool]]) -> Any:
    return (
        select(Appeal, Place.name, Department.name)
        .outerjoin(Place, Place.id == Appeal.place_id)
        .outerjoin(Department, Department.id == Appeal.department_id)
        .where(*conditions)
        .order_by(Appeal.received_at.desc(), Appeal.reference.desc())
    )


def _to_rows(result: Any, limits: TimeLimits, now: datetime) -> list[LedgerRow]:
    return [LedgerRow(a, place, dept, deadline_state(a, limits, now)) for a, place, dept in result.all()]


async def ledger_page(
    session: AsyncSession, f: LedgerFilter, viewer: Viewer, limits: TimeLimits, now: datetime, page: int = 1
) -> LedgerPage:
    conditions = await _conditions(session, f, viewer, limits, now)
    total = await session.scalar(select(func.count()).select_from(Appeal).where(*conditions)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    result = await session.execute(_rows_query(conditions).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return LedgerPage(_to_rows(result, limits, now), total, page, pages)


async def ledger_rows(session: AsyncSession, f: LedgerFilter, viewer: Viewer, limits: TimeLimits, now: datetime) -> list[LedgerRow]:
    """Every matching case, for the CSV export."""
    conditions = await _conditions(session, f, viewer, limits, now)
    return _to_rows(await session.execute(_rows_query(conditions)), limits, now)


# --- Choices for forms ------------------------------------------------------------------------------


async def place_options(session: AsyncSession) -> list[tuple[Place, int]]:
    """Every place with its depth in the tree, in tree order (for an indented select)."""
    options: list[tuple[Place, int]] = []

    def walk(nodes: Sequence[places.PlaceNode], depth: int) -> None:
        for node in nodes:
            options.append((node.place, depth))
            walk(node.children, depth + 1)

    walk(await places.place_tree(session), 0)
    return options


async def assignable_people(session: AsyncSession) -> list[User]:
    rows = await session.scalars(
        select(User).where(User.role.in_(ASSIGNABLE_ROLES), User.is_active.is_(True)).order_by(User.role, User.display_name)
    )
    return list(rows)


async def has_photo(session: AsyncSession, appeal: Appeal, sha256: str) -> bool:
    found = await session.scalar(select(AppealPhoto.id).where(AppealPhoto.appeal_id == appeal.id, AppealPhoto.sha256 == sha256).limit(1))
    return found is not None


async def user_names(session: AsyncSession, ids: Sequence[UUID | None]) -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))).tuples().all())


# --- One case, as its detail page shows it ----------------------------------------------------------


@dataclass(frozen=True)
class SummonsView:
    summons: Summons
    reporter: str | None
    late: bool  # reported after the deadline, or not reported and the deadline has passed


@dataclass
class CaseFile:
    appeal: Appeal
    place: Place | None
    department: Department | None
    assignee: str | None
    merged_into: str | None
    events: list[AppealEvent]
    photos: list[AppealPhoto]
    summons: list[SummonsView]
    return_visits: list[tuple[ReturnVisit, str | None]]
    response: DeadlineState
    resolution: DeadlineState | None
    actions: list[Action] = field(default_factory=list)
    # The field visit (走访) that collected the case, and who made it (1+N+1).
    visit: Visit | None = None
    visit_worker: str | None = None


async def case_file(session: AsyncSession, appeal: Appeal, actor: appeals.Actor, limits: TimeLimits, now: datetime) -> CaseFile:
    summons = await appeals.summons_of(session, appeal.id)
    visits = list(await session.scalars(select(ReturnVisit).where(ReturnVisit.appeal_id == appeal.id).order_by(ReturnVisit.visited_at)))
    names = await user_names(session, [appeal.assignee_id, *(s.reported_by_id for s in summons), *(v.visitor_id for v in visits)])
    merged_into = (
        await session.scalar(select(Appeal.reference).where(Appeal.id == appeal.merged_into_id)) if appeal.merged_into_id else None
    )
    file = CaseFile(
        appeal=appeal,
        place=await session.get(Place, appeal.place_id) if appeal.place_id else None,
        department=await session.get(Department, appeal.department_id) if appeal.department_id else None,
        assignee=names.get(appeal.assignee_id) if appeal.assignee_id else None,
        merged_into=merged_into,
        events=await appeals.timeline(session, appeal.id, public_only=False),
        photos=await appeals.photos_of(session, appeal.id),
        summons=[SummonsView(s, names.get(s.reported_by_id) if s.reported_by_id else None, (s.reported_at or now) > s.report_by) for s in summons],
        return_visits=[(v, names.get(v.visitor_id) if v.visitor_id else None) for v in visits],
        response=limit_state(appeal, "response", limits, now),
        resolution=None if appeal.status in {AppealStatus.REJECTED, AppealStatus.MERGED} else limit_state(appeal, "resolution", limits, now),
    )
    # The same table and guards `appeals.act` checks: the page offers exactly what would be accepted.
    file.actions = available(appeals.facts_of(appeal, actor, has_return_visit=bool(visits), summons=summons), actor)
    if appeal.visit_id:
        file.visit = await session.get(Visit, appeal.visit_id)
        if file.visit is not None and file.visit.worker_id:
            file.visit_worker = (await user_names(session, [file.visit.worker_id])).get(file.visit.worker_id)
    return file


# --- Role homes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineCounts:
    open: int
    due_soon: int
    overdue: int


async def deadline_counts(session: AsyncSession, viewer: Viewer, limits: TimeLimits, now: datetime) -> DeadlineCounts:
    """Open, due-soon and overdue cases the viewer sees: one aggregate in the database (issue 11), not a
    scan of every open case in Python."""
    due_soon, overdue = (open_urgency_clause(u, limits, now) for u in (Urgency.DUE_SOON, Urgency.OVERDUE))
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(case((due_soon, 1), else_=0)), 0), func.coalesce(func.sum(case((overdue, 1), else_=0)), 0))
            .select_from(Appeal)
            .where(visible_clause(viewer), Appeal.status.in_(OPEN))
        )
    ).one()
    return DeadlineCounts(int(row[0]), int(row[1]), int(row[2]))


HOME_CASES = 30  # a home page lists this many open cases, most urgent first; the ledger has the rest


@dataclass(frozen=True)
class CaseList:
    rows: list[LedgerRow]
    total: int  # all open cases of the owner, listed or not

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


async def open_cases_of(
    session: AsyncSession, limits: TimeLimits, now: datetime, *, department_id: UUID | None = None,
    assignee_id: UUID | None = None, limit: int = HOME_CASES,
) -> CaseList:
    """Open cases assigned to a department or to a person, the `limit` most urgent (nearest running
    limit) first, and how many there are: a home page stays the same size however many cases pile up."""
    owner = Appeal.department_id == department_id if department_id else Appeal.assignee_id == assignee_id
    conditions = [owner, Appeal.status.in_(OPEN)]
    total = await session.scalar(select(func.count()).select_from(Appeal).where(*conditions)) or 0
    running_due = case((Appeal.first_response_at.is_(None), Appeal.response_due_at), else_=Appeal.resolve_due_at)
    query = _rows_query(conditions).order_by(None).order_by(running_due, Appeal.reference).limit(limit)
    return CaseList(_to_rows(await session.execute(query), limits, now), int(total))


@dataclass(frozen=True)
class PendingSummons:
    summons: Summons
    reference: str
    late: bool


async def pending_summons(session: AsyncSession, department_id: UUID, now: datetime) -> list[PendingSummons]:
    """Summons of this department that still await its report-in, on cases that are still open."""
    rows = await session.execute(
        select(Summons, Appeal.reference)
        .join(Appeal, Appeal.id == Summons.appeal_id)
        .where(Summons.department_id == department_id, Summons.reported_at.is_(None), Appeal.status.in_(OPEN))
        .order_by(Summons.report_by)
    )
    return [PendingSummons(s, reference, now > s.report_by) for s, reference in rows.tuples().all()]
