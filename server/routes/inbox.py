"""The in-app inbox (X6): a signed-in user's notifications, newest first, and marking them read."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Notification
from server.security import signed_in
from server.services import notifications
from server.services.appeals import utc_now
from server.settings import Settings
from server.web import current_user, redirect, render


def notification_text(notification: Notification) -> str:
    return notifications.render_text(notification.message, notification.params)


@get("/inbox", opt=signed_in(), name="inbox")
async def inbox(request: Request, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]) -> Template:
    user = current_user(request)
    assert user is not None  # the guard let a signed-in user through
    items = await notifications.inbox(db_session, user.id)
    tz = settings.tz
    return render(
        request,
        "inbox/index.html",
        items=[(n, notification_text(n), n.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")) for n in items],
        unread=sum(1 for n in items if n.read_at is None),
    )


@post("/inbox/read", opt=signed_in(), name="inbox-read")
async def mark_read(request: Request, db_session: NamedDependency[AsyncSession]) -> Redirect:
    user = current_user(request)
    assert user is not None
    await notifications.mark_all_read(db_session, user.id, utc_now())
    return redirect("/inbox")


route_handlers = [inbox, mark_read]
