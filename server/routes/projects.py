"""Livelihood projects (民生清单, L1) and property disclosure (物业公示, L2). docs/boards.md, "Livelihood projects".

Public, no account: the project list and a project's page (responsible people by name and role; their
phones only for the signed-in roles that need them), a comment form (public once staff approve it), the
compounds' property disclosure pages with their charts. Resident representatives and building heads sign
a project's acceptance from their own session. Staff (admin, staff) edit projects, milestones, updates with
photos, moderate comments and keep the disclosure; staff and supervisors export the projects as CSV.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect, Response, Template
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import current_locale, gettext
from server.models import (
    CommentStatus, Place, Project, ProjectComment, ProjectKind, ProjectMilestone, ProjectSignoff, ProjectStatus, ProjectUpdate, Role,
)
from server.routes.track import photo_file
from server.security import public, roles
from server.services import exports
from server.services import projects as svc
from server.services import property_disclosure as disclosure
from server.services.appeals import utc_now
from server.services.charts import Series, bar_chart, line_chart
from server.services.errors import ServiceError, field_errors
from server.settings import Settings
from server.throttle import FailureThrottle
from server.web import (
    client_address, current_user, flash, local_formatters, page_number, parse_uuid, redirect, render, render_part, shared_part,
)

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]

STAFF = (Role.ADMIN, Role.STAFF)
EXPORT_ROLES = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR)
SIGNERS = svc.SIGNER_ROLES
PROJECT_FIELDS = ("title", "kind", "place_id", "description", "supervision", "planned_start", "planned_end", "manual_progress")
COMMENT_WINDOW = 3600  # seconds
MAX_PHOTO_BODY = 32 * 1024 * 1024  # six photos of at most 5 MB and the form around them
audit = logging.getLogger("shanzhi.audit")


def _audit(request: Request, action: str, subject: UUID | str | None = None) -> None:
    user = current_user(request)
    audit.info("projects action=%s user=%s subject=%s", action, user.id if user else "-", subject or "-")


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": svc.KIND_LABELS, "status_labels": svc.STATUS_LABELS, "kinds": list(ProjectKind), "statuses": list(ProjectStatus),
        "signer_role_labels": svc.SIGNER_ROLE_LABELS, "comment_status_labels": svc.COMMENT_STATUS_LABELS,
    }


async def _project(session: AsyncSession, project_id: UUID) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFoundException
    return project


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


# --- Public: the list and a project's page ------------------------------------------------------------------


def list_url(kind: str = "", status: str = "", page: int = 1) -> str:
    query = {k: v for k, v in (("kind", kind), ("status", status), ("page", str(page) if page > 1 else "")) if v}
    return "/projects" + (f"?{urlencode(query)}" if query else "")


@get("/projects", opt=public(), name="projects")
async def project_list(request: Request, settings: Config) -> Template:
    kind = request.query_params.get("kind") or ""
    status = request.query_params.get("status") or ""
    kind = kind if kind in {k.value for k in ProjectKind} else ""
    status = status if status in {s.value for s in ProjectStatus} else ""
    number = page_number(request.query_params.get("page"))

    async def compute(session: AsyncSession) -> Markup:
        listing = await svc.list_projects(session, kind=kind, status=status, page=number)
        return render_part(request, "projects/_list.html", listing=listing, kind=kind, status=status, list_url=list_url,
                           **local_formatters(settings.tz), **_labels())

    content = await shared_part(request, svc.PAGES_TOPIC, ("list", kind, status, number), compute)
    return render(request, "shared_page.html", page_title=gettext("Livelihood projects"), content_html=content)


def _sees_phones(request: Request) -> bool:
    user = current_user(request)
    return user is not None and user.role in svc.PHONE_ROLES


@dataclass(frozen=True)
class ShownProject:
    """A project's page as every visitor of one kind sees it: the project, its signatures (to find the
    visitor's own) and the page's parts rendered once in the language of the key."""

    project: Project
    signatures: list[ProjectSignoff]
    facts_html: Markup
    acceptance_html: Markup
    updates_html: Markup
    comments_html: Markup


async def _shown_project(request: Request, settings: Settings, project_id: UUID) -> ShownProject:
    user = current_user(request)
    sees_phones = _sees_phones(request)
    sees_signers = user is not None and user.role in svc.SIGNER_NAME_ROLES

    async def compute(session: AsyncSession) -> ShownProject | None:
        project = await session.get(Project, project_id)
        if project is None:
            return None
        milestones = await svc.milestones(session, project.id)
        done = sum(1 for m in milestones if m.done_on)
        signatures = await svc.signoffs(session, project)
        context = dict(
            project=project, place=await session.get(Place, project.place_id), milestones=milestones, milestones_done=done,
            progress=svc.progress(project.status, done, len(milestones), project.manual_progress),
            updates=await svc.updates(session, project.id), comments=await svc.approved_comments(session, project.id),
            signatures=signatures, signed=sum(1 for s in signatures if s.signed_at), sees_phones=sees_phones,
            sees_signers=sees_signers, **local_formatters(settings.tz), **_labels(),
        )
        parts = (render_part(request, f"projects/_page_{part}.html", **context) for part in ("facts", "acceptance", "updates", "comments"))
        return ShownProject(project, signatures, *parts)

    # One variant per audience: phones only for the roles that need them, signer names only when signed in.
    shown: ShownProject | None = await shared_part(request, svc.PAGES_TOPIC, ("project", project_id, sees_phones, sees_signers), compute)
    if shown is None:
        raise NotFoundException
    return shown


async def _project_page(request: Request, settings: Settings, project_id: UUID, *, values: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, signoff_error: str | None = None, status_code: int = 200) -> Template:
    """The shared parts of the page, and around them what belongs to this visitor: the sign-off form and the
    comment form (with its CSRF token and what they typed)."""
    user = current_user(request)
    shown = await _shown_project(request, settings, project_id)
    return render(
        request, "projects/page.html", status_code=status_code, shown=shown,
        my_signature=next((s for s in shown.signatures if user and s.user_id == user.id), None),
        can_sign=user is not None and user.role in SIGNERS and user.place_id == shown.project.place_id,
        values=values or {}, errors=errors or {}, signoff_error=signoff_error,
        commented=request.query_params.get("commented") == "1", max_comment=svc.MAX_COMMENT, **local_formatters(settings.tz),
    )


@get("/projects/{project_id:uuid}", opt=public(), name="project-page")
async def project_page(request: Request, settings: Config, project_id: FromPath[UUID]) -> Template:
    return await _project_page(request, settings, project_id)


@post("/projects/{project_id:uuid}/comments", opt=public(), request_max_body_size=64 * 1024)
async def post_comment(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template | Redirect:
    """A resident's comment, no account needed: held for staff review (not public until approved).
    Limited per client address and hour like the policy questions; what was typed stays on a refusal."""
    project = await _project(db_session, project_id)
    form = await request.form()
    values = {"name": str(form.get("name") or ""), "body": str(form.get("body") or "")}
    throttle = FailureThrottle(request.app.stores.get("rate_limit"), limit=settings.suggest_address_limit, window=COMMENT_WINDOW)
    key = f"project-comment:address:{client_address(request)}"
    if await throttle.is_blocked(key):
        return await _project_page(request, settings, project_id, values=values, status_code=429, errors={
            "body": gettext("Too many comments from this network in the last hour. Please try again later.")})
    try:
        await svc.post_comment(db_session, project, name=values["name"], body=values["body"], now=utc_now())
    except ServiceError as invalid:
        await db_session.rollback()
        return await _project_page(request, settings, project_id, values=values, errors=field_errors(invalid, "body"), status_code=400)
    await db_session.commit()
    await throttle.record_failure(key)  # counts accepted comments (mistakes are free)
    return redirect(f"/projects/{project_id}?commented=1#comments")


@get("/projects/{project_id:uuid}/photos/{sha:str}", opt=public())
async def project_photo(db_session: Db, settings: Config, project_id: FromPath[UUID], sha: FromPath[str]) -> File:
    """A photo of one of the project's updates (public: they show the works, like event photos)."""
    for photos in await db_session.scalars(select(ProjectUpdate.photos).where(ProjectUpdate.project_id == project_id)):
        if sha in (photos or []):
            return photo_file(settings, sha)
    raise NotFoundException


# --- Acceptance: resident representatives and building heads sign ------------------------------------------


@post("/projects/{project_id:uuid}/signoff", opt=roles(*SIGNERS))
async def sign_off(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template | Redirect:
    user = current_user(request)
    assert user is not None
    await _project(db_session, project_id)
    try:
        result = await svc.sign_off(db_session, project_id, user_id=user.id, now=utc_now())
    except svc.SignoffRefused as refused:
        await db_session.rollback()
        return await _project_page(request, settings, project_id, signoff_error=refused.translated(), status_code=400)
    accepted, already = result.accepted, result.already
    await db_session.commit()
    if not already:
        _audit(request, "signoff", project_id)
    if accepted:
        flash(request, gettext("Signed. Every required signature is in: the project is accepted."))
    elif already:
        flash(request, gettext("You had already signed this acceptance; nothing changed."))
    else:
        flash(request, gettext("Signed. The project is accepted when every required signature is in."))
    return redirect(f"/projects/{project_id}#acceptance")


@get("/projects/signoffs", opt=roles(*SIGNERS), name="project-signoffs")
async def my_signoffs(request: Request, db_session: Db, settings: Config) -> Template:
    """Projects waiting for my signature (also the home card's list, fetched by htmx)."""
    user = current_user(request)
    assert user is not None
    waiting = await svc.awaiting_signature_of(db_session, user.id)
    names = await svc.place_names(db_session, {p.place_id for p in waiting})
    return render(request, "projects/signoffs.html", partial="projects/_signoffs.html", waiting=waiting, place_names=names,
                  **local_formatters(settings.tz), **_labels())


# --- Staff: the list, the editor, milestones, updates ---------------------------------------------------------


@get("/projects/manage", opt=roles(*STAFF), name="projects-manage")
async def manage(request: Request, db_session: Db, settings: Config) -> Template:
    status = request.query_params.get("status") or ""
    listing = await svc.list_projects(db_session, status=status, page=page_number(request.query_params.get("page")))
    _rows, pending = await svc.comment_queue(db_session, page=1)
    return render(request, "projects/manage.html", listing=listing, status=status, pending_by_project=await svc.pending_counts(db_session),
                  pending_total=pending, **local_formatters(settings.tz), **_labels())


def _project_values(project: Project) -> dict[str, str]:
    return {
        "title": project.title, "kind": project.kind.value, "place_id": str(project.place_id), "description": project.description,
        "supervision": project.supervision, "planned_start": project.planned_start.isoformat() if project.planned_start else "",
        "planned_end": project.planned_end.isoformat() if project.planned_end else "", "manual_progress": str(project.manual_progress),
    }


def _responsible_rows(people: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The rows of the responsible-people table: what is there plus blank ones (three at least)."""
    rows = list(people)
    while len(rows) < max(3, min(svc.MAX_RESPONSIBLE, len(people) + 1)):
        rows.append(("", "", ""))
    return rows


async def _editor(request: Request, db_session: AsyncSession, settings: Settings, *, project: Project | None, values: dict[str, str],
                  responsible: list[tuple[str, str, str]], errors: dict[str, str], status_code: int = 200,
                  milestone_values: dict[str, str] | None = None, milestone_errors: dict[str, str] | None = None,
                  update_values: dict[str, str] | None = None, update_errors: dict[str, str] | None = None) -> Template:
    milestones = await svc.milestones(db_session, project.id) if project else []
    signatures = await svc.signoffs(db_session, project) if project else []
    return render(
        request, "projects/edit.html", status_code=status_code, project=project, values=values, errors=errors,
        responsible=_responsible_rows(responsible), places=await svc.project_places(db_session),
        action=f"/projects/{project.id}/edit" if project else "/projects/new", milestones=milestones, signatures=signatures,
        next_statuses=sorted(svc.TRANSITIONS[project.status], key=list(ProjectStatus).index) if project else [],
        milestone_values=milestone_values or {}, milestone_errors=milestone_errors or {},
        update_values=update_values or {}, update_errors=update_errors or {}, max_photos=svc.MAX_UPDATE_PHOTOS,
        today=utc_now().astimezone(settings.tz).date().isoformat(), **local_formatters(settings.tz), **_labels(),
    )


@get("/projects/new", opt=roles(*STAFF), name="projects-new")
async def new_project(request: Request, db_session: Db, settings: Config) -> Template:
    return await _editor(request, db_session, settings, project=None, values={"kind": ProjectKind.OLD_COMPOUND_RENOVATION.value},
                         responsible=[], errors={})


async def _save(request: Request, db_session: AsyncSession, settings: Settings, project_id: UUID | None) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in PROJECT_FIELDS}
    responsible = list(zip([str(v)[:60] for v in form.getall("resp_name", [])], [str(v)[:60] for v in form.getall("resp_role", [])],
                           [str(v)[:32] for v in form.getall("resp_phone", [])], strict=False))
    errors: dict[str, str] = {}
    start, end = _date(values["planned_start"]), _date(values["planned_end"])
    for name, parsed in (("planned_start", start), ("planned_end", end)):
        if values[name].strip() and parsed is None:
            errors[name] = gettext("Please enter a date as YYYY-MM-DD.")
    data = svc.ProjectInput(
        title=values["title"], kind=values["kind"], place_id=parse_uuid(values["place_id"]), description=values["description"],
        supervision=values["supervision"], responsible=responsible, planned_start=start, planned_end=end,
        manual_progress=values["manual_progress"],
    )
    project = await _project(db_session, project_id) if project_id else None
    if not errors:
        try:
            saved = await svc.save_project(db_session, data, project, now=utc_now())
        except svc.InvalidProject as invalid:
            errors = field_errors(invalid, "title", into=errors)
        else:
            saved_id, title = saved.id, saved.title
            await db_session.commit()
            _audit(request, "save", saved_id)
            flash(request, gettext("Project saved: %(title)s.") % {"title": title})
            return redirect(f"/projects/{saved_id}/edit")
    await db_session.rollback()
    project = await _project(db_session, project_id) if project_id else None
    return await _editor(request, db_session, settings, project=project, values=values, responsible=responsible, errors=errors,
                         status_code=400)


@post("/projects/new", opt=roles(*STAFF))
async def create_project(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    return await _save(request, db_session, settings, None)


@get("/projects/{project_id:uuid}/edit", opt=roles(*STAFF), name="projects-edit")
async def edit_project(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template:
    project = await _project(db_session, project_id)
    people = [(r.get("name", ""), r.get("role", ""), r.get("phone", "")) for r in project.responsible or []]
    return await _editor(request, db_session, settings, project=project, values=_project_values(project), responsible=people, errors={})


@post("/projects/{project_id:uuid}/edit", opt=roles(*STAFF))
async def save_project(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template | Redirect:
    return await _save(request, db_session, settings, project_id)


async def _editor_again(request: Request, db_session: AsyncSession, settings: Settings, project_id: UUID, **forms: Any) -> Template:
    await db_session.rollback()
    project = await _project(db_session, project_id)
    people = [(r.get("name", ""), r.get("role", ""), r.get("phone", "")) for r in project.responsible or []]
    return await _editor(request, db_session, settings, project=project, values=_project_values(project), responsible=people,
                         errors={}, status_code=400, **forms)


@post("/projects/{project_id:uuid}/milestones", opt=roles(*STAFF))
async def add_milestone(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template | Redirect:
    project = await _project(db_session, project_id)
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in ("title", "due_on", "done_on")}
    errors: dict[str, str] = {}
    due, done = _date(values["due_on"]), _date(values["done_on"])
    for name, parsed in (("due_on", due), ("done_on", done)):
        if values[name].strip() and parsed is None:
            errors[name] = gettext("Please enter a date as YYYY-MM-DD.")
    if not errors:
        try:
            await svc.add_milestone(db_session, project, title=values["title"], due_on=due, done_on=done, now=utc_now(), tz=settings.tz)
        except svc.InvalidProject as invalid:
            errors = field_errors(invalid, "title")
        else:
            await db_session.commit()
            flash(request, gettext("Milestone added."))
            return redirect(f"/projects/{project_id}/edit#milestones")
    return await _editor_again(request, db_session, settings, project_id, milestone_values=values, milestone_errors=errors)


@post("/projects/{project_id:uuid}/milestones/{milestone_id:uuid}", opt=roles(*STAFF))
async def set_milestone(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID],
                        milestone_id: FromPath[UUID]) -> Template | Redirect:
    milestone = await db_session.get(ProjectMilestone, milestone_id)
    if milestone is None or milestone.project_id != project_id:
        raise NotFoundException
    form = await request.form()
    done_text = str(form.get("done_on") or "")
    done = _date(done_text) if str(form.get("done") or "") == "1" else None
    errors: dict[str, str] = {}
    if str(form.get("done") or "") == "1" and done is None:
        errors[f"m-{milestone_id}"] = gettext("Please enter the day it was done as YYYY-MM-DD.")
    else:
        try:
            await svc.set_milestone(db_session, milestone, done_on=done, now=utc_now(), tz=settings.tz)
        except svc.InvalidProject as invalid:
            errors[f"m-{milestone_id}"] = invalid.translated()
        else:
            await db_session.commit()
            flash(request, gettext("Milestone saved."))
            return redirect(f"/projects/{project_id}/edit#milestones")
    return await _editor_again(request, db_session, settings, project_id, milestone_errors=errors,
                               milestone_values={f"m-{milestone_id}": done_text})


@post("/projects/{project_id:uuid}/updates", opt=roles(*STAFF), request_max_body_size=MAX_PHOTO_BODY)
async def post_update(request: Request, db_session: Db, settings: Config, project_id: FromPath[UUID]) -> Template | Redirect:
    """A progress update with photos; it may move the status (asking for acceptance snapshots the signers)."""
    project = await _project(db_session, project_id)
    user = current_user(request)
    form = await request.form()
    values = {"body": str(form.get("body") or ""), "status": str(form.get("status") or "")}
    raws = [await upload.read() for upload in form.getall("photos", []) if isinstance(upload, UploadFile) and upload.filename]
    try:
        update = await svc.post_update(db_session, project, body=values["body"], status=values["status"], photos=raws,
                                       uploads_dir=settings.uploads_dir, author_id=user.id if user else None, now=utc_now())
    except svc.InvalidProject as invalid:
        return await _editor_again(request, db_session, settings, project_id, update_values=values,
                                   update_errors=field_errors(invalid, "body"))
    moved = update.status
    await db_session.commit()
    _audit(request, f"update status={moved.value if moved else '-'}", project_id)
    flash(request, gettext("Update published."))
    return redirect(f"/projects/{project_id}/edit#updates")


# --- Staff: comment moderation ------------------------------------------------------------------------------


@get("/projects/comments", opt=roles(*STAFF), name="project-comments")
async def comments(request: Request, db_session: Db, settings: Config) -> Template:
    raw = request.query_params.get("status") or CommentStatus.PENDING.value
    status = CommentStatus(raw) if raw in {s.value for s in CommentStatus} else CommentStatus.PENDING
    page = page_number(request.query_params.get("page"))
    rows, total = await svc.comment_queue(db_session, status=status, page=page)
    return render(request, "projects/comments.html", rows=rows, total=total, status=status, page=page,
                  pages=max(1, -(-total // svc.PAGE_SIZE)), comment_statuses=list(CommentStatus), **local_formatters(settings.tz), **_labels())


@post("/projects/comments/{comment_id:uuid}", opt=roles(*STAFF))
async def moderate(request: Request, db_session: Db, comment_id: FromPath[UUID]) -> Redirect:
    comment = await db_session.get(ProjectComment, comment_id)
    if comment is None:
        raise NotFoundException
    form = await request.form()
    action = str(form.get("action") or "")
    if action not in {"approve", "reject"}:
        flash(request, gettext("Please choose one of the options."))
        return redirect("/projects/comments")
    user = current_user(request)
    back = str(form.get("status") or "pending")
    await svc.moderate(db_session, comment, approve=action == "approve", actor_id=user.id if user else None, now=utc_now())
    await db_session.commit()
    _audit(request, f"comment {action}", comment_id)
    flash(request, gettext("Comment published.") if action == "approve" else gettext("Comment kept off the public page."))
    return redirect(f"/projects/comments?status={back if back in {s.value for s in CommentStatus} else 'pending'}")


# --- Export (X5) ------------------------------------------------------------------------------------------


@get("/projects/export.csv", opt=roles(*EXPORT_ROLES), name="projects-export")
async def export(request: Request, db_session: Db, settings: Config) -> Response[bytes]:
    """Every project as Excel opens it (Chinese headers and labels, like the appeals ledger; no phones)."""
    token = current_locale.set("zh_CN")
    try:
        rows = await svc.export_rows(db_session, settings.tz, gettext)
        header = [gettext(h) for h in svc.EXPORT_HEADER]
    finally:
        current_locale.reset(token)
    _audit(request, "export")
    filename = f"projects-{utc_now().astimezone(settings.tz):%Y%m%d-%H%M}.csv"
    return Response(exports.csv_bytes(header, rows), media_type="text/csv",
                    headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "private, no-store"})


# --- Property disclosure (L2) -----------------------------------------------------------------------------


@get("/property", opt=public(), name="property")
async def property_list(request: Request) -> Template:
    user = current_user(request)
    is_staff = bool(user and user.role in STAFF)

    async def compute(session: AsyncSession) -> Markup:
        listed = await disclosure.disclosed_compounds(session)
        shown = {place.id for place, _d, _m in listed}
        missing = [p for p in await disclosure.compounds(session) if p.id not in shown] if is_staff else []
        return render_part(request, "property/_list.html", listed=listed, missing=missing, is_staff=is_staff,
                           percent_text=disclosure.percent_text)

    content = await shared_part(request, svc.PAGES_TOPIC, ("compounds", is_staff), compute)  # staff also see the compounds without one
    return render(request, "shared_page.html", page_title=gettext("Property disclosure"), content_html=content)


async def _compound(db_session: AsyncSession, code: str) -> Place:
    place = await disclosure.compound_by_code(db_session, code)
    if place is None:
        raise NotFoundException
    return place


def _charts(rows: list[Any]) -> tuple[Any, Any]:
    labels = [f"{r.month:%Y-%m}" for r in rows]
    rate = line_chart(labels, [Series(gettext("Fee collection rate"), [disclosure.percent(r.collection_bp) for r in rows])],
                      title=gettext("Property fee collection rate by month"), unit="%", top=100)
    peak = max((r.complaints or 0 for r in rows), default=0)
    complaints = bar_chart(labels, [Series(gettext("12345 complaints"), [r.complaints for r in rows])],
                           title=gettext("12345 hotline complaints by month"), top=max(4, 4 * -(-peak // 4)))  # whole gridlines
    return rate, complaints


@get("/property/{code:str}", opt=public(), name="property-page")
async def property_page(request: Request, code: FromPath[str]) -> Template:
    if not 0 < len(code) <= 12:  # no compound has such a code: nothing to compute or keep
        raise NotFoundException
    user = current_user(request)
    is_staff = bool(user and user.role in STAFF)

    async def compute(session: AsyncSession) -> tuple[str, Markup] | None:
        place = await disclosure.compound_by_code(session, code)
        row = await disclosure.published_disclosure(session, place.id) if place is not None else None
        if place is None or row is None:  # none yet, or only an empty one: no public page that says nothing
            return None
        months = await disclosure.months(session, place.id)
        rate_chart, complaints_chart = _charts(months) if months else (None, None)
        html = render_part(request, "property/_page.html", place=place, disclosure=row, months=months, trend=disclosure.trend(months),
                           rate_chart=rate_chart, complaints_chart=complaints_chart, yuan=disclosure.yuan,
                           percent_text=disclosure.percent_text, is_staff=is_staff,
                           projects=await svc.list_projects(session, place_id=place.id, page_size=10), **_labels())
        return gettext("Property disclosure: %(place)s") % {"place": place.name}, html

    shown = await shared_part(request, svc.PAGES_TOPIC, ("compound", code.upper(), is_staff), compute)
    if shown is None:
        raise NotFoundException
    title, content = shown
    return render(request, "shared_page.html", page_title=title, content_html=content)


async def _disclosure_editor(request: Request, db_session: AsyncSession, settings: Settings, place: Place, *, values: dict[str, str],
                             fees: list[tuple[str, str, str]], errors: dict[str, str], month_values: dict[str, str] | None = None,
                             month_errors: dict[str, str] | None = None, status_code: int = 200) -> Template:
    rows = list(fees)
    while len(rows) < max(4, len(fees) + 2):
        rows.append(("", "", ""))
    months = await disclosure.months(db_session, place.id)
    default_month = utc_now().astimezone(settings.tz).strftime("%Y-%m")
    return render(request, "property/edit.html", status_code=status_code, place=place, values=values, fees=rows, errors=errors,
                  months=months[::-1], month_values=month_values or {"month": default_month}, month_errors=month_errors or {},
                  percent_text=disclosure.percent_text, exists=await disclosure.published_disclosure(db_session, place.id) is not None)


@get("/property/{code:str}/edit", opt=roles(*STAFF), name="property-edit")
async def edit_disclosure(request: Request, db_session: Db, settings: Config, code: FromPath[str]) -> Template:
    place = await _compound(db_session, code)
    row = await disclosure.disclosure_of(db_session, place.id)
    values = {"reform_plan": row.reform_plan if row else "", "service_standards": row.service_standards if row else ""}
    fees = [(f["item"], disclosure.yuan(f["unit_price_fen"]), f["unit"]) for f in (row.fees if row else [])]
    return await _disclosure_editor(request, db_session, settings, place, values=values, fees=fees, errors={})


@post("/property/{code:str}/edit", opt=roles(*STAFF))
async def save_disclosure(request: Request, db_session: Db, settings: Config, code: FromPath[str]) -> Template | Redirect:
    place = await _compound(db_session, code)
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in ("reform_plan", "service_standards")}
    fees = list(zip([str(v)[:60] for v in form.getall("fee_item", [])], [str(v)[:20] for v in form.getall("fee_price", [])],
                    [str(v)[:30] for v in form.getall("fee_unit", [])], strict=False))
    try:
        await disclosure.save(db_session, place, disclosure.DisclosureInput(values["reform_plan"], values["service_standards"], fees))
    except disclosure.InvalidDisclosure as invalid:
        await db_session.rollback()
        place = await _compound(db_session, code)
        return await _disclosure_editor(request, db_session, settings, place, values=values, fees=fees,
                                        errors=field_errors(invalid, "reform_plan"), status_code=400)
    await db_session.commit()
    _audit(request, "property save", place.code)
    flash(request, gettext("Property disclosure saved."))
    return redirect(f"/property/{place.code}/edit")


@post("/property/{code:str}/months", opt=roles(*STAFF))
async def save_month(request: Request, db_session: Db, settings: Config, code: FromPath[str]) -> Template | Redirect:
    place = await _compound(db_session, code)
    form = await request.form()
    month_values = {name: str(form.get(name) or "") for name in ("month", "rate", "complaints")}
    try:
        await disclosure.record_month(db_session, place, month=month_values["month"], rate=month_values["rate"],
                                      complaints=month_values["complaints"], now=utc_now(), tz=settings.tz)
    except disclosure.InvalidDisclosure as invalid:
        await db_session.rollback()
        place = await _compound(db_session, code)
        row = await disclosure.disclosure_of(db_session, place.id)
        values = {"reform_plan": row.reform_plan if row else "", "service_standards": row.service_standards if row else ""}
        fees = [(f["item"], disclosure.yuan(f["unit_price_fen"]), f["unit"]) for f in (row.fees if row else [])]
        return await _disclosure_editor(request, db_session, settings, place, values=values, fees=fees, errors={},
                                        month_values=month_values, month_errors=field_errors(invalid, "month"), status_code=400)
    await db_session.commit()
    _audit(request, "property month", place.code)
    flash(request, gettext("Figures for %(month)s saved.") % {"month": month_values["month"].strip()})
    return redirect(f"/property/{place.code}/edit#months")


route_handlers = [
    project_list, project_page, post_comment, project_photo, sign_off, my_signoffs, manage, new_project, create_project,
    edit_project, save_project, add_milestone, set_milestone, post_update, comments, moderate, export,
    property_list, property_page, edit_disclosure, save_disclosure, save_month,
]
