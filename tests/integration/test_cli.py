"""The `shanzhi` command as an operator uses it: demo data, accounts, backups and migrations."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result
from litestar.testing import TestClient
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from server.app import create_app
from server.cli import main
from server.db import MIGRATIONS_DIR
from server.models import Department, Place, Role, User
from server.services.demo import DEMO_USERS
from server.settings import Settings, get_settings

SEED_PLACES = ["东舍坊小区", "文华园小区", "山东物业创新产业园", "鲁粮集团办公楼"]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Run `shanzhi ...` against the test database, with fresh settings for each invocation."""
    env = {"SHANZHI_DATABASE_URL": database_url, "SHANZHI_VAR_DIR": str(tmp_path), "SHANZHI_SECRET_KEY": "x"}
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        get_settings.cache_clear()
        try:
            return runner.invoke(main, list(args), env=env)
        finally:
            get_settings.cache_clear()

    yield invoke
    get_settings.cache_clear()


def query(url: str, statement: Any) -> list[Any]:
    """Read rows through a fresh engine, as another process would see them."""

    async def run() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(statement)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def execute(url: str, statement: Any) -> None:
    """Change rows through a fresh engine and commit."""

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


def csrf_of(client: TestClient) -> str:
    match = re.search(r'name="csrf-token" content="([^"]*)"', client.get("/offline").text)
    assert match
    return match.group(1)


def test_demo_loads_the_seed_places_and_one_user_per_role(cli: Any, database_url: str) -> None:
    """`shanzhi demo` fills an empty database and prints the accounts to try."""
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "12 places and 10 users added" in result.output
    for demo_user in DEMO_USERS:
        assert demo_user.username in result.output
    names = {row[0] for row in query(database_url, select(Place.name))}
    assert set(SEED_PLACES) <= names
    roles = [row[0] for row in query(database_url, select(User.role))]
    assert sorted(roles) == sorted(Role)


def test_demo_twice_adds_nothing(cli: Any, database_url: str) -> None:
    """Running the demo loader again is harmless."""
    assert cli("demo").exit_code == 0
    before = query(database_url, select(Place.id)), query(database_url, select(User.id))
    result = cli("demo")
    assert result.exit_code == 0, result.output
    assert "0 places and 0 users added" in result.output
    assert (query(database_url, select(Place.id)), query(database_url, select(User.id))) == before


def test_demo_if_empty_leaves_a_database_with_places_alone(cli: Any, database_url: str) -> None:
    """`make run` uses --if-empty: a database in use gets nothing added, not even a missing demo user."""
    assert cli("demo").exit_code == 0
    execute(database_url, delete(User).where(User.username == "admin"))
    result = cli("demo", "--if-empty")
    assert result.exit_code == 0, result.output
    assert "already holds data" in result.output
    assert query(database_url, select(User.id).where(User.username == "admin")) == []


def test_demo_if_empty_leaves_a_database_with_accounts_alone(cli: Any, database_url: str) -> None:
    """An operator who made their own admin first must not get demo accounts with the public demo password."""
    assert cli("user", "create", "--role", "admin", "--password", "longenough1", "boss").exit_code == 0
    result = cli("demo", "--if-empty")
    assert result.exit_code == 0, result.output
    assert "0 places and 0 users" not in result.output
    assert query(database_url, select(Place.id)) == []
    assert [row[0] for row in query(database_url, select(User.username))] == ["boss"]


def test_demo_if_empty_loads_into_an_empty_database(cli: Any, database_url: str) -> None:
    """On a fresh database, --if-empty loads the demo set."""
    result = cli("demo", "--if-empty")
    assert result.exit_code == 0, result.output
    assert "12 places and 10 users added" in result.output
    assert len(query(database_url, select(Place.id))) == 12


def test_created_user_can_sign_in(cli: Any, database_url: str, tmp_path: Path) -> None:
    """An account made on the command line signs in to its role's home, in its grid."""
    assert cli("demo").exit_code == 0
    [(code, grid_id)] = query(database_url, select(Place.code, Place.id).where(Place.name == "东舍坊第一网格"))
    result = cli(
        "user", "create", "--role", "grid_worker", "--name", "王网格", "--place", code, "--password", "longenough1", "wang2"
    )
    assert result.exit_code == 0, result.output
    [(role, place_id)] = query(database_url, select(User.role, User.place_id).where(User.username == "wang2"))
    assert role == Role.GRID_WORKER.value
    assert str(place_id).replace("-", "") == str(grid_id).replace("-", "")
    settings = Settings(database_url=database_url, secret_key="test-secret-key-" + "x" * 32, var_dir=tmp_path)
    with TestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        client.follow_redirects = False
        response = client.post(
            "/login", data={"username": "wang2", "password": "longenough1", "_csrf_token": csrf_of(client)}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/grid"
        home = client.get("/grid")
        assert home.status_code == 200
        assert "王网格" in home.text
        assert "东舍坊第一网格" in home.text


def test_user_create_refuses_an_unknown_role(cli: Any, database_url: str) -> None:
    """A role that does not exist is rejected before anything is written."""
    result = cli("user", "create", "--role", "mayor", "--password", "longenough1", "someone")
    assert result.exit_code != 0
    assert "mayor" in result.output
    assert query(database_url, select(User.id)) == []


def test_user_create_refuses_a_short_password(cli: Any, database_url: str) -> None:
    """A short password is refused with the rule spelled out."""
    result = cli("user", "create", "--role", "staff", "--password", "short", "someone")
    assert result.exit_code != 0
    assert "at least 8 characters" in result.output
    assert query(database_url, select(User.id)) == []


def test_user_create_refuses_a_taken_username(cli: Any, database_url: str) -> None:
    """A second account with the same username is refused."""
    assert cli("user", "create", "--role", "staff", "--password", "longenough1", "li").exit_code == 0
    result = cli("user", "create", "--role", "admin", "--password", "longenough2", "LI")
    assert result.exit_code != 0
    assert "taken" in result.output
    assert [row[0] for row in query(database_url, select(User.role))] == [Role.STAFF.value]


def test_user_create_refuses_an_unknown_place(cli: Any, database_url: str) -> None:
    """A mistyped place code is reported, and no account is made."""
    result = cli("user", "create", "--role", "grid_worker", "--place", "ZZZZZZ", "--password", "longenough1", "wang3")
    assert result.exit_code != 0
    assert "ZZZZZZ" in result.output
    assert query(database_url, select(User.id)) == []


def test_department_user_is_tied_to_its_department(cli: Any, database_url: str) -> None:
    """A department account needs its department; with it, the account acts for that department."""
    assert cli("demo").exit_code == 0
    refused = cli("user", "create", "--role", "department", "--password", "longenough1", "nodept")
    assert refused.exit_code != 0
    assert "--department" in refused.output
    unknown = cli("user", "create", "--role", "department", "--department", "xyz", "--password", "longenough1", "nodept")
    assert unknown.exit_code != 0
    assert "xyz" in unknown.output
    assert query(database_url, select(User.id).where(User.username == "nodept")) == []
    result = cli("user", "create", "--role", "department", "--department", "zjj", "--password", "longenough1", "zjj-duty")
    assert result.exit_code == 0, result.output
    [(department_name,)] = query(
        database_url, select(Department.name).join(User, User.department_id == Department.id).where(User.username == "zjj-duty")
    )
    assert department_name == "区住建"


def test_backup_of_the_configured_database(cli: Any, database_url: str, tmp_path: Path) -> None:
    """SQLite: a consistent copy that refuses to overwrite. PostgreSQL: refused, pointing to pg_dump."""
    assert cli("demo").exit_code == 0
    target = tmp_path / "backups" / "shanzhi-backup.db"
    result = cli("backup", str(target))
    if not make_url(database_url).drivername.startswith("sqlite"):
        assert result.exit_code != 0
        assert "pg_dump" in result.output
        assert not target.exists()
        return
    assert result.exit_code == 0, result.output
    with sqlite3.connect(target) as copy:
        copied = sorted(copy.execute("SELECT username, role, password_hash FROM user_account").fetchall())
    original = sorted(tuple(row) for row in query(database_url, text("SELECT username, role, password_hash FROM user_account")))
    assert copied == original
    assert len(copied) == len(DEMO_USERS)
    size = target.stat().st_size
    again = cli("backup", str(target))
    assert again.exit_code != 0
    assert "exists" in again.output
    assert target.stat().st_size == size


def test_backup_refuses_a_postgresql_url(cli: Any, tmp_path: Path) -> None:
    """Pointed at PostgreSQL, backup says to use pg_dump and writes nothing (it need not connect)."""
    target = tmp_path / "pg-backup.db"
    env = {"SHANZHI_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/x", "SHANZHI_VAR_DIR": str(tmp_path)}
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["backup", str(target)], env={**env, "SHANZHI_SECRET_KEY": "x"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "pg_dump" in result.output
    assert not target.exists()


def test_db_upgrade_on_a_migrated_database_succeeds(cli: Any, database_url: str) -> None:
    """Re-running the migration on start-up is a no-op, not an error."""
    result = cli("db", "upgrade", "--no-prompt")
    assert result.exit_code == 0, result.output
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert query(database_url, text("SELECT version_num FROM alembic_version")) == [(head,)]
