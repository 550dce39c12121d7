"""Devices: Bluetooth health devices paired with this PC, and on each vitals set what its device reported
about the measurement and when the device says it measured.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('paired_device',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('adapter', sa.String(length=40), nullable=False),
    sa.Column('paired_at', sa.DateTime(), nullable=False),
    sa.Column('paired_by', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('address')
    )
    # Plain ADD COLUMNs (nullable or with a default): no table rebuild.
    op.add_column('vitals', sa.Column('device_status', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('vitals', sa.Column('measured_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vitals', schema=None) as batch_op:
        batch_op.drop_column('measured_at')
        batch_op.drop_column('device_status')
    op.drop_table('paired_device')
