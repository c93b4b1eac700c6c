"""durable outbound notifications: outbound_message

Revision ID: 0006_outbound_messages
Revises: 0005_change_feed
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_outbound_messages"
down_revision = "0005_change_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_message",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=255), nullable=False),
        sa.Column("params", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True),
        sa.Column("appeal_id", GUID(length=16), nullable=True),
        sa.Column("status", sa.Enum("pending", "sent", "failed", name="outboundstatus", native_enum=False, length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("sent_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_by_id", GUID(length=16), nullable=True),
        sa.Column("updated_by_id", GUID(length=16), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_outbound_message_user_id_user_account"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeal.id"], name=op.f("fk_outbound_message_appeal_id_appeal"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_message")),
    )
    op.create_index(op.f("ix_outbound_message_status"), "outbound_message", ["status"], unique=False)
    op.create_index(op.f("ix_outbound_message_next_attempt_at"), "outbound_message", ["next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbound_message_next_attempt_at"), table_name="outbound_message")
    op.drop_index(op.f("ix_outbound_message_status"), table_name="outbound_message")
    op.drop_table("outbound_message")
