"""Settings from the environment: laptop defaults, the generated secret, and refusal of bad values."""

from __future__ import annotations

import stat
from pathlib import Path
from zoneinfo import ZoneInfoNotFoundError

import pytest

from server.settings import Settings


def test_defaults_work_on_a_laptop(tmp_path: Path) -> None:
    """With nothing configured: SQLite under the var dir, Chinese, Shanghai time, no Redis."""
    settings = Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'shanzhi.db'}"
    assert settings.is_sqlite
    assert settings.locale == "zh_CN"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.tz.key == "Asia/Shanghai"
    assert settings.redis_url is None
    assert settings.cookie_secure is False
    assert settings.session_max_age == 30 * 24 * 3600
    assert settings.var_dir == tmp_path


def test_var_dir_is_created(tmp_path: Path) -> None:
    """A var dir that does not exist yet is made, so the SQLite file can be created in it."""
    var_dir = tmp_path / "deep" / "var"
    Settings.from_env({"SHANZHI_VAR_DIR": str(var_dir)})
    assert var_dir.is_dir()


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    """The generated secret is written readable by the owner only and reused, so sessions survive restarts."""
    first = Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path)})
    secret_file = tmp_path / "secret_key"
    assert secret_file.read_text(encoding="utf-8") == first.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    second = Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path)})
    assert second.secret_key == first.secret_key


def test_configured_secret_key_wins(tmp_path: Path) -> None:
    """A secret given in the environment is used and nothing is written."""
    settings = Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_SECRET_KEY": "from-env"})
    assert settings.secret_key == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_unsupported_locale_is_refused(tmp_path: Path) -> None:
    """A locale without a catalog fails at start-up with a message naming the choices."""
    with pytest.raises(ValueError, match="zh_CN"):
        Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_LOCALE": "fr"})


def test_english_locale_is_accepted(tmp_path: Path) -> None:
    assert Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_LOCALE": "en"}).locale == "en"


def test_unknown_timezone_is_refused(tmp_path: Path) -> None:
    """A mistyped time zone fails at start-up, not at the first deadline."""
    with pytest.raises(ZoneInfoNotFoundError):
        Settings.from_env({"SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_TIMEZONE": "Mars/Olympus_Mons"})


def test_redis_and_database_urls_pass_through(tmp_path: Path) -> None:
    """Configured URLs are used as given."""
    settings = Settings.from_env(
        {
            "SHANZHI_VAR_DIR": str(tmp_path),
            "SHANZHI_REDIS_URL": "redis://cache.internal:6379/2",
            "SHANZHI_DATABASE_URL": "postgresql+asyncpg://shanzhi@db.internal/shanzhi",
        }
    )
    assert settings.redis_url == "redis://cache.internal:6379/2"
    assert settings.database_url == "postgresql+asyncpg://shanzhi@db.internal/shanzhi"
    assert not settings.is_sqlite


def test_flags_and_limits_are_read(tmp_path: Path) -> None:
    """Secure cookies, debug and the login limit can be set from the environment."""
    settings = Settings.from_env(
        {
            "SHANZHI_VAR_DIR": str(tmp_path),
            "SHANZHI_COOKIE_SECURE": "true",
            "SHANZHI_DEBUG": "0",
            "SHANZHI_LOGIN_RATE_LIMIT": "5",
            "SHANZHI_RELEASE": "2026.11",
        }
    )
    assert settings.cookie_secure is True
    assert settings.debug is False
    assert settings.login_rate_limit == 5
    assert settings.release == "2026.11"
