"""create_app(settings) -> Litestar: plugins, stores, middleware, routes and error pages in small named steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from advanced_alchemy.extensions.litestar import SQLAlchemyInitPlugin, SQLAlchemySerializationPlugin
from jinja2.bccache import Bucket, BytecodeCache
from advanced_alchemy.extensions.litestar.store import SQLAlchemyStore
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.registry import StoreRegistry
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope

from server import PACKAGE_DIR, i18n
from server import live
from server.assets import AssetManifest
from server.db import make_alchemy_config
from server.diagnostics import LoopLagProbe
from server.edge import edge
from server.etags import PageETagMiddleware
from server.errors import exception_handlers
from server.models import StoreItem, User
from server.routes import auth, health, home, posters, pwa, suggest, track
from server.routes import open311, stats
from server.routes import appeals as appeal_routes, inbox
from server.routes import field as field_routes
from server.routes import outbound, sync_admin
from server.routes import enterprises as enterprise_routes, events as event_routes, policies as policy_routes
from server.routes import checkin as checkin_routes, elders as elder_routes, signals as signal_routes
from server.routes import sync as sync_routes
from server.routes import boards as board_routes, canteen as canteen_routes, mediation as mediation_routes
from server.routes import projects as project_routes, recycling as recycling_routes
from server.security import SESSION_COOKIE, CurrentUser, RequestContextMiddleware, SessionConfig, access_guard
from server.services import accounts, boards, notifications, overview
from server.settings import Settings, get_settings
from server.services.scan_counts import ScanCounts
from server.services.shared_cache import SharedCache
from server.worker import BackgroundTasks, EmbeddedWorker

TEMPLATES_DIR = PACKAGE_DIR / "templates"
MAX_FORM_BODY = 256 * 1024  # bytes: every text form fits many times over; a flood of form text does not

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    b"content-security-policy": CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
    b"permissions-policy": b"camera=(self), geolocation=(self), microphone=()",
}


def route_handlers() -> list[Any]:
    return [
        *auth.route_handlers, *home.route_handlers, *pwa.route_handlers, *health.route_handlers,
        *suggest.route_handlers, *track.route_handlers, *posters.route_handlers,
        *stats.route_handlers, *open311.route_handlers,
        *appeal_routes.route_handlers, *inbox.route_handlers,
        *sync_routes.route_handlers,
        *field_routes.route_handlers,
        *sync_admin.route_handlers,
        *outbound.route_handlers,
        *policy_routes.route_handlers, *enterprise_routes.route_handlers, *event_routes.route_handlers,
        *checkin_routes.route_handlers, *signal_routes.route_handlers, *elder_routes.route_handlers,
        *project_routes.route_handlers, *recycling_routes.route_handlers, *canteen_routes.route_handlers,
        *mediation_routes.route_handlers, *board_routes.route_handlers,
    ]


def make_stores(settings: Settings, alchemy: Any) -> StoreRegistry:
    """Sessions and throttles in Redis when configured; otherwise sessions in the database, throttles in memory."""
    stores: dict[str, Store]
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        root = RedisStore.with_client(url=settings.redis_url)
        stores = {"sessions": root.with_namespace("sessions"), "rate_limit": root.with_namespace("rate_limit")}
    else:
        stores = {
            "sessions": SQLAlchemyStore(alchemy, model=StoreItem, namespace="sessions"),
            "rate_limit": MemoryStore(),
        }
    return StoreRegistry(stores=stores)


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates shared by every app in the process (keyed by name and source checksum), so a
    second app (a restart in tests, a reload) does not compile the same templates again."""

    def __init__(self) -> None:
        self._store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        data = self._store.get(bucket.key)
        if data is not None:  # bucket checks the source checksum and ignores stale code
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._store[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_BYTECODE = _MemoryBytecodeCache()


def make_template_config(assets: AssetManifest) -> TemplateConfig:
    def configure(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.bytecode_cache = _TEMPLATE_BYTECODE
        env.add_extension("jinja2.ext.i18n")
        env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
        env.globals["static_url"] = assets.url
        env.globals["translate_labels"] = i18n.translate_labels
        env.policies["ext.i18n.trimmed"] = True

    return TemplateConfig(directory=Path(TEMPLATES_DIR), engine=JinjaTemplateEngine, engine_callback=configure)


async def add_response_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name.decode() not in headers:
            headers[name.decode()] = value.decode()
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/html"):
        # Pages differ for htmx swaps and may hold personal data: never reuse from a shared cache.
        headers.add("vary", "HX-Request")
        if "cache-control" not in headers:
            headers["cache-control"] = "no-store"


CSRF_COOKIE = "shanzhi_csrf"


def keep_csrf_cookie(max_age: int) -> Any:
    """Litestar's CSRF cookie lasts as long as the browser runs; a grid worker's session outlives a
    browser restart, and the pages saved on the phone carry the token of that cookie: a new cookie
    would make every saved form (sign-out included) answer "页面已过期". The cookie lives as long as
    the session may."""
    prefix = f"{CSRF_COOKIE}=".encode()
    suffix = f"; Max-Age={max_age}".encode()

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = message.get("headers") or []
        for index, (name, value) in enumerate(headers):
            if name.lower() == b"set-cookie" and value.startswith(prefix) and b"max-age" not in value.lower():
                headers[index] = (name, value + suffix)

    return before_send


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    alchemy = make_alchemy_config(settings)
    assets = AssetManifest(release=settings.release)
    accounts.use_hashing(settings.password_hashing)
    notifications.configure_channels(notifications.channels_for(settings.notify_webhook_url), public_url=settings.public_url)
    session_config = SessionConfig(
        key=SESSION_COOKIE,
        max_age=settings.session_max_age,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
        exclude=["^/static/", "^/healthz$", "^/service-worker.js$", "^/manifest.webmanifest$"],
    )

    async def load_user(user_id: UUID) -> CurrentUser | None:
        async with alchemy.get_session() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                return None
            unread = await notifications.unread_count(session, user.id)  # the inbox badge in the menu
            return CurrentUser(user.id, user.username, user.display_name, user.role, user.place_id, user.department_id, unread)

    async def dispose_engine() -> None:
        # Close pooled connections on shutdown (advanced-alchemy leaves an engine it did not create).
        await alchemy.get_engine().dispose()

    worker = EmbeddedWorker(alchemy, settings)  # the overdue job, when settings.embedded_worker
    lag_probe = LoopLagProbe()  # benchmarks only: SHANZHI_LOOP_LAG_FILE
    scan_counts = ScanCounts(alchemy, interval=settings.scan_flush_seconds)  # QR guide opens, written every few seconds
    channels = live.make_plugin(settings)  # live updates (SSE): memory, or Redis with SHANZHI_REDIS_URL

    async def close_live() -> None:
        await live.close_client(channels)
    app = Litestar(
        route_handlers=route_handlers(),
        on_shutdown=[dispose_engine, close_live],
        # The background tasks' plugin comes after the database's, so its lifespan is entered after
        # and left before the database plugin's: the worker stops while the engine is still open.
        # (SQLAlchemyPlugin would add its init plugin at the end of the list, after ours.)
        plugins=[SQLAlchemyInitPlugin(config=alchemy), SQLAlchemySerializationPlugin(), channels, BackgroundTasks([live.LivePublisher(channels), boards.RemoteChanges(channels), worker, lag_probe, scan_counts])],
        stores=make_stores(settings, alchemy),
        middleware=[PageETagMiddleware, session_config.middleware, RequestContextMiddleware(load_user, settings.locale)],
        guards=[access_guard],
        # Every text response compressed (brotli, else gzip): a phone on a weak signal gets a page in a
        # few kilobytes. Photos and other binary formats are compressed already.
        compression_config=CompressionConfig(
            backend="brotli", brotli_quality=5, brotli_gzip_fallback=True, gzip_compress_level=6, minimum_size=500,
            exclude=["/photos/", "\\.(png|jpg|jpeg|webp|woff2|ico)$"],
        ),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name=CSRF_COOKIE,
            header_name="x-csrftoken",
            cookie_httponly=True,
            cookie_secure=settings.cookie_secure,
            cookie_samesite="lax",
            # Open311 POSTs come from other systems and carry an API key instead of a session.
            # Sync calls carry a JSON body and the X-Shanzhi-Device header instead (docs/sync.md).
            exclude=["^/open311/", "^/sync/(push|pull|photos/)"],
        ),
        template_config=make_template_config(assets),
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_send=[add_response_headers, keep_csrf_cookie(settings.session_max_age)],
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "assets": Provide(lambda: assets, use_cache=True, sync_to_thread=False),
        },
        state=State(
            {
                "settings": settings, "alchemy": alchemy, "alchemy_engine": alchemy.get_engine(),
                "public_figures": SharedCache("appeals", alchemy.get_session, ttl=settings.public_cache_seconds),
                "overview_figures": SharedCache(overview.TOPIC, alchemy.get_session, ttl=settings.public_cache_seconds),
                "public_pages": {},  # one SharedCache per topic of public pages, made on first use (web.public_cache)
                "scan_counts": scan_counts,
            }
        ),
        openapi_config=None,
        logging_config=LoggingConfig(log_exceptions="debug", disable_stack_trace={404, 401, 403, 405, 400}),
        debug=settings.debug,
        # Text forms are small; routes that take photos or sync batches raise their own limit.
        request_max_body_size=MAX_FORM_BODY,
    )
    app.asgi_handler = edge(app.asgi_handler)
    return app
