"""Each PC's last return bundle number, so the next one is numbered above it whatever the hub's clock says (a
clock put back made a new return bundle look older than the last, and the PC refused it as a replay).

Revision ID: h0009
Revises: h0008
Create Date: 2026-12-04 19:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0009'
down_revision = 'h0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hub_device') as batch_op:
        batch_op.add_column(sa.Column('return_sequence', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('hub_device') as batch_op:
        batch_op.drop_column('return_sequence')
