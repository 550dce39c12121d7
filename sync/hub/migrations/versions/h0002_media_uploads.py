"""Media: files held in full by SHA-256, and each facility's upload of a file with the bytes confirmed so far.

Revision ID: h0002
Revises: h0001
Create Date: 2026-11-24 22:24:37.715010
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0002'
down_revision = 'h0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hub_blob',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('hub_media_upload',
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('received', sa.BigInteger(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('facility_id', 'sha256')
    )


def downgrade() -> None:
    op.drop_table('hub_media_upload')
    op.drop_table('hub_blob')
