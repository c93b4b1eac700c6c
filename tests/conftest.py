"""Shared fixtures: a real database per test (SQLite file, or PostgreSQL when SHANZHI_TEST_DATABASE_URL
is set) started from a snapshot built once per session (tests/databases.py), the app and its HTTP
client, named demo users, and a live server for the browser tests."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

# The environment is set before anything from the app is imported.
_VAR = Path(tempfile.mkdtemp(prefix="shanzhi-test-var-"))
os.environ["SHANZHI_VAR_DIR"] = str(_VAR)
os.environ.pop("SHANZHI_DATABASE_URL", None)
os.environ.pop("SHANZHI_REDIS_URL", None)
# Passwords are hashed with argon2's cheapest parameters in tests (and in the servers they start):
# the strong production profile costs a quarter of a second per hash (tests/unit/test_passwords.py
# checks that production keeps it).
os.environ["SHANZHI_PASSWORD_HASHING"] = "cheapest"

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from server.app import create_app
from server.db import make_alchemy_config, session_scope
from server.models import Role
from server.services import accounts, demo
from server.settings import Settings

from tests.databases import SECRET, Databases, pg_admin, run_isolated
from tests.helpers import Web

accounts.use_hashing("cheapest")
PG_URL = os.environ.get("SHANZHI_TEST_DATABASE_URL") or None
TEST_PASSWORD = "test-password-1"

__all__ = ["PG_URL", "TEST_PASSWORD", "run_isolated"]


def _run_order(item: pytest.Item) -> int:
    # The long property tests start first, so pytest-xdist can share the rest of the work around
    # them; the browser tests come last (they keep an event loop on the main thread, see
    # tests/browser/conftest.py).
    if "tests/property/" in item.nodeid:
        return 0
    return 2 if "tests/browser/" in item.nodeid else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests are marked, and run last; the longest tests run first."""
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
    items.sort(key=_run_order)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported so far lives for the whole run: keep it out of the per-test collections below."""
    import gc

    gc.collect()
    gc.freeze()


def pytest_report_header() -> str:
    return f"shanzhi database: {'PostgreSQL ' + make_url(PG_URL).render_as_string(hide_password=True) if PG_URL else 'SQLite files'}"


async def _create_people(settings: Settings) -> dict[Role, str]:
    """One user per role (username = role value with dashes), password TEST_PASSWORD."""
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


async def _load_demo(settings: Settings) -> demo.DemoReport:
    config = make_alchemy_config(settings)
    try:
        async with session_scope(config) as session:
            return await demo.load_demo(session, settings)
    finally:
        await config.get_engine().dispose()


# The shared snapshots: name -> builder. An area adds its own here (docs/testing.md).
SNAPSHOTS = {"people": _create_people, "demo": _load_demo}


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """The session's snapshots. On PostgreSQL each pytest-xdist worker gets a database of its own."""
    root = tmp_path_factory.mktemp("snapshots")
    if not PG_URL:
        yield Databases(root, builders=SNAPSHOTS)
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        # An unreachable or wrong URL fails here, loudly: the PostgreSQL run never silently skips.
        yield Databases(root, PG_URL, builders=SNAPSHOTS)
        return
    url = make_url(PG_URL)
    name = f"{url.database}_{worker}"
    run_isolated(asyncio.run, pg_admin(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    run_isolated(asyncio.run, pg_admin(PG_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield Databases(root, url.set(database=name).render_as_string(hide_password=False), builders=SNAPSHOTS)
    finally:
        run_isolated(asyncio.run, pg_admin(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def snapshot_for(request: pytest.FixtureRequest) -> str:
    """The snapshot a test starts from, by the fixtures it uses (directly or through others)."""
    names = set(request.fixturenames)
    if names & {"demo_data", "live_server"}:
        return "demo"
    if "people" in names:
        return "people"
    return "schema"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, databases: Databases, tmp_path: Path) -> str:
    """A database of this test alone: migrated, plus the named people or the demo data when it asks for them."""
    return databases.fresh(snapshot_for(request), tmp_path)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, var_dir=tmp_path)


@pytest.fixture
async def config(settings: Settings) -> AsyncIterator[SQLAlchemyAsyncConfig]:
    """One engine, as one server process has: each session taken from it has a connection of its own
    (what two users do at once is tested with two of them)."""
    config = make_alchemy_config(settings)
    try:
        yield config
    finally:
        await config.get_engine().dispose()


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
async def english(client: AsyncTestClient) -> None:
    """Switch the client to English, to assert on the msgids (they hold before and after translation)."""
    await client.get("/lang/en")


@pytest.fixture
def people(databases: Databases, database_url: str) -> dict[Role, str]:
    """One user per role (username = role value with dashes, password TEST_PASSWORD), already in the database."""
    return databases.meta["people"]


@pytest.fixture
def demo_data(databases: Databases, database_url: str) -> demo.DemoReport:
    """The Jiefanglu demo data (demo users, password demo.DEMO_PASSWORD), already in the database."""
    return databases.meta["demo"]


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
    """Collect after each test, so a leaked connection is reported by the test that leaked it. What
    is still alive afterwards belongs to the session (caches, registries): freeze it, so the next
    collection looks only at what the next test made and the cost does not grow with the run."""
    yield
    import gc

    gc.collect()
    gc.freeze()
    forget_alchemy_configs()
