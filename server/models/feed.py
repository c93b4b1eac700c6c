"""The change feed behind incremental sync pulls: every row of a pulled table carries the number of
the transaction that last wrote it (`change_seq`), in commit order where it matters (docs/sync.md,
"Cursors").

- SQLite: writers take turns (server/db.py), so a counter bumped once per writing transaction is in
  commit order.
- PostgreSQL: transactions overlap, so the number is the writer's transaction id
  (`pg_current_xact_id()`); a pull never moves its cursor past the oldest transaction still in
  flight (`pg_snapshot_xmin(pg_current_snapshot())`), so a slow transaction that commits late is
  delivered by the next pull instead of being skipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Connection, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.models.base import AuditedBase

FEED_KEY = "shanzhi.change_seq"


class ChangeCounter(AuditedBase):
    """One row: the last change number handed out on SQLite (unused on PostgreSQL)."""

    __tablename__ = "change_counter"

    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeFeed:
    """Mixin of the tables a sync pull reads: the number of the transaction that last wrote the row."""

    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", index=True)


def next_change_seq(conn: Connection) -> int:
    """A number for the current writing transaction (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one())
    return int(conn.execute(text("UPDATE change_counter SET value = value + 1 RETURNING value")).scalar_one())


def low_watermark(conn: Connection) -> int:
    """Every transaction numbered below this had ended when it was read: a cursor may move up to it."""
    if conn.dialect.name == "postgresql":
        return int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())
    return int(conn.execute(text("SELECT value + 1 FROM change_counter")).scalar_one())


@event.listens_for(Session, "before_flush")
def _stamp_changes(session: Session, _flush_context: Any, _instances: Any) -> None:
    changed = [o for o in session.new if isinstance(o, ChangeFeed)]
    changed += [o for o in session.dirty if isinstance(o, ChangeFeed) and session.is_modified(o, include_collections=False)]
    if not changed:
        return
    seq = session.info.get(FEED_KEY)
    if seq is None:
        seq = session.info[FEED_KEY] = next_change_seq(session.connection())
    for obj in changed:
        obj.change_seq = seq


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(FEED_KEY, None)


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(FEED_KEY, None)


