"""晨曦信号, the staff side (L3): every enrolled elder with today's state and the figures of the last 30 days,
enrolment with the ordered chain of helpers, an elder's record (chain, pauses, 30 days of signals, alerts
with their timelines), editing, reissuing the personal link, ending the enrolment, and the printed card
with the QR code of the link. docs/morning-signal.md.

Elders' names, addresses and phones are personal data: these pages are for staff, and for a grid worker
for the elders whose chain they are in (an ElderHelper row with their account); any other elder is not
found for them (404, as `_my_elder` in server/routes/signals.py), and the staff-wide figures stay staff's.
A grid worker who enrols an elder without putting themselves in the chain is added at its end (as the grid
worker); one who takes themselves out of a chain while editing is asked to confirm first, since they will no
longer see the elder. Every view of an elder's record (and every change), by staff or a grid worker, is
written to the audit log (the `shanzhi.audit` logger, one line each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import distinct, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_, gettext
from server.models import AlertStatus, Elder, ElderAlert, ElderHelper, ElderPause, HelperKind, Place, PlaceKind, Role, User
from server.routes.posters import qr_svg
from server.security import roles
from server.services import morning_signal
from server.services.accounts import ROLE_LABELS
from server.services.appeals import utc_now
from server.services.errors import field_errors
from server.settings import Settings
from server.web import current_user, flash, local_formatters, parse_uuid, public_url, redirect, render

STAFF = (Role.ADMIN, Role.STAFF)
ENROLLING = (*STAFF, Role.GRID_WORKER)  # a grid worker: only the elders whose chain they are in
HELPER_ROLES = (Role.BUILDING_HEAD, Role.VOLUNTEER, Role.GRID_WORKER)  # accounts offered for the chain
HELPER_ROWS = 6  # chain rows on the form (an edited chain longer than this keeps all its rows)
MAX_HELPER_ROWS = 20
HISTORY_DAYS = 30
FIGURE_DAYS = 30
ALERTS_SHOWN = 20  # alerts on an elder's record, newest first, each with its timeline
DEFAULT_TEAMS = ("励新党员服务队", "幸福合伙人")  # team names offered (with those already in use)
DEFAULT_KINDS = (HelperKind.BUILDING_HEAD, HelperKind.VOLUNTEER, HelperKind.FAMILY, HelperKind.GRID_WORKER,
                 HelperKind.VOLUNTEER, HelperKind.FAMILY)
KIND_LABELS = {
    HelperKind.BUILDING_HEAD: N_("Building head"),
    HelperKind.VOLUNTEER: N_("Volunteer"),
    HelperKind.FAMILY: N_("Family"),
    HelperKind.GRID_WORKER: N_("Grid worker"),
}
STATE_LABELS = {
    "signalled": N_("Signalled"),
    "late": N_("Signalled late"),
    "missed": N_("No signal"),
    "paused": N_("Paused"),
    "waiting": N_("Waiting"),
    "upcoming": N_("Window not open yet"),
    "not_enrolled": N_("Not enrolled yet"),
    "ended": N_("Ended"),
}
EVENT_LABELS = {
    "opened": N_("Alert opened"),
    "sent": N_("Sent to"),
    "escalated": N_("Escalated to"),
    "acknowledged": N_("Acknowledged by"),
    "resolved": N_("Resolved by"),
}
STATUS_LABELS = {
    AlertStatus.OPEN: N_("Open"),
    AlertStatus.ACKNOWLEDGED: N_("Acknowledged"),
    AlertStatus.RESOLVED: N_("Resolved"),
}
TEXT_FIELDS = ("name", "address", "phone", "place_id", "window_start", "window_end", "grace_minutes", "reminder_minutes",
               "step_minutes")
HELPER_FIELDS = ("kind", "user_id", "name", "phone", "team")

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]
audit = logging.getLogger("shanzhi.audit")


def _audit(request: Request, action: str, elder_id: UUID | None = None) -> None:
    """One line in the audit log: who, which elder, what (a view of the record counts)."""
    user = current_user(request)
    audit.info("morning_signal action=%s user=%s elder=%s", action, user.id if user else "-", elder_id or "-")


def _is_staff(request: Request) -> bool:
    user = current_user(request)
    return user is not None and user.role in STAFF


async def _chain_elders(db_session: AsyncSession, user_id: UUID) -> set[UUID]:
    """The elders (ended ones included) whose chain this account is in."""
    return set(await db_session.scalars(select(distinct(ElderHelper.elder_id)).where(ElderHelper.user_id == user_id)))


async def _elder(request: Request, db_session: AsyncSession, elder_id: UUID) -> Elder:
    """Staff: any elder. A grid worker: an elder whose chain they are in (an ended one too, so the record of an
    enrolment they ended stays theirs to read); anyone else's is not found (404, not 403: as `_my_elder` in
    server/routes/signals.py, the answer does not tell that the elder exists)."""
    elder = await db_session.get(Elder, elder_id)
    if elder is None:
        raise NotFoundException
    user = current_user(request)
    if user is None or (user.role not in STAFF and elder_id not in await _chain_elders(db_session, user.id)):
        raise NotFoundException
    return elder


async def _names(db_session: AsyncSession, model: Any, ids: set[UUID | None], column: str = "name") -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict((await db_session.execute(select(model.id, getattr(model, column)).where(model.id.in_(wanted)))).tuples().all())


async def _compounds(db_session: AsyncSession) -> list[Place]:
    return list(await db_session.scalars(
        select(Place).where(Place.kind == PlaceKind.RESIDENTIAL_COMPOUND).order_by(Place.name, Place.id)))


def _window(elder: Any) -> str:
    return f"{elder.window_start:%H:%M}–{elder.window_end:%H:%M}"


def _minutes(span: timedelta | None) -> str:
    """A mean time as people say it: "25 min", "1 h 5 min"; "—" when there is none."""
    if span is None:
        return "—"
    minutes = round(span.total_seconds() / 60)
    if minutes < 60:
        return gettext("%(m)d min") % {"m": minutes}
    return gettext("%(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}


def _labels() -> dict[str, Any]:
    return {"kind_labels": KIND_LABELS, "state_labels": STATE_LABELS, "event_labels": EVENT_LABELS, "status_labels": STATUS_LABELS,
            "outcome_labels": morning_signal.OUTCOME_LABELS, "method_labels": morning_signal.METHOD_LABELS,
            "role_labels": ROLE_LABELS, "window": _window}


# --- All elders, and the staff figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    elder: Elder
    place: str
    first_helper: ElderHelper | None
    today: morning_signal.DayMark | None


@get("/signals/elders", opt=roles(*ENROLLING), name="elders")
async def elder_list(request: Request, db_session: Db, settings: Config) -> Template:
    """Staff: every elder, and the figures of the last 30 days. A grid worker: the elders of their chain only
    (no staff-wide figures)."""
    now = utc_now()
    tz = settings.tz
    staff = _is_staff(request)
    query = select(Elder).order_by(Elder.ended_at.is_not(None), Elder.name, Elder.id)
    if not staff:
        user = current_user(request)
        assert user is not None
        query = query.where(Elder.id.in_(await _chain_elders(db_session, user.id)))
    elders = list(await db_session.scalars(query))
    active = [e for e in elders if e.ended_at is None]
    days = {e.id: morning_signal.day_of(e, now, tz) for e in active}
    marks = await morning_signal.marks_of(db_session, active, min(days.values()), max(days.values()), now, tz) if active else {}
    chains = await morning_signal.chain_of(db_session, [e.id for e in active])
    places = await _names(db_session, Place, {e.place_id for e in elders})
    rows = [Row(e, places.get(e.place_id, "—") if e.place_id else "—", (chains[e.id] or [None])[0],
                next((m for m in marks[e.id] if m.day == days[e.id]), None)) for e in active]
    figures = await morning_signal.staff_figures(db_session, now - timedelta(days=FIGURE_DAYS), now) if staff else None
    helpers = await _names(db_session, User, {h.user_id for h in figures.load or []}, "display_name") if figures else {}
    counts = {state: sum(1 for r in rows if r.today and r.today.state == state) for state in STATE_LABELS}
    alerts_now = sum(1 for r in rows if r.today and r.today.alert and r.today.alert.status != AlertStatus.RESOLVED)
    _audit(request, "list")
    return render(
        request,
        "elders/list.html",
        rows=rows,
        scoped=not staff,
        ended=[e for e in elders if e.ended_at is not None],
        places=places,
        figures=figures,
        helpers=helpers,
        counts=counts,
        alerts_now=alerts_now,
        mean=_minutes,
        figure_days=FIGURE_DAYS,
        local_time=local_formatters(tz)["local_time"],
        **_labels(),
    )


# --- Enrolment and editing ----------------------------------------------------------------------------------------


async def _accounts(db_session: AsyncSession) -> list[User]:
    return list(await db_session.scalars(
        select(User).where(User.role.in_(HELPER_ROLES), User.is_active.is_(True)).order_by(User.role, User.display_name, User.id)))


async def _teams(db_session: AsyncSession) -> list[str]:
    used = await db_session.scalars(select(distinct(ElderHelper.team)).where(ElderHelper.team.is_not(None)))
    return sorted(set(DEFAULT_TEAMS) | {t for t in used if t})


def _blank_helper(position: int) -> dict[str, str]:
    return {"kind": DEFAULT_KINDS[position % len(DEFAULT_KINDS)].value, "user_id": "", "name": "", "phone": "", "team": ""}


def _defaults() -> dict[str, Any]:
    start, end = morning_signal.DEFAULT_WINDOW
    return {"name": "", "address": "", "phone": "", "place_id": "", "window_start": f"{start:%H:%M}", "window_end": f"{end:%H:%M}",
            "grace_minutes": str(morning_signal.DEFAULT_GRACE), "reminder_minutes": str(morning_signal.DEFAULT_REMINDER),
            "step_minutes": str(morning_signal.DEFAULT_STEP), "helpers": [_blank_helper(i) for i in range(HELPER_ROWS)]}


def _values_of(elder: Elder, chain: list[ElderHelper]) -> dict[str, Any]:
    helpers = [{"kind": h.kind.value, "user_id": str(h.user_id or ""), "name": h.name, "phone": h.phone or "", "team": h.team or ""}
               for h in chain]
    helpers += [_blank_helper(i) for i in range(len(helpers), HELPER_ROWS)]
    return {"name": elder.name, "address": elder.address, "phone": elder.phone or "", "place_id": str(elder.place_id or ""),
            "window_start": f"{elder.window_start:%H:%M}", "window_end": f"{elder.window_end:%H:%M}",
            "grace_minutes": str(elder.grace_minutes), "reminder_minutes": str(elder.reminder_minutes),
            "step_minutes": str(elder.step_minutes), "helpers": helpers}


def _time(value: str) -> time | None:
    try:
        return time.fromisoformat(value) if value else None
    except ValueError:
        return None


def _whole(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


async def _form_input(form: Any, db_session: AsyncSession) -> tuple[dict[str, Any], morning_signal.ElderInput,
                                                                    list[morning_signal.HelperInput], dict[str, str]]:
    """What was typed (kept for a refused form), the service's input, and the problems found before the service
    (a helper's problem under `helper_<row>`, the chain as a whole under `chain`)."""
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in TEXT_FIELDS}
    errors: dict[str, str] = {}
    place_id = parse_uuid(values["place_id"])
    place = await db_session.get(Place, place_id) if place_id else None
    if values["place_id"] and (place is None or place.kind != PlaceKind.RESIDENTIAL_COMPOUND):
        errors["place_id"] = gettext("Please choose one of the options.")
        place_id = None
    window: dict[str, time] = {}
    for name, default in zip(("window_start", "window_end"), morning_signal.DEFAULT_WINDOW, strict=True):
        parsed = _time(values[name])
        if parsed is None:
            errors[name] = gettext("Please enter a time such as 06:00.")
        window[name] = parsed or default
    minutes: dict[str, int] = {}
    for name in ("grace_minutes", "reminder_minutes", "step_minutes"):
        parsed_minutes = _whole(values[name])
        if parsed_minutes is None:
            errors[name] = gettext("Please enter a whole number of minutes.")
        minutes[name] = parsed_minutes if parsed_minutes is not None else 0
    data = morning_signal.ElderInput(name=values["name"][:60], address=values["address"][:200], phone=values["phone"][:32] or None,
                                     place_id=place_id, **window, **minutes)
    rows = min(_whole(str(form.get("helper_rows") or "")) or HELPER_ROWS, MAX_HELPER_ROWS)
    accounts = {u.id: u for u in await _accounts(db_session)}
    kinds = {k.value for k in HelperKind}
    values["helpers"] = []
    chain: list[morning_signal.HelperInput] = []
    for i in range(max(rows, HELPER_ROWS)):
        row = {name: str(form.get(f"helper_{name}_{i}") or "").strip() for name in HELPER_FIELDS}
        values["helpers"].append(row)
        if not (row["user_id"] or row["name"] or row["phone"] or row["team"]):
            continue  # an empty row
        account = accounts.get(parse_uuid(row["user_id"])) if row["user_id"] else None  # type: ignore[arg-type]
        problem = None
        if row["kind"] not in kinds or (row["user_id"] and account is None):
            problem = gettext("Please choose one of the options.")
        elif account is None and not (row["name"] and row["phone"]):
            problem = gettext("Choose an account, or enter a name and a phone number.")
        if problem:
            errors[f"helper_{i}"] = problem
            continue
        chain.append(morning_signal.HelperInput(kind=row["kind"], name=(row["name"] or (account.display_name if account else ""))[:60],
                                                user_id=account.id if account else None, phone=row["phone"][:32] or None,
                                                team=row["team"][:60] or None))
    if any(k.startswith("helper_") for k in errors):
        errors.setdefault("chain", gettext("Please correct the marked helpers."))
    return values, data, chain, errors


async def _form_page(request: Request, db_session: AsyncSession, *, elder: Elder | None, values: dict[str, Any],
                     errors: dict[str, str], status_code: int = 200) -> Template:
    return render(
        request,
        "elders/form.html",
        status_code=status_code,
        elder=elder,
        values=values,
        errors=errors,
        action=f"/signals/elders/{elder.id}/edit" if elder else "/signals/elders/new",
        compounds=await _compounds(db_session),
        accounts=await _accounts(db_session),
        teams=await _teams(db_session),
        kinds=list(HelperKind),
        scoped=not _is_staff(request),
        **_labels(),
    )


async def _save(request: Request, db_session: AsyncSession, elder: Elder | None) -> Template | Redirect:
    elder_id = elder.id if elder is not None else None  # read now: a rollback expires the elder
    form = await request.form()
    values, data, chain, errors = await _form_input(form, db_session)
    user = current_user(request)
    assert user is not None
    added_self = leaves = False
    if not _is_staff(request) and not any(h.user_id == user.id for h in chain):
        if elder is None:
            # A grid worker who enrols an elder is always in the chain: at its end, as the grid worker.
            chain.append(morning_signal.HelperInput(kind=HelperKind.GRID_WORKER.value, name=user.display_name[:60], user_id=user.id))
            added_self = True
        elif form.get("leave_chain"):
            leaves = True  # confirmed: they will no longer see this elder
        else:
            errors["leave_chain"] = gettext("You are not in the chain any more: once saved, you will no longer see this elder. "
                                            "Add yourself back, or tick the box to confirm that you leave their chain.")
    values["leave_chain"] = "1" if leaves else ""
    # The service's rules run whatever the form found, so every field's problem shows at once.
    problems = morning_signal.validate(data, chain)
    if not chain and any(k.startswith("helper_") for k in errors):
        problems = [p for p in problems if p.field != "chain"]  # the marked rows say it better
    if problems:
        errors = field_errors(morning_signal.InvalidElder(problems), into=errors)
    if not errors:
        try:
            if elder is None:
                saved = await morning_signal.enrol(db_session, data, chain, now=utc_now())
            else:
                saved = await morning_signal.update_elder(db_session, elder, data, chain)
        except morning_signal.InvalidElder as invalid:
            errors = field_errors(invalid)
        else:
            saved_id, name = saved.id, saved.name
            await db_session.commit()
            _audit(request, "enrol" if elder is None else "edit", saved_id)
            if elder is None:
                flash(request, gettext("%(name)s is enrolled. Print the card with the personal link for them.") % {"name": name})
                if added_self:
                    flash(request, gettext("You were added at the end of the chain, as the grid worker."))
            elif leaves:
                flash(request, gettext("Changes to %(name)s saved. You have left their chain: you no longer see this elder.")
                      % {"name": name})
                return redirect("/signals/elders")
            else:
                flash(request, gettext("Changes to %(name)s saved.") % {"name": name})
            return redirect(f"/signals/elders/{saved_id}")
    await db_session.rollback()
    if elder_id is not None:
        elder = await _elder(request, db_session, elder_id)
    return await _form_page(request, db_session, elder=elder, values=values, errors=errors, status_code=400)


@get("/signals/elders/new", opt=roles(*ENROLLING), name="elders-new")
async def elder_new(request: Request, db_session: Db) -> Template:
    return await _form_page(request, db_session, elder=None, values=_defaults(), errors={})


@post("/signals/elders/new", opt=roles(*ENROLLING))
async def elder_create(request: Request, db_session: Db) -> Template | Redirect:
    return await _save(request, db_session, None)


@get("/signals/elders/{elder_id:uuid}/edit", opt=roles(*ENROLLING), name="elders-edit")
async def elder_edit(request: Request, db_session: Db, elder_id: FromPath[UUID]) -> Template | Redirect:
    elder = await _elder(request, db_session, elder_id)
    _audit(request, "view_edit", elder.id)
    if elder.ended_at is not None:
        flash(request, gettext("This elder's check-in has ended."))
        return redirect(f"/signals/elders/{elder.id}")
    chain = (await morning_signal.chain_of(db_session, [elder.id]))[elder.id]
    return await _form_page(request, db_session, elder=elder, values=_values_of(elder, chain), errors={})


@post("/signals/elders/{elder_id:uuid}/edit", opt=roles(*ENROLLING))
async def elder_update(request: Request, db_session: Db, elder_id: FromPath[UUID]) -> Template | Redirect:
    return await _save(request, db_session, await _elder(request, db_session, elder_id))


# --- One elder's record ---------------------------------------------------------------------------------------------


async def _record_page(
    request: Request, db_session: AsyncSession, settings: Settings, elder: Elder, *, status_code: int = 200,
    pause_errors: dict[str, str] | None = None, pause_values: dict[str, str] | None = None,
    end_errors: dict[str, str] | None = None, end_values: dict[str, str] | None = None,
) -> Template:
    now = utc_now()
    tz = settings.tz
    today = morning_signal.day_of(elder, now, tz)
    chain = (await morning_signal.chain_of(db_session, [elder.id]))[elder.id]
    marks = (await morning_signal.marks_of(db_session, [elder], today - timedelta(days=HISTORY_DAYS - 1), today, now, tz))[elder.id]
    pauses = list(await db_session.scalars(select(ElderPause).where(ElderPause.elder_id == elder.id)
                                           .order_by(ElderPause.start_on.desc(), ElderPause.id)))
    alerts = list(await db_session.scalars(select(ElderAlert).where(ElderAlert.elder_id == elder.id)
                                           .order_by(ElderAlert.day.desc()).limit(ALERTS_SHOWN)))
    timelines = {a.id: await morning_signal.timeline(db_session, a.id) for a in alerts}
    people = await _names(db_session, User, {c.by_user_id for m in marks for c in m.checkins}
                          | {e.user_id for events in timelines.values() for e in events}
                          | {h.user_id for h in chain}, "display_name")
    usernames = await _names(db_session, User, {h.user_id for h in chain}, "username")
    place = await db_session.get(Place, elder.place_id) if elder.place_id else None
    return render(
        request,
        "elders/record.html",
        status_code=status_code,
        elder=elder,
        place=place,
        chain=chain,
        marks=marks,
        today=today,
        pauses=pauses,
        alerts=alerts,
        timelines=timelines,
        people=people,
        usernames=usernames,
        pause_errors=pause_errors or {},
        pause_values=pause_values or {},
        end_errors=end_errors or {},
        end_values=end_values or {},
        history_days=HISTORY_DAYS,
        local_time=local_formatters(tz)["local_time"],
        **_labels(),
    )


@get("/signals/elders/{elder_id:uuid}", opt=roles(*ENROLLING), name="elders-record")
async def elder_record(request: Request, db_session: Db, settings: Config, elder_id: FromPath[UUID]) -> Template:
    elder = await _elder(request, db_session, elder_id)
    _audit(request, "view", elder.id)
    return await _record_page(request, db_session, settings, elder)


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@post("/signals/elders/{elder_id:uuid}/pauses", opt=roles(*ENROLLING))
async def elder_pause(request: Request, db_session: Db, settings: Config, elder_id: FromPath[UUID]) -> Template | Redirect:
    elder = await _elder(request, db_session, elder_id)
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in ("start_on", "end_on", "reason")}
    try:
        pause = await morning_signal.add_pause(db_session, elder, _date(values["start_on"]), _date(values["end_on"]), values["reason"])
    except morning_signal.InvalidElder as invalid:
        errors = field_errors(invalid)
    else:
        message = gettext("Paused from %(start)s to %(end)s: no signal is expected, and no alert opens.") % {
            "start": pause.start_on.isoformat(), "end": pause.end_on.isoformat()}
        await db_session.commit()
        _audit(request, "pause", elder_id)
        flash(request, message)
        return redirect(f"/signals/elders/{elder_id}#pauses")
    await db_session.rollback()
    _audit(request, "view", elder_id)
    return await _record_page(request, db_session, settings, await _elder(request, db_session, elder_id), status_code=400,
                              pause_errors=errors, pause_values=values)


@post("/signals/elders/{elder_id:uuid}/token", opt=roles(*ENROLLING))
async def elder_token(request: Request, db_session: Db, settings: Config, elder_id: FromPath[UUID]) -> Template | Redirect:
    elder = await _elder(request, db_session, elder_id)
    try:
        await morning_signal.reissue_token(db_session, elder, utc_now())
    except morning_signal.InvalidElder as invalid:
        await db_session.rollback()
        _audit(request, "view", elder_id)
        return await _record_page(request, db_session, settings, await _elder(request, db_session, elder_id), status_code=400,
                                  end_errors=field_errors(invalid))
    await db_session.commit()
    _audit(request, "reissue_token", elder_id)
    flash(request, gettext("A new personal link is issued: the old link and any card printed with it no longer work. "
                           "Print the new card."))
    return redirect(f"/signals/elders/{elder_id}#link")


@post("/signals/elders/{elder_id:uuid}/end", opt=roles(*ENROLLING))
async def elder_end(request: Request, db_session: Db, settings: Config, elder_id: FromPath[UUID]) -> Template | Redirect:
    elder = await _elder(request, db_session, elder_id)
    form = await request.form()
    values = {"end_reason": str(form.get("end_reason") or "").strip()[:500]}
    try:
        await morning_signal.end_enrolment(db_session, elder, values["end_reason"], utc_now())
    except morning_signal.InvalidElder as invalid:
        errors = field_errors(invalid)
    else:
        name = elder.name
        await db_session.commit()
        _audit(request, "end", elder_id)
        flash(request, gettext("The enrolment of %(name)s has ended: no more reminders or alerts, and the personal link no longer works.")
              % {"name": name})
        return redirect(f"/signals/elders/{elder_id}")
    await db_session.rollback()
    _audit(request, "view", elder_id)
    return await _record_page(request, db_session, settings, await _elder(request, db_session, elder_id), status_code=400,
                              end_errors=errors, end_values=values)


# --- The printed card ------------------------------------------------------------------------------------------------


@get("/signals/elders/{elder_id:uuid}/card", opt=roles(*ENROLLING), name="elders-card")
async def elder_card(request: Request, db_session: Db, elder_id: FromPath[UUID]) -> Template | Redirect:
    """The elder's card: their personal link as a QR code. Staff and the elder's grid worker only: the link is the
    elder's credential."""
    elder = await _elder(request, db_session, elder_id)
    _audit(request, "view_card", elder.id)
    if elder.ended_at is not None:
        flash(request, gettext("This elder's check-in has ended."))
        return redirect(f"/signals/elders/{elder.id}")
    url = public_url(request, f"/checkin/{elder.token}")
    return render(request, "elders/card.html", elder=elder, url=url,
                  svg=qr_svg(url, gettext("QR code of the morning signal link of %(name)s") % {"name": elder.name}),
                  window=_window(elder))


route_handlers = [
    elder_list, elder_new, elder_create, elder_record, elder_edit, elder_update, elder_pause, elder_token, elder_end, elder_card,
]
