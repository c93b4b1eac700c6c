"""Rendering helpers shared by every route module: page context, htmx-aware templates, safe redirects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID
from urllib.parse import urlsplit

from litestar import Request
from litestar.response import Redirect, Template
from markupsafe import Markup

from server.i18n import HTML_LANG, LANG_COOKIE, N_, current_locale, negotiate_locale
from server.models import Role
from server.security import CurrentUser
from server.assets import OUTBOX_ROLES
from server.services.shared_cache import SharedCache

THEME_COLOR = "#b3261e"

ROLE_HOME: dict[Role, str] = {
    Role.ADMIN: "/admin",
    Role.STAFF: "/staff",
    Role.GRID_WORKER: "/grid",
    Role.DEPARTMENT: "/department",
    Role.SUPERVISOR: "/supervisor",
    Role.BUILDING_HEAD: "/building-head",
    Role.RESIDENT_REP: "/resident-rep",
    Role.STATION_OPERATOR: "/station",
    Role.CANTEEN_MANAGER: "/canteen",
    Role.VOLUNTEER: "/volunteer",
}


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    roles: frozenset[Role]
    current: bool = False
    counter: str | None = None  # a CurrentUser attribute shown as a count badge (e.g. unread messages)
    count: int = 0


# The main menu: one row per page, with who sees it. Later areas append their pages here.
NAV: list[NavItem] = [
    NavItem("/", N_("Home"), frozenset(Role)),
    NavItem("/policies/manage", N_("Policies"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/enterprises", N_("Enterprises"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})),
    NavItem("/policies/reach", N_("Policy reach"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})),
    NavItem("/events/manage", N_("Events"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/projects/manage", N_("Livelihood projects"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/projects", N_("Livelihood projects"), frozenset({Role.SUPERVISOR, Role.BUILDING_HEAD, Role.RESIDENT_REP})),
    NavItem("/property", N_("Property disclosure"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/policies/questions", N_("Policy questions"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/signals", N_("Morning signal"), frozenset({Role.GRID_WORKER, Role.BUILDING_HEAD, Role.VOLUNTEER})),
    NavItem("/signals/elders", N_("Elders (morning signal)"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/signals/elders", N_("My elders"), frozenset({Role.GRID_WORKER})),
    NavItem("/canteen/ledger", N_("Canteen ledger"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.CANTEEN_MANAGER})),
    NavItem("/mediation/cases", N_("Mediation cases"), frozenset({Role.ADMIN, Role.STAFF, Role.VOLUNTEER})),
    NavItem("/places", N_("Places"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})),
    NavItem("/stats/appeals", N_("Appeal statistics"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})),
    NavItem("/admin/api-keys", N_("Open311 API keys"), frozenset({Role.ADMIN})),
    NavItem("/admin/outbound", N_("Outbound notifications"), frozenset({Role.ADMIN})),
    NavItem("/appeals", N_("Appeals ledger"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.DEPARTMENT})),
    NavItem("/appeals/new", N_("Register an appeal"), frozenset({Role.ADMIN, Role.STAFF})),
    NavItem("/field/appeal", N_("Register an appeal"), frozenset({Role.GRID_WORKER})),
    NavItem("/field", N_("Field work"), frozenset({Role.GRID_WORKER})),
    NavItem("/field/outbox", N_("Outbox"), frozenset({Role.GRID_WORKER})),
    NavItem("/recycling", N_("Recycling points"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR, Role.STATION_OPERATOR})),
    NavItem("/inbox", N_("Inbox"), frozenset(Role), counter="unread_notifications"),
    NavItem("/sync/devices", N_("Devices and sync conflicts"), frozenset({Role.ADMIN, Role.STAFF, Role.SUPERVISOR})),
]


def nav_for(user: CurrentUser | None, path: str) -> list[NavItem]:
    if user is None:
        return []
    home = ROLE_HOME[user.role]
    items = []
    for item in NAV:
        if user.role not in item.roles:
            continue
        current = path == item.href or (item.href == "/" and path == home)
        count = getattr(user, item.counter) if item.counter else 0
        items.append(NavItem(item.href, item.label, item.roles, current, item.counter, count))
    return items


def current_user(request: Request) -> CurrentUser | None:
    return request.scope.get("user")


def client_address(request: Request) -> str:
    """The client's address, the key of per-client limits (behind a proxy named in
    SHANZHI_TRUSTED_PROXIES, the address it forwards: uvicorn sets it, server/cli.py)."""
    return request.client.host if request.client else "unknown"


def use_request_locale(request: Request) -> str:
    """Make the request's language current. Exception handlers run outside the request middleware
    (and 404/405 before any route), so pages rendered there must set it themselves."""
    settings = request.app.state.get("settings")
    locale = negotiate_locale(request.cookies.get(LANG_COOKIE), settings.locale if settings else "zh_CN")
    current_locale.set(locale)
    return locale


FLASH_KEY = "_flash"


def flash(request: Request, message: str) -> None:
    """Tell a signed-in user what just happened, on the next page they see (after the redirect).
    The session is stored when the response starts: commit the request's writes first (SQLite has
    one writer at a time, and the session store may be the database)."""
    if current_user(request) is not None:
        request.session.setdefault(FLASH_KEY, []).append(message)


def _flashes(request: Request, user: Any) -> list[str]:
    # Shown by the page a redirect leads to (a GET). A page rendered by a POST (a refused form) leaves
    # them for later: taking them would write the session while the POST's transaction holds the
    # SQLite write queue.
    if user is None or request.method != "GET":
        return []
    session = request.scope.get("session")  # read without creating one
    return list(request.session.pop(FLASH_KEY)) if session and FLASH_KEY in session else []


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    user = context.pop("user", current_user(request))
    locale = use_request_locale(request)
    return {
        "flashes": _flashes(request, user),
        "user": user,
        "nav_items": nav_for(user, request.url.path),
        "locale": locale,
        "html_lang": HTML_LANG[locale],
        "theme_color": THEME_COLOR,
        "outbox_roles": OUTBOX_ROLES,
        **context,
    }


def is_htmx(request: Request) -> bool:
    # A history restore (back button after hx-push-url) replaces the whole page: it needs the full page.
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def render(
    request: Request,
    template: str,
    *,
    partial: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """The full page, or only `partial` when htmx asks for a swap (same handler, same context)."""
    name = partial if partial and is_htmx(request) else template
    return Template(template_name=name, context=page_context(request, **context), status_code=status_code)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: a login link must not bounce people to another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def local_formatters(tz: tzinfo) -> dict[str, Callable[..., str]]:
    """`local_date` and `local_time` for templates: a stored UTC moment as the subdistrict reads it."""

    def local_date(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d") if moment else ""

    def local_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return moment.astimezone(tz).strftime(fmt) if moment else ""

    return {"local_date": local_date, "local_time": local_time}


def page_number(value: Any) -> int:
    """The `page` of a query string: 1 for anything that is not a positive whole number."""
    try:
        return max(1, int(str(value or "1")))
    except ValueError:
        return 1


def parse_uuid(value: Any) -> UUID | None:
    """A UUID from a form or query value; None when it is empty or not a UUID."""
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def redirect(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)


def public_url(request: Request, path: str) -> str:
    """An absolute link for something printed or sent (a QR poster, a tracking link, an API answer):
    on SHANZHI_PUBLIC_URL when it is set, so a poster printed from a staff laptop on another host
    carries the public address; otherwise on the request's own host."""
    settings = request.app.state.get("settings")
    base = settings.public_url if settings is not None and settings.public_url else str(request.base_url).rstrip("/")
    return f"{base}{path}"


# --- Public pages shared between visitors (docs/performance.md, "Shared public pages") ---------------------


def render_part(request: Request, template: str, **context: Any) -> Markup:
    """A part of a public page rendered to HTML once, in the current language, to be shared between visitors:
    it must hold no CSRF token and nothing about the visitor (the page renders those around it)."""
    return Markup(request.app.template_engine.get_template(template).render(**context))  # noqa: S704 - autoescaped template


def public_cache(request: Request, topic: str, *, max_entries: int = 256, at_least: float = 0.0,
                 grace: float | None = None) -> SharedCache:
    """The process's cache of the public pages computed from `topic` (its models are `watch`ed), made on first
    use with the app's sharing time (`SHANZHI_PUBLIC_CACHE_SECONDS`), or `at_least` seconds for a topic whose
    changes in other processes are announced (the boards); sharing turned off (0) stays off. `grace`: how
    long past its time a value may still be answered while it is refreshed (SharedCache)."""
    caches: dict[str, SharedCache] = request.app.state.public_pages
    cache = caches.get(topic)
    if cache is None:
        shared: SharedCache = request.app.state.public_figures
        ttl = max(shared.ttl, at_least) if shared.ttl > 0 else shared.ttl
        cache = caches[topic] = SharedCache(topic, shared.session_factory, ttl=ttl, max_entries=max_entries, grace=grace)
    return cache


async def shared_part(request: Request, topic: str, key: Hashable, compute: Callable[[Any], Awaitable[Any]], *,
                      at_least: float = 0.0, grace: float | None = None) -> Any:
    """What `compute(session)` returns for `key` in the current language, computed once and shared by every
    request until a commit writes a model watched by `topic` (or the sharing time passes): the data of a public
    page and its parts rendered with `render_part`. The language is part of the key, as the parts are translated."""
    return await public_cache(request, topic, at_least=at_least, grace=grace).get((current_locale.get(), key), compute)
