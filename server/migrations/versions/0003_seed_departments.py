"""seed the district departments named by the subdistrict (区发改, 区工信, 区人社, 区住建, 区城管, 区市场监管)

Revision ID: 0003_seed_departments
Revises: 0002_appeals
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
import uuid_utils
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0003_seed_departments"
down_revision = "0002_appeals"
branch_labels = None
depends_on = None

# Reference data every deployment needs for transfers and whistles; kept here rather than imported
# from the app so this migration stays what it was when it ran.
DEPARTMENTS = [("fgw", "区发改"), ("gxj", "区工信"), ("rsj", "区人社"), ("zjj", "区住建"), ("cgj", "区城管"), ("scjg", "区市场监管")]

department = sa.table(
    "department",
    sa.column("id", GUID(length=16)),
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("created_at", DateTimeUTC(timezone=True)),
    sa.column("updated_at", DateTimeUTC(timezone=True)),
)


def upgrade() -> None:
    connection = op.get_bind()
    existing = set(connection.execute(sa.select(department.c.code)).scalars())
    now = datetime.now(UTC)
    rows = [
        {"id": UUID(str(uuid_utils.uuid7())), "code": code, "name": name, "created_at": now, "updated_at": now}
        for code, name in DEPARTMENTS
        if code not in existing
    ]
    if rows:
        op.bulk_insert(department, rows)


def downgrade() -> None:
    codes = [code for code, _ in DEPARTMENTS]
    op.execute(department.delete().where(department.c.code.in_(codes)))
