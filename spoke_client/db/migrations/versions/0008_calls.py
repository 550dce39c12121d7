"""Calls with the hub's doctor, as the hub recorded them (pulled): part of the case's clinical record.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_call',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('mode_used', sa.String(length=10), nullable=False),
    sa.Column('doctor', sa.String(length=200), nullable=False),
    sa.Column('caller', sa.String(length=200), nullable=False),
    sa.Column('end_reason', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_call_case', 'case_call', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_call_case', table_name='case_call')
    op.drop_table('case_call')
