"""Calls between a spoke and the hub's doctors, and their signalling messages (relayed through the database, so
any worker serves either end).

Revision ID: h0007
Revises: h0006
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0007'
down_revision = 'h0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hub_call',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('case_id', sa.String(length=64), nullable=False),
                    sa.Column('facility_id', sa.String(length=36), nullable=False),
                    sa.Column('device_id', sa.String(length=36), nullable=False),
                    sa.Column('caller', sa.String(length=200), nullable=False),
                    sa.Column('state', sa.String(length=12), nullable=False),
                    sa.Column('outcome', sa.String(length=12), nullable=False),
                    sa.Column('end_reason', sa.String(length=40), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('ring_until', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('doctor_id', sa.String(length=36), nullable=True),
                    sa.Column('video_seen', sa.Boolean(), nullable=False),
                    sa.Column('spoke_seen_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('doctor_seen_at', sa.DateTime(timezone=True), nullable=True),
                    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id']),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_hub_call_state', 'hub_call', ['state', 'facility_id'], unique=False)
    op.create_index('ix_hub_call_case', 'hub_call', ['case_id'], unique=False)
    op.create_table('hub_call_signal',
                    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                              nullable=False),
                    sa.Column('call_id', sa.String(length=36), nullable=False),
                    sa.Column('to_side', sa.String(length=6), nullable=False),
                    sa.Column('kind', sa.String(length=20), nullable=False),
                    sa.Column('body', sa.JSON(), nullable=False),
                    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['call_id'], ['hub_call.id']),
                    sa.PrimaryKeyConstraint('seq'))
    op.create_index('ix_hub_call_signal_to', 'hub_call_signal', ['call_id', 'to_side', 'seq'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hub_call_signal_to', table_name='hub_call_signal')
    op.drop_table('hub_call_signal')
    op.drop_index('ix_hub_call_case', table_name='hub_call')
    op.drop_index('ix_hub_call_state', table_name='hub_call')
    op.drop_table('hub_call')
