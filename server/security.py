"""Who may do what: access declarations on every route, the guard that enforces them, sessions, the current user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

from server.db import write_intent
from server.i18n import LANG_COOKIE, current_locale, negotiate_locale
from server.models import Role, current_actor

ACCESS_KEY = "access"
PUBLIC = "public"
SIGNED_IN = "signed_in"
SESSION_COOKIE = "shanzhi_session"
SESSION_USER_KEY = "uid"
ROTATE_SESSION_KEY = "shanzhi.rotate_session"
SESSION_EXPIRED_KEY = "shanzhi.session_expired"
LOADED_SESSION_KEY = "shanzhi.loaded_session"

STAFF_SIDE = (Role.ADMIN, Role.STAFF)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def public() -> dict[str, Any]:
    """Anyone, signed in or not: residents and enterprises have no account."""
    return {ACCESS_KEY: PUBLIC}


def signed_in() -> dict[str, Any]:
    """Any signed-in user, whatever the role."""
    return {ACCESS_KEY: SIGNED_IN}


def roles(*allowed: Role) -> dict[str, Any]:
    """Only these roles."""
    if not allowed:
        msg = "roles() needs at least one role; use public() or signed_in() otherwise"
        raise ValueError(msg)
    return {ACCESS_KEY: frozenset(allowed)}


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: UUID
    username: str
    display_name: str
    role: Role
    place_id: UUID | None
    department_id: UUID | None = None
    unread_notifications: int = 0


def access_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Enforce the handler's declared access. A handler that declares nothing is refused to everyone."""
    access = handler.opt.get(ACCESS_KEY)
    if access == PUBLIC:
        return
    user: CurrentUser | None = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException
    if access == SIGNED_IN:
        return
    if not isinstance(access, frozenset) or user.role not in access:
        raise PermissionDeniedException


class RotatingSessionBackend(ServerSideSessionBackend):
    """Server-side sessions that take a fresh id when the user signs in (no session fixation)."""

    def get_session_id(self, connection: ASGIConnection) -> str:
        scope = connection.scope
        if scope.get(ROTATE_SESSION_KEY):
            fresh = scope.get("shanzhi.fresh_session_id")
            if fresh is None:
                fresh = scope["shanzhi.fresh_session_id"] = self.generate_session_id()  # type: ignore[typeddict-unknown-key]
            return fresh
        return super().get_session_id(connection)

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        connection.scope[LOADED_SESSION_KEY] = dict(data)  # type: ignore[literal-required]
        return data

    async def store_in_message(self, scope_session: Any, message: Any, connection: ASGIConnection) -> None:
        # Write only when the session changed (sign-in, sign-out). Litestar would rewrite it on every
        # response; with SQLite that write would queue behind the request's own open transaction.
        # An anonymous visitor (a resident scanning a QR code) gets no session row and no cookie.
        # A cookie is cleared only when this request emptied a session that held something (sign-out, a
        # deactivated account). A cookie that already pointed at nothing (expired, or ended by a sign-out
        # in another tab) is left alone: the answer may arrive after someone signed in on the same phone,
        # and clearing "the" cookie then would sign the new user out.
        has_cookie = connection.cookies.get(self.config.key) not in (None, "", "null")
        if not scope_session and scope_session is not Empty:
            if not has_cookie or not connection.scope.get(LOADED_SESSION_KEY):
                return
            scope_session = Empty
        unchanged = scope_session == connection.scope.get(LOADED_SESSION_KEY)
        if unchanged and has_cookie and not connection.scope.get(ROTATE_SESSION_KEY):
            return
        await super().store_in_message(scope_session, message, connection)


class SessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend


def rotate_session(connection: ASGIConnection) -> str | None:
    """Mark the response to carry a new session id; return the old one so its data can be dropped."""
    connection.scope[ROTATE_SESSION_KEY] = True  # type: ignore[literal-required]
    return connection.cookies.get(SESSION_COOKIE)


class RequestContextMiddleware(ASGIMiddleware):
    """Per request: the locale, and the signed-in user loaded from the session (or None)."""

    def should_bypass_for_scope(self, scope: Scope) -> bool:
        # Static files and the health probe need neither a user nor a locale.
        return scope["path"].startswith("/static/") or scope["path"] == "/healthz"

    def __init__(self, user_loader: Any, default_locale: str) -> None:
        self.user_loader = user_loader
        self.default_locale = default_locale

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        connection: ASGIConnection = ASGIConnection(scope)
        locale_token = current_locale.set(negotiate_locale(connection.cookies.get(LANG_COOKIE), self.default_locale))
        # Loading the user only reads; the request itself writes when its method says so (server/db.py).
        intent_token = write_intent.set(False)  # (the default; reset below)
        session = scope.get("session") or {}
        user: CurrentUser | None = None
        uid = session.get(SESSION_USER_KEY) if isinstance(session, dict) else None
        if uid:
            user = await self.user_loader(UUID(uid))
            if user is None:  # the account was removed or deactivated
                scope["session"] = {}
        elif connection.cookies.get(SESSION_COOKIE) not in (None, "", "null"):
            scope[SESSION_EXPIRED_KEY] = True  # type: ignore[literal-required]
        scope["user"] = user
        actor_token = current_actor.set(user.id if user else None)
        write_intent.set(scope.get("method", "GET") not in SAFE_METHODS)
        try:
            await next_app(scope, receive, send)
        finally:
            current_actor.reset(actor_token)
            current_locale.reset(locale_token)
            write_intent.reset(intent_token)
