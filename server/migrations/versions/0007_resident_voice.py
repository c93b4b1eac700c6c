"""who may read a note (appeal_event.note_public); whose evaluation it is (appeal.resident_evaluation,
appeal.visit_evaluation)

Revision ID: 0007_resident_voice
Revises: 0006_outbound_messages
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_resident_voice"
down_revision = "0006_outbound_messages"
branch_labels = None
depends_on = None

EVALUATION = sa.Enum("satisfied", "basically_satisfied", "unsatisfied", name="evaluation", native_enum=False, length=32)


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch copy of these tables would be slow on a large ledger.
    op.add_column("appeal_event", sa.Column("note_public", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("appeal", sa.Column("resident_evaluation", EVALUATION, nullable=True))
    op.add_column("appeal", sa.Column("visit_evaluation", EVALUATION, nullable=True))
    # Notes written for the submitter stay public: their own words, the resolution and the reason
    # for not accepting. Every other note becomes internal.
    op.execute(
        "UPDATE appeal_event SET note_public = " + ("true" if op.get_bind().dialect.name == "postgresql" else "1")
        + " WHERE action IN ('resolve', 'reject') OR actor_id IS NULL AND action IN ('evaluate', 'submit')"
    )
    # An evaluation given on the tracking page has an 'evaluate' event without a user; any other was
    # recorded by staff or a grid worker at the return visit.
    op.execute(
        "UPDATE appeal SET resident_evaluation = evaluation WHERE evaluation IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM appeal_event e WHERE e.appeal_id = appeal.id AND e.action = 'evaluate' AND e.actor_id IS NULL)"
    )
    op.execute("UPDATE appeal SET visit_evaluation = evaluation WHERE evaluation IS NOT NULL AND resident_evaluation IS NULL")


def downgrade() -> None:
    op.drop_column("appeal", "visit_evaluation")
    op.drop_column("appeal", "resident_evaluation")
    op.drop_column("appeal_event", "note_public")
