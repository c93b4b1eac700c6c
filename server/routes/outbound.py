"""Outbound notifications for admins (X6): what waits, what was sent, what failed and why; send the
failed ones again once the gateway is fixed."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import N_
from server.models import OutboundStatus, Role
from server.security import roles
from server.services import notifications
from server.services.appeals import utc_now
from server.settings import Settings
from server.web import redirect, render

STATUS_LABELS = {
    OutboundStatus.PENDING: N_("Pending"),
    OutboundStatus.SENT: N_("Sent"),
    OutboundStatus.FAILED: N_("Failed"),
}


@get("/admin/outbound", opt=roles(Role.ADMIN), name="outbound")
async def outbound_page(request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]) -> Template:
    tz = settings.tz
    counts = await notifications.outbound_summary(db_session)
    return render(
        request,
        "notifications/outbound.html",
        counts=counts,
        failed=counts[OutboundStatus.FAILED],
        messages=await notifications.recent_outbound(db_session),
        channels=[c.name for c in notifications.channels()],
        status_labels=STATUS_LABELS,
        text_of=notifications.render_text,
        local=lambda moment: moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else "",
    )


@post("/admin/outbound/retry", opt=roles(Role.ADMIN))
async def retry_failed(db_session: NamedDependency[AsyncSession]) -> Redirect:
    await notifications.retry_failed(db_session, utc_now())
    return redirect("/admin/outbound")


route_handlers = [outbound_page, retry_failed]
