"""The hub doctor's console, the spoke's side: drug allergies on the patient, the speciality asked for on a case,
the red flags assessed with each vitals set, the doctor's questions and the spoke's answers, prescriptions
received (with the result of their signature check).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable or with a default): no table rebuild, and the patient index triggers stay.
    op.add_column('patient', sa.Column('allergies', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('clinical_case', sa.Column('speciality', sa.String(length=60), server_default='', nullable=False))
    op.add_column('vitals', sa.Column('assessment', sa.JSON(), nullable=True))
    op.create_table('case_question',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('asked_at', sa.DateTime(), nullable=False),
    sa.Column('asked_by', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_question_case', 'case_question', ['case_id'], unique=False)
    op.create_table('case_answer',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('question_id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=False),
    sa.Column('answered_by', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.ForeignKeyConstraint(['question_id'], ['case_question.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_answer_question', 'case_answer', ['question_id'], unique=False)
    op.create_index('ix_answer_case', 'case_answer', ['case_id'], unique=False)
    op.create_table('prescription',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('signature_ok', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_prescription_case', 'prescription', ['case_id'], unique=False)
    op.create_index('ix_prescription_issued', 'prescription', ['issued_at'], unique=False)
    # Prescriptions and questions an older version pulled and kept unapplied in the inbox are applied by the
    # new rules at the next sync (the program version changed): nothing to convert here.


def downgrade() -> None:
    op.drop_index('ix_prescription_issued', table_name='prescription')
    op.drop_index('ix_prescription_case', table_name='prescription')
    op.drop_table('prescription')
    op.drop_index('ix_answer_case', table_name='case_answer')
    op.drop_index('ix_answer_question', table_name='case_answer')
    op.drop_table('case_answer')
    op.drop_index('ix_question_case', table_name='case_question')
    op.drop_table('case_question')
    with op.batch_alter_table('vitals', schema=None) as batch_op:
        batch_op.drop_column('assessment')
    with op.batch_alter_table('clinical_case', schema=None) as batch_op:
        batch_op.drop_column('speciality')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_column('allergies')
