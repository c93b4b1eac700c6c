"""Staff view of offline sync (F5): devices and their last sync, open conflicts, and resolving them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Role
from server.security import roles
from server.services import conflicts
from server.services import appeal_ledger as ledger
from server.services.appeal_workflow import STATUS_LABELS
from server.services.appeals import Actor, WorkflowError, utc_now
from server.services.deadlines import TimeLimits
from server.services.errors import ServiceError
from server.settings import Settings
from server.web import current_user, redirect, render

VIEW_ROLES = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR)  # supervisors read, they do not resolve
RESOLVE_ROLES = (Role.ADMIN, Role.STAFF)

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]


def _local(settings: Settings) -> Any:
    tz = TimeLimits.from_settings(settings).tz

    def local_time(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    return local_time


async def _page(
    request: Request,
    db_session: AsyncSession,
    settings: Settings,
    *,
    status_code: int = 200,
    error: ServiceError | None = None,
    error_conflict: UUID | None = None,
    values: dict[str, str] | None = None,
    resolved: UUID | None = None,
) -> Template:
    user = current_user(request)
    assert user is not None  # the guard let a signed-in user through
    sees_phone = ledger.Viewer.of(user).sees_phone
    done = await conflicts.recently_resolved(db_session)
    just_resolved = None
    if resolved is not None:
        conflict = await conflicts.get_conflict(db_session, resolved)
        if conflict is not None and conflict.resolved_at is not None:
            just_resolved = (await conflicts.describe(db_session, [conflict], sees_phone=sees_phone))[0]
    return render(
        request,
        "sync/devices.html",
        status_code=status_code,
        devices=await conflicts.list_devices(db_session),
        open_views=await conflicts.describe(db_session, await conflicts.open_conflicts(db_session), sees_phone=sees_phone),
        resolved_views=await conflicts.describe(db_session, done, sees_phone=sees_phone),
        just_resolved=just_resolved,
        can_resolve=user.role in RESOLVE_ROLES,
        error=error.translated() if error else None,
        error_field=error.field if error else None,
        error_conflict=error_conflict,
        values=values or {},
        local_time=_local(settings),
        status_labels=STATUS_LABELS,
        resolution_labels=conflicts.RESOLUTION_LABELS,
        kind_labels=conflicts.KIND_LABELS,
        op_labels=conflicts.OP_LABELS,
        method_labels=ledger.METHOD_LABELS,
        evaluation_labels=ledger.EVALUATION_LABELS,
    )


@get("/sync/devices", opt=roles(*VIEW_ROLES), name="sync-devices")
async def devices_page(request: Request, db_session: Db, settings: Config) -> Template:
    resolved = None
    try:
        resolved = UUID(request.query_params.get("resolved", ""))
    except ValueError:
        resolved = None
    return await _page(request, db_session, settings, resolved=resolved)


def _refusal_status(error: ServiceError) -> int:
    return 409 if isinstance(error, WorkflowError) else 400


@post("/sync/conflicts/{conflict_id:uuid}/resolve", opt=roles(*RESOLVE_ROLES), name="sync-conflict-resolve")
async def resolve_conflict(request: Request, db_session: Db, settings: Config, conflict_id: FromPath[UUID]) -> Template | Redirect:
    conflict = await conflicts.get_conflict(db_session, conflict_id)
    if conflict is None:
        raise NotFoundException
    form = await request.form()
    values = {"choice": str(form.get("choice") or ""), "note": str(form.get("note") or "")}
    try:
        await conflicts.resolve(
            db_session, conflict, values["choice"], actor=Actor.for_user(current_user(request)), note=values["note"],
            limits=TimeLimits.from_settings(settings), uploads_dir=settings.uploads_dir,
        )
    except ServiceError as error:
        # Nothing of a refused resolution is kept.
        await db_session.rollback()
        return await _page(
            request, db_session, settings, status_code=_refusal_status(error), error=error,
            error_conflict=conflict_id, values=values,
        )
    return redirect(f"/sync/devices?resolved={conflict_id}#resolved-{conflict_id}")


route_handlers = [devices_page, resolve_conflict]
