"""The elder's own page (晨曦信号, L3): `/checkin/<token>` opens one very large "我很好 · 报平安" button and the
last seven days as marks, nothing else and nobody else's data. The token in the link is the credential
(no password); staff reissue it to revoke the old one. docs/morning-signal.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.assets import AssetManifest
from server.i18n import N_, gettext as _
from server.models import CheckIn, CheckInMethod, Elder, ElderPause
from server.security import public
from server.services import morning_signal
from server.services.appeals import utc_now
from server.settings import Settings
from server.web import THEME_COLOR, redirect, render

WEEK = 7
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


@dataclass(frozen=True)
class Mark:
    day: date
    signalled_at: datetime | None
    paused: bool


async def elder_by_token(session: AsyncSession, token: str) -> Elder:
    """The enrolled elder this link belongs to; 404 for a revoked, unknown or ended one (it says nothing more)."""
    elder = await morning_signal.by_token(session, token)
    if elder is None:
        raise NotFoundException
    return elder


async def week_of(session: AsyncSession, elder: Elder, today: date) -> list[Mark]:
    first = today - timedelta(days=WEEK - 1)
    times: dict[date, datetime] = {}
    for row in await session.scalars(select(CheckIn).where(CheckIn.elder_id == elder.id, CheckIn.day >= first).order_by(CheckIn.at)):
        times.setdefault(row.day, row.at)
    pauses = list(await session.scalars(select(ElderPause).where(ElderPause.elder_id == elder.id, ElderPause.end_on >= first)))
    return [Mark(d, times.get(d), morning_signal.paused(pauses, d)) for d in (first + timedelta(days=i) for i in range(WEEK))]


@get("/checkin/{token:str}", opt=public())
async def checkin_page(request: Request, token: FromPath[str], db_session: NamedDependency[AsyncSession],
                       settings: NamedDependency[Settings]) -> Template:
    elder = await elder_by_token(db_session, token)
    now = utc_now()
    today = morning_signal.day_of(elder, now, settings.tz)
    marks = await week_of(db_session, elder, today)
    plan = morning_signal.schedule(elder, today, settings.tz)
    response = render(
        request, "checkin/page.html", elder_token=token, marks=marks, today=marks[-1], weekdays=WEEKDAYS,
        window=(elder.window_start.strftime("%H:%M"), elder.window_end.strftime("%H:%M")), tz=settings.tz,
        late=now > plan.closes and marks[-1].signalled_at is None,
    )
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is the credential
    return response


@post("/checkin/{token:str}", opt=public())
async def checkin_press(request: Request, token: FromPath[str], db_session: NamedDependency[AsyncSession],
                        settings: NamedDependency[Settings]) -> Redirect:
    """The button, online: "I am fine" now."""
    elder = await elder_by_token(db_session, token)
    now = utc_now()
    await morning_signal.check_in(db_session, elder, at=now, method=CheckInMethod.SELF, by_user_id=None, now=now, tz=settings.tz)
    await db_session.commit()
    return redirect(f"/checkin/{token}")


@get("/checkin/{token:str}/manifest.webmanifest", opt=public(), media_type="application/manifest+json")
async def checkin_manifest(token: FromPath[str], db_session: NamedDependency[AsyncSession],
                           assets: NamedDependency[AssetManifest]) -> Response[str]:
    """Added to the home screen, the elder's page opens on its own: start_url is this very link."""
    await elder_by_token(db_session, token)
    body = {
        "name": _("Morning signal"), "short_name": _("Morning signal"), "lang": "zh-CN", "id": f"/checkin/{token}",
        "start_url": f"/checkin/{token}", "scope": f"/checkin/{token}", "display": "standalone", "orientation": "portrait",
        "theme_color": THEME_COLOR, "background_color": "#f5f4f2",
        "icons": [{"src": assets.url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
                  {"src": assets.url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json",
                    headers={"Cache-Control": "no-cache", "X-Robots-Tag": "noindex"})


route_handlers = [checkin_page, checkin_press, checkin_manifest]
