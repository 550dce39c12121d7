"""The print queue: each prescription sent to a printer, with its state, its copy number (a second paper is a
DUPLICATE) and the PDF as sent until it is printed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('print_job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('prescription_id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('copy', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('paper', sa.String(length=4), nullable=False),
    sa.Column('printer', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('system_job', sa.String(length=100), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['prescription_id'], ['prescription.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_print_job_prescription', 'print_job', ['prescription_id'], unique=False)
    op.create_index('ix_print_job_state', 'print_job', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_print_job_state', table_name='print_job')
    op.drop_index('ix_print_job_prescription', table_name='print_job')
    op.drop_table('print_job')
