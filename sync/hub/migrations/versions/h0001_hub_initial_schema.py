"""The hub's first schema: facilities, devices, enrolment codes, the change sequence and current records.

Revision ID: h0001
Revises: 
Create Date: 2026-11-24 20:44:57.808591
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('hub_facility',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('hwc_id', sa.String(length=50), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('hwc_id')
    )
    op.create_table('hub_change',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('change_id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=10), nullable=False),
    sa.Column('hlc', sa.String(length=90), nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('change_id')
    )
    with op.batch_alter_table('hub_change', schema=None) as batch_op:
        batch_op.create_index('ix_hub_change_facility_seq', ['facility_id', 'seq'], unique=False)

    op.create_table('hub_device',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('last_counter', sa.BigInteger(), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_key')
    )
    op.create_table('hub_enroll_code',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('code_hash')
    )
    op.create_table('hub_record',
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('hlc', sa.String(length=90), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('entity', 'entity_id')
    )
    with op.batch_alter_table('hub_record', schema=None) as batch_op:
        batch_op.create_index('ix_hub_record_facility', ['facility_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('hub_record', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_record_facility')

    op.drop_table('hub_record')
    op.drop_table('hub_enroll_code')
    op.drop_table('hub_device')
    with op.batch_alter_table('hub_change', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_change_facility_seq')

    op.drop_table('hub_change')
    op.drop_table('hub_facility')

