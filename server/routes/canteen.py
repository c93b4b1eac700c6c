"""Community canteen ledger (L5): the canteen manager's pages (record income, spending and meals on a phone,
the ledger by month, reversals with a reason, the monthly close, CSV export) and receipts, which only the
manager, staff, admins and supervisors see. The public board is /boards/canteen (server/services/canteen.py).
docs/boards.md, "canteen"."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import CanteenDirection, CanteenEntry, Role, User
from server.routes.track import photo_file
from server.security import roles
from server.services import canteen
from server.services.appeals import utc_now
from server.services.errors import ServiceError, field_errors
from server.settings import Settings
from server.web import current_user, flash, local_formatters, page_number, redirect, render

READERS = (Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER)  # the ledger, receipts, the export
WRITERS = (Role.ADMIN, Role.STAFF, Role.CANTEEN_MANAGER)  # entries, reversals, meals, the close
MAX_ENTRY_BODY = 8 * 1024 * 1024  # one receipt photo (at most 5 MB) and the form around it
ENTRY_FIELDS = ("category", "amount", "day", "note")

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]
audit = logging.getLogger("shanzhi.audit")


def _audit(request: Request, action: str, subject: object = "-") -> None:
    user = current_user(request)
    audit.info("canteen action=%s user=%s subject=%s", action, user.id if user else "-", subject)


def _labels() -> dict[str, Any]:
    return {
        "category_labels": canteen.CATEGORY_LABELS,
        "direction_labels": canteen.DIRECTION_LABELS,
        "income_categories": canteen.INCOME_CATEGORIES,
        "expense_categories": canteen.EXPENSE_CATEGORIES,
        "yuan": canteen.yuan,
    }


def _can_write(request: Request) -> bool:
    user = current_user(request)
    return user is not None and user.role in WRITERS


async def _entry(session: AsyncSession, entry_id: UUID) -> CanteenEntry:
    entry = await session.get(CanteenEntry, entry_id)
    if entry is None:
        raise NotFoundException
    return entry


# --- The ledger by month ---------------------------------------------------------------------------------------


def _filter(request: Request, settings: Settings) -> canteen.LedgerFilter:
    params = request.query_params
    month = canteen.parse_month(params.get("month")) or canteen.month_of(canteen.local_today(utc_now(), settings.tz))
    direction = str(params.get("direction") or "")
    category = str(params.get("category") or "")
    return canteen.LedgerFilter(month=month, direction=direction, category=category, page=page_number(params.get("page")))


def _query(f: canteen.LedgerFilter, **changes: Any) -> str:
    values = {"month": f.month.strftime("%Y-%m") if f.month else "", "direction": f.direction, "category": f.category, "page": ""}
    values.update(changes)
    return urlencode({k: str(v) for k, v in values.items() if v not in ("", None, 1)})


async def _ledger(request: Request, db_session: AsyncSession, settings: Settings, f: canteen.LedgerFilter, *,
                  close_error: str | None = None, status_code: int = 200) -> Template:
    assert f.month is not None
    now = utc_now()
    today = canteen.local_today(now, settings.tz)
    end = canteen.next_month(f.month)
    page = await canteen.ledger_page(db_session, f)
    month_row = await canteen.month_row(db_session, f.month)
    closed_by = await db_session.get(User, month_row.closed_by_id) if month_row and month_row.closed_by_id else None
    return render(
        request,
        "canteen/ledger.html",
        status_code=status_code,
        f=f,
        query=lambda **changes: _query(f, **changes),
        page=page,
        figures=await canteen.totals(db_session, f.month, end),
        meals=await canteen.meals_total(db_session, f.month, end),
        categories=await canteen.by_category(db_session, f.month, end),
        month_row=month_row if month_row and month_row.closed_at else None,
        closed_by=closed_by,
        ended=end <= today,
        previous=canteen.previous_month(f.month),
        following=end if end <= today else None,
        can_write=_can_write(request),
        close_error=close_error,
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/canteen/ledger", opt=roles(*READERS), name="canteen-ledger")
async def ledger(request: Request, db_session: Db, settings: Config) -> Template:
    return await _ledger(request, db_session, settings, _filter(request, settings))


@get("/canteen/export.csv", opt=roles(*READERS), name="canteen-export")
async def export(request: Request, db_session: Db, settings: Config) -> Response[bytes]:
    """The ledger as CSV (of one month with ?month=YYYY-MM, else all of it); formula-safe for Excel."""
    month = canteen.parse_month(request.query_params.get("month"))
    _audit(request, "export", month.strftime("%Y-%m") if month else "all")
    name = f"canteen-{month:%Y-%m}.csv" if month else "canteen-ledger.csv"
    return Response(
        await canteen.export_csv(db_session, month, settings.tz),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "private, no-store"},
    )


# --- Recording -----------------------------------------------------------------------------------------------


async def _entry_form(request: Request, values: dict[str, str], errors: dict[str, str], status_code: int = 200) -> Template:
    return render(request, "canteen/entry_form.html", status_code=status_code, values=values, errors=errors, **_labels())


@get("/canteen/entries/new", opt=roles(*WRITERS), name="canteen-entry-new")
async def entry_new(request: Request, settings: Config) -> Template:
    params = request.query_params
    today = canteen.local_today(utc_now(), settings.tz).isoformat()
    direction = str(params.get("direction") or "")
    category = str(params.get("category") or "")
    if not category and direction == CanteenDirection.EXPENSE.value:
        category = canteen.EXPENSE_CATEGORIES[0].value
    values = {"category": category or canteen.INCOME_CATEGORIES[0].value, "amount": "", "day": str(params.get("day") or today), "note": ""}
    return await _entry_form(request, values, {})


@post("/canteen/entries/new", opt=roles(*WRITERS), request_max_body_size=MAX_ENTRY_BODY)
async def entry_create(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ENTRY_FIELDS}
    upload = form.get("receipt")
    receipt = await upload.read() if isinstance(upload, UploadFile) and upload.filename else None
    user = current_user(request)
    try:
        entry = await canteen.record_entry(
            db_session, canteen.EntryInput(**values), actor_id=user.id if user else None, now=utc_now(), tz=settings.tz,
            receipt=receipt, uploads_dir=settings.uploads_dir,
        )
    except ServiceError as invalid:
        await db_session.rollback()
        return await _entry_form(request, values, field_errors(invalid, "amount"), status_code=400)
    entry_id, day, category, amount = entry.id, entry.day, entry.category, entry.amount_fen
    await db_session.commit()
    _audit(request, "entry", entry_id)
    flash(request, gettext("Recorded: %(category)s, %(amount)s yuan on %(day)s.")
          % {"category": gettext(canteen.CATEGORY_LABELS[category]), "amount": canteen.yuan(amount), "day": day.isoformat()})
    return redirect("/canteen/entries/new?" + urlencode({"day": day.isoformat(), "direction": canteen.DIRECTION_OF[category].value}))


# --- One entry: its receipt, its reversal ----------------------------------------------------------------------


async def _detail(request: Request, db_session: AsyncSession, settings: Settings, entry: CanteenEntry, *, reason: str = "",
                  errors: dict[str, str] | None = None, status_code: int = 200) -> Template:
    reversal = await db_session.scalar(select(CanteenEntry).where(CanteenEntry.reverses_id == entry.id))
    original = await db_session.get(CanteenEntry, entry.reverses_id) if entry.reverses_id else None
    month_row = await canteen.month_row(db_session, canteen.month_of(entry.day))
    names = await canteen.user_names(db_session, {entry.recorded_by_id, reversal.recorded_by_id if reversal else None})
    return render(
        request,
        "canteen/entry.html",
        status_code=status_code,
        entry=entry,
        reversal=reversal,
        original=original,
        closed=bool(month_row and month_row.closed_at),
        names=names,
        can_write=_can_write(request),
        reason=reason,
        errors=errors or {},
        local_time=local_formatters(settings.tz)["local_time"],
        **_labels(),
    )


@get("/canteen/entries/{entry_id:uuid}", opt=roles(*READERS), name="canteen-entry")
async def entry_detail(request: Request, db_session: Db, settings: Config, entry_id: FromPath[UUID]) -> Template:
    return await _detail(request, db_session, settings, await _entry(db_session, entry_id))


@post("/canteen/entries/{entry_id:uuid}/reverse", opt=roles(*WRITERS))
async def entry_reverse(request: Request, db_session: Db, settings: Config, entry_id: FromPath[UUID]) -> Template | Redirect:
    await _entry(db_session, entry_id)
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    user = current_user(request)
    try:
        reversal = await canteen.reverse(db_session, entry_id, reason, actor_id=user.id if user else None, now=utc_now())
    except ServiceError as invalid:
        await db_session.rollback()
        return await _detail(request, db_session, settings, await _entry(db_session, entry_id), reason=reason,
                             errors=field_errors(invalid, "reason"), status_code=400)
    reversal_id = reversal.id
    await db_session.commit()
    _audit(request, "reverse", entry_id)
    flash(request, gettext("The entry was reversed."))
    return redirect(f"/canteen/entries/{reversal_id}")


@get("/canteen/entries/{entry_id:uuid}/receipt", opt=roles(*READERS))
async def entry_receipt(request: Request, db_session: Db, settings: Config, entry_id: FromPath[UUID]) -> File:
    """The receipt photo of an entry: never public (manager, staff, admins, supervisors)."""
    entry = await _entry(db_session, entry_id)
    if not entry.receipt_sha:
        raise NotFoundException
    _audit(request, "receipt", entry_id)
    return photo_file(settings, entry.receipt_sha)


# --- Meals per day -------------------------------------------------------------------------------------------


async def _meals_page(request: Request, db_session: AsyncSession, settings: Settings, values: dict[str, str],
                      errors: dict[str, str], status_code: int = 200) -> Template:
    today = canteen.local_today(utc_now(), settings.tz)
    start = canteen.previous_month(canteen.month_of(today))
    days = await canteen.meal_days(db_session, start, today + timedelta(days=1))
    return render(request, "canteen/meals.html", status_code=status_code, values=values, errors=errors,
                  recent=sorted(days.items(), reverse=True)[:31])


@get("/canteen/meals", opt=roles(*WRITERS), name="canteen-meals")
async def meals_form(request: Request, db_session: Db, settings: Config) -> Template:
    today = canteen.local_today(utc_now(), settings.tz).isoformat()
    return await _meals_page(request, db_session, settings, {"meal_day": today, "meals": ""}, {})


@post("/canteen/meals", opt=roles(*WRITERS))
async def meals_record(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("meal_day", "meals")}
    user = current_user(request)
    try:
        row = await canteen.record_meals(db_session, values["meal_day"], values["meals"], actor_id=user.id if user else None,
                                         now=utc_now(), tz=settings.tz)
    except ServiceError as invalid:
        await db_session.rollback()
        return await _meals_page(request, db_session, settings, values, field_errors(invalid, "meals"), status_code=400)
    day, meals = row.day, row.meals
    await db_session.commit()
    _audit(request, "meals", day.isoformat())
    flash(request, gettext("%(meals)d meals recorded for %(day)s.") % {"meals": meals, "day": day.isoformat()})
    return redirect("/canteen/meals")


# --- The monthly close ---------------------------------------------------------------------------------------


@post("/canteen/months/{month:str}/close", opt=roles(*WRITERS))
async def month_close(request: Request, db_session: Db, settings: Config, month: FromPath[str]) -> Template | Redirect:
    first = canteen.parse_month(month)
    if first is None:
        raise NotFoundException
    user = current_user(request)
    try:
        _row, newly = await canteen.close_month(db_session, first, actor_id=user.id if user else None, now=utc_now(), tz=settings.tz)
    except ServiceError as error:
        await db_session.rollback()
        return await _ledger(request, db_session, settings, canteen.LedgerFilter(month=first), close_error=error.translated(),
                             status_code=400)
    await db_session.commit()
    if newly:
        _audit(request, "close", first.strftime("%Y-%m"))
    flash(request, (gettext("%(month)s is closed: its figures are final.") if newly else gettext("%(month)s was already closed."))
          % {"month": first.strftime("%Y-%m")})
    return redirect(f"/canteen/ledger?month={first:%Y-%m}")


route_handlers = [ledger, export, entry_new, entry_create, entry_detail, entry_reverse, entry_receipt, meals_form, meals_record, month_close]
