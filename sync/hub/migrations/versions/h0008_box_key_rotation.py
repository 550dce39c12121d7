"""The hub's bundle keys can be rotated: each key keeps the day it was retired (its private half then destroyed,
so a bundle sealed for it is refused with that day).

Revision ID: h0008
Revises: h0007
Create Date: 2026-12-03 09:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0008'
down_revision = 'h0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hub_box_key') as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hub_box_key') as batch_op:
        batch_op.drop_column('retired_at')
