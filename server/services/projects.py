"""Livelihood projects (民生清单, L1): the rules and every write. docs/boards.md, "Livelihood projects".

- Progress is computed from the milestones when a project has them (done / all, rounded down, in whole
  percent); without milestones it is the figure staff set; an accepted project is 100 %.
- Status moves by the one table `TRANSITIONS` (staff, through an update, which is the trace). Nobody
  sets 已验收 by hand: asking for acceptance snapshots the required signers (the users with role
  resident_rep or building_head whose place is the project's compound, active at that moment) as a new
  round, each signs from their own session, and the last required signature accepts the project.
- A sign-off by anyone else is refused with a clear error and writes nothing; signing twice changes nothing.
- Resident comments are public only once staff approve them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import (
    CommentStatus,
    Place,
    PlaceKind,
    Project,
    ProjectComment,
    ProjectKind,
    ProjectMilestone,
    ProjectSignoff,
    ProjectStatus,
    ProjectUpdate,
    PropertyDisclosure,
    PropertyMonth,
    Role,
    User,
)
from server.models.places import LEAF_KINDS
from server.services import boards, overview
from server.services.errors import InvalidInput, ServiceError
from server.services.shared_cache import watch
from server.services.photos import process_photos, save_photo

# The public project and property pages (routes/projects.py) are shared between visitors until a commit
# writes one of these (docs/performance.md, "Shared public pages").
PAGES_TOPIC = "projects_pages"
for _model in (Project, ProjectMilestone, ProjectUpdate, ProjectComment, ProjectSignoff, Place, PropertyDisclosure, PropertyMonth):
    watch(_model, PAGES_TOPIC)

KIND_LABELS: dict[ProjectKind, str] = {
    ProjectKind.OLD_COMPOUND_RENOVATION: N_("Old compound renovation"),  # 老旧小区改造
    ProjectKind.ELEVATOR_RENEWAL: N_("Elevator renewal"),  # 电梯更新
    ProjectKind.ELEVATOR_RETROFIT: N_("Elevator retrofit"),  # 加装电梯
    ProjectKind.PROPERTY_TRIAL: N_("Property management trial period pledge"),  # 物业"试用期"承诺
    ProjectKind.PARKING: N_("Parking space planning"),  # 停车位规划
    ProjectKind.FACILITY_REPAIR: N_("Public facility repair"),  # 公共设施维修
    ProjectKind.OTHER: N_("Other"),
}
STATUS_LABELS: dict[ProjectStatus, str] = {
    ProjectStatus.PLANNED: N_("Planned"),
    ProjectStatus.IN_PROGRESS: N_("Works under way"),  # 实施中
    ProjectStatus.AWAITING_ACCEPTANCE: N_("Awaiting acceptance"),
    ProjectStatus.ACCEPTED: N_("Accepted"),  # 已验收
    ProjectStatus.SUSPENDED: N_("Suspended"),
}
COMMENT_STATUS_LABELS: dict[CommentStatus, str] = {
    CommentStatus.PENDING: N_("Waiting for review"),
    CommentStatus.APPROVED: N_("Public"),
    CommentStatus.REJECTED: N_("Not published"),
}
SIGNER_ROLES = (Role.RESIDENT_REP, Role.BUILDING_HEAD)
SIGNER_ROLE_LABELS = {Role.RESIDENT_REP.value: N_("Resident representative"), Role.BUILDING_HEAD.value: N_("Building head")}
# Signed-in roles that see the responsible people's phone numbers (the public never does).
PHONE_ROLES = frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.BUILDING_HEAD, Role.RESIDENT_REP})
# Signed-in roles that see who must sign an acceptance (the signers' names); the public sees only their roles,
# how many have signed and when.
SIGNER_NAME_ROLES = PHONE_ROLES
# Staff move a project along this table; ACCEPTED is reached only by the last required signature.
TRANSITIONS: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    ProjectStatus.PLANNED: frozenset({ProjectStatus.IN_PROGRESS, ProjectStatus.SUSPENDED}),
    ProjectStatus.IN_PROGRESS: frozenset({ProjectStatus.AWAITING_ACCEPTANCE, ProjectStatus.SUSPENDED}),
    ProjectStatus.SUSPENDED: frozenset({ProjectStatus.PLANNED, ProjectStatus.IN_PROGRESS}),
    ProjectStatus.AWAITING_ACCEPTANCE: frozenset({ProjectStatus.IN_PROGRESS}),  # reopened: the round's signatures lapse
    ProjectStatus.ACCEPTED: frozenset(),
}
ACTIVE = (ProjectStatus.PLANNED, ProjectStatus.IN_PROGRESS, ProjectStatus.AWAITING_ACCEPTANCE)
MAX_TITLE = 120
MAX_TEXT = 4000
MAX_RESPONSIBLE = 10
MAX_MILESTONES = 30
MAX_UPDATE = 2000
MAX_UPDATE_PHOTOS = 6
MAX_COMMENT = 500
MAX_COMMENT_NAME = 30
PAGE_SIZE = 30
PROJECT_PLACE_KINDS = LEAF_KINDS  # a compound, or the park / street the project serves


class InvalidProject(InvalidInput):
    pass


class SignoffRefused(ServiceError):
    pass


# --- Progress -------------------------------------------------------------------------------------------


def progress(status: ProjectStatus, done: int, total: int, manual: int) -> int:
    """Whole percent: from the milestones when there are any (rounded down: 2 of 3 is 66), else staff's figure."""
    if status is ProjectStatus.ACCEPTED:
        return 100
    if total > 0:
        return math.floor(100 * done / total)
    return max(0, min(100, manual))


async def milestone_counts(session: AsyncSession, project_ids: Sequence[UUID]) -> dict[UUID, tuple[int, int]]:
    """{project id: (done, all)} for the projects that have milestones."""
    if not project_ids:
        return {}
    rows = await session.execute(
        select(ProjectMilestone.project_id, func.count(ProjectMilestone.done_on), func.count())
        .where(ProjectMilestone.project_id.in_(list(project_ids))).group_by(ProjectMilestone.project_id)
    )
    return {pid: (int(done), int(total)) for pid, done, total in rows.all()}


async def progress_of(session: AsyncSession, projects: Sequence[Project]) -> dict[UUID, int]:
    counts = await milestone_counts(session, [p.id for p in projects])
    return {p.id: progress(p.status, *counts.get(p.id, (0, 0)), p.manual_progress) for p in projects}


# --- Creating and editing ---------------------------------------------------------------------------------


@dataclass
class ProjectInput:
    title: str = ""
    kind: str = ""
    place_id: UUID | None = None
    description: str = ""
    supervision: str = ""
    responsible: list[tuple[str, str, str]] = field(default_factory=list)  # (name, role, phone)
    planned_start: date | None = None
    planned_end: date | None = None
    manual_progress: str = ""


async def save_project(session: AsyncSession, data: ProjectInput, project: Project | None = None, *, now: datetime) -> Project:
    problems: list[ServiceError] = []
    title = data.title.strip()
    if not title:
        problems.append(ServiceError(N_("Please enter the project's name."), field="title"))
    elif len(title) > MAX_TITLE:
        problems.append(ServiceError(N_("Please keep the name under %(n)d characters."), field="title", n=MAX_TITLE))
    if data.kind not in {k.value for k in ProjectKind}:
        problems.append(ServiceError(N_("Please choose one of the options."), field="kind"))
    place = await session.get(Place, data.place_id) if data.place_id else None
    if place is None or place.kind not in PROJECT_PLACE_KINDS:
        problems.append(ServiceError(N_("Please choose the compound (or other place) the project is for."), field="place_id"))
    elif project is not None and project.place_id != place.id and project.status is ProjectStatus.AWAITING_ACCEPTANCE:
        problems.append(ServiceError(N_("The compound cannot change while the project awaits acceptance."), field="place_id"))
    for name, text in (("description", data.description), ("supervision", data.supervision)):
        if len(text) > MAX_TEXT:
            problems.append(ServiceError(N_("Please keep this under %(n)d characters."), field=name, n=MAX_TEXT))
    if not data.supervision.strip():
        problems.append(ServiceError(N_("Please say how the project is supervised (who checks it, and how)."), field="supervision"))
    people = [(n.strip(), r.strip(), p.strip()) for n, r, p in data.responsible if n.strip() or r.strip() or p.strip()]
    if not people:
        problems.append(ServiceError(N_("Please name at least one responsible person and their role."), field="responsible"))
    elif len(people) > MAX_RESPONSIBLE:
        problems.append(ServiceError(N_("At most %(n)d responsible people."), field="responsible", n=MAX_RESPONSIBLE))
    elif any(not n or not r for n, r, _p in people):
        problems.append(ServiceError(N_("Each responsible person needs a name and a role."), field="responsible"))
    elif any(len(n) > 60 or len(r) > 60 or len(p) > 32 for n, r, p in people):
        problems.append(ServiceError(N_("A name, role or phone number is too long."), field="responsible"))
    if data.planned_start and data.planned_end and data.planned_end < data.planned_start:
        problems.append(ServiceError(N_("The planned end is before the planned start."), field="planned_end"))
    manual = 0
    if data.manual_progress.strip():
        try:
            manual = int(data.manual_progress.strip().rstrip("%"))
        except ValueError:
            manual = -1
        if not 0 <= manual <= 100:
            problems.append(ServiceError(N_("Please enter the progress as a whole number from 0 to 100."), field="manual_progress"))
    if problems:
        raise InvalidProject(problems)
    assert place is not None
    if project is None:
        project = Project(status=ProjectStatus.PLANNED, last_activity_at=now, version=1)
        session.add(project)
    else:
        await lock(session, project.id)
        project.version += 1
    project.title, project.kind, project.place_id = title, ProjectKind(data.kind), place.id
    project.description, project.supervision = data.description.strip(), data.supervision.strip()
    project.responsible = [{"name": n, "role": r, "phone": p} for n, r, p in people]
    project.planned_start, project.planned_end, project.manual_progress = data.planned_start, data.planned_end, manual
    project.last_activity_at = now
    await session.flush()
    return project


async def lock(session: AsyncSession, project_id: UUID) -> Project:
    """The project, locked for the rest of the transaction (PostgreSQL: FOR UPDATE; on SQLite the write
    queue already serialises writers) and read again as last committed."""
    project = await session.scalar(
        select(Project).where(Project.id == project_id).with_for_update().execution_options(populate_existing=True)
    )
    if project is None:
        raise ServiceError(N_("This project does not exist."))
    return project


# --- Milestones -------------------------------------------------------------------------------------------


async def milestones(session: AsyncSession, project_id: UUID) -> list[ProjectMilestone]:
    return list(await session.scalars(
        select(ProjectMilestone).where(ProjectMilestone.project_id == project_id)
        .order_by(ProjectMilestone.position, ProjectMilestone.created_at)
    ))


def _check_done_on(done_on: date | None, today: date, problems: list[ServiceError]) -> None:
    if done_on is not None and done_on > today:
        problems.append(ServiceError(N_("A milestone cannot be done on a day still to come."), field="done_on"))


async def add_milestone(session: AsyncSession, project: Project, *, title: str, due_on: date | None, done_on: date | None,
                        now: datetime, tz: ZoneInfo) -> ProjectMilestone:
    problems: list[ServiceError] = []
    text = title.strip()
    if not text:
        problems.append(ServiceError(N_("Please name the milestone."), field="title"))
    elif len(text) > MAX_TITLE:
        problems.append(ServiceError(N_("Please keep the name under %(n)d characters."), field="title", n=MAX_TITLE))
    _check_done_on(done_on, now.astimezone(tz).date(), problems)
    project = await lock(session, project.id)
    if project.status is ProjectStatus.ACCEPTED:
        problems.append(ServiceError(N_("This project has been accepted; it no longer changes.")))
    count = int(await session.scalar(select(func.count()).where(ProjectMilestone.project_id == project.id)) or 0)
    if count >= MAX_MILESTONES:
        problems.append(ServiceError(N_("A project keeps at most %(n)d milestones."), field="title", n=MAX_MILESTONES))
    if problems:
        raise InvalidProject(problems)
    milestone = ProjectMilestone(project_id=project.id, position=count + 1, title=text, due_on=due_on, done_on=done_on)
    session.add(milestone)
    project.last_activity_at, project.version = now, project.version + 1
    await session.flush()
    return milestone


async def set_milestone(session: AsyncSession, milestone: ProjectMilestone, *, done_on: date | None, now: datetime,
                        tz: ZoneInfo) -> ProjectMilestone:
    """Mark a milestone done on a day (or not done again)."""
    problems: list[ServiceError] = []
    _check_done_on(done_on, now.astimezone(tz).date(), problems)
    project = await lock(session, milestone.project_id)
    if project.status is ProjectStatus.ACCEPTED:
        problems.append(ServiceError(N_("This project has been accepted; it no longer changes.")))
    if problems:
        raise InvalidProject(problems)
    milestone.done_on = done_on
    project.last_activity_at, project.version = now, project.version + 1
    await session.flush()
    return milestone


# --- Updates and the status -------------------------------------------------------------------------------


async def required_signers(session: AsyncSession, place_id: UUID) -> list[User]:
    """The compound's resident representatives and building heads with an active account."""
    return list(await session.scalars(
        select(User).where(User.place_id == place_id, User.role.in_(SIGNER_ROLES), User.is_active.is_(True))
        .order_by(User.role, User.display_name)
    ))


async def post_update(session: AsyncSession, project: Project, *, body: str, status: str = "", photos: Sequence[bytes] = (),
                      uploads_dir: Path, author_id: UUID | None, now: datetime) -> ProjectUpdate:
    """A progress report (text and/or photos), optionally moving the status along TRANSITIONS. Asking for
    acceptance snapshots the required signers as a new round; reopening lets that round lapse."""
    problems: list[ServiceError] = []
    text = body.strip()
    project = await lock(session, project.id)
    target: ProjectStatus | None = None
    if status and status != project.status.value:
        try:
            target = ProjectStatus(status)
        except ValueError:
            target = None
            problems.append(ServiceError(N_("Please choose one of the options."), field="status"))
        if target is ProjectStatus.ACCEPTED:
            problems.append(ServiceError(
                N_("A project is accepted only when every required resident representative and building head has signed."), field="status"))
        elif target is not None and target not in TRANSITIONS[project.status]:
            problems.append(ServiceError(N_("A project that is %(status)s cannot become %(target)s."), field="status",
                                         status=STATUS_LABELS[project.status], target=STATUS_LABELS[target]))
    if project.status is ProjectStatus.ACCEPTED:
        problems.append(ServiceError(N_("This project has been accepted; it no longer changes.")))
    if not text and not photos and target is None:
        problems.append(ServiceError(N_("Please write the update, add photos or change the status."), field="body"))
    elif len(text) > MAX_UPDATE:
        problems.append(ServiceError(N_("Please keep the update under %(n)d characters."), field="body", n=MAX_UPDATE))
    if len(photos) > MAX_UPDATE_PHOTOS:
        problems.append(ServiceError(N_("An update keeps at most %(n)d photos."), field="photos", n=MAX_UPDATE_PHOTOS))
    signers: list[User] = []
    if target is ProjectStatus.AWAITING_ACCEPTANCE and not problems:
        signers = await required_signers(session, project.place_id)
        if not signers:
            problems.append(ServiceError(
                N_("This compound has no resident representative or building head with an account, so nobody could sign the "
                   "acceptance. Create their accounts (with this compound as their area) first."), field="status"))
    if problems:
        raise InvalidProject(problems)
    stored: list[str] = []
    if photos:
        try:
            processed = await process_photos(list(photos))
        except ServiceError as error:
            raise InvalidProject([ServiceError(error.message, field="photos", **error.params)]) from error
        for photo in processed:
            sha = save_photo(photo, uploads_dir).sha256
            if sha not in stored:
                stored.append(sha)
    if target is not None:
        project.status = target
        if target is ProjectStatus.AWAITING_ACCEPTANCE:
            project.acceptance_round += 1
            project.acceptance_requested_at = now
            for user in signers:
                session.add(ProjectSignoff(project_id=project.id, round=project.acceptance_round, user_id=user.id,
                                           signer_name=user.display_name, signer_role=user.role.value))
        elif project.acceptance_requested_at is not None and target is ProjectStatus.IN_PROGRESS:
            project.acceptance_requested_at = None  # the open round lapses; a new request starts a new one
    update = ProjectUpdate(project_id=project.id, posted_at=now, body=text, status=target, photos=stored, author_id=author_id)
    session.add(update)
    project.last_activity_at, project.version = now, project.version + 1
    await session.flush()
    return update


async def updates(session: AsyncSession, project_id: UUID) -> list[ProjectUpdate]:
    return list(await session.scalars(
        select(ProjectUpdate).where(ProjectUpdate.project_id == project_id).order_by(ProjectUpdate.posted_at.desc()).limit(100)
    ))


# --- Acceptance -------------------------------------------------------------------------------------------


async def signoffs(session: AsyncSession, project: Project) -> list[ProjectSignoff]:
    """The required signatures of the current acceptance round (none before acceptance is asked for)."""
    if project.acceptance_round == 0:
        return []
    return list(await session.scalars(
        select(ProjectSignoff).where(ProjectSignoff.project_id == project.id, ProjectSignoff.round == project.acceptance_round)
        .order_by(ProjectSignoff.signer_role, ProjectSignoff.signer_name)
    ))


@dataclass(frozen=True)
class SignResult:
    signoff: ProjectSignoff
    already: bool  # signed before: nothing changed
    accepted: bool  # this signature was the last one


async def sign_off(session: AsyncSession, project_id: UUID, *, user_id: UUID, now: datetime) -> SignResult:
    """The user's signature on the project's acceptance. Refused (nothing written) unless the user is one
    of the round's required signers; a second signature by the same person changes nothing."""
    project = await lock(session, project_id)
    place = await session.get(Place, project.place_id)
    place_name = place.name if place else ""
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.role not in SIGNER_ROLES or user.place_id != project.place_id:
        raise SignoffRefused(N_("Only the resident representatives and building heads of %(place)s sign off this project."),
                             place=place_name)
    if project.acceptance_round == 0 or project.status not in (ProjectStatus.AWAITING_ACCEPTANCE, ProjectStatus.ACCEPTED):
        raise SignoffRefused(N_("This project is not waiting for acceptance."))
    row = await session.scalar(select(ProjectSignoff).where(
        ProjectSignoff.project_id == project.id, ProjectSignoff.round == project.acceptance_round, ProjectSignoff.user_id == user_id))
    if row is None:
        raise SignoffRefused(N_("You were not among the signers of %(place)s when acceptance was requested; ask the subdistrict staff."),
                             place=place_name)
    if row.signed_at is not None:
        return SignResult(row, already=True, accepted=False)
    if project.status is not ProjectStatus.AWAITING_ACCEPTANCE:
        raise SignoffRefused(N_("This project is not waiting for acceptance."))
    row.signed_at = now
    await session.flush()
    missing = int(await session.scalar(select(func.count()).where(
        ProjectSignoff.project_id == project.id, ProjectSignoff.round == project.acceptance_round, ProjectSignoff.signed_at.is_(None)
    )) or 0)
    accepted = missing == 0
    if accepted:
        project.status, project.accepted_at = ProjectStatus.ACCEPTED, now
        session.add(ProjectUpdate(project_id=project.id, posted_at=now, body="", status=ProjectStatus.ACCEPTED, photos=[], author_id=None))
    project.last_activity_at, project.version = now, project.version + 1
    await session.flush()
    return SignResult(row, already=False, accepted=accepted)


async def awaiting_signature_of(session: AsyncSession, user_id: UUID, limit: int = 20) -> list[Project]:
    """Projects waiting for this user's signature (the current round, not signed yet)."""
    return list(await session.scalars(
        select(Project).join(ProjectSignoff, (ProjectSignoff.project_id == Project.id) & (ProjectSignoff.round == Project.acceptance_round))
        .where(ProjectSignoff.user_id == user_id, ProjectSignoff.signed_at.is_(None), Project.status == ProjectStatus.AWAITING_ACCEPTANCE)
        .order_by(Project.acceptance_requested_at).limit(limit)
    ))


# --- Comments ---------------------------------------------------------------------------------------------


async def post_comment(session: AsyncSession, project: Project, *, name: str, body: str, now: datetime) -> ProjectComment:
    problems: list[ServiceError] = []
    text, author = body.strip(), name.strip()
    if not text:
        problems.append(ServiceError(N_("Please write your comment."), field="body"))
    elif len(text) > MAX_COMMENT:
        problems.append(ServiceError(N_("Please keep the comment under %(n)d characters."), field="body", n=MAX_COMMENT))
    if len(author) > MAX_COMMENT_NAME:
        problems.append(ServiceError(N_("Please keep the name under %(n)d characters."), field="name", n=MAX_COMMENT_NAME))
    if problems:
        raise InvalidProject(problems)
    comment = ProjectComment(project_id=project.id, posted_at=now, author_name=author or None, body=text, status=CommentStatus.PENDING)
    session.add(comment)
    await session.flush()
    return comment


async def moderate(session: AsyncSession, comment: ProjectComment, *, approve: bool, actor_id: UUID | None, now: datetime) -> ProjectComment:
    comment.status = CommentStatus.APPROVED if approve else CommentStatus.REJECTED
    comment.moderated_at, comment.moderated_by_id = now, actor_id
    await session.flush()
    return comment


async def approved_comments(session: AsyncSession, project_id: UUID) -> list[ProjectComment]:
    return list(await session.scalars(
        select(ProjectComment).where(ProjectComment.project_id == project_id, ProjectComment.status == CommentStatus.APPROVED)
        .order_by(ProjectComment.posted_at).limit(200)
    ))


async def comment_queue(session: AsyncSession, *, status: CommentStatus = CommentStatus.PENDING, page: int = 1) -> tuple[list[tuple[ProjectComment, str]], int]:
    """Comments of one status (oldest pending first) with their project's title, and how many there are."""
    total = int(await session.scalar(select(func.count()).select_from(ProjectComment).where(ProjectComment.status == status)) or 0)
    order = ProjectComment.posted_at if status is CommentStatus.PENDING else ProjectComment.posted_at.desc()
    rows = await session.execute(
        select(ProjectComment, Project.title).join(Project, Project.id == ProjectComment.project_id)
        .where(ProjectComment.status == status).order_by(order).offset((max(1, page) - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    )
    return [(c, t) for c, t in rows.all()], total


async def pending_counts(session: AsyncSession) -> dict[UUID, int]:
    rows = await session.execute(select(ProjectComment.project_id, func.count()).where(
        ProjectComment.status == CommentStatus.PENDING).group_by(ProjectComment.project_id))
    return {k: int(v) for k, v in rows.all()}


# --- Lists ------------------------------------------------------------------------------------------------


@dataclass
class ProjectPage:
    rows: list[Project]
    total: int
    page: int
    pages: int
    progress: dict[UUID, int]
    place_names: dict[UUID, str]


async def place_names(session: AsyncSession, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    return dict((await session.execute(select(Place.id, Place.name).where(Place.id.in_(ids)))).all())  # type: ignore[arg-type]


async def list_projects(session: AsyncSession, *, kind: str = "", status: str = "", place_id: UUID | None = None,
                        page: int = 1, page_size: int = PAGE_SIZE) -> ProjectPage:
    query = select(Project)
    if kind in {k.value for k in ProjectKind}:
        query = query.where(Project.kind == ProjectKind(kind))
    if status in {s.value for s in ProjectStatus}:
        query = query.where(Project.status == ProjectStatus(status))
    if place_id is not None:
        query = query.where(Project.place_id == place_id)
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    # Active first (in the workflow's order), then the rest; the latest activity first within each.
    order = case({s: n for n, s in enumerate(
        (ProjectStatus.AWAITING_ACCEPTANCE, ProjectStatus.IN_PROGRESS, ProjectStatus.PLANNED, ProjectStatus.SUSPENDED, ProjectStatus.ACCEPTED)
    )}, value=Project.status)
    rows = list(await session.scalars(query.order_by(order, Project.last_activity_at.desc(), Project.id)
                                      .offset((page - 1) * page_size).limit(page_size)))
    return ProjectPage(rows, total, page, pages, await progress_of(session, rows), await place_names(session, {p.place_id for p in rows}))


async def project_places(session: AsyncSession) -> list[Place]:
    """The places a project may be for: residential compounds first, then parks, buildings and streets."""
    order = case({PlaceKind.RESIDENTIAL_COMPOUND: 0}, value=Place.kind, else_=1)
    return list(await session.scalars(select(Place).where(Place.kind.in_(PROJECT_PLACE_KINDS)).order_by(order, Place.name)))


# --- Export (X5) ------------------------------------------------------------------------------------------

EXPORT_HEADER = (N_("Project"), N_("Type"), N_("Compound"), N_("Status"), N_("Progress (%)"), N_("Planned start"),
                 N_("Planned end"), N_("Responsible people"), N_("Supervision"), N_("Milestones done"), N_("Milestones"),
                 N_("Signatures"), N_("Signatures required"), N_("Accepted at"), N_("Last activity"))


async def export_rows(session: AsyncSession, tz: ZoneInfo, translate: Any) -> list[list[Any]]:
    """One row per project (names and roles of the responsible people, never their phones)."""
    projects = list(await session.scalars(select(Project).order_by(Project.created_at)))
    counts = await milestone_counts(session, [p.id for p in projects])
    names = await place_names(session, {p.place_id for p in projects})
    sig = await session.execute(
        select(ProjectSignoff.project_id, func.count(ProjectSignoff.signed_at), func.count())
        .join(Project, (Project.id == ProjectSignoff.project_id) & (Project.acceptance_round == ProjectSignoff.round))
        .group_by(ProjectSignoff.project_id)
    )
    signatures = {pid: (int(s), int(n)) for pid, s, n in sig.all()}

    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    rows = []
    for p in projects:
        done, total = counts.get(p.id, (0, 0))
        signed, required = signatures.get(p.id, (0, 0))
        rows.append([
            p.title, translate(KIND_LABELS[p.kind]), names.get(p.place_id, ""), translate(STATUS_LABELS[p.status]),
            progress(p.status, done, total, p.manual_progress), p.planned_start or "", p.planned_end or "",
            "; ".join(f"{r.get('name', '')} ({r.get('role', '')})" for r in p.responsible or []), p.supervision,
            done, total, signed, required, local(p.accepted_at), local(p.last_activity_at),
        ])
    return rows


# --- The board and the overview (public: counts, titles, progress; never phones or commenters) ---------

BOARD_ACTIVE_LIMIT = 12
BOARD_RECENT_LIMIT = 6


@boards.board("projects", N_("Livelihood projects"), Project, ProjectMilestone, ProjectUpdate, ProjectSignoff)
async def projects_board(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    by_status = dict((await session.execute(select(Project.status, func.count()).group_by(Project.status))).all())
    counts = [(s, STATUS_LABELS[s], int(by_status.get(s, 0))) for s in ProjectStatus]
    active = list(await session.scalars(
        select(Project).where(Project.status == ProjectStatus.IN_PROGRESS)
        .order_by(Project.last_activity_at.desc(), Project.id).limit(BOARD_ACTIVE_LIMIT)
    ))
    active_total = int(by_status.get(ProjectStatus.IN_PROGRESS, 0))
    awaiting = list(await session.scalars(
        select(Project).where(Project.status == ProjectStatus.AWAITING_ACCEPTANCE).order_by(Project.acceptance_requested_at, Project.id)
        .limit(BOARD_ACTIVE_LIMIT)
    ))
    signatures: dict[UUID, tuple[int, int]] = {}
    if awaiting:
        rows = await session.execute(
            select(ProjectSignoff.project_id, func.count(ProjectSignoff.signed_at), func.count())
            .join(Project, (Project.id == ProjectSignoff.project_id) & (Project.acceptance_round == ProjectSignoff.round))
            .where(ProjectSignoff.project_id.in_([p.id for p in awaiting])).group_by(ProjectSignoff.project_id)
        )
        signatures = {pid: (int(s), int(n)) for pid, s, n in rows.all()}
    recent_rows = (await session.execute(
        select(ProjectUpdate.posted_at, ProjectUpdate.status, Project.id, Project.title, Project.place_id)
        .join(Project, Project.id == ProjectUpdate.project_id)
        .order_by(ProjectUpdate.posted_at.desc(), ProjectUpdate.id.desc()).limit(BOARD_RECENT_LIMIT)
    )).all()
    shown = [*active, *awaiting]
    names = await place_names(session, {p.place_id for p in shown} | {r.place_id for r in recent_rows})
    percent = await progress_of(session, shown)
    return {
        "total": sum(c for _s, _l, c in counts),
        "counts": counts,
        "active": [{"id": p.id, "title": p.title, "place": names.get(p.place_id, ""), "kind": KIND_LABELS[p.kind],
                    "progress": percent[p.id], "planned_end": p.planned_end} for p in active],
        "active_more": max(0, active_total - len(active)),
        "awaiting": [{"id": p.id, "title": p.title, "place": names.get(p.place_id, ""), "signed": signatures.get(p.id, (0, 0))[0],
                      "required": signatures.get(p.id, (0, 0))[1], "requested_at": p.acceptance_requested_at} for p in awaiting],
        "recent": [{"id": r.id, "title": r.title, "place": names.get(r.place_id, ""), "at": r.posted_at,
                    "status": STATUS_LABELS[r.status] if r.status else None} for r in recent_rows],
    }


@overview.contributes(Project)
async def project_figures(session: AsyncSession, now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """`projects`: every livelihood project listed; `projects_completed`: the accepted ones (已验收)."""
    row = (await session.execute(select(
        func.count(), func.coalesce(func.sum(case((Project.status == ProjectStatus.ACCEPTED, 1), else_=0)), 0)
    ).select_from(Project))).one()
    return {"projects": int(row[0]), "projects_completed": int(row[1])}
