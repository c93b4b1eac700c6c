"""Shared fixtures: a real database per test (SQLite file, or PostgreSQL when SHANZHI_TEST_DATABASE_URL
is set), the app and its HTTP client, named demo users, and a live server for the browser tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

# The environment is set before anything from the app is imported.
_VAR = Path(tempfile.mkdtemp(prefix="shanzhi-test-var-"))
os.environ["SHANZHI_VAR_DIR"] = str(_VAR)
os.environ.pop("SHANZHI_DATABASE_URL", None)
os.environ.pop("SHANZHI_REDIS_URL", None)

import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from server.app import create_app
from server.db import make_alchemy_config, session_scope
from server.models import Role
from server.services import accounts, demo
from server.settings import Settings

from tests.helpers import Web

T = TypeVar("T")
PG_URL = os.environ.get("SHANZHI_TEST_DATABASE_URL") or None
TEST_PASSWORD = "test-password-1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests are marked, and run last: the fast tests give their answer first."""
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)


def pytest_report_header() -> str:
    return f"shanzhi database: {'PostgreSQL ' + make_url(PG_URL).render_as_string(hide_password=True) if PG_URL else 'SQLite files'}"


def run_isolated(function: Callable[..., T], *args: object) -> T:
    """Run blocking setup that calls asyncio.run in its own thread: Playwright's sync API keeps an
    event loop running on the main thread while the browser tests set up their database."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def migrate(url: str) -> None:
    settings = Settings(database_url=url, secret_key="x", var_dir=_VAR)
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings)).upgrade("head")


async def _pg_reset_schema(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def _pg_truncate(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
                )
            ).scalars().all()
            if tables:
                quoted = ", ".join(f'"{table}"' for table in tables)
                await conn.execute(text(f"TRUNCATE {quoted} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """Migrate once per run: a template SQLite file to copy, or the PostgreSQL test database itself."""
    import asyncio

    if PG_URL:
        # An unreachable or wrong URL fails here, loudly: the PostgreSQL run never silently skips.
        run_isolated(asyncio.run, _pg_reset_schema(PG_URL))
        run_isolated(migrate, PG_URL)
        yield PG_URL
        return
    directory = Path(tempfile.mkdtemp(prefix="shanzhi-test-db-"))
    path = directory / "template.db"
    run_isolated(migrate, f"sqlite+aiosqlite:///{path}")
    yield str(path)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> str:
    """A migrated, empty database for this test alone."""
    import asyncio

    if PG_URL:
        run_isolated(asyncio.run, _pg_truncate(PG_URL))
        return PG_URL
    path = tmp_path / "shanzhi.db"
    shutil.copyfile(migrated_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, secret_key="test-secret-key-" + "x" * 32, var_dir=tmp_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the test database for arranging data and checking what was written."""
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            yield session
    finally:
        await config.get_engine().dispose()


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        test_client.follow_redirects = False  # tests look at redirects themselves
        yield test_client


@pytest.fixture
def web(client: AsyncTestClient) -> Web:
    return Web(client)


@pytest.fixture
async def people(settings: Settings) -> dict[Role, str]:
    """One user per role (username = role value), password TEST_PASSWORD, committed."""
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            for role in Role:
                await accounts.create_user(
                    session, username=role.value.replace("_", "-"), password=TEST_PASSWORD, role=role,
                    display_name=f"测试{role.value}",
                )
    finally:
        await config.get_engine().dispose()
    return {role: role.value.replace("_", "-") for role in Role}


@pytest.fixture
async def demo_data(settings: Settings) -> demo.DemoReport:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return await demo.load_demo(session)
    finally:
        await config.get_engine().dispose()


def settings_with(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]


def forget_alchemy_configs() -> None:
    """advanced-alchemy remembers the keys of every config ever made in class-level sets and finds a free
    key by recursing once per config: a few thousand configs in one test process overflow the stack.
    Configs of finished tests (or examples) are disposed, so their keys can go."""
    for name in ("_SESSION_SCOPE_KEY_REGISTRY", "_ENGINE_APP_STATE_KEY_REGISTRY", "_SESSIONMAKER_APP_STATE_KEY_REGISTRY"):
        getattr(SQLAlchemyAsyncConfig, name).clear()


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so a leaked connection is reported by the test that leaked it."""
    yield
    import gc

    gc.collect()
    forget_alchemy_configs()
