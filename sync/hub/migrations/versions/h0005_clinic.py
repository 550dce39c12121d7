"""The hub's organisation and its doctors' console: hubs, which hub serves a facility, staff, sessions, the audit
log, the prescription signing key, and the queue's view of each case.

Revision ID: h0005
Revises: h0004
Create Date: 2026-12-01 12:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0005'
down_revision = 'h0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column('hub_record', sa.Column('parent_id', sa.String(length=64), nullable=True))
    op.create_index('ix_hub_record_parent', 'hub_record', ['parent_id', 'entity'], unique=False)
    extract = ("json_extract(payload, '$.case_id')" if op.get_bind().dialect.name == "sqlite"
               else "payload->>'case_id'")
    op.execute(f"UPDATE hub_record SET parent_id = {extract} WHERE entity <> 'case' AND payload IS NOT NULL")
    op.create_table('hub_org',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'))
    op.create_table('hub_facility_hub',
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('hub_id', sa.String(length=36), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.ForeignKeyConstraint(['hub_id'], ['hub_org.id'], ),
    sa.PrimaryKeyConstraint('facility_id'))
    op.create_index('ix_facility_hub', 'hub_facility_hub', ['hub_id'], unique=False)
    op.create_table('hub_staff',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('hub_id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('qualification', sa.String(length=200), nullable=False),
    sa.Column('registration_number', sa.String(length=60), nullable=False),
    sa.Column('council', sa.String(length=200), nullable=False),
    sa.Column('specialities', sa.JSON(), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('on_duty', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['hub_id'], ['hub_org.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username'))
    op.create_table('hub_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=36), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['hub_staff.id'], ),
    sa.PrimaryKeyConstraint('token_hash'))
    op.create_table('hub_audit',
    sa.Column('seq', BigId, autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('staff_id', sa.String(length=36), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq'))
    op.create_index('ix_hub_audit_entity', 'hub_audit', ['entity', 'entity_id'], unique=False)
    op.create_table('hub_signing_key',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('private_pem', sa.Text(), nullable=False),
    sa.Column('public_b64', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id'))
    op.create_table('hub_case',
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('speciality', sa.String(length=60), nullable=False),
    sa.Column('complaints', sa.Text(), nullable=False),
    sa.Column('patient_sex', sa.String(length=10), nullable=False),
    sa.Column('patient_birth', sa.String(length=10), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('taken_by', sa.String(length=36), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['hub_facility.id'], ),
    sa.PrimaryKeyConstraint('case_id'))
    op.create_index('ix_hub_case_queue', 'hub_case', ['status', 'priority', 'queued_at'], unique=False)
    op.create_index('ix_hub_case_facility', 'hub_case', ['facility_id', 'status'], unique=False)
    op.create_index('ix_hub_case_patient', 'hub_case', ['patient_id'], unique=False)
    # Cases the hub holds already get their row in the queue's view when the hub starts (Hub.create_schema).


def downgrade() -> None:
    op.drop_index('ix_hub_record_parent', table_name='hub_record')
    with op.batch_alter_table('hub_record', schema=None) as batch_op:
        batch_op.drop_column('parent_id')
    for index, table in (('ix_hub_case_patient', 'hub_case'), ('ix_hub_case_facility', 'hub_case'),
                         ('ix_hub_case_queue', 'hub_case'), ('ix_hub_audit_entity', 'hub_audit'),
                         ('ix_facility_hub', 'hub_facility_hub')):
        op.drop_index(index, table_name=table)
    for table in ('hub_case', 'hub_signing_key', 'hub_audit', 'hub_session', 'hub_staff', 'hub_facility_hub', 'hub_org'):
        op.drop_table(table)
