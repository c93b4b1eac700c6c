"""Database wiring: the advanced-alchemy config, SQLite pragmas, and a session scope for scripts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from server import PACKAGE_DIR
from server.settings import Settings

MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the board readers and the field-sync writer work at once; foreign keys are off in
    # SQLite unless asked for; the busy timeout turns a brief write lock into a wait, not an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _in_transaction(dbapi_connection: Any) -> bool:
    inner = getattr(dbapi_connection, "_connection", dbapi_connection)  # aiosqlite wraps sqlite3
    return bool(getattr(inner, "in_transaction", False))


def _sqlite_savepoint(conn: Any, _name: str | None) -> None:
    # sqlite3 (and so aiosqlite) opens a transaction only before INSERT/UPDATE/DELETE. A SAVEPOINT
    # issued first would open the transaction itself, and its RELEASE would commit everything up to
    # there: a later rollback could not undo it. Begin the real transaction first.
    if not _in_transaction(conn.connection.dbapi_connection):
        conn.exec_driver_sql("BEGIN")


async def begin_write(session: AsyncSession) -> None:
    """Take the write lock now on SQLite (BEGIN IMMEDIATE): a transaction that reads, then writes, waits
    for other writers (busy_timeout) instead of failing on a stale snapshot. No-op on PostgreSQL."""
    conn = await session.connection()
    if conn.dialect.name != "sqlite":
        return
    raw = await conn.get_raw_connection()
    if not _in_transaction(raw.dbapi_connection):
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_alchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    engine_config = EngineConfig(pool_pre_ping=True) if not settings.is_sqlite else EngineConfig()
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit_include_redirects",
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            version_table_name="alembic_version",
            render_as_batch=True,
        ),
        create_all=False,
    )
    if settings.is_sqlite:
        engine = config.get_engine()
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "savepoint", _sqlite_savepoint)
    return config


@asynccontextmanager
async def session_scope(config: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncSession]:
    """One transaction for a script or a test: commit on success, roll back on error."""
    async with config.get_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
