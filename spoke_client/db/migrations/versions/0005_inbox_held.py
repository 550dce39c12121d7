"""Inbox: a pulled change waits for its parent by that parent's key, and one that cannot be applied is held
with the reason, so no record from the hub stalls the pulls.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable): no table rebuild.
    op.add_column('hub_inbox', sa.Column('waiting_for', sa.String(length=110), nullable=True))
    op.add_column('hub_inbox', sa.Column('failed_reason', sa.Text(), nullable=True))
    op.create_index('ix_inbox_waiting', 'hub_inbox', ['waiting_for'], unique=False)
    # Rows left unapplied by the old retry-every-page rule are tried again, by the new rules, at the next sync
    # (the program version changed): nothing to convert here.


def downgrade() -> None:
    op.drop_index('ix_inbox_waiting', table_name='hub_inbox')
    with op.batch_alter_table('hub_inbox', schema=None) as batch_op:
        batch_op.drop_column('failed_reason')
        batch_op.drop_column('waiting_for')
