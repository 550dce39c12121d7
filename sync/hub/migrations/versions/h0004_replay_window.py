"""A device's request numbers below the highest seen, as bits: two requests of one spoke may arrive out of order.

Revision ID: h0004
Revises: h0003
Create Date: 2026-12-01 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0004'
down_revision = 'h0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('hub_device', sa.Column('seen_below', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('hub_device', schema=None) as batch_op:
        batch_op.drop_column('seen_below')
