"""晨曦信号 for helpers (L3): today's board of the elders in their chain (signalled / waiting / alert), a
check-in on an elder's behalf after seeing or calling them, and their alerts to acknowledge and resolve,
each with its timeline. The board refreshes itself every 30 seconds. docs/morning-signal.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.channels import ChannelsPlugin
from litestar.response import Redirect, ServerSentEvent, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import live
from server.i18n import N_, gettext
from server.models import AlertOutcome, AlertStatus, CheckIn, CheckInMethod, Elder, ElderAlert, ElderHelper, ElderPause, Role
from server.security import roles
from server.services import morning_signal
from server.services.appeals import utc_now
from server.services.errors import ServiceError
from server.settings import Settings
from server.web import current_user, flash, local_formatters, redirect, render

HELPERS = (Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER)
ANSWERING = (*HELPERS, Role.ADMIN, Role.STAFF)
ON_BEHALF = (CheckInMethod.IN_PERSON, CheckInMethod.PHONE, CheckInMethod.OTHER)
RESOLVE_OUTCOMES = (AlertOutcome.SAFE, AlertOutcome.HOSPITAL, AlertOutcome.VISITED, AlertOutcome.FALSE_ALARM)
STATUS_LABELS = {AlertStatus.OPEN: N_("Alert: nobody has answered"), AlertStatus.ACKNOWLEDGED: N_("Alert: a helper is on it"),
                 AlertStatus.RESOLVED: N_("Alert resolved")}

EVENT_LABELS = {"opened": N_("Opened"), "sent": N_("Sent"), "escalated": N_("Escalated"), "acknowledged": N_("Acknowledged"),
                "resolved": N_("Resolved")}

Db = NamedDependency[AsyncSession]
Config = NamedDependency[Settings]


@dataclass(frozen=True)
class Row:
    elder: Elder
    position: int  # where this helper stands in the elder's chain (0 = first)
    signalled_at: datetime | None
    paused: bool
    alert: ElderAlert | None
    waiting: bool  # the window is open (or not yet over) and no signal yet


async def my_elders(session: AsyncSession, user_id: UUID) -> dict[UUID, int]:
    """The enrolled elders whose chain this user is in, with their position in it."""
    rows = await session.execute(
        select(ElderHelper.elder_id, ElderHelper.position).join(Elder, Elder.id == ElderHelper.elder_id)
        .where(ElderHelper.user_id == user_id, Elder.ended_at.is_(None)))
    return {elder_id: position for elder_id, position in rows.all()}


async def board(session: AsyncSession, user_id: UUID, settings: Settings) -> list[Row]:
    mine = await my_elders(session, user_id)
    if not mine:
        return []
    now = utc_now()
    elders = list(await session.scalars(select(Elder).where(Elder.id.in_(mine)).order_by(Elder.name)))
    days = {e.id: morning_signal.day_of(e, now, settings.tz) for e in elders}
    signalled: dict[UUID, datetime] = {}
    for row in await session.scalars(select(CheckIn).where(CheckIn.elder_id.in_(mine), CheckIn.day.in_(set(days.values()))).order_by(CheckIn.at)):
        if row.day == days[row.elder_id]:
            signalled.setdefault(row.elder_id, row.at)
    pauses: dict[UUID, list[ElderPause]] = {i: [] for i in mine}
    for pause in await session.scalars(select(ElderPause).where(ElderPause.elder_id.in_(mine))):
        pauses[pause.elder_id].append(pause)
    alerts = {a.elder_id: a for a in await session.scalars(
        select(ElderAlert).where(ElderAlert.elder_id.in_(mine), ElderAlert.day.in_(set(days.values()))))}
    result = []
    for elder in elders:
        plan = morning_signal.schedule(elder, days[elder.id], settings.tz)
        alert = alerts.get(elder.id)
        result.append(Row(elder, mine[elder.id], signalled.get(elder.id), morning_signal.paused(pauses[elder.id], days[elder.id]),
                          alert, elder.id not in signalled and now < plan.alert_at))
    # Alerts first, then those still waiting, then the rest.
    return sorted(result, key=lambda r: (not (r.alert and r.alert.status != AlertStatus.RESOLVED), not r.waiting, r.elder.name))


def _user_id(request: Request) -> UUID:
    user = current_user(request)
    assert user is not None
    return user.id


async def _my_elder(request: Request, session: AsyncSession, elder_id: UUID) -> Elder:
    """An elder of this helper's chain (staff: any); anyone else's is not found."""
    user = current_user(request)
    assert user is not None
    elder = await session.get(Elder, elder_id)
    if elder is None or elder.ended_at is not None:
        raise NotFoundException
    if user.role not in (Role.ADMIN, Role.STAFF) and elder_id not in await my_elders(session, user.id):
        raise NotFoundException
    return elder


@get("/signals", opt=roles(*HELPERS))
async def signals_board(request: Request, db_session: Db, settings: Config) -> Template:
    rows = await board(db_session, _user_id(request), settings)
    return render(request, "signals/board.html", rows=rows, methods=ON_BEHALF,
                  method_labels=morning_signal.METHOD_LABELS, status_labels=STATUS_LABELS, **local_formatters(settings.tz))


@post("/signals/{elder_id:uuid}/checkin", opt=roles(*HELPERS))
async def checkin_on_behalf(request: Request, db_session: Db, settings: Config, elder_id: FromPath[UUID]) -> Redirect:
    """After seeing or calling the elder: a signal on their behalf, with how."""
    elder = await _my_elder(request, db_session, elder_id)
    form = await request.form()
    try:
        method = CheckInMethod(str(form.get("method") or ""))
    except ValueError:
        method = CheckInMethod.OTHER
    if method == CheckInMethod.SELF:
        method = CheckInMethod.OTHER
    now = utc_now()
    await morning_signal.check_in(db_session, elder, at=now, method=method, by_user_id=_user_id(request), now=now, tz=settings.tz,
                                  note=str(form.get("note") or "")[:500])
    await db_session.commit()
    flash(request, gettext("Signal recorded for %(name)s.") % {"name": elder.name})
    return redirect("/signals")


async def _alert(request: Request, session: AsyncSession, alert_id: UUID) -> ElderAlert:
    alert = await session.get(ElderAlert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFoundException
    await _my_elder(request, session, alert.elder_id)
    return alert


async def _alert_view(request: Request, session: AsyncSession, settings: Settings, alert: ElderAlert, *,
                      errors: dict[str, str] | None = None, status_code: int = 200) -> Template:
    elder = await session.get(Elder, alert.elder_id)
    chain = (await morning_signal.chain_of(session, [alert.elder_id]))[alert.elder_id]
    return render(request, "signals/alert.html", status_code=status_code, alert=alert, elder=elder, chain=chain,
                  events=await morning_signal.timeline(session, alert.id), outcomes=RESOLVE_OUTCOMES,
                  outcome_labels=morning_signal.OUTCOME_LABELS, status_labels=STATUS_LABELS, event_labels=EVENT_LABELS,
                  errors=errors or {}, **local_formatters(settings.tz))


@get("/signals/alerts/{alert_id:uuid}", opt=roles(*ANSWERING))
async def alert_page(request: Request, db_session: Db, settings: Config, alert_id: FromPath[UUID]) -> Template:
    """One alert: the elder (their chain sees their address and phone), who was told when, and the answer."""
    return await _alert_view(request, db_session, settings, await _alert(request, db_session, alert_id))


@post("/signals/alerts/{alert_id:uuid}/acknowledge", opt=roles(*ANSWERING))
async def acknowledge_alert(request: Request, db_session: Db, alert_id: FromPath[UUID]) -> Redirect:
    alert = await _alert(request, db_session, alert_id)
    try:
        await morning_signal.acknowledge(db_session, alert, _user_id(request), utc_now())
    except ServiceError as error:
        await db_session.rollback()
        flash(request, error.translated())
        return redirect(f"/signals/alerts/{alert_id}")
    await db_session.commit()
    flash(request, gettext("You are on it: the alert stops going to the others. Visit or call, then say how it ended."))
    return redirect(f"/signals/alerts/{alert_id}")


@post("/signals/alerts/{alert_id:uuid}/resolve", opt=roles(*ANSWERING), status_code=200)
async def resolve_alert(request: Request, db_session: Db, settings: Config, alert_id: FromPath[UUID]) -> Template | Redirect:
    alert = await _alert(request, db_session, alert_id)
    form = await request.form()
    try:
        outcome = AlertOutcome(str(form.get("outcome") or ""))
        await morning_signal.resolve(db_session, alert, outcome, _user_id(request), utc_now(), note=str(form.get("note") or ""))
    except (ValueError, ServiceError) as error:
        await db_session.rollback()
        message = error.translated() if isinstance(error, ServiceError) else gettext("Please choose one of the options.")
        field = error.field if isinstance(error, ServiceError) and error.field else "outcome"
        return await _alert_view(request, db_session, settings, await _alert(request, db_session, alert_id),
                                 errors={field: message}, status_code=400)
    await db_session.commit()
    flash(request, gettext("The alert is resolved."))
    return redirect(f"/signals/alerts/{alert_id}")


@get("/signals/stream", opt=roles(*ANSWERING))
async def signals_stream(request: Request, settings: Config) -> ServerSentEvent:
    """"changed" each time a signal, an alert or an answer is committed: the open board and alert pages
    fetch themselves again (server/live.py). Nothing about any elder travels in the stream."""
    plugin = request.app.plugins.get(ChannelsPlugin)
    return ServerSentEvent(live.events(plugin, "signals", seconds=settings.live_stream_seconds), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


route_handlers = [signals_board, checkin_on_behalf, alert_page, acknowledge_alert, resolve_alert, signals_stream]
