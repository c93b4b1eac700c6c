"""Test databases from snapshots: each named state (the migrated schema, the named people, the demo data,
an area's own world) is built once per test session and per database, and every test starts from a
copy of one, so no test pays for set-up another already did and no test sees another's writes.

SQLite: a snapshot is a file; a test gets a file copy. PostgreSQL: one database per pytest worker; a
snapshot is a copy of its tables in a schema of its own (`snap_<name>`), and a test starts by
resetting the tables to it (delete every row, insert the snapshot's, in foreign-key order, in one
transaction: about 20 ms). A database a live server keeps open is reset in place the same way
(SQLite: from the snapshot file, attached).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from advanced_alchemy.alembic.commands import AlembicCommands
from advanced_alchemy.base import metadata_registry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import server.models  # noqa: F401 - registers every table on the metadata
from server.db import make_alchemy_config
from server.settings import Settings

T = TypeVar("T")
SECRET = "test-secret-key-" + "x" * 32
Builder = Callable[[Settings], Awaitable[Any]]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def run_isolated(function: Callable[..., T], *args: object) -> T:
    """Run blocking set-up that calls asyncio.run in its own thread: Playwright's sync API keeps an
    event loop running on the main thread while the browser tests set up their database."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def settings_for(url: str, var_dir: Path) -> Settings:
    return Settings(database_url=url, secret_key=SECRET, var_dir=var_dir)


def table_order(present: set[str]) -> list[str]:
    """The app's tables, parents before children (inserts in this order, deletes in reverse)."""
    ordered = [table.name for table in metadata_registry.get(None).sorted_tables if table.name in present]
    return ordered + sorted(present - set(ordered) - {"alembic_version"})


def _migrate(url: str, var_dir: Path) -> None:
    AlembicCommands(sqlalchemy_config=make_alchemy_config(settings_for(url, var_dir))).upgrade("head")


async def _build(url: str, var_dir: Path, builder: Builder) -> Any:
    return await builder(settings_for(url, var_dir))


@dataclass
class Databases:
    """The session's snapshots on one database kind; `fresh(name)` gives a test its own copy."""

    root: Path
    pg_url: str | None = None
    builders: dict[str, Builder] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    _tables: list[str] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------------------

    def snapshot(self, name: str, builder: Builder | None = None, *, base: str = "schema") -> Any:
        """Build snapshot `name` once (from `base` plus what `builder` writes); returns what the builder returned."""
        if name in self.meta:
            return self.meta[name]
        assert NAME_RE.match(name), name
        if name == "schema":
            self.meta[name] = self._build_schema()
            return None
        builder = builder or self.builders.get(name)
        if builder is None:
            msg = f"snapshot {name!r} was never built and has no builder"
            raise KeyError(msg)
        self.snapshot(base)
        var_dir = self.root / f"var-{name}"
        if self.pg_url:
            self._pg_reset(base)
            result = run_isolated(asyncio.run, _build(self.pg_url, var_dir, builder))
            run_isolated(asyncio.run, self._pg_capture(name))
        else:
            path = self._file(name)
            shutil.copyfile(self._file(base), path)
            result = run_isolated(asyncio.run, _build(f"sqlite+aiosqlite:///{path}", var_dir, builder))
            _checkpoint(path)
        self.meta[name] = result
        return result

    def _file(self, name: str) -> Path:
        return self.root / f"{name}.db"

    def _build_schema(self) -> None:
        if self.pg_url:
            run_isolated(asyncio.run, self._pg_recreate())
            run_isolated(_migrate, self.pg_url, self.root)
            run_isolated(asyncio.run, self._pg_capture("schema"))
        else:
            run_isolated(_migrate, f"sqlite+aiosqlite:///{self._file('schema')}", self.root)
            _checkpoint(self._file("schema"))

    # -- a test's copy ------------------------------------------------------------------------------------

    def fresh(self, name: str, directory: Path) -> str:
        """The URL of a database in the state of snapshot `name`, for one test (or one example)."""
        self.snapshot(name)
        if self.pg_url:
            self._pg_reset(name)
            return self.pg_url
        path = directory / f"{name}.db"
        shutil.copyfile(self._file(name), path)
        return f"sqlite+aiosqlite:///{path}"

    def reset_in_place(self, url: str, name: str) -> None:
        """Put a database that a live server keeps open back into the state of snapshot `name`."""
        self.snapshot(name)
        if self.pg_url:
            assert url == self.pg_url
            self._pg_reset(name)
            return
        database = make_url(url).database
        assert database
        connection = sqlite3.connect(database, isolation_level=None, timeout=10)
        try:
            connection.execute("ATTACH DATABASE ? AS snap", (str(self._file(name)),))
            tables = table_order({row[0] for row in connection.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")})
            connection.execute("BEGIN IMMEDIATE")
            for table in reversed(tables):
                connection.execute(f'DELETE FROM main."{table}"')
            for table in tables:
                connection.execute(f'INSERT INTO main."{table}" SELECT * FROM snap."{table}"')
            connection.execute("COMMIT")
            connection.execute("DETACH DATABASE snap")
        finally:
            connection.close()

    # -- PostgreSQL -----------------------------------------------------------------------------------

    def _pg_reset(self, name: str) -> None:
        run_isolated(asyncio.run, self._pg_restore(name))

    async def _pg_recreate(self) -> None:
        """An empty public schema and no snapshot schemas left from an earlier run."""
        assert self.pg_url
        engine = create_async_engine(self.pg_url)
        try:
            async with engine.begin() as conn:
                stale = (await conn.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'snap\\_%'"))).scalars().all()
                for schema in stale:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    async def _pg_capture(self, name: str) -> None:
        assert self.pg_url
        engine = create_async_engine(self.pg_url)
        try:
            async with engine.begin() as conn:
                present = set(
                    (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars().all()
                )
                self._tables = table_order(present)
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "snap_{name}" CASCADE'))
                await conn.execute(text(f'CREATE SCHEMA "snap_{name}"'))
                for table in self._tables:
                    await conn.execute(text(f'CREATE TABLE "snap_{name}"."{table}" AS TABLE public."{table}"'))
        finally:
            await engine.dispose()

    async def _pg_restore(self, name: str) -> None:
        assert self.pg_url
        statements = [f'DELETE FROM public."{table}"' for table in reversed(self._tables)]
        statements += [f'INSERT INTO public."{table}" SELECT * FROM "snap_{name}"."{table}"' for table in self._tables]
        engine = create_async_engine(self.pg_url)
        try:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                # One round trip, one transaction (asyncpg's simple protocol runs the statements as a script).
                await raw.driver_connection.execute("BEGIN; " + "; ".join(statements) + "; COMMIT")  # type: ignore[union-attr]
        finally:
            await engine.dispose()


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file, so copying the file alone copies everything."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


async def pg_admin(url: str, statement: str) -> None:
    """Run CREATE/DROP DATABASE through the server's maintenance database."""
    engine = create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()
