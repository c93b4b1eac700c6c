"""Database wiring: the advanced-alchemy config, SQLite pragmas, and a session scope for scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.utils.serialization import encode_json
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import await_only

from server import PACKAGE_DIR
from server.edge import strip_nul, without_nul
from server.settings import Settings

MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the board readers and the field-sync writer work at once; foreign keys are off in
    # SQLite unless asked for; the busy timeout turns a brief write lock held by another process
    # (a CLI command) into a wait, not an error.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # We emit BEGIN ourselves (see _sqlite_begin, _sqlite_before_write): the sqlite3 module would
    # begin only before the first INSERT/UPDATE/DELETE, so a writer that reads first could meet a
    # newer commit and fail ("database is locked"), and a SAVEPOINT issued first would commit on RELEASE.
    dbapi_connection.isolation_level = None


# --- Writers on SQLite: one at a time, first come first served ---------------------------------------
#
# SQLite has one writer at a time, and its busy wait is not fair: under load a writer that waited
# longest can time out while newer ones get in. So every write transaction of this process first
# queues on an asyncio lock (FIFO), then takes SQLite's write lock with BEGIN IMMEDIATE, and lets the
# next writer in when it commits or rolls back. Read-only work (GET requests) begins a plain
# deferred transaction and never waits: in WAL mode readers see the last commit.
#
# Whether a transaction will write is said by `write_intent`: True for requests with an unsafe HTTP
# method (server.security sets it per request), for the background jobs and the commands; a GET
# handler that writes calls `mark_writer()` before it touches the database. Anything else (a test's
# own session, a script that reads) begins a deferred transaction and takes no turn.

write_intent: ContextVar[bool] = ContextVar("shanzhi_write_intent", default=False)
WRITE_QUEUE_TIMEOUT = 60.0  # seconds a writer waits for its turn before the request is answered 503


class WriteQueueTimeout(Exception):
    """The database was busy with other writers for longer than WRITE_QUEUE_TIMEOUT."""


def mark_writer() -> None:
    """This request will write: its transaction takes its turn in the write queue (SQLite)."""
    write_intent.set(True)


@dataclass
class WriteQueue:
    """The FIFO of this process's SQLite writers (one per engine)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timeout: float = WRITE_QUEUE_TIMEOUT

    async def acquire(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # arrives as the lock is granted (the worker task would then never stop).
        try:
            async with asyncio.timeout(self.timeout):
                await self.lock.acquire()
        except TimeoutError:
            raise WriteQueueTimeout from None

    def release(self) -> None:
        if self.lock.locked():
            self.lock.release()


_QUEUES: WeakKeyDictionary[Any, WriteQueue] = WeakKeyDictionary()
_HOLDS = "shanzhi_write_queue"


def _in_transaction(dbapi_connection: Any) -> bool:
    inner = getattr(dbapi_connection, "_connection", dbapi_connection)  # aiosqlite wraps sqlite3
    return bool(getattr(inner, "in_transaction", False))


def _sqlite_begin(conn: Connection) -> None:
    """A writer waits for its turn, then takes SQLite's write lock for the whole transaction. A reader
    begins nothing: each read sees the last commit, and its first write (if any) begins then."""
    if not write_intent.get():
        return
    record = conn.connection._connection_record  # type: ignore[attr-defined]
    if record is not None and not record.info.get(_HOLDS):
        queue = _QUEUES[conn.engine]
        await_only(queue.acquire())  # we run inside SQLAlchemy's greenlet: awaiting is allowed here
        record.info[_HOLDS] = queue
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release(conn.connection._connection_record)  # type: ignore[attr-defined]
        raise


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT")


def _sqlite_before_write(conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
    # A transaction that did not announce itself as a writer begins at its first write (as the sqlite3
    # module would), so its writes are still all or nothing. A SAVEPOINT outside a transaction
    # would open one itself, and its RELEASE would commit: begin the real transaction first.
    if statement.lstrip()[:9].upper().startswith(WRITES) and not _in_transaction(conn.connection.dbapi_connection):
        cursor.execute("BEGIN")


def _release(record: Any) -> None:
    queue = record.info.pop(_HOLDS, None) if record is not None else None
    if queue is not None:
        queue.release()


def _sqlite_end(conn: Connection) -> None:
    _release(conn.connection._connection_record)  # type: ignore[attr-defined]


# A connection going back to the pool (or away) never keeps the queue, whatever happened before.
def _release_on_reset(dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
    _release(connection_record)


def _release_on_return(dbapi_connection: Any, connection_record: Any) -> None:
    _release(connection_record)


def _release_on_invalidate(dbapi_connection: Any, connection_record: Any, exception: Any) -> None:
    _release(connection_record)


def _json(value: Any) -> str:
    """The JSON columns' serializer: NUL bytes leave JSON values here, as they leave text parameters in strip_nul."""
    return encode_json(without_nul(value))


def make_alchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    engine_config = EngineConfig(pool_pre_ping=True, json_serializer=_json) if not settings.is_sqlite else EngineConfig(json_serializer=_json)
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
    event.listen(config.get_engine().sync_engine, "before_cursor_execute", strip_nul, retval=True)
    if settings.is_sqlite:
        engine = config.get_engine().sync_engine
        _QUEUES[engine] = WriteQueue()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_before_write)
        event.listen(engine, "commit", _sqlite_end)
        event.listen(engine, "rollback", _sqlite_end)
        event.listen(engine.pool, "reset", _release_on_reset)
        event.listen(engine.pool, "checkin", _release_on_return)
        event.listen(engine.pool, "close", _release_on_return)
        event.listen(engine.pool, "invalidate", _release_on_invalidate)
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
