"""Recycling points (L4). docs/boards.md, section "recycling".

The station's pages (staff everywhere, station operators at the stations of their compound, supervisors
read-only): drop-offs (also offline: pwa/js/station.js and the `recycling.dropoff` sync operation),
household cards and their printable QR card (replaced when lost: new number and link, same points),
redemptions, the goods catalogue and its stock, categories and their rates with history, the points
ledger with reversals and its CSV export. And the household's own
page, `/r/<token>`, opened by scanning its card: its balance and history, nothing about anyone else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from math import ceil
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext
from server.models import (
    Place,
    PlaceKind,
    PointsEntry,
    RecyclingCategory,
    RecyclingGood,
    RecyclingHousehold,
    RecyclingStation,
    Role,
)
from server.routes.posters import qr_svg
from server.security import public, roles
from server.services import exports, recycling
from server.services.appeals import utc_now
from server.services.errors import field_errors
from server.settings import Settings
from server.web import (
    current_user, flash, local_formatters, page_number, parse_uuid, public_url, redirect, render, render_part, shared_part,
)

MANAGERS = (Role.ADMIN, Role.STAFF)
WORKERS = (*MANAGERS, Role.STATION_OPERATOR)
READERS = (*WORKERS, Role.SUPERVISOR)
FORM_LINES = 4  # weight lines on the drop-off form
PAGE_SIZE = 50
HISTORY = 30  # entries on the household's own page
RECENT = 15  # drop-offs listed under the form

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]
audit = logging.getLogger("shanzhi.audit")


def _audit(request: Request, action: str, subject: Any = None) -> None:
    user = current_user(request)
    audit.info("recycling action=%s user=%s subject=%s", action, user.id if user else "-", subject or "-")


async def _station(request: Request, db_session: AsyncSession, station_id: UUID, *, work: bool = False) -> RecyclingStation:
    """The station, for a user who may read it (or work at it): 404 unknown, 403 someone else's."""
    station = await db_session.get(RecyclingStation, station_id)
    if station is None:
        raise NotFoundException
    user = current_user(request)
    if user is None or not (recycling.may_work_at(user, station) if work else recycling.may_read(user, station)):
        raise PermissionDeniedException
    return station


def _common(request: Request, settings: Settings, station: RecyclingStation | None = None, **context: Any) -> dict[str, Any]:
    user = current_user(request)
    return {"station": station, "can_work": bool(station and user and recycling.may_work_at(user, station)),
            "can_manage": bool(user and user.role in MANAGERS), "kg": recycling.kg, "format_card": recycling.format_card,
            "kind_labels": recycling.KIND_LABELS, **local_formatters(settings.tz), **context}


# --- Stations --------------------------------------------------------------------------------------------------------


async def _compounds(db_session: AsyncSession) -> list[Place]:
    return list(await db_session.scalars(select(Place).where(Place.kind == PlaceKind.RESIDENTIAL_COMPOUND).order_by(Place.name)))


async def _stations_page(request: Request, db_session: AsyncSession, settings: Settings, *, values: dict[str, str] | None = None,
                         errors: dict[str, str] | None = None, status_code: int = 200) -> Template:
    user = current_user(request)
    stations = await recycling.stations_for(db_session, user)
    places = dict((await db_session.execute(select(Place.id, Place.name))).tuples().all()) if stations else {}
    return render(request, "recycling/stations.html", status_code=status_code, stations=stations, places=places,
                  compounds=await _compounds(db_session) if user and user.role in MANAGERS else [],
                  values=values or {"name": "", "place_id": "", "opening_hours": ""}, errors=errors or {},
                  **_common(request, settings))


@get("/recycling", opt=roles(*READERS), name="recycling")
async def station_list(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    """Every station (an operator: those of their compound; with one, straight to it)."""
    user = current_user(request)
    if user is not None and user.role == Role.STATION_OPERATOR:
        mine = await recycling.stations_for(db_session, user)
        if len(mine) == 1:
            return redirect(f"/recycling/stations/{mine[0].id}")
    return await _stations_page(request, db_session, settings)


@post("/recycling/stations", opt=roles(*MANAGERS))
async def station_create(request: Request, db_session: Db, settings: Config) -> Template | Redirect:
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("name", "place_id", "opening_hours")}
    place_id = parse_uuid(values["place_id"])
    try:
        station = await recycling.create_station(db_session, name=values["name"], place_id=place_id, opening_hours=values["opening_hours"])
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        return await _stations_page(request, db_session, settings, values=values, errors=field_errors(invalid), status_code=400)
    station_id = station.id
    await db_session.commit()
    _audit(request, "station_create", station_id)
    return redirect(f"/recycling/stations/{station_id}")


@get("/recycling/stations/{station_id:uuid}", opt=roles(*READERS))
async def station_page(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id)
    now = utc_now()
    start, end = recycling.month_bounds(now, settings.tz)
    figures = await recycling.month_figures(db_session, now, settings.tz, station.id)
    by_category = await recycling.kg_by_category(db_session, start, end, station.id)
    households = await db_session.scalar(select(func.count()).select_from(RecyclingHousehold)
                                         .where(RecyclingHousehold.station_id == station.id))
    return render(request, "recycling/station.html", figures=figures, by_category=by_category, households=households or 0,
                  month=now.astimezone(settings.tz).strftime("%Y-%m"), **_common(request, settings, station))


# --- Drop-offs -------------------------------------------------------------------------------------------------------


async def _recent(db_session: AsyncSession, station: RecyclingStation) -> list[recycling.EntryRow]:
    query = recycling.ledger_query(station_id=station.id).where(PointsEntry.dropoff_id.is_not(None)).limit(RECENT)
    return await recycling.entry_rows(db_session, query)


def _blank_dropoff(card: str = "") -> dict[str, Any]:
    return {"card": card, "lines": [{"category_id": "", "kg": ""} for _ in range(FORM_LINES)]}


async def _dropoff_page(request: Request, db_session: AsyncSession, settings: Settings, station: RecyclingStation, *,
                        values: dict[str, Any], errors: dict[str, str], status_code: int = 200) -> Template:
    categories = await recycling.categories_of(db_session, station.id)
    rates = await recycling.rates_at(db_session, [c.id for c in categories], utc_now())
    return render(request, "recycling/dropoff.html", status_code=status_code, values=values, errors=errors, categories=categories,
                  rates=rates, recent=await _recent(db_session, station), max_kg=recycling.MAX_LINE_GRAMS // 1000,
                  **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/dropoff", opt=roles(*WORKERS))
async def dropoff_form(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id, work=True)
    card = recycling.normalise_card(str(request.query_params.get("card") or ""))[:16]
    return await _dropoff_page(request, db_session, settings, station, values=_blank_dropoff(card), errors={})


@post("/recycling/stations/{station_id:uuid}/dropoff", opt=roles(*WORKERS))
async def dropoff_record(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template | Redirect:
    """The form without its script (or a browser without the outbox): recorded now, online only."""
    station = await _station(request, db_session, station_id, work=True)
    form = await request.form()
    values = {"card": str(form.get("card") or "").strip()[:32],
              "lines": [{"category_id": str(form.get(f"category_{i}") or ""), "kg": str(form.get(f"kg_{i}") or "").strip()[:16]}
                        for i in range(FORM_LINES)]}
    lines = [recycling.LineInput(parse_uuid(line["category_id"]), line["kg"]) for line in values["lines"]]
    user = current_user(request)
    try:
        dropoff = await recycling.record_dropoff(db_session, station, card=values["card"], lines=lines, at=utc_now(),
                                                 by_user_id=user.id if user else None)
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _dropoff_page(request, db_session, settings, station, values=values, errors=field_errors(invalid), status_code=400)
    points, grams = dropoff.points, dropoff.grams
    card = recycling.normalise_card(values["card"])
    await db_session.commit()
    flash(request, gettext("Recorded: card %(card)s, %(kg)s kg, %(points)d points.") % {
        "card": recycling.format_card(card), "kg": recycling.kg(grams), "points": points})
    return redirect(f"/recycling/stations/{station_id}/dropoff")


# --- Households and their cards ----------------------------------------------------------------------------------------


async def _households_page(request: Request, db_session: AsyncSession, settings: Settings, station: RecyclingStation, *,
                           errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                           status_code: int = 200) -> Template:
    q = recycling.normalise_card(str(request.query_params.get("q") or ""))[:16]
    page = page_number(request.query_params.get("page"))
    query = select(RecyclingHousehold).where(RecyclingHousehold.station_id == station.id)
    if q:
        query = query.where(RecyclingHousehold.card_number.startswith(q, autoescape=True))
    total = await db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(await db_session.scalars(query.order_by(RecyclingHousehold.card_number).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    return render(request, "recycling/households.html", status_code=status_code, rows=rows, q=q, page=page,
                  pages=max(1, ceil(total / PAGE_SIZE)), total=total, errors=errors or {}, values=values or {"note": ""},
                  **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/households", opt=roles(*READERS))
async def household_list(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id)
    return await _households_page(request, db_session, settings, station)


@post("/recycling/stations/{station_id:uuid}/households", opt=roles(*WORKERS))
async def household_issue(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template | Redirect:
    station = await _station(request, db_session, station_id, work=True)
    form = await request.form()
    values = {"note": str(form.get("note") or "").strip()}
    try:
        household = await recycling.issue_card(db_session, station, note=values["note"], now=utc_now())
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _households_page(request, db_session, settings, station, errors=field_errors(invalid), values=values,
                                      status_code=400)
    household_id, number = household.id, household.card_number
    await db_session.commit()
    _audit(request, "card_issue", household_id)
    flash(request, gettext("Card %(card)s issued. Print it and give it to the household.") % {"card": recycling.format_card(number)})
    return redirect(f"/recycling/households/{household_id}/card")


async def _household(request: Request, db_session: AsyncSession, household_id: UUID, *, work: bool = False
                     ) -> tuple[RecyclingHousehold, RecyclingStation]:
    household = await db_session.get(RecyclingHousehold, household_id)
    if household is None:
        raise NotFoundException
    station = await _station(request, db_session, household.station_id, work=work)
    return household, station


async def _household_page(request: Request, db_session: AsyncSession, settings: Settings, household: RecyclingHousehold,
                          station: RecyclingStation, *, errors: dict[str, str] | None = None, failed: UUID | None = None,
                          reason: str = "", status_code: int = 200) -> Template:
    page = page_number(request.query_params.get("page"))
    total = await db_session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.household_id == household.id)) or 0
    rows = await recycling.entry_rows(db_session, recycling.ledger_query(household_id=household.id)
                                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    _audit(request, "household_view", household.id)
    return render(request, "recycling/household.html", status_code=status_code, household=household, rows=rows, page=page,
                  pages=max(1, ceil(total / PAGE_SIZE)), errors=errors or {}, failed=failed, reason=reason,
                  **_common(request, settings, station))


@get("/recycling/households/{household_id:uuid}", opt=roles(*READERS))
async def household_page(request: Request, db_session: Db, settings: Config, household_id: FromPath[UUID]) -> Template:
    household, station = await _household(request, db_session, household_id)
    return await _household_page(request, db_session, settings, household, station)


@get("/recycling/households/{household_id:uuid}/card", opt=roles(*WORKERS))
async def household_card(request: Request, db_session: Db, settings: Config, household_id: FromPath[UUID]) -> Template:
    household, station = await _household(request, db_session, household_id, work=True)
    url = public_url(request, f"/r/{household.token}")
    svg = qr_svg(url, gettext("QR code of recycling card %(card)s") % {"card": recycling.format_card(household.card_number)})
    _audit(request, "card_print", household.id)
    return render(request, "recycling/card.html", household=household, url=url, svg=svg, **_common(request, settings, station))


@post("/recycling/households/{household_id:uuid}/replace-card", opt=roles(*WORKERS))
async def household_replace_card(request: Request, db_session: Db, household_id: FromPath[UUID]) -> Redirect:
    """A lost card: the same household (balance, history) gets a new number and a new QR link; the old
    number is refused at the station and the old link answers 404. Audited; then the new card to print."""
    household, _station_row = await _household(request, db_session, household_id, work=True)
    household, old = await recycling.replace_card(db_session, household, now=utc_now())
    new = household.card_number
    await db_session.commit()
    _audit(request, f"card_replace old_card={old} new_card={new}", household_id)
    flash(request, gettext("Card %(old)s no longer works: the household's points are now on card %(new)s. Print it and give it to the household.")
          % {"old": recycling.format_card(old), "new": recycling.format_card(new)})
    return redirect(f"/recycling/households/{household_id}/card")


@post("/recycling/entries/{entry_id:uuid}/reverse", opt=roles(*WORKERS))
async def entry_reverse(request: Request, db_session: Db, settings: Config, entry_id: FromPath[UUID]) -> Template | Redirect:
    entry = await db_session.get(PointsEntry, entry_id)
    if entry is None:
        raise NotFoundException
    household, station = await _household(request, db_session, entry.household_id, work=True)
    household_id = household.id
    form = await request.form()
    reason = str(form.get("reason") or "").strip()[:500]
    user = current_user(request)
    try:
        await recycling.reverse(db_session, entry.id, reason=reason, at=utc_now(), by_user_id=user.id if user else None)
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        household, station = await _household(request, db_session, household_id, work=True)
        return await _household_page(request, db_session, settings, household, station, errors=field_errors(invalid), failed=entry_id,
                                     reason=reason, status_code=400)
    await db_session.commit()
    _audit(request, "reverse", entry_id)
    flash(request, gettext("The entry is reversed."))
    return redirect(f"/recycling/households/{household_id}")


# --- Redemptions and goods -----------------------------------------------------------------------------------------


async def _redeem_page(request: Request, db_session: AsyncSession, settings: Settings, station: RecyclingStation, *,
                       values: dict[str, str], errors: dict[str, str], status_code: int = 200) -> Template:
    household = await recycling.by_card(db_session, station.id, values["card"]) if values.get("card") else None
    return render(request, "recycling/redeem.html", status_code=status_code, values=values, errors=errors,
                  goods=await recycling.goods_of(db_session, station.id, active_only=True), household=household,
                  **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/redeem", opt=roles(*WORKERS))
async def redeem_form(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id, work=True)
    card = recycling.normalise_card(str(request.query_params.get("card") or ""))[:16]
    return await _redeem_page(request, db_session, settings, station, values={"card": card, "good_id": "", "quantity": "1"}, errors={})


@post("/recycling/stations/{station_id:uuid}/redeem", opt=roles(*WORKERS))
async def redeem_record(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template | Redirect:
    station = await _station(request, db_session, station_id, work=True)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:40] for name in ("card", "good_id", "quantity")}
    user = current_user(request)
    try:
        redemption = await recycling.redeem(db_session, station, card=values["card"], good_id=parse_uuid(values["good_id"]),
                                            quantity=values["quantity"], at=utc_now(), by_user_id=user.id if user else None)
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _redeem_page(request, db_session, settings, station, values=values, errors=field_errors(invalid), status_code=400)
    points, quantity = redemption.points, redemption.quantity
    good = await db_session.get(RecyclingGood, redemption.good_id)
    name = good.name if good else ""
    await db_session.commit()
    flash(request, gettext("Redeemed: %(good)s × %(quantity)d for %(points)d points.") % {"good": name, "quantity": quantity, "points": points})
    return redirect(f"/recycling/stations/{station_id}/redeem")


async def _goods_page(request: Request, db_session: AsyncSession, settings: Settings, station: RecyclingStation, *,
                      values: dict[str, str] | None = None, errors: dict[str, str] | None = None, failed: UUID | None = None,
                      change: str = "", status_code: int = 200) -> Template:
    return render(request, "recycling/goods.html", status_code=status_code, goods=await recycling.goods_of(db_session, station.id),
                  values=values or {"name": "", "points": "", "stock": ""}, errors=errors or {}, failed=failed, change=change,
                  **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/goods", opt=roles(*READERS))
async def goods_list(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id)
    return await _goods_page(request, db_session, settings, station)


@post("/recycling/stations/{station_id:uuid}/goods", opt=roles(*MANAGERS))
async def good_add(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template | Redirect:
    station = await _station(request, db_session, station_id, work=True)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:60] for name in ("name", "points", "stock")}
    try:
        await recycling.add_good(db_session, station, name=values["name"], points=values["points"], stock=values["stock"])
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _goods_page(request, db_session, settings, station, values=values, errors=field_errors(invalid), status_code=400)
    await db_session.commit()
    _audit(request, "good_add", station_id)
    flash(request, gettext("%(name)s added to the catalogue.") % {"name": values["name"]})
    return redirect(f"/recycling/stations/{station_id}/goods")


@post("/recycling/goods/{good_id:uuid}/stock", opt=roles(*WORKERS))
async def good_stock(request: Request, db_session: Db, settings: Config, good_id: FromPath[UUID]) -> Template | Redirect:
    good = await db_session.get(RecyclingGood, good_id)
    if good is None:
        raise NotFoundException
    station = await _station(request, db_session, good.station_id, work=True)
    station_id = station.id
    form = await request.form()
    change = str(form.get("change") or "").strip()[:16]
    try:
        updated = await recycling.adjust_stock(db_session, good, change=change)
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _goods_page(request, db_session, settings, station, errors=field_errors(invalid), failed=good_id, change=change,
                                 status_code=400)
    name, stock = updated.name, updated.stock
    await db_session.commit()
    _audit(request, f"stock change={change}", good_id)
    flash(request, gettext("%(name)s: %(stock)d in stock.") % {"name": name, "stock": stock})
    return redirect(f"/recycling/stations/{station_id}/goods")


# --- Categories and rates ------------------------------------------------------------------------------------------


async def _categories_page(request: Request, db_session: AsyncSession, settings: Settings, station: RecyclingStation, *,
                           values: dict[str, str] | None = None, errors: dict[str, str] | None = None, failed: UUID | None = None,
                           rate_values: dict[str, str] | None = None, status_code: int = 200) -> Template:
    categories = await recycling.categories_of(db_session, station.id, active_only=False)
    return render(request, "recycling/categories.html", status_code=status_code, categories=categories,
                  current=await recycling.rates_at(db_session, [c.id for c in categories], utc_now()),
                  history=await recycling.rate_history(db_session, station.id), values=values or {"name": "", "points_per_kg": ""},
                  errors=errors or {}, failed=failed, rate_values=rate_values or {}, max_rate=recycling.MAX_POINTS_PER_KG,
                  today=utc_now().astimezone(settings.tz).date().isoformat(), **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/categories", opt=roles(*READERS))
async def category_list(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id)
    return await _categories_page(request, db_session, settings, station)


@post("/recycling/stations/{station_id:uuid}/categories", opt=roles(*MANAGERS))
async def category_add(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template | Redirect:
    station = await _station(request, db_session, station_id, work=True)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:60] for name in ("name", "points_per_kg")}
    try:
        await recycling.add_category(db_session, station, name=values["name"], points_per_kg=values["points_per_kg"], now=utc_now())
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _categories_page(request, db_session, settings, station, values=values, errors=field_errors(invalid),
                                      status_code=400)
    await db_session.commit()
    _audit(request, "category_add", station_id)
    flash(request, gettext("Category %(name)s added.") % {"name": values["name"]})
    return redirect(f"/recycling/stations/{station_id}/categories")


@post("/recycling/categories/{category_id:uuid}/rates", opt=roles(*MANAGERS))
async def category_rate(request: Request, db_session: Db, settings: Config, category_id: FromPath[UUID]) -> Template | Redirect:
    category = await db_session.get(RecyclingCategory, category_id)
    if category is None:
        raise NotFoundException
    station = await _station(request, db_session, category.station_id, work=True)
    station_id = station.id
    form = await request.form()
    values = {name: str(form.get(name) or "").strip()[:16] for name in ("points_per_kg", "effective_on")}
    try:
        await recycling.set_rate(db_session, category, points_per_kg=values["points_per_kg"], effective_on=values["effective_on"],
                                 now=utc_now(), tz=settings.tz)
    except recycling.InvalidRecycling as invalid:
        await db_session.rollback()
        station = await _station(request, db_session, station_id, work=True)
        return await _categories_page(request, db_session, settings, station, errors=field_errors(invalid), failed=category_id,
                                      rate_values=values, status_code=400)
    name = category.name
    await db_session.commit()
    _audit(request, f"rate points_per_kg={values['points_per_kg']}", category_id)
    flash(request, gettext("New rate of %(name)s saved.") % {"name": name})
    return redirect(f"/recycling/stations/{station_id}/categories")


# --- The ledger ----------------------------------------------------------------------------------------------------


@get("/recycling/stations/{station_id:uuid}/ledger", opt=roles(*READERS))
async def ledger_page(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Template:
    station = await _station(request, db_session, station_id)
    page = page_number(request.query_params.get("page"))
    total = await db_session.scalar(select(func.count()).select_from(PointsEntry).where(PointsEntry.station_id == station.id)) or 0
    rows = await recycling.entry_rows(db_session, recycling.ledger_query(station_id=station.id)
                                      .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return render(request, "recycling/ledger.html", rows=rows, page=page, pages=max(1, ceil(total / PAGE_SIZE)), total=total,
                  **_common(request, settings, station))


@get("/recycling/stations/{station_id:uuid}/ledger.csv", opt=roles(*READERS))
async def ledger_export(request: Request, db_session: Db, settings: Config, station_id: FromPath[UUID]) -> Response[bytes]:
    station = await _station(request, db_session, station_id)
    header = [gettext("Time"), gettext("Entry number"), gettext("Card number"), gettext("Kind"), gettext("Points in"), gettext("Points out"),
              gettext("Details"), gettext("Reverses entry"), gettext("Reason"), gettext("Reversed")]
    rows = await recycling.ledger_csv_rows(db_session, station.id, settings.tz)
    labels = {kind.value: gettext(label) for kind, label in recycling.KIND_LABELS.items()}
    body = exports.csv_bytes(header, [[*row[:3], labels[row[3]], *row[4:9], gettext("Yes") if row[9] else ""] for row in rows])
    _audit(request, "ledger_export", station.id)
    return Response(body, media_type="text/csv", headers={
        "content-disposition": 'attachment; filename="recycling-points-ledger.csv"', "cache-control": "private, no-store"})


# --- The household's own page --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownCard:
    """A household's card page as anyone holding the card sees it, rendered once in the language of the key."""

    station: RecyclingStation
    card_number: str
    head_html: Markup
    body_html: Markup


@get("/r/{token:str}", opt=public())
async def card_page(request: Request, settings: Config, token: FromPath[str]) -> Template:
    """Scanned from the card: this household's balance and history only (the token is the credential).
    Kept per card until the station records anything (a household checking after a drop-off sees it)."""

    async def compute(session: AsyncSession) -> ShownCard | None:
        household = await recycling.by_token(session, token)
        if household is None:
            return None
        station = await session.get(RecyclingStation, household.station_id)
        context = _common(request, settings, None, household=household, card_station=station,
                          rows=await recycling.entry_rows(session, recycling.ledger_query(household_id=household.id).limit(HISTORY)),
                          goods=await recycling.goods_of(session, household.station_id, active_only=True))
        assert station is not None  # a household belongs to a station (foreign key)
        return ShownCard(station, household.card_number, render_part(request, "recycling/_card_head.html", **context),
                         render_part(request, "recycling/_card_body.html", **context))

    # Never answered past its time, not even while refreshing: a card replaced through another process
    # stops working within SHANZHI_PUBLIC_CACHE_SECONDS.
    shown: ShownCard | None = (await shared_part(request, recycling.CARD_TOPIC, token, compute, grace=0.0)
                               if len(token) <= 64 else None)
    if shown is None:
        raise NotFoundException
    user = current_user(request)
    response = render(request, "recycling/card_page.html", shown=shown,
                      operator=bool(user and recycling.may_work_at(user, shown.station)))
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is the credential
    response.headers["Cache-Control"] = "private, no-cache"
    return response


route_handlers = [
    station_list, station_create, station_page, dropoff_form, dropoff_record, household_list, household_issue, household_page,
    household_card, household_replace_card, entry_reverse, redeem_form, redeem_record, goods_list, good_add, good_stock, category_list,
    category_add, category_rate, ledger_page, ledger_export, card_page,
]
