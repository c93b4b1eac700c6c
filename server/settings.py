"""One Settings object read from the environment, with defaults that work on a laptop."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from server import PROJECT_DIR

SUPPORTED_LOCALES = ("zh_CN", "en")
# Argon2 parameter sets for passwords (server/services/accounts.py): "strong" in production;
# "cheapest" only where hashing cost is noise, i.e. test suites.
PASSWORD_HASHING_PROFILES = ("strong", "cheapest")


def _var_dir() -> Path:
    return Path(os.environ.get("SHANZHI_VAR_DIR", PROJECT_DIR / "var"))


def _load_or_create_secret(path: Path) -> str:
    """Generate the secret once and keep it, so sessions survive restarts."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


def _password_hashing() -> str:
    return os.environ.get("SHANZHI_PASSWORD_HASHING") or "strong"


def _public_url(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        msg = f"SHANZHI_PUBLIC_URL must start with http:// or https://, not {value!r}"
        raise ValueError(msg)
    return value


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    redis_url: str | None = None
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    var_dir: Path = field(default_factory=_var_dir)
    cookie_secure: bool = False
    session_max_age: int = 30 * 24 * 3600
    login_rate_limit: int = 10  # failed or not, POSTs to /login per client per minute
    suggest_rate_limit: int = 5  # accepted suggestion-box submissions per browser per hour
    suggest_address_limit: int = 200  # ... per client address per hour, all browsers together
    scan_flush_seconds: float = 5.0  # QR guide opens are counted in memory and written this often
    live_stream_seconds: float = 0.0  # how long one live-update stream stays open (the env default is 300)
    debug: bool = False
    # Appeal time limits (A3): "12小时响应、7日办结、复杂问题1月闭环".
    appeal_response_hours: int = 12
    appeal_resolve_days: int = 7
    appeal_complex_resolve_months: int = 1
    # "即将超时" once less than this share of a time limit is left.
    appeal_due_soon_ratio: float = 0.25
    # A label of the deployed release; changing it makes every installed app fetch a new version.
    release: str = ""
    # Run the background jobs (overdue appeals) inside `shanzhi serve`. Off unless read from the
    # environment, so an app built in a test never starts a loop of its own.
    embedded_worker: bool = False
    # Outbound notifications are logged; with a URL they are also POSTed there as JSON (SMS/WeChat gateway).
    notify_webhook_url: str | None = None
    # Named argon2 parameters for new password hashes (PASSWORD_HASHING_PROFILES).
    password_hashing: str = field(default_factory=_password_hashing)
    # The address residents and partner systems reach the site at, e.g. https://shanzhi.example.cn:
    # every printed or sent link (QR posters, tracking links, Open311) uses it. Unset: the request's host.
    public_url: str | None = None
    # Addresses of reverse proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips).
    # Unset: nobody's; the client address is the connection's (docs/deployment.md, "Behind a proxy").
    trusted_proxies: str | None = None
    # Seconds the public figures (summary, /api/stats, boards) are shared between requests; a change made
    # through this process shows at once (server/services/shared_cache.py). 0 turns sharing off; like the
    # embedded worker, it is on only when read from the environment (default 5 there).
    public_cache_seconds: float = 0.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("SHANZHI_VAR_DIR", str(_var_dir())))
        var_dir.mkdir(parents=True, exist_ok=True)
        database_url = env.get("SHANZHI_DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir / 'shanzhi.db'}"
        secret_key = env.get("SHANZHI_SECRET_KEY") or _load_or_create_secret(var_dir / "secret_key")
        locale = env.get("SHANZHI_LOCALE") or "zh_CN"
        if locale not in SUPPORTED_LOCALES:
            msg = f"SHANZHI_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, not {locale!r}"
            raise ValueError(msg)
        timezone = env.get("SHANZHI_TIMEZONE") or "Asia/Shanghai"
        ZoneInfo(timezone)  # fail at start-up, not at the first deadline
        password_hashing = env.get("SHANZHI_PASSWORD_HASHING") or "strong"
        if password_hashing not in PASSWORD_HASHING_PROFILES:
            msg = f"SHANZHI_PASSWORD_HASHING must be one of {', '.join(PASSWORD_HASHING_PROFILES)}, not {password_hashing!r}"
            raise ValueError(msg)
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            redis_url=env.get("SHANZHI_REDIS_URL") or None,
            timezone=timezone,
            locale=locale,
            var_dir=var_dir,
            cookie_secure=_bool(env.get("SHANZHI_COOKIE_SECURE"), default=False),
            login_rate_limit=int(env.get("SHANZHI_LOGIN_RATE_LIMIT") or 10),
            suggest_rate_limit=int(env.get("SHANZHI_SUGGEST_RATE_LIMIT") or 5),
            suggest_address_limit=int(env.get("SHANZHI_SUGGEST_ADDRESS_LIMIT") or 200),
            scan_flush_seconds=float(env.get("SHANZHI_SCAN_FLUSH_SECONDS") or 5),
            live_stream_seconds=float(env.get("SHANZHI_LIVE_STREAM_SECONDS") or 300),
            debug=_bool(env.get("SHANZHI_DEBUG"), default=False),
            release=env.get("SHANZHI_RELEASE", ""),
            embedded_worker=_bool(env.get("SHANZHI_EMBEDDED_WORKER"), default=True),
            notify_webhook_url=env.get("SHANZHI_NOTIFY_WEBHOOK_URL") or None,
            appeal_response_hours=int(env.get("SHANZHI_APPEAL_RESPONSE_HOURS") or 12),
            appeal_resolve_days=int(env.get("SHANZHI_APPEAL_RESOLVE_DAYS") or 7),
            appeal_complex_resolve_months=int(env.get("SHANZHI_APPEAL_COMPLEX_RESOLVE_MONTHS") or 1),
            appeal_due_soon_ratio=float(env.get("SHANZHI_APPEAL_DUE_SOON_RATIO") or 0.25),
            password_hashing=password_hashing,
            public_url=_public_url(env.get("SHANZHI_PUBLIC_URL")),
            trusted_proxies=(env.get("SHANZHI_TRUSTED_PROXIES") or "").strip() or None,
            public_cache_seconds=float(env.get("SHANZHI_PUBLIC_CACHE_SECONDS") or 5),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uploads_dir(self) -> Path:
        return self.var_dir / "uploads"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
