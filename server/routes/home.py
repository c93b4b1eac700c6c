"""Landing pages: `/` sends each user to their role's home; each role's home shows what exists for it today."""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import LEAF_KINDS, Department, Place, PlaceKind, Role
from server.routes.field import FIELD_PAGES
from server.security import STAFF_SIDE, CurrentUser, public, roles
from server.services import accounts, places
from server.services import appeal_ledger as ledger
from server.services.accounts import ROLE_LABELS
from server.services.appeals import utc_now
from server.services.deadlines import TimeLimits
from server.services.places import PLACE_KIND_LABELS
from server.settings import Settings
from server.routes.stats import TEMPLATE_HELPERS, overview_figures, public_figures, summary_figures
from server.web import ROLE_HOME, current_user, redirect, render


@get("/", opt=public())
async def index(request: Request, settings: NamedDependency[Settings]) -> Redirect | Template:
    """The front door: residents and enterprises find the suggestion box, their case and the public
    figures; staff sign in from a small link. A signed-in user goes on to their role's home."""
    user = current_user(request)
    if user:
        return redirect(ROLE_HOME[user.role])
    stats, _recent = await summary_figures(request, settings)
    return render(request, "home/public.html", stats=stats, overview=await overview_figures(request, settings), **TEMPLATE_HELPERS)


async def _appeal_overview(
    request: Request, db_session: AsyncSession, user: CurrentUser, settings: Settings
) -> dict[str, object]:
    """The appeals part of a role's home: counts for staff, summons and cases for a department, a worker's cases."""
    limits = TimeLimits.from_settings(settings)
    now = utc_now()
    if user.role in STAFF_SIDE:
        viewer = ledger.Viewer.of(user)
        if viewer.role not in ledger.SEES_ALL:
            return {"appeal_counts": await ledger.deadline_counts(db_session, viewer, limits, now)}

        async def counts(session: AsyncSession) -> ledger.DeadlineCounts:
            return await ledger.deadline_counts(session, viewer, limits, utc_now())

        # Everyone who sees every case sees the same three numbers: computed once, shared a few seconds.
        return {"appeal_counts": await public_figures(request).get("deadline_counts:all", counts)}
    if user.role is Role.DEPARTMENT and user.department_id:
        return {
            "department": await db_session.get(Department, user.department_id),
            "summons_waiting": await ledger.pending_summons(db_session, user.department_id, now),
            "department_cases": await ledger.open_cases_of(db_session, limits, now, department_id=user.department_id),
            "tz": limits.tz,
        }
    if user.role is Role.GRID_WORKER:
        return {
            "my_cases": await ledger.open_cases_of(db_session, limits, now, assignee_id=user.id),
            "field_pages": FIELD_PAGES,
        }
    return {}


async def _home(request: Request, db_session: AsyncSession, settings: Settings, **extra: object) -> Template:
    user = current_user(request)
    assert user is not None  # the guard let a signed-in user through
    extra.update(await _appeal_overview(request, db_session, user, settings))
    scope_place = await db_session.get(Place, user.place_id) if user.place_id else None
    subtree = await places.place_tree(db_session, scope_place.id) if scope_place else []
    return render(
        request,
        "home/role.html",
        role_label=ROLE_LABELS[user.role],
        scope_place=scope_place,
        subtree=subtree,
        kind_labels=PLACE_KIND_LABELS,
        PlaceKind=PlaceKind,
        leaf_kinds=sorted(LEAF_KINDS),
        **extra,
    )


@get("/admin", opt=roles(Role.ADMIN))
async def admin_home(
    request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Template:
    users = await accounts.list_users(db_session)
    return await _home(request, db_session, settings, users=users, role_labels=ROLE_LABELS)


def _role_home(role: Role) -> HTTPRouteHandler:
    """A role's landing page at ROLE_HOME[role], open to that role only."""

    @get(ROLE_HOME[role], opt=roles(role), name=f"home-{role.value}")
    async def role_home(
        request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> Template:
        return await _home(request, db_session, settings)

    return role_home


@get("/places", opt=roles(*STAFF_SIDE, Role.SUPERVISOR))
async def place_list(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    return render(
        request,
        "places/tree.html",
        tree=await places.place_tree(db_session),
        kind_labels=PLACE_KIND_LABELS,
    )


route_handlers = [
    index,
    admin_home,
    *(_role_home(role) for role in Role if role is not Role.ADMIN),
    place_list,
]
