"""The grid worker's field app (F1-F4): phone-first pages that work offline.

Every page here only reads. Every write a field form makes goes through the device's outbox
(pwa/js/outbox.js) to `POST /sync/push`, online or not, so there is one path for all writes. The
server renders what it knows now; the page script then refreshes the lists from the reference data
pulled into IndexedDB (`GET /sync/pull`), which is what the worker sees when the page comes from
the service worker's cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Appeal, CheckInMethod, Elder, ElderHelper, PushOutcome, Role, SubmitterKind
from server.models.appeals import AppealStatus, Evaluation, VisitMethod
from server.models.field import Visit, VisitPurpose, VisitSubject
from server.security import CurrentUser, roles
from server.services import appeal_ledger as ledger
from server.services import appeal_scope, enterprises, morning_signal, places, policies
from server.services.appeal_catalog import CATEGORIES
from server.services.appeal_ledger import AUDIENCE_LABELS, EVALUATION_LABELS, METHOD_LABELS
from server.services.appeal_workflow import OPEN, STATUS_LABELS
from server.services.appeals import utc_now
from server.services.deadlines import TimeLimits
from server.services.places import PLACE_KIND_LABELS
from server.services.policies import OUTCOME_LABELS
from server.services.visits import VISIT_PURPOSE_LABELS, VISIT_SUBJECT_LABELS
from server.settings import Settings
from server.web import current_user, render

FIELD_HOME = "/field"
# Every page the worker must be able to open offline; /field and /grid ask the service worker to keep them.
FIELD_PAGES = [
    FIELD_HOME,
    "/field/visit",
    "/field/return-visit",
    "/field/appeal",
    "/field/appeals/edit",
    "/field/outcomes",
    "/field/signals",
    "/field/outbox",
]
MAX_APPEAL_PHOTOS = 3
FIELD_OUTCOMES = [PushOutcome.APPLIED, PushOutcome.GRANTED, PushOutcome.INELIGIBLE]
ON_BEHALF_METHODS = [CheckInMethod.IN_PERSON, CheckInMethod.PHONE, CheckInMethod.OTHER]


@dataclass(frozen=True)
class GridPlace:
    id: UUID
    name: str
    kind_label: str
    depth: int


@dataclass(frozen=True)
class Subject:
    kind: VisitSubject
    name: str
    last_visit: datetime


def _user(request: Request) -> CurrentUser:
    user = current_user(request)
    assert user is not None  # the guard let a grid worker through
    return user


async def grid_places(session: AsyncSession, user: CurrentUser) -> list[GridPlace]:
    """The worker's grid and every place under it, in tree order."""
    if user.place_id is None:
        return []
    found: list[GridPlace] = []

    def walk(nodes: list[places.PlaceNode], depth: int) -> None:
        for node in nodes:
            found.append(GridPlace(node.place.id, node.place.name, PLACE_KIND_LABELS[node.place.kind], depth))
            walk(node.children, depth + 1)

    walk(await places.place_tree(session, user.place_id), 0)
    return found


SUBJECTS_SHOWN = 12
WORK_ITEMS_SHOWN = 10


async def subjects_of(session: AsyncSession, user: CurrentUser, limit: int = SUBJECTS_SHOWN) -> list[Subject]:
    """The enterprises and households this worker visited most recently (a bounded list at any scale)."""
    last = func.max(Visit.visited_at)
    rows = await session.execute(
        select(Visit.subject_kind, Visit.subject_name, last)
        .where(Visit.worker_id == user.id)
        .group_by(Visit.subject_kind, Visit.subject_name)
        .order_by(last.desc())
        .limit(limit)
    )
    return [Subject(kind, name, at) for kind, name, at in rows]


async def appeals_in_scope(
    session: AsyncSession, user: CurrentUser, statuses: frozenset[AppealStatus], *, editable: bool = False
) -> list[Appeal]:
    """Cases assigned to this worker or created by them (`editable`: every case their phone may edit,
    appeal_scope.worker_cases), in the given states, newest first."""
    scope = appeal_scope.worker_cases(user.id, user.place_id) if editable else appeal_scope.responsible_cases(user.id)
    return list(
        await session.scalars(
            select(Appeal)
            .where(scope, Appeal.status.in_(statuses))
            .order_by(Appeal.received_at.desc())
            .limit(200)
        )
    )


async def todays_visits(session: AsyncSession, user: CurrentUser, limits: TimeLimits, now: datetime) -> list[Visit]:
    local = now.astimezone(limits.tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return list(
        await session.scalars(
            select(Visit)
            .where(Visit.worker_id == user.id, Visit.visited_at >= midnight, Visit.visited_at < midnight + timedelta(days=1))
            .order_by(Visit.visited_at.desc())
        )
    )


def _common(user: CurrentUser, grid: list[GridPlace], **extra: object) -> dict[str, object]:
    return {
        "grid": grid,
        "field_pages": FIELD_PAGES,
        "categories": CATEGORIES,
        "audiences": list(SubmitterKind),
        "audience_labels": AUDIENCE_LABELS,
        "subject_labels": VISIT_SUBJECT_LABELS,
        "purpose_labels": VISIT_PURPOSE_LABELS,
        "evaluation_labels": EVALUATION_LABELS,
        "method_labels": METHOD_LABELS,
        "status_labels": STATUS_LABELS,
        "subjects": list(VisitSubject),
        "purposes": list(VisitPurpose),
        "evaluations": list(Evaluation),
        "methods": list(VisitMethod),
        "max_photos": MAX_APPEAL_PHOTOS,
        "worker_id": str(user.id),
        **extra,
    }


@get(FIELD_HOME, opt=roles(Role.GRID_WORKER))
async def field_home(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Template:
    user = _user(request)
    limits = TimeLimits.from_settings(settings)
    now = utc_now()
    grid = await grid_places(db_session, user)
    return render(
        request,
        "field/home.html",
        **_common(
            user,
            grid,
            grid_root=grid[0] if grid else None,
            my_cases=await ledger.open_cases_of(db_session, limits, now, assignee_id=user.id),
            subject_list=await subjects_of(db_session, user),
            visits_today=await todays_visits(db_session, user, limits, now),
            work=await enterprises.work_list(
                db_session, user.id, appeal_scope.grid_places_clause(user.place_id), policies.local_today(limits.tz, now),
                limit=WORK_ITEMS_SHOWN),
            work_shown=WORK_ITEMS_SHOWN,
            place_names={p.id: p.name for p in grid},
            tz=limits.tz,
        ),
    )


@get("/field/visit", opt=roles(Role.GRID_WORKER))
async def visit_form(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    user = _user(request)
    grid = await grid_places(db_session, user)
    resolved = await appeals_in_scope(db_session, user, frozenset({AppealStatus.RESOLVED}))
    # The grid's enterprises for the picker; the page script refreshes them and lists each one's
    # matching policies from what the phone pulled, so the form works offline.
    mine = await enterprises.of_worker(db_session, user.id, appeal_scope.grid_places_clause(user.place_id))
    return render(request, "field/visit.html", **_common(user, grid, resolved=resolved, enterprise_list=mine))


@get("/field/return-visit", opt=roles(Role.GRID_WORKER))
async def return_visit_form(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    user = _user(request)
    grid = await grid_places(db_session, user)
    resolved = await appeals_in_scope(db_session, user, frozenset({AppealStatus.RESOLVED}))
    return render(request, "field/return_visit.html", **_common(user, grid, resolved=resolved))


@get("/field/appeal", opt=roles(Role.GRID_WORKER))
async def appeal_form(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    user = _user(request)
    grid = await grid_places(db_session, user)
    return render(request, "field/appeal.html", **_common(user, grid))


@get("/field/appeals/edit", opt=roles(Role.GRID_WORKER))
async def appeal_edit_form(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    # The case is chosen by ?id= and filled in by the page script from the reference data, so this
    # page works from the cache for any case the device knows.
    user = _user(request)
    grid = await grid_places(db_session, user)
    open_cases = await appeals_in_scope(db_session, user, OPEN, editable=True)
    return render(request, "field/appeal_edit.html", **_common(user, grid, open_cases=open_cases))


@get("/field/outcomes", opt=roles(Role.GRID_WORKER))
async def outcomes_form(request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]) -> Template:
    """What came of the policies pushed (已申报 / 已获批 / 不符合条件): recorded offline like every field write;
    the page script refreshes the choices from what the phone pulled."""
    user = _user(request)
    grid = await grid_places(db_session, user)
    lines = await enterprises.pushes_of_worker(db_session, user.id, appeal_scope.grid_places_clause(user.place_id))
    return render(request, "field/outcomes.html", **_common(
        user, grid, push_lines=lines, outcome_labels=OUTCOME_LABELS, outcomes=FIELD_OUTCOMES, tz=settings.tz))


@get("/field/signals", opt=roles(Role.GRID_WORKER))
async def signals_form(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    """晨曦信号 in the field app: a signal on behalf of an elder of the worker's chain, offline too (the
    `morning_signal.checkin_for` operation); the list is refreshed from what the phone pulled."""
    user = _user(request)
    grid = await grid_places(db_session, user)
    elders = list(await db_session.scalars(select(Elder).where(Elder.ended_at.is_(None), Elder.id.in_(
        select(ElderHelper.elder_id).where(ElderHelper.user_id == user.id))).order_by(Elder.name)))
    return render(request, "field/signals.html", **_common(user, grid, elders=elders, signal_methods=ON_BEHALF_METHODS,
                                                            signal_method_labels=morning_signal.METHOD_LABELS))


@get("/field/outbox", opt=roles(Role.GRID_WORKER))
async def outbox_page(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    user = _user(request)
    grid = await grid_places(db_session, user)
    return render(request, "field/outbox.html", **_common(user, grid))


@post(["/field/visit", "/field/return-visit", "/field/appeal", "/field/appeals/edit", "/field/outcomes", "/field/signals"], opt=roles(Role.GRID_WORKER), status_code=200)
async def field_form_without_script(request: Request) -> Template:
    """A field form arrives as a plain POST only when the page's script did not start (the outbox
    saves every record instead). Nothing is recorded; what was typed is shown so it is not lost."""
    form = await request.form()
    typed = [(key, str(value)) for key, value in form.multi_items() if key != "_csrf_token" and isinstance(value, str) and value.strip()]
    return render(request, "field/not_started.html", typed=typed, back=request.url.path)


route_handlers = [
    field_home, visit_form, return_visit_form, appeal_form, appeal_edit_form, outcomes_form, signals_form, outbox_page,
    field_form_without_script,
]
