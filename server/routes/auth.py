"""Sign in, sign out and the language switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.di import NamedDependency
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import LANG_COOKIE, gettext as _
from server.security import SESSION_USER_KEY, public, rotate_session, signed_in
from server.services import accounts
from server.settings import SUPPORTED_LOCALES, Settings
from server.login_guard import LoginGuard
from server.web import ROLE_HOME, client_address, current_user, redirect, render, safe_next

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@dataclass
class LoginForm:
    username: str = ""
    password: str = ""
    next: str = ""


@get("/login", opt=public(), name="login")
async def login_page(
    request: Request,
    next: FromQuery[str] = "",
    expired: FromQuery[bool] = False,
    signed_out: FromQuery[bool] = False,
) -> Template | Redirect:
    user = current_user(request)
    if user is not None:
        return redirect(safe_next(next, ROLE_HOME[user.role]))
    notice = None
    if expired:
        notice = _("Your session has ended. Please sign in again.")
    elif signed_out:
        notice = _("You have signed out.")
    # The page itself drops what was saved on the phone (auth/login.html), whatever brought the person here.
    return render(request, "auth/login.html", username="", next=safe_next(next, ""), error=None, notice=notice)


@post("/login", opt=public())
async def login(
    request: Request,
    db_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    username = data.username.strip()[:64]
    guard = LoginGuard(request.app.stores.get("rate_limit"), limit=settings.login_rate_limit)
    client = client_address(request)
    account = accounts.normalise_username(username)

    def again(message: str, status_code: int) -> Template:
        return render(
            request, "auth/login.html", status_code=status_code,
            username=username, next=safe_next(data.next, ""), error=message, notice=None,
        )

    if not username or not data.password:
        return again(_("Please enter your username and password."), 400)
    if await guard.blocked(account, client):
        return again(_("Too many failed attempts. Please wait a minute and try again."), 429)
    await guard.slow_down(account)
    user = await accounts.authenticate(db_session, username, data.password)
    if user is None:
        await guard.failed(account, client)
        return again(_("Wrong username or password. Please check and try again."), 400)
    await guard.succeeded(account, client)
    # Commit the sign-in record now: the session row is written while the response is sent, and
    # SQLite allows one writer at a time.
    await db_session.commit()
    old_session_id = rotate_session(request)
    if old_session_id:
        await request.app.stores.get("sessions").delete(old_session_id)
    request.set_session({SESSION_USER_KEY: str(user.id)})
    return redirect(safe_next(data.next, ROLE_HOME[user.role]))


@post("/logout", opt=signed_in())
async def logout(request: Request) -> Redirect:
    request.clear_session()
    return redirect("/login?signed_out=1")


@get("/lang/{code:str}", opt=public())
async def switch_language(code: FromPath[str], next: FromQuery[str] = "/") -> Redirect:
    response = redirect(safe_next(next))
    if code in SUPPORTED_LOCALES:
        response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE, httponly=True, samesite="lax")
    return response


route_handlers = [login_page, login, logout, switch_language]
