"""Mediation cases (L6, 行走的矛盾调解室): the public counts at /mediation (types and outcomes, never a case),
their CSV, and the pages of staff and mediators to register cases, record sessions and outcomes.
docs/boards.md, "canteen"."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import MediationCase, MediationKind, MediationOutcome, MediationStatus, Place, Role, User
from server.security import public, roles
from server.services import appeal_ledger, mediation
from server.services.appeals import utc_now
from server.services.errors import ServiceError, field_errors
from server.settings import Settings
from server.web import current_user, flash, local_formatters, page_number, parse_uuid, redirect, render, render_part, shared_part

STAFF = (Role.ADMIN, Role.STAFF)
CASE_ROLES = (Role.ADMIN, Role.STAFF, Role.VOLUNTEER)  # a volunteer: the cases they mediate
CASE_FIELDS = ("kind", "opened_on", "place_id", "summary", "mediator_id")
PARTY_ROWS = 4

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]
audit = logging.getLogger("shanzhi.audit")


def _audit(request: Request, action: str, case_id: UUID | None = None) -> None:
    user = current_user(request)
    audit.info("mediation action=%s user=%s case=%s", action, user.id if user else "-", case_id or "-")


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": mediation.KIND_LABELS,
        "outcome_labels": mediation.OUTCOME_LABELS,
        "status_labels": mediation.STATUS_LABELS,
        "kinds": list(MediationKind),
        "outcomes": list(MediationOutcome),
        "statuses": list(MediationStatus),
    }


def _today(settings: Settings) -> Any:
    return utc_now().astimezone(settings.tz).date()


# --- Public: counts only ---------------------------------------------------------------------------------------


@get("/mediation", opt=public(), name="mediation")
async def public_page(request: Request, settings: Config) -> Template:
    now = utc_now()

    async def compute(session: AsyncSession) -> Markup:
        counts = await mediation.public_counts(session, now, settings.tz)
        return render_part(request, "mediation/_public.html", counts=counts, **_labels())

    # Counts only, the same for everyone: shared until a case changes (or the day does: "this year").
    content = await shared_part(request, mediation.PUBLIC_TOPIC, now.astimezone(settings.tz).date(), compute)
    return render(request, "shared_page.html", page_title=gettext("Walking mediation room"), content_html=content)


@get("/mediation/export.csv", opt=public(), name="mediation-export")
async def export(db_session: Db) -> Response[bytes]:
    """Counts per month and type, by outcome: no case, no party."""
    return Response(
        await mediation.export_counts_csv(db_session),
        media_type="text/csv",
        headers={"content-disposition": 'attachment; filename="mediation-counts.csv"', "cache-control": "no-cache"},
    )


# --- Staff and mediators -----------------------------------------------------------------------------------------


def _mediator_scope(request: Request) -> UUID | None:
    """None for staff and admins (every case); the volunteer's own id otherwise."""
    user = current_user(request)
    assert user is not None
    return None if user.role in mediation.SEES_ALL else user.id


async def _case(request: Request, session: AsyncSession, case_id: UUID) -> MediationCase:
    """The case, if this user may see it (404 otherwise: a volunteer does not learn which cases exist)."""
    case = await session.get(MediationCase, case_id)
    user = current_user(request)
    if case is None or user is None or not mediation.may_see(user.role, user.id, case):
        raise NotFoundException
    return case


async def _names(session: AsyncSession, model: Any, ids: set[UUID | None], column: str) -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(model.id, getattr(model, column)).where(model.id.in_(wanted)))).all())


@get("/mediation/cases", opt=roles(*CASE_ROLES), name="mediation-cases")
async def case_list(request: Request, db_session: Db) -> Template:
    params = request.query_params
    f = mediation.CaseFilter(status=str(params.get("status") or ""), kind=str(params.get("kind") or ""), page=page_number(params.get("page")))
    rows, total, page, pages = await mediation.listing(db_session, f, mediator_id=_mediator_scope(request))
    _audit(request, "list")
    query = {k: v for k, v in {"status": f.status, "kind": f.kind}.items() if v}
    return render(
        request,
        "mediation/list.html",
        rows=rows, total=total, page=page, pages=pages, f=f, query=urlencode(query),
        mediators=await _names(db_session, User, {c.mediator_id for c in rows}, "display_name"),
        places=await _names(db_session, Place, {c.place_id for c in rows}, "name"),
        can_register=current_user(request).role in STAFF,  # type: ignore[union-attr]
        **_labels(),
    )


def _blank_values(settings: Settings) -> dict[str, Any]:
    return {"kind": MediationKind.NEIGHBOURS.value, "opened_on": _today(settings).isoformat(), "place_id": "", "summary": "",
            "mediator_id": "", "parties": [{"name": "", "phone": ""} for _ in range(PARTY_ROWS)]}


def _values_of(case: MediationCase) -> dict[str, Any]:
    parties = [dict(p) for p in case.parties]
    parties += [{"name": "", "phone": ""} for _ in range(max(0, PARTY_ROWS - len(parties)))]
    return {"kind": case.kind.value, "opened_on": case.opened_on.isoformat(), "place_id": str(case.place_id or ""),
            "summary": case.summary, "mediator_id": str(case.mediator_id or ""), "parties": parties}


async def _case_form(request: Request, db_session: AsyncSession, *, case: MediationCase | None, values: dict[str, Any],
                     errors: dict[str, str], status_code: int = 200) -> Template:
    return render(
        request,
        "mediation/form.html",
        status_code=status_code,
        case=case,
        values=values,
        errors=errors,
        action=f"/mediation/cases/{case.id}/edit" if case else "/mediation/cases/new",
        place_options=await appeal_ledger.place_options(db_session),
        mediators=await mediation.mediators(db_session),
        **_labels(),
    )


async def _read_case_form(request: Request) -> tuple[dict[str, Any], mediation.CaseInput]:
    form = await request.form()
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in CASE_FIELDS}
    names = [str(v) for v in form.getall("party_name", [])]
    phones = [str(v) for v in form.getall("party_phone", [])]
    phones += [""] * (len(names) - len(phones))
    values["parties"] = [{"name": n.strip()[:60], "phone": p.strip()[:32]} for n, p in zip(names, phones, strict=False)][:12]
    data = mediation.CaseInput(
        kind=values["kind"], opened_on=values["opened_on"], place_id=parse_uuid(values["place_id"]), summary=values["summary"],
        parties=[mediation.Party(p["name"], p["phone"]) for p in values["parties"]], mediator_id=parse_uuid(values["mediator_id"]),
    )
    return values, data


async def _save(request: Request, db_session: AsyncSession, settings: Settings, case: MediationCase | None) -> Template | Redirect:
    values, data = await _read_case_form(request)
    errors: dict[str, str] = {}
    if values["place_id"] and data.place_id is None:
        errors["place_id"] = gettext("This place does not exist.")
    if values["mediator_id"] and data.mediator_id is None:
        errors["mediator_id"] = gettext("Please choose a mediator from the list.")
    if not errors:
        try:
            saved = await mediation.save_case(db_session, data, today=_today(settings), case=case)
        except ServiceError as invalid:
            errors = field_errors(invalid, "summary")
        else:
            saved_id, reference = saved.id, saved.reference
            await db_session.commit()
            _audit(request, "register" if case is None else "edit", saved_id)
            flash(request, gettext("Case %(reference)s saved.") % {"reference": reference})
            return redirect(f"/mediation/cases/{saved_id}")
    await db_session.rollback()
    if case is not None:
        case = await _case(request, db_session, case.id)
    while len(values["parties"]) < PARTY_ROWS:
        values["parties"].append({"name": "", "phone": ""})
    return await _case_form(request, db_session, case=case, values=values, errors=errors, status_code=400)


@get("/mediation/cases/new", opt=roles(*STAFF), name="mediation-new")
async def case_new(request: Request, db_session: Db, settings: Config) -> Template:
    return await _case_form(request, db_session, case=None, values=_blank_values(settings), errors={})


@post("/mediation/cases/new", opt=roles(*STAFF))
async def case_create(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    return await _save(request, db_session, settings, None)


@get("/mediation/cases/{case_id:uuid}/edit", opt=roles(*STAFF), name="mediation-edit")
async def case_edit(request: Request, db_session: Db, case_id: FromPath[UUID]) -> Template:
    case = await _case(request, db_session, case_id)
    _audit(request, "view_edit", case.id)
    return await _case_form(request, db_session, case=case, values=_values_of(case), errors={})


@post("/mediation/cases/{case_id:uuid}/edit", opt=roles(*STAFF))
async def case_update(request: Request, db_session: Db, settings: Config, case_id: FromPath[UUID]) -> Template | Redirect:
    return await _save(request, db_session, settings, await _case(request, db_session, case_id))


async def _detail(request: Request, db_session: AsyncSession, settings: Settings, case: MediationCase, *,
                  session_values: dict[str, str] | None = None, session_errors: dict[str, str] | None = None,
                  outcome_values: dict[str, str] | None = None, outcome_errors: dict[str, str] | None = None,
                  status_code: int = 200) -> Template:
    sessions = await mediation.sessions_of(db_session, case.id)
    today = _today(settings).isoformat()
    return render(
        request,
        "mediation/case.html",
        status_code=status_code,
        case=case,
        sessions=sessions,
        mediators=await _names(db_session, User, {case.mediator_id, *(s.mediator_id for s in sessions)}, "display_name"),
        place_name=(await _names(db_session, Place, {case.place_id}, "name")).get(case.place_id) if case.place_id else None,  # type: ignore[arg-type]
        session_values=session_values or {"held_on": today, "venue": "", "notes": ""},
        session_errors=session_errors or {},
        outcome_values=outcome_values or {"outcome": case.outcome.value if case.outcome else "", "outcome_note": case.outcome_note,
                                          "closed_on": case.closed_on.isoformat() if case.closed_on else today},
        outcome_errors=outcome_errors or {},
        can_edit=current_user(request).role in STAFF,  # type: ignore[union-attr]
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/mediation/cases/{case_id:uuid}", opt=roles(*CASE_ROLES), name="mediation-case")
async def case_detail(request: Request, db_session: Db, settings: Config, case_id: FromPath[UUID]) -> Template:
    case = await _case(request, db_session, case_id)
    _audit(request, "view", case.id)
    return await _detail(request, db_session, settings, case)


@post("/mediation/cases/{case_id:uuid}/sessions", opt=roles(*CASE_ROLES))
async def case_session(request: Request, db_session: Db, settings: Config, case_id: FromPath[UUID]) -> Template | Redirect:
    case = await _case(request, db_session, case_id)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("held_on", "venue", "notes")}
    user = current_user(request)
    try:
        await mediation.add_session(db_session, case, mediation.SessionInput(**values), mediator_id=user.id if user else None,
                                    today=_today(settings))
    except ServiceError as invalid:
        await db_session.rollback()
        case = await _case(request, db_session, case_id)
        return await _detail(request, db_session, settings, case, session_values=values,
                             session_errors=field_errors(invalid, "notes"), status_code=400)
    await db_session.commit()
    _audit(request, "session", case_id)
    flash(request, gettext("Session recorded."))
    return redirect(f"/mediation/cases/{case_id}#sessions")


@post("/mediation/cases/{case_id:uuid}/outcome", opt=roles(*CASE_ROLES))
async def case_outcome(request: Request, db_session: Db, settings: Config, case_id: FromPath[UUID]) -> Template | Redirect:
    case = await _case(request, db_session, case_id)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("outcome", "outcome_note", "closed_on")}
    try:
        await mediation.record_outcome(db_session, case, values["outcome"], values["outcome_note"], values["closed_on"],
                                       today=_today(settings))
    except ServiceError as invalid:
        await db_session.rollback()
        case = await _case(request, db_session, case_id)
        return await _detail(request, db_session, settings, case, outcome_values=values,
                             outcome_errors=field_errors(invalid, "outcome"), status_code=400)
    await db_session.commit()
    _audit(request, "outcome", case_id)
    flash(request, gettext("Outcome saved.") if values["outcome"] else gettext("The case is open again."))
    return redirect(f"/mediation/cases/{case_id}")


route_handlers = [public_page, export, case_list, case_new, case_create, case_edit, case_update, case_detail, case_session, case_outcome]
