"""appeals closed loop

Revision ID: 0002_appeals
Revises: 0001_initial
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import postgresql

sa.GUID = GUID  # type: ignore[attr-defined]
sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]

revision = '0002_appeals'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def _guid_columns(*, with_department: bool) -> list[sa.Column]:
    # SQLite reflects BINARY(16) as NUMERIC; the batch rebuild of user_account must keep the GUID
    # type, and an overridden column must carry its foreign key again.
    columns = [
        sa.Column("id", GUID(length=16), primary_key=True),
        sa.Column(
            "place_id",
            GUID(length=16),
            sa.ForeignKey("place.id", name="fk_user_account_place_id_place", ondelete="SET NULL"),
        ),
        sa.Column("created_by_id", GUID(length=16)),
        sa.Column("updated_by_id", GUID(length=16)),
    ]
    if with_department:
        columns.append(
            sa.Column(
                "department_id",
                GUID(length=16),
                sa.ForeignKey("department.id", name="fk_user_account_department_id_department", ondelete="SET NULL"),
            )
        )
    return columns


def upgrade() -> None:
    op.create_table('api_key',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_key_key_hash'))
    )
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_key_prefix'), ['prefix'], unique=False)

    op.create_table('department',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_department')),
    sa.UniqueConstraint('code', name=op.f('uq_department_code')),
    sa.UniqueConstraint('name', name=op.f('uq_department_name'))
    )
    op.create_table('appeal',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('tracking_code', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.Enum('suggestion_box', 'qr', 'hotline', 'event', 'visit', 'open311', name='appealchannel', native_enum=False, length=32), nullable=False),
    sa.Column('submitter_kind', sa.Enum('enterprise', 'resident', name='submitterkind', native_enum=False, length=32), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('place_id', sa.GUID(length=16), nullable=True),
    sa.Column('submitter_name', sa.String(length=64), nullable=True),
    sa.Column('submitter_phone', sa.String(length=32), nullable=True),
    sa.Column('location_detail', sa.String(length=255), nullable=True),
    sa.Column('status', sa.Enum('received', 'transferred', 'in_progress', 'resolved', 'evaluated', 'closed', 'rejected', 'merged', name='appealstatus', native_enum=False, length=32), nullable=False),
    sa.Column('received_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('response_due_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('resolve_due_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('first_response_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('is_complex', sa.Boolean(), nullable=False),
    sa.Column('complex_reason', sa.Text(), nullable=True),
    sa.Column('department_id', sa.GUID(length=16), nullable=True),
    sa.Column('assignee_id', sa.GUID(length=16), nullable=True),
    sa.Column('merged_into_id', sa.GUID(length=16), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('evaluation', sa.Enum('satisfied', 'basically_satisfied', 'unsatisfied', name='evaluation', native_enum=False, length=32), nullable=True),
    sa.Column('evaluation_comment', sa.Text(), nullable=True),
    sa.Column('evaluated_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['user_account.id'], name=op.f('fk_appeal_assignee_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_appeal_department_id_department'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['merged_into_id'], ['appeal.id'], name=op.f('fk_appeal_merged_into_id_appeal'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['place_id'], ['place.id'], name=op.f('fk_appeal_place_id_place'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal')),
    sa.UniqueConstraint('reference', name=op.f('uq_appeal_reference')),
    sa.UniqueConstraint('tracking_code', name=op.f('uq_appeal_tracking_code'))
    )
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_channel'), ['channel'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_place_id'), ['place_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_status'), ['status'], unique=False)

    op.create_table('appeal_event',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('appeal_id', sa.GUID(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.Enum('received', 'transferred', 'in_progress', 'resolved', 'evaluated', 'closed', 'rejected', 'merged', name='appealstatus', native_enum=False, length=32), nullable=True),
    sa.Column('to_status', sa.Enum('received', 'transferred', 'in_progress', 'resolved', 'evaluated', 'closed', 'rejected', 'merged', name='appealstatus', native_enum=False, length=32), nullable=True),
    sa.Column('actor_id', sa.GUID(length=16), nullable=True),
    sa.Column('actor_label', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_appeal_event_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeal.id'], name=op.f('fk_appeal_event_appeal_id_appeal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal_event')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_appeal_event_dedupe_key'))
    )
    with op.batch_alter_table('appeal_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_event_appeal_id'), ['appeal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_event_at'), ['at'], unique=False)

    op.create_table('appeal_return_visit',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('appeal_id', sa.GUID(length=16), nullable=False),
    sa.Column('visitor_id', sa.GUID(length=16), nullable=True),
    sa.Column('visited_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('method', sa.Enum('in_person', 'phone', name='visitmethod', native_enum=False, length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeal.id'], name=op.f('fk_appeal_return_visit_appeal_id_appeal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visitor_id'], ['user_account.id'], name=op.f('fk_appeal_return_visit_visitor_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal_return_visit'))
    )
    with op.batch_alter_table('appeal_return_visit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_return_visit_appeal_id'), ['appeal_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('user_id', sa.GUID(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('appeal_id', sa.GUID(length=16), nullable=True),
    sa.Column('message', sa.String(length=255), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=False),
    sa.Column('read_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeal.id'], name=op.f('fk_notification_appeal_id_appeal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_notification_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notification_dedupe_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_user_id'), ['user_id'], unique=False)

    op.create_table('appeal_photo',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('appeal_id', sa.GUID(length=16), nullable=False),
    sa.Column('event_id', sa.GUID(length=16), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeal.id'], name=op.f('fk_appeal_photo_appeal_id_appeal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['appeal_event.id'], name=op.f('fk_appeal_photo_event_id_appeal_event'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal_photo'))
    )
    with op.batch_alter_table('appeal_photo', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_photo_appeal_id'), ['appeal_id'], unique=False)

    op.create_table('appeal_summons',
    sa.Column('id', sa.GUID(length=16), nullable=False),
    sa.Column('appeal_id', sa.GUID(length=16), nullable=False),
    sa.Column('department_id', sa.GUID(length=16), nullable=False),
    sa.Column('whistle_event_id', sa.GUID(length=16), nullable=False),
    sa.Column('report_by', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('reported_at', sa.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('reported_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('report_note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('updated_by_id', sa.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeal.id'], name=op.f('fk_appeal_summons_appeal_id_appeal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], name=op.f('fk_appeal_summons_department_id_department'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['reported_by_id'], ['user_account.id'], name=op.f('fk_appeal_summons_reported_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['whistle_event_id'], ['appeal_event.id'], name=op.f('fk_appeal_summons_whistle_event_id_appeal_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeal_summons')),
    sa.UniqueConstraint('appeal_id', 'department_id', 'whistle_event_id', name=op.f('uq_appeal_summons_appeal_id'))
    )
    with op.batch_alter_table('appeal_summons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeal_summons_appeal_id'), ['appeal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeal_summons_department_id'), ['department_id'], unique=False)

    with op.batch_alter_table('user_account', schema=None, reflect_args=_guid_columns(with_department=False)) as batch_op:
        batch_op.add_column(sa.Column('department_id', sa.GUID(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_user_account_department_id_department'), 'department', ['department_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None, reflect_args=_guid_columns(with_department=True)) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_account_department_id_department'), type_='foreignkey')
        batch_op.drop_column('department_id')

    with op.batch_alter_table('appeal_summons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_summons_department_id'))
        batch_op.drop_index(batch_op.f('ix_appeal_summons_appeal_id'))

    op.drop_table('appeal_summons')
    with op.batch_alter_table('appeal_photo', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_photo_appeal_id'))

    op.drop_table('appeal_photo')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_user_id'))

    op.drop_table('notification')
    with op.batch_alter_table('appeal_return_visit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_return_visit_appeal_id'))

    op.drop_table('appeal_return_visit')
    with op.batch_alter_table('appeal_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_event_at'))
        batch_op.drop_index(batch_op.f('ix_appeal_event_appeal_id'))

    op.drop_table('appeal_event')
    with op.batch_alter_table('appeal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeal_status'))
        batch_op.drop_index(batch_op.f('ix_appeal_received_at'))
        batch_op.drop_index(batch_op.f('ix_appeal_place_id'))
        batch_op.drop_index(batch_op.f('ix_appeal_department_id'))
        batch_op.drop_index(batch_op.f('ix_appeal_channel'))
        batch_op.drop_index(batch_op.f('ix_appeal_category'))
        batch_op.drop_index(batch_op.f('ix_appeal_assignee_id'))

    op.drop_table('appeal')
    op.drop_table('department')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_key_prefix'))

    op.drop_table('api_key')
