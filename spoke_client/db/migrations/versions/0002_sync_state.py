"""Sync state: quarantine of changes the hub refused, the hub doctor's note on a case, and the pull inbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_inbox",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change_id", sa.String(length=36), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=10), nullable=False),
        sa.Column("hlc", sa.String(length=90), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("change_id"),
    )
    # Plain ADD COLUMNs (no table rebuild): nullable or with a default.
    op.add_column("change_log", sa.Column("rejected_at", sa.DateTime(), nullable=True))
    op.add_column("change_log", sa.Column("rejected_reason", sa.Text(), nullable=True))
    op.add_column("clinical_case", sa.Column("hub_note", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("clinical_case") as batch_op:
        batch_op.drop_column("hub_note")
    with op.batch_alter_table("change_log") as batch_op:
        batch_op.drop_column("rejected_reason")
        batch_op.drop_column("rejected_at")
    op.drop_table("hub_inbox")
