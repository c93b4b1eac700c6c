"""查询码: appeal.query_code, six digits read over the phone (given to the cases that have none)

Revision ID: 0008_query_code
Revises: 0007_resident_voice
Create Date: 2026-11-27
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008_query_code"
down_revision = "0007_resident_voice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("appeal", sa.Column("query_code", sa.String(length=8), nullable=True))
    appeal = sa.table("appeal", sa.column("id"), sa.column("query_code", sa.String))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.select(appeal.c.id))]
    if ids:
        bind.execute(
            appeal.update().where(appeal.c.id == sa.bindparam("key")).values(query_code=sa.bindparam("code")),
            [{"key": key, "code": f"{secrets.randbelow(10**6):06d}"} for key in ids],
        )


def downgrade() -> None:
    op.drop_column("appeal", "query_code")
