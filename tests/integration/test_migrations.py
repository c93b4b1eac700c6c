"""The migrations build exactly the schema the models declare, and can be undone and redone."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.base import metadata_registry
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

import server.models  # noqa: F401 - registers every table on the metadata
from server.db import make_alchemy_config
from server.settings import Settings
from tests.conftest import PG_URL

APP_TABLES = {"place", "user_account", "store_item"}
# StoreModelMixin (advanced-alchemy) declares this unique index with ddl_if(...) so that it is only
# created on Spanner; everywhere else the uq_store_item_key_namespace constraint does its job.
# Autogenerate does not evaluate ddl_if, so it always reports the index as missing: not a real drift.
SPANNER_ONLY_INDEX = "ix_store_item_key_namespace_unique"


def _normalise(type_sql: str) -> str:
    return type_sql.replace(" ", "").upper()


def _compare_type(
    context: MigrationContext, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """On SQLite, compare the declared column type with the model's DDL type.

    SQLite reflection maps types it does not know (BINARY(16) of the UUID columns) to NUMERIC,
    so the reflected type object cannot be trusted; the declared type text can.
    """
    connection = context.connection
    assert connection is not None
    if connection.dialect.name != "sqlite":
        return None  # alembic's own comparison
    table = metadata_column.table.name
    declared = {
        row[1]: row[2] for row in connection.exec_driver_sql(f'PRAGMA table_info("{table}")').fetchall()
    }
    expected = metadata_type.compile(dialect=connection.dialect)
    return _normalise(declared[metadata_column.name]) != _normalise(expected)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": _compare_type})
    return compare_metadata(context, metadata_registry.get(None))


def _is_spanner_only_index(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "add_index" and diff[1].name == SPANNER_ONLY_INDEX


async def test_models_match_the_migrations(database_url: str) -> None:
    """A freshly migrated database has exactly the tables, columns, types and indexes of the models."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert [diff for diff in diffs if not _is_spanner_only_index(diff)] == []


def _sqlite_tables(url: str) -> set[str]:
    database = make_url(url).database
    assert database
    with sqlite3.connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _tables(url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _pg_admin(statement: str) -> None:
    assert PG_URL

    async def run() -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _commands(url: str, tmp_path: Path) -> tuple[AlembicCommands, Any]:
    config = make_alchemy_config(Settings(database_url=url, secret_key="x", var_dir=tmp_path))
    return AlembicCommands(sqlalchemy_config=config), config


def _round_trip(url: str, tmp_path: Path) -> None:
    commands, config = _commands(url, tmp_path)
    try:
        commands.upgrade("head")
        assert APP_TABLES <= _tables(url)
        commands.downgrade("base")
        assert _tables(url) & APP_TABLES == set()
        assert _tables(url) <= {"alembic_version"}
        commands.upgrade("head")
        assert APP_TABLES <= _tables(url)
    finally:
        asyncio.run(config.get_engine().dispose())


@pytest.mark.parametrize("backend", ["sqlite", *(["postgresql"] if PG_URL else [])])
def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path) -> None:
    """Every migration can be undone down to an empty database and applied again."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        _round_trip(url, tmp_path)
        assert _sqlite_tables(url) >= APP_TABLES
        return
    assert PG_URL
    name = f"shanzhi_migrations_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        _round_trip(make_url(PG_URL).set(database=name).render_as_string(hide_password=False), tmp_path)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
