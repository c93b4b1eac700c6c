"""Community canteen ledger (L5) and mediation cases (L6)

Revision ID: 0013_canteen_mediation
Revises: 0012_recycling
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]

revision = "0013_canteen_mediation"
down_revision = "0012_recycling"
branch_labels = None
depends_on = None


def _audit_columns() -> list[sa.Column]:
    """The columns every AuditedBase table has besides its id."""
    return [
        sa.Column("created_by_id", sa.GUID(length=16), nullable=True),
        sa.Column("updated_by_id", sa.GUID(length=16), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
    ]


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "canteen_entry",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("direction", _enum("canteendirection", "income", "expense"), nullable=False),
        sa.Column("category", _enum("canteencategory", "meal_sales", "meal_subsidy", "donation", "other_income", "ingredients",
                                    "wages", "utilities", "rent", "equipment", "other_expense"), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("receipt_sha", sa.String(length=64), nullable=True),
        sa.Column("reverses_id", sa.GUID(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by_id", sa.GUID(length=16), nullable=True),
        sa.Column("recorded_at", sa.DateTimeUTC(timezone=True), nullable=False),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["user_account.id"], name=op.f("fk_canteen_entry_recorded_by_id_user_account"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reverses_id"], ["canteen_entry.id"], name=op.f("fk_canteen_entry_reverses_id_canteen_entry"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canteen_entry")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_canteen_entry_reverses_id")),
    )
    for column in ("category", "day", "direction", "recorded_at"):
        op.create_index(op.f(f"ix_canteen_entry_{column}"), "canteen_entry", [column], unique=False)
    op.create_table(
        "canteen_meal_day",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("meals", sa.Integer(), nullable=False),
        sa.Column("recorded_by_id", sa.GUID(length=16), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["user_account.id"], name=op.f("fk_canteen_meal_day_recorded_by_id_user_account"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canteen_meal_day")),
        sa.UniqueConstraint("day", name=op.f("uq_canteen_meal_day_day")),
    )
    op.create_table(
        "canteen_month",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.GUID(length=16), nullable=True),
        sa.Column("income_fen", sa.BigInteger(), nullable=True),
        sa.Column("expense_fen", sa.BigInteger(), nullable=True),
        sa.Column("meals", sa.Integer(), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["closed_by_id"], ["user_account.id"], name=op.f("fk_canteen_month_closed_by_id_user_account"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canteen_month")),
        sa.UniqueConstraint("month", name=op.f("uq_canteen_month_month")),
    )
    op.create_table(
        "mediation_case",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("kind", _enum("mediationkind", "neighbours", "property", "family", "noise", "leak", "parking", "other"), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("place_id", sa.GUID(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("parties", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("mediator_id", sa.GUID(length=16), nullable=True),
        sa.Column("status", _enum("mediationstatus", "open", "in_progress", "closed"), nullable=False),
        sa.Column("outcome", _enum("mediationoutcome", "success", "partial", "failed", "referred"), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["mediator_id"], ["user_account.id"], name=op.f("fk_mediation_case_mediator_id_user_account"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["place_id"], ["place.id"], name=op.f("fk_mediation_case_place_id_place"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_case")),
        sa.UniqueConstraint("reference", name=op.f("uq_mediation_case_reference")),
    )
    for column in ("kind", "mediator_id", "opened_on", "outcome", "place_id", "status"):
        op.create_index(op.f(f"ix_mediation_case_{column}"), "mediation_case", [column], unique=False)
    op.create_table(
        "mediation_session",
        sa.Column("id", sa.GUID(length=16), nullable=False),
        sa.Column("case_id", sa.GUID(length=16), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("venue", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("mediator_id", sa.GUID(length=16), nullable=True),
        *_audit_columns(),
        sa.ForeignKeyConstraint(["case_id"], ["mediation_case.id"], name=op.f("fk_mediation_session_case_id_mediation_case"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["mediator_id"], ["user_account.id"], name=op.f("fk_mediation_session_mediator_id_user_account"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_session")),
    )
    op.create_index(op.f("ix_mediation_session_case_id"), "mediation_session", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mediation_session_case_id"), table_name="mediation_session")
    op.drop_table("mediation_session")
    for column in ("kind", "mediator_id", "opened_on", "outcome", "place_id", "status"):
        op.drop_index(op.f(f"ix_mediation_case_{column}"), table_name="mediation_case")
    op.drop_table("mediation_case")
    op.drop_table("canteen_month")
    op.drop_table("canteen_meal_day")
    for column in ("category", "day", "direction", "recorded_at"):
        op.drop_index(op.f(f"ix_canteen_entry_{column}"), table_name="canteen_entry")
    op.drop_table("canteen_entry")
