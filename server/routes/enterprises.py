"""The enterprise registry (P3), matching and door-to-door push by staff (P4), and the policy-reach pages:
list and filter, create and edit (the credit-code check), CSV import and export, the enterprise page with
its matched policies, pushes and outcomes, and per policy matched → pushed → applied → granted.
docs/policies.md."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import Enterprise, Place, Policy, PolicyPush, PolicyStatus, PushOutcome, Role, User, Visit
from server.models.places import LEAF_KINDS
from server.security import roles
from server.services import credit_code, enterprises, exports, policies
from server.services import policy_facets as facets
from server.services.appeals import utc_now
from server.services.errors import ServiceError, field_errors
from server.settings import Settings
from server.web import current_user, flash, local_formatters, page_number, parse_uuid, redirect, render, use_request_locale

STAFF = (Role.ADMIN, Role.STAFF)
READERS = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR)  # supervisors watch the registry and the reach figures
MAX_IMPORT_BODY = 5 * 1024 * 1024  # bytes: a CSV of the largest import (20 000 rows) fits well within
FORM_FIELDS = ("credit_code", "name", "industry", "size", "stage", "registered_on", "place_id", "contact_name",
               "contact_phone", "grid_worker_id")
OUTCOMES = (PushOutcome.APPLIED, PushOutcome.GRANTED, PushOutcome.INELIGIBLE)
REACH_PAGE = 50
MATCHED_SHOWN = 60  # matching policies listed on an enterprise's page (not pushed yet first)
OTHERS_SHOWN = 200  # other live policies offered for an off-match push (closing soonest first)

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]





def _yuan(amount: int | None) -> str:
    return f"{amount:,}" if amount is not None else ""


def _labels() -> dict[str, Any]:
    return {
        "industry_labels": facets.INDUSTRY.labels,
        "size_labels": facets.SIZE.labels,
        "stage_labels": facets.STAGE.labels,
        "industries": facets.INDUSTRY.values,
        "sizes": facets.SIZE.values,
        "stages": facets.STAGE.values,
        "liaison_levels": enterprises.LIAISON_LEVELS,
        "outcome_labels": policies.OUTCOME_LABELS,
        "category_labels": policies.CATEGORY_LABELS,
        "yuan": _yuan,
    }


async def _leaf_places(session: AsyncSession) -> list[Place]:
    return list(await session.scalars(select(Place).where(Place.kind.in_(LEAF_KINDS)).order_by(Place.name, Place.id)))


async def _grid_workers(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).where(User.role == Role.GRID_WORKER).order_by(User.display_name, User.id)))


async def _names(session: AsyncSession, model: Any, ids: set[UUID | None], column: str = "name") -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await session.execute(select(model.id, getattr(model, column)).where(model.id.in_(wanted)))).all())


# --- The registry ---------------------------------------------------------------------------------------


def _filter(params: Mapping[str, Any]) -> enterprises.EnterpriseFilter:
    def text(name: str) -> str:
        return str(params.get(name) or "").strip()[:100]

    try:
        page = int(text("page") or "1")
    except ValueError:
        page = 1
    return enterprises.EnterpriseFilter(
        q=text("q"),
        industry=text("industry") if text("industry") in facets.INDUSTRY.values else "",
        size=text("size") if text("size") in facets.SIZE.values else "",
        stage=text("stage") if text("stage") in facets.STAGE.values else "",
        place_id=parse_uuid(text("place")),
        key_only=text("key_only") in {"1", "on", "true"},
        worker_id=parse_uuid(text("worker")),
        page=max(1, page),
    )


def _query(f: enterprises.EnterpriseFilter, **changes: Any) -> str:
    """The filter as a query string (empty values left out), e.g. for the pager and the export link."""
    values = {"q": f.q, "industry": f.industry, "size": f.size, "stage": f.stage, "place": f.place_id or "",
              "key_only": "1" if f.key_only else "", "worker": f.worker_id or "", "page": ""}
    values.update(changes)
    if values["page"] == 1:
        values["page"] = ""
    return urlencode({k: str(v) for k, v in values.items() if v not in ("", None)})


@get("/enterprises", opt=roles(*READERS), name="enterprises")
async def enterprise_list(request: Request, db_session: Db, settings: Config) -> Template:
    f = _filter(request.query_params)
    rows, total, page = await enterprises.listing(db_session, f)
    ids = [e.id for e in rows]
    pushed = dict((await db_session.execute(
        select(PolicyPush.enterprise_id, func.count(distinct(PolicyPush.policy_id)))
        .where(PolicyPush.enterprise_id.in_(ids)).group_by(PolicyPush.enterprise_id)
    )).all()) if ids else {}
    user = current_user(request)
    return render(
        request,
        "enterprises/list.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // enterprises.PAGE_SIZE)),
        f=f,
        query=lambda **changes: _query(f, **changes),
        filtered=bool(_query(f)),
        pushed=pushed,
        place_names=await _names(db_session, Place, {e.place_id for e in rows}),
        worker_names=await _names(db_session, User, {e.grid_worker_id for e in rows}, "display_name"),
        places=await _leaf_places(db_session),
        workers=await _grid_workers(db_session),
        can_edit=user is not None and user.role in STAFF,
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/enterprises/export.csv", opt=roles(*STAFF), name="enterprises-export")
async def enterprise_export(request: Request, db_session: Db) -> Response[bytes]:
    text = await enterprises.export_csv(db_session, _filter(request.query_params))
    return Response(
        text.encode("utf-8"),
        media_type="text/csv",  # Litestar adds "; charset=utf-8"
        headers={"content-disposition": 'attachment; filename="enterprises.csv"', "cache-control": "private, no-store"},
    )


# --- Create and edit ------------------------------------------------------------------------------------


def _values_of(e: Enterprise) -> dict[str, Any]:
    return {
        "credit_code": e.credit_code, "name": e.name, "industry": e.industry or "", "size": e.size or "", "stage": e.stage or "",
        "registered_on": e.registered_on.isoformat() if e.registered_on else "", "place_id": str(e.place_id or ""),
        "is_key": e.is_key, "contact_name": e.contact_name or "", "contact_phone": e.contact_phone or "",
        "grid_worker_id": str(e.grid_worker_id or ""),
        **{f"liaison_{level}": (e.liaisons or {}).get(level, "") for level in enterprises.LIAISON_LEVELS},
    }


def _form_input(form: Any) -> tuple[dict[str, Any], enterprises.EnterpriseInput, dict[str, str]]:
    """What was typed (kept for a refused form), the service's input, and the problems found before the service."""
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in FORM_FIELDS}
    values["is_key"] = bool(form.get("is_key"))
    for level in enterprises.LIAISON_LEVELS:
        values[f"liaison_{level}"] = str(form.get(f"liaison_{level}") or "").strip()[:60]
    errors: dict[str, str] = {}
    place_id = parse_uuid(values["place_id"])
    if values["place_id"] and place_id is None:
        errors["place_id"] = gettext("Please choose a building, park, compound or street.")
    worker_id = parse_uuid(values["grid_worker_id"])
    if values["grid_worker_id"] and worker_id is None:
        errors["grid_worker_id"] = gettext("Please choose a grid worker.")
    data = enterprises.EnterpriseInput(
        credit_code=values["credit_code"], name=values["name"], industry=values["industry"], size=values["size"],
        stage=values["stage"], registered_on=values["registered_on"], place_id=place_id, is_key=values["is_key"],
        contact_name=values["contact_name"], contact_phone=values["contact_phone"], grid_worker_id=worker_id,
        liaisons={level: values[f"liaison_{level}"] for level in enterprises.LIAISON_LEVELS},
    )
    return values, data, errors


async def _form_page(request: Request, db_session: AsyncSession, *, enterprise: Enterprise | None, values: dict[str, Any],
                     errors: dict[str, str], status_code: int = 200) -> Template:
    return render(
        request,
        "enterprises/form.html",
        status_code=status_code,
        enterprise=enterprise,
        values=values,
        errors=errors,
        action=f"/enterprises/{enterprise.id}/edit" if enterprise else "/enterprises/new",
        places=await _leaf_places(db_session),
        workers=await _grid_workers(db_session),
        **_labels(),
    )


async def _enterprise(db_session: AsyncSession, enterprise_id: UUID) -> Enterprise:
    enterprise = await db_session.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise NotFoundException
    return enterprise


@get("/enterprises/new", opt=roles(*STAFF), name="enterprises-new")
async def enterprise_new(request: Request, db_session: Db) -> Template:
    return await _form_page(request, db_session, enterprise=None, values={}, errors={})


async def _save(request: Request, db_session: AsyncSession, enterprise: Enterprise | None) -> Template | Redirect:
    form = await request.form()
    values, data, errors = _form_input(form)
    if not errors:
        try:
            saved = await enterprises.save(db_session, data, enterprise)
        except enterprises.InvalidEnterprise as invalid:
            errors = field_errors(invalid)
        else:
            await db_session.commit()
            flash(request, gettext("Enterprise %(name)s saved.") % {"name": saved.name})
            return redirect(f"/enterprises/{saved.id}")
    await db_session.rollback()
    if enterprise is not None:
        enterprise = await _enterprise(db_session, enterprise.id)
    return await _form_page(request, db_session, enterprise=enterprise, values=values, errors=errors, status_code=400)


@post("/enterprises/new", opt=roles(*STAFF))
async def enterprise_create(request: Request, db_session: Db) -> Template | Redirect:
    return await _save(request, db_session, None)


@get("/enterprises/{enterprise_id:uuid}/edit", opt=roles(*STAFF), name="enterprises-edit")
async def enterprise_edit(request: Request, db_session: Db, enterprise_id: FromPath[UUID]) -> Template:
    enterprise = await _enterprise(db_session, enterprise_id)
    return await _form_page(request, db_session, enterprise=enterprise, values=_values_of(enterprise), errors={})


@post("/enterprises/{enterprise_id:uuid}/edit", opt=roles(*STAFF))
async def enterprise_update(request: Request, db_session: Db, enterprise_id: FromPath[UUID]) -> Template | Redirect:
    return await _save(request, db_session, await _enterprise(db_session, enterprise_id))


# --- Import -----------------------------------------------------------------------------------------------


def _import_too_large(request: Request, _exc: Exception) -> Response[Any]:
    """A body over the limit cannot be read: say why on the import page (exception handlers run outside
    the request middleware: the language is set here, before the message is translated)."""
    use_request_locale(request)
    return render(
        request, "enterprises/import.html", status_code=413, report=None, dry_run=True, columns=enterprises.COLUMNS,
        error=gettext("The file is larger than %(n)d MB. Split it into smaller files.") % {"n": MAX_IMPORT_BODY // (1024 * 1024)},
    )


@get("/enterprises/import", opt=roles(*STAFF), name="enterprises-import")
async def import_page(request: Request) -> Template:
    return render(request, "enterprises/import.html", report=None, dry_run=True, error=None, columns=enterprises.COLUMNS)


@post("/enterprises/import", opt=roles(*STAFF), request_max_body_size=MAX_IMPORT_BODY,
      exception_handlers={RequestEntityTooLarge: _import_too_large})
async def import_submit(request: Request, db_session: Db) -> Template:
    form = await request.form()
    upload = form.get("file")
    dry_run = bool(form.get("dry_run"))
    context: dict[str, Any] = {"report": None, "dry_run": dry_run, "error": None, "columns": enterprises.COLUMNS}
    if not isinstance(upload, UploadFile) or not upload.filename:
        context["error"] = gettext("Please choose a CSV file.")
        return render(request, "enterprises/import.html", status_code=400, **context)
    raw = await upload.read()
    try:
        report = await enterprises.import_csv(db_session, enterprises.decode_csv(raw), dry_run=dry_run)
    except ServiceError as error:
        context["error"] = error.translated()
        return render(request, "enterprises/import.html", status_code=400, **context)
    context.update(report=report, filename=upload.filename)
    if report.problems:
        await db_session.rollback()
        return render(request, "enterprises/import.html", status_code=400, **context)
    if report.written:
        await db_session.commit()
    return render(request, "enterprises/import.html", **context)


@get("/enterprises/import/template.csv", opt=roles(*STAFF), name="enterprises-import-template")
async def import_template(db_session: Db) -> Response[bytes]:
    """The documented columns and one example row (a valid credit code; a real place code when there is one)."""
    place_code = await db_session.scalar(select(Place.code).where(Place.kind.in_(LEAF_KINDS)).order_by(Place.name).limit(1))
    example = {
        "credit_code": credit_code.make_code("9", "1", "370102", credit_code.organisation_code("MA3C5K01")),
        "name": "济南示例科技有限公司", "industry": "I", "size": "small", "stage": "growing", "registered_on": "2021-06-18",
        "place_code": place_code or "", "is_key": "0", "contact_name": "王经理", "contact_phone": "0531-86000000",
    }
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(enterprises.COLUMNS)
    writer.writerow([exports.cell(example.get(column, "")) for column in enterprises.COLUMNS])
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv",  # Litestar adds "; charset=utf-8"
        headers={"content-disposition": 'attachment; filename="enterprises-template.csv"', "cache-control": "private, no-store"},
    )


# --- One enterprise: profile, matched policies, pushes and outcomes, visits --------------------------------


async def _detail_page(
    request: Request, db_session: AsyncSession, settings: Settings, enterprise: Enterprise, *, status_code: int = 200,
    push_errors: dict[str, str] | None = None, push_values: dict[str, Any] | None = None,
    outcome_errors: dict[str, str] | None = None, outcome_values: dict[str, Any] | None = None,
    outcome_push: UUID | None = None,
) -> Template:
    user = current_user(request)
    today = policies.today(settings.tz)
    # Bounded at any scale: the matching policies not pushed yet first, and a choice of other live policies.
    matched = await policies.matched_policies(db_session, enterprise, today, limit=MATCHED_SHOWN, unpushed_first=True)
    matched_total = await policies.matched_count(db_session, enterprise, today)
    pushes = (await enterprises.pushes_of(db_session, [enterprise.id]))[enterprise.id]
    pushed_ids = {p.policy_id for p in pushes}
    matched_ids = {m.id for m in matched}
    live = [p for p in await db_session.scalars(
        select(Policy).where(policies.live_clause(today)).order_by(*policies.closing_first(today)).limit(OTHERS_SHOWN + len(matched)))
        if p.id not in matched_ids][:OTHERS_SHOWN]
    titles = {p.id: p.title for p in live} | {p.id: p.title for p in matched}
    missing = {p.policy_id for p in pushes} - titles.keys()
    titles |= await _names(db_session, Policy, missing, "title")
    visits = list(await db_session.scalars(
        select(Visit).where(Visit.enterprise_id == enterprise.id).order_by(Visit.visited_at.desc()).limit(100)))
    people = await _names(db_session, User, {v.worker_id for v in visits} | {p.pushed_by_id for p in pushes}
                          | {enterprise.grid_worker_id}, "display_name")
    place = await db_session.get(Place, enterprise.place_id) if enterprise.place_id else None
    return render(
        request,
        "enterprises/detail.html",
        status_code=status_code,
        e=enterprise,
        place=place,
        matched=matched,
        pushed_ids=pushed_ids,
        pushes=pushes,
        titles=titles,
        other_policies=live,
        matched_total=matched_total,
        visits=visits,
        people=people,
        can_edit=user is not None and user.role in STAFF,
        sees_contact=user is not None and user.role in STAFF,
        push_errors=push_errors or {},
        push_values=push_values or {},
        outcome_errors=outcome_errors or {},
        outcome_values=outcome_values or {},
        outcome_push=outcome_push,
        outcomes=OUTCOMES,
        closing_soon=lambda p: policies.closing_soon(p, today),
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/enterprises/{enterprise_id:uuid}", opt=roles(*READERS), name="enterprises-detail")
async def enterprise_detail(request: Request, db_session: Db, settings: Config, enterprise_id: FromPath[UUID]) -> Template:
    return await _detail_page(request, db_session, settings, await _enterprise(db_session, enterprise_id))


@post("/enterprises/{enterprise_id:uuid}/pushes", opt=roles(*STAFF))
async def enterprise_push(request: Request, db_session: Db, settings: Config, enterprise_id: FromPath[UUID]) -> Template | Redirect:
    """Staff push policies (政策上门 recorded from the office): the ticked matched ones, and optionally one
    policy the enterprise does not match, with the reason. All or nothing."""
    enterprise = await _enterprise(db_session, enterprise_id)
    form = await request.form()
    chosen = [str(v) for v in form.getall("policy_id", [])]
    other = str(form.get("other_policy_id") or "").strip()
    reason = str(form.get("reason") or "").strip()
    values = {"policy_id": chosen, "other_policy_id": other, "reason": reason}
    errors: dict[str, str] = {}
    items: list[enterprises.PushInput] = []
    for value in chosen:
        policy_id = parse_uuid(value)
        if policy_id is None:
            errors["policy_ids"] = gettext("This policy is not in the published library.")
        else:
            items.append(enterprises.PushInput(policy_id))
    if other:
        policy_id = parse_uuid(other)
        if policy_id is None:
            errors["other_policy_id"] = gettext("This policy is not in the published library.")
        else:
            items.append(enterprises.PushInput(policy_id, reason or None))
    if not items and not errors:
        errors["policy_ids"] = gettext("Please choose at least one policy to push.")
    if not errors:
        try:
            rows = await enterprises.push(db_session, enterprise, items, actor_id=current_user(request).id, at=utc_now(),
                                          field_name="policy_ids")
        except enterprises.InvalidEnterprise as invalid:
            errors = field_errors(invalid)
        else:
            await db_session.commit()
            flash(request, gettext("%(n)d policies pushed to %(name)s.") % {"n": len(rows), "name": enterprise.name})
            return redirect(f"/enterprises/{enterprise.id}#pushes")
    await db_session.rollback()
    enterprise = await _enterprise(db_session, enterprise_id)
    return await _detail_page(request, db_session, settings, enterprise, status_code=400, push_errors=errors, push_values=values)


@post("/pushes/{push_id:uuid}/outcome", opt=roles(*STAFF))
async def push_outcome(request: Request, db_session: Db, settings: Config, push_id: FromPath[UUID]) -> Template | Redirect:
    row = await db_session.get(PolicyPush, push_id)
    if row is None:
        raise NotFoundException
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("outcome", "amount", "note")}
    enterprise_id = row.enterprise_id
    try:
        await enterprises.record_outcome(db_session, row, values["outcome"], amount=values["amount"], note=values["note"],
                                         actor_id=current_user(request).id, at=utc_now())
    except enterprises.InvalidEnterprise as invalid:
        errors = field_errors(invalid)
    else:
        await db_session.commit()
        flash(request, gettext("Outcome recorded: %(outcome)s.") % {"outcome": gettext(policies.OUTCOME_LABELS[row.outcome])})
        return redirect(f"/enterprises/{enterprise_id}#push-{push_id}")
    await db_session.rollback()
    enterprise = await _enterprise(db_session, enterprise_id)
    return await _detail_page(request, db_session, settings, enterprise, status_code=400, outcome_errors=errors,
                              outcome_values=values, outcome_push=push_id)


# --- Policy reach (应享尽享) --------------------------------------------------------------------------------


def _share(r: policies.Reach) -> tuple[int, int]:
    """Matched enterprises reached (pushes to enterprises it does not match left out), and the percentage."""
    reached = min(max(r.pushed - r.off_match, 0), r.matched)
    return reached, round(reached * 100 / r.matched) if r.matched else 0


def _totals(rows: list[policies.Reach]) -> dict[str, int]:
    return {name: sum(getattr(r, name) for r in rows) for name in ("matched", "pushed", "applied", "granted", "amount_yuan", "off_match")}


@get("/policies/reach", opt=roles(*READERS), name="policies-reach")
async def reach_page(request: Request, db_session: Db, settings: Config) -> Template:
    today = policies.today(settings.tz)

    def ended(p: Policy) -> bool:
        return p.status == PolicyStatus.WITHDRAWN or policies.is_expired(p, today)

    # Live policies (closing soon first, as the service orders them); the withdrawn and expired ones after
    # them, on request (?all=1): their record is kept.
    everything = sorted(await policies.reach(db_session, today=today), key=lambda r: ended(r.policy))
    show_all = request.query_params.get("all") == "1"
    rows = everything if show_all else [r for r in everything if not ended(r.policy)]
    # Totals over every row; the table a page of REACH_PAGE rows (a bounded page at any scale).
    pages = max(1, -(-len(rows) // REACH_PAGE))
    page = min(page_number(request.query_params.get("page")), pages)
    return render(
        request,
        "enterprises/reach.html",
        rows=rows,
        page_rows=rows[(page - 1) * REACH_PAGE : page * REACH_PAGE],
        page=page,
        pages=pages,
        show_all=show_all,
        ended_count=sum(1 for r in everything if ended(r.policy)),
        totals=_totals(rows),
        share=_share,
        expired=ended,
        status_labels=policies.STATUS_LABELS,
        **_labels(),
    )


@get("/policies/{policy_id:uuid}/reach", opt=roles(*READERS), name="policies-reach-one")
async def reach_policy(request: Request, db_session: Db, settings: Config, policy_id: FromPath[UUID]) -> Template:
    policy = await db_session.get(Policy, policy_id)
    if policy is None or policy.status == PolicyStatus.DRAFT:
        raise NotFoundException
    today = policies.today(settings.tz)
    figures = (await policies.reach(db_session, today=today, policy_ids=[policy.id]))[0]
    found = await policies.reached_enterprises(db_session, policy)
    return render(
        request,
        "enterprises/reach_policy.html",
        policy=policy,
        r=figures,
        share=_share,
        found=found,
        place_names=await _names(db_session, Place, {e.place_id for e, _ in found}),
        worker_names=await _names(db_session, User, {e.grid_worker_id for e, _ in found}, "display_name"),
        expired=policy.status == PolicyStatus.WITHDRAWN or policies.is_expired(policy, today),
        status_labels=policies.STATUS_LABELS,
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


route_handlers = [
    enterprise_list, enterprise_export, enterprise_new, enterprise_create, enterprise_edit, enterprise_update,
    import_page, import_submit, import_template, enterprise_detail, enterprise_push, push_outcome, reach_page, reach_policy,
]
