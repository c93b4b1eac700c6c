"""change feed for sync pulls: change_seq on pulled tables, and the SQLite change counter

Revision ID: 0005_change_feed
Revises: 0004_field_sync
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
import uuid_utils
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0005_change_feed"
down_revision = "0004_field_sync"
branch_labels = None
depends_on = None

FEED_TABLES = ("place", "appeal", "visit", "sync_conflict")


def upgrade() -> None:
    for table in FEED_TABLES:
        # A plain ADD COLUMN (no table rebuild on SQLite); rows written before it have 0: they are
        # delivered by a full pull, as every row is.
        op.add_column(table, sa.Column("change_seq", sa.BigInteger(), server_default="0", nullable=False))
        op.create_index(op.f(f"ix_{table}_change_seq"), table, ["change_seq"], unique=False)
    counter = op.create_table(
        "change_counter",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", GUID(length=16), nullable=True),
        sa.Column("updated_by_id", GUID(length=16), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_counter")),
    )
    now = datetime.now(UTC)
    op.bulk_insert(counter, [{"id": UUID(str(uuid_utils.uuid7())), "value": 0, "created_at": now, "updated_at": now}])


def downgrade() -> None:
    op.drop_table("change_counter")
    for table in FEED_TABLES:
        op.drop_index(op.f(f"ix_{table}_change_seq"), table_name=table)
        op.drop_column(table, "change_seq")  # SQLite 3.35+ drops a column in place
