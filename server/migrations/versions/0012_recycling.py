"""Recycling points (L4): stations, categories and rates, household cards, the points ledger, goods

Revision ID: 0012_recycling
Revises: 0011_projects
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]

revision = "0012_recycling"
down_revision = "0011_projects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recycling_station',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('place_id', sa.GUID(length=16), nullable=True),
    sa.Column('opening_hours', sa.String(length=120), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], name=op.f('fk_recycling_station_place_id_place'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_station')),
    sa.UniqueConstraint('name', name=op.f('uq_recycling_station_name'))
    )
    with op.batch_alter_table('recycling_station', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_station_place_id'), ['place_id'], unique=False)

    op.create_table('recycling_category',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_category_station_id_recycling_station'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_category')),
    sa.UniqueConstraint('station_id', 'name', name=op.f('uq_recycling_category_station_id'))
    )
    with op.batch_alter_table('recycling_category', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_category_station_id'), ['station_id'], unique=False)

    op.create_table('recycling_good',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_good_station_id_recycling_station')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_recycling_good_stock_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_good')),
    sa.UniqueConstraint('station_id', 'name', name=op.f('uq_recycling_good_station_id'))
    )
    with op.batch_alter_table('recycling_good', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_good_station_id'), ['station_id'], unique=False)

    op.create_table('recycling_household',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('card_number', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_household_station_id_recycling_station')),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_recycling_household_balance_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_household')),
    sa.UniqueConstraint('card_number', name=op.f('uq_recycling_household_card_number')),
    sa.UniqueConstraint('token', name=op.f('uq_recycling_household_token'))
    )
    with op.batch_alter_table('recycling_household', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_household_station_id'), ['station_id'], unique=False)

    op.create_table('recycling_dropoff',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('household_id', sa.GUID(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('recorded_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('grams', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['recycling_household.id'], name=op.f('fk_recycling_dropoff_household_id_recycling_household')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], name=op.f('fk_recycling_dropoff_recorded_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_dropoff_station_id_recycling_station')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_dropoff'))
    )
    with op.batch_alter_table('recycling_dropoff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_dropoff_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_dropoff_recorded_at'), ['recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_dropoff_station_id'), ['station_id'], unique=False)

    op.create_table('recycling_rate',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('category_id', sa.GUID(length=16), nullable=False),
    sa.Column('points_per_kg', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['recycling_category.id'], name=op.f('fk_recycling_rate_category_id_recycling_category'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_rate')),
    sa.UniqueConstraint('category_id', 'effective_from', name=op.f('uq_recycling_rate_category_id'))
    )
    with op.batch_alter_table('recycling_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_rate_category_id'), ['category_id'], unique=False)

    op.create_table('recycling_redemption',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('household_id', sa.GUID(length=16), nullable=False),
    sa.Column('good_id', sa.GUID(length=16), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('by_user_id', sa.GUID(length=16), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_user_id'], ['user_account.id'], name=op.f('fk_recycling_redemption_by_user_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['good_id'], ['recycling_good.id'], name=op.f('fk_recycling_redemption_good_id_recycling_good')),
    sa.ForeignKeyConstraint(['household_id'], ['recycling_household.id'], name=op.f('fk_recycling_redemption_household_id_recycling_household')),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_redemption_station_id_recycling_station')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_redemption'))
    )
    with op.batch_alter_table('recycling_redemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_redemption_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_redemption_good_id'), ['good_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_redemption_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_redemption_station_id'), ['station_id'], unique=False)

    op.create_table('recycling_dropoff_line',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('dropoff_id', sa.GUID(length=16), nullable=False),
    sa.Column('category_id', sa.GUID(length=16), nullable=False),
    sa.Column('grams', sa.Integer(), nullable=False),
    sa.Column('points_per_kg', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['recycling_category.id'], name=op.f('fk_recycling_dropoff_line_category_id_recycling_category')),
    sa.ForeignKeyConstraint(['dropoff_id'], ['recycling_dropoff.id'], name=op.f('fk_recycling_dropoff_line_dropoff_id_recycling_dropoff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_dropoff_line'))
    )
    with op.batch_alter_table('recycling_dropoff_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_dropoff_line_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_dropoff_line_dropoff_id'), ['dropoff_id'], unique=False)

    op.create_table('recycling_points_entry',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('station_id', sa.GUID(length=16), nullable=False),
    sa.Column('household_id', sa.GUID(length=16), nullable=False),
    sa.Column('kind', sa.Enum('dropoff', 'redemption', 'reversal', name='pointskind', native_enum=False, length=32), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('dropoff_id', sa.GUID(length=16), nullable=True),
    sa.Column('redemption_id', sa.GUID(length=16), nullable=True),
    sa.Column('reverses_id', sa.GUID(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('by_user_id', sa.GUID(length=16), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_user_id'], ['user_account.id'], name=op.f('fk_recycling_points_entry_by_user_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dropoff_id'], ['recycling_dropoff.id'], name=op.f('fk_recycling_points_entry_dropoff_id_recycling_dropoff')),
    sa.ForeignKeyConstraint(['household_id'], ['recycling_household.id'], name=op.f('fk_recycling_points_entry_household_id_recycling_household')),
    sa.ForeignKeyConstraint(['redemption_id'], ['recycling_redemption.id'], name=op.f('fk_recycling_points_entry_redemption_id_recycling_redemption')),
    sa.ForeignKeyConstraint(['reverses_id'], ['recycling_points_entry.id'], name=op.f('fk_recycling_points_entry_reverses_id_recycling_points_entry')),
    sa.ForeignKeyConstraint(['station_id'], ['recycling_station.id'], name=op.f('fk_recycling_points_entry_station_id_recycling_station')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recycling_points_entry')),
    sa.UniqueConstraint('dropoff_id', name=op.f('uq_recycling_points_entry_dropoff_id')),
    sa.UniqueConstraint('redemption_id', name=op.f('uq_recycling_points_entry_redemption_id')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_recycling_points_entry_reverses_id'))
    )
    with op.batch_alter_table('recycling_points_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recycling_points_entry_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_points_entry_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_points_entry_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_recycling_points_entry_station_id'), ['station_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recycling_points_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_points_entry_station_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_points_entry_kind'))
        batch_op.drop_index(batch_op.f('ix_recycling_points_entry_household_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_points_entry_at'))

    op.drop_table('recycling_points_entry')
    with op.batch_alter_table('recycling_dropoff_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_dropoff_line_dropoff_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_dropoff_line_category_id'))

    op.drop_table('recycling_dropoff_line')
    with op.batch_alter_table('recycling_redemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_redemption_station_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_redemption_household_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_redemption_good_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_redemption_at'))

    op.drop_table('recycling_redemption')
    with op.batch_alter_table('recycling_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_rate_category_id'))

    op.drop_table('recycling_rate')
    with op.batch_alter_table('recycling_dropoff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_dropoff_station_id'))
        batch_op.drop_index(batch_op.f('ix_recycling_dropoff_recorded_at'))
        batch_op.drop_index(batch_op.f('ix_recycling_dropoff_household_id'))

    op.drop_table('recycling_dropoff')
    with op.batch_alter_table('recycling_household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_household_station_id'))

    op.drop_table('recycling_household')
    with op.batch_alter_table('recycling_good', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_good_station_id'))

    op.drop_table('recycling_good')
    with op.batch_alter_table('recycling_category', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_category_station_id'))

    op.drop_table('recycling_category')
    with op.batch_alter_table('recycling_station', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recycling_station_place_id'))

    op.drop_table('recycling_station')
