"""Livelihood projects (L1) and property disclosure (L2): projects, milestones, updates, comments, acceptance
sign-offs; per-compound property disclosure and monthly figures

Revision ID: 0011_projects
Revises: 0010_morning_signal
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]

revision = "0011_projects"
down_revision = "0010_morning_signal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('project',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('old_compound_renovation', 'elevator_renewal', 'elevator_retrofit', 'property_trial', 'parking', 'facility_repair', 'other', name='projectkind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('planned', 'in_progress', 'awaiting_acceptance', 'accepted', 'suspended', name='projectstatus', native_enum=False, length=32), nullable=False),
    sa.Column('place_id', sa.GUID(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('supervision', sa.Text(), nullable=False),
    sa.Column('responsible', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('planned_start', sa.Date(), nullable=True),
    sa.Column('planned_end', sa.Date(), nullable=True),
    sa.Column('manual_progress', sa.Integer(), nullable=False),
    sa.Column('acceptance_round', sa.Integer(), nullable=False),
    sa.Column('acceptance_requested_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('last_activity_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], name=op.f('fk_project_place_id_place'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project'))
    )
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_accepted_at'), ['accepted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_last_activity_at'), ['last_activity_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_place_id'), ['place_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_status'), ['status'], unique=False)

    op.create_table('property_disclosure',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('place_id', sa.GUID(length=16), nullable=False),
    sa.Column('reform_plan', sa.Text(), nullable=False),
    sa.Column('service_standards', sa.Text(), nullable=False),
    sa.Column('fees', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], name=op.f('fk_property_disclosure_place_id_place'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_property_disclosure')),
    sa.UniqueConstraint('place_id', name=op.f('uq_property_disclosure_place_id'))
    )
    op.create_table('property_month',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('place_id', sa.GUID(length=16), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('collection_bp', sa.Integer(), nullable=True),
    sa.Column('complaints', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], name=op.f('fk_property_month_place_id_place'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_property_month')),
    sa.UniqueConstraint('place_id', 'month', name=op.f('uq_property_month_place_id'))
    )
    with op.batch_alter_table('property_month', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_property_month_place_id'), ['place_id'], unique=False)

    op.create_table('project_comment',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('project_id', sa.GUID(length=16), nullable=False),
    sa.Column('posted_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('author_name', sa.String(length=30), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='commentstatus', native_enum=False, length=32), nullable=False),
    sa.Column('moderated_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('moderated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['moderated_by_id'], ['user_account.id'], name=op.f('fk_project_comment_moderated_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_comment_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_comment'))
    )
    with op.batch_alter_table('project_comment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_comment_posted_at'), ['posted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_comment_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_comment_status'), ['status'], unique=False)

    op.create_table('project_milestone',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('project_id', sa.GUID(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('done_on', sa.Date(), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_milestone_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_milestone'))
    )
    with op.batch_alter_table('project_milestone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_milestone_project_id'), ['project_id'], unique=False)

    op.create_table('project_signoff',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('project_id', sa.GUID(length=16), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.GUID(length=16), nullable=False),
    sa.Column('signer_name', sa.String(length=60), nullable=False),
    sa.Column('signer_role', sa.String(length=32), nullable=False),
    sa.Column('signed_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_signoff_project_id_project'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_project_signoff_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_signoff')),
    sa.UniqueConstraint('project_id', 'round', 'user_id', name=op.f('uq_project_signoff_project_id'))
    )
    with op.batch_alter_table('project_signoff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_signoff_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_signoff_user_id'), ['user_id'], unique=False)

    op.create_table('project_update',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('project_id', sa.GUID(length=16), nullable=False),
    sa.Column('posted_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('planned', 'in_progress', 'awaiting_acceptance', 'accepted', 'suspended', name='projectstatus', native_enum=False, length=32), nullable=True),
    sa.Column('photos', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('author_id', sa.GUID(length=16), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_project_update_author_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_project_update_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_update'))
    )
    with op.batch_alter_table('project_update', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_project_update_posted_at'), ['posted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_project_update_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('project_update', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_update_project_id'))
        batch_op.drop_index(batch_op.f('ix_project_update_posted_at'))

    op.drop_table('project_update')
    with op.batch_alter_table('project_signoff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_signoff_user_id'))
        batch_op.drop_index(batch_op.f('ix_project_signoff_project_id'))

    op.drop_table('project_signoff')
    with op.batch_alter_table('project_milestone', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_milestone_project_id'))

    op.drop_table('project_milestone')
    with op.batch_alter_table('project_comment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_comment_status'))
        batch_op.drop_index(batch_op.f('ix_project_comment_project_id'))
        batch_op.drop_index(batch_op.f('ix_project_comment_posted_at'))

    op.drop_table('project_comment')
    with op.batch_alter_table('property_month', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_property_month_place_id'))

    op.drop_table('property_month')
    op.drop_table('property_disclosure')
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_project_status'))
        batch_op.drop_index(batch_op.f('ix_project_place_id'))
        batch_op.drop_index(batch_op.f('ix_project_last_activity_at'))
        batch_op.drop_index(batch_op.f('ix_project_kind'))
        batch_op.drop_index(batch_op.f('ix_project_accepted_at'))

    op.drop_table('project')
