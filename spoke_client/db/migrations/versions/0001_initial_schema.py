"""Initial schema: facility, users, patients, cases, vitals, consent, change log, audit log, drafts, search.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 19:24:51.841307
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('app_user',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entity', ['entity', 'entity_id'], unique=False)

    op.create_table('change_log',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('change_id', sa.String(length=36), nullable=False),
    sa.Column('entity', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=10), nullable=False),
    sa.Column('hlc', sa.String(length=40), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('device_id', sa.String(length=36), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('pushed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('change_id')
    )
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.create_index('ix_change_entity', ['entity', 'entity_id'], unique=False)
        batch_op.create_index('ix_change_pushed', ['pushed_at'], unique=False)

    op.create_table('draft',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('facility',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('hwc_id', sa.String(length=50), nullable=False),
    sa.Column('district', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('search_vocab',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('setting',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('patient',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('facility_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('sex', sa.String(length=10), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('birth_date_approximate', sa.Boolean(), nullable=False),
    sa.Column('relative_name', sa.String(length=200), nullable=False),
    sa.Column('relative_relation', sa.String(length=5), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('village', sa.String(length=200), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('abha_number', sa.String(length=14), nullable=False),
    sa.Column('abha_address', sa.String(length=100), nullable=False),
    sa.Column('search_names', sa.Text(), nullable=False),
    sa.Column('search_village', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index('ix_patient_abha_number', ['abha_number'], unique=False)
        batch_op.create_index('ix_patient_phone', ['phone'], unique=False)

    op.create_table('clinical_case',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('complaints', sa.JSON(), nullable=False),
    sa.Column('complaint_text', sa.Text(), nullable=False),
    sa.Column('duration', sa.String(length=100), nullable=False),
    sa.Column('history', sa.Text(), nullable=False),
    sa.Column('examination', sa.Text(), nullable=False),
    sa.Column('pregnant', sa.Boolean(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('clinical_case', schema=None) as batch_op:
        batch_op.create_index('ix_case_created', ['created_at'], unique=False)
        batch_op.create_index('ix_case_patient', ['patient_id'], unique=False)
        batch_op.create_index('ix_case_status_created', ['status', 'created_at'], unique=False)

    op.create_table('consent',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('giver', sa.String(length=20), nullable=False),
    sa.Column('giver_name', sa.String(length=200), nullable=False),
    sa.Column('giver_relation', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('given_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.create_index('ix_consent_case', ['case_id'], unique=False)

    op.create_table('vitals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('replaces_id', sa.String(length=36), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('systolic_mmhg', sa.Integer(), nullable=True),
    sa.Column('diastolic_mmhg', sa.Integer(), nullable=True),
    sa.Column('pulse_per_min', sa.Integer(), nullable=True),
    sa.Column('respiratory_rate_per_min', sa.Integer(), nullable=True),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('spo2_pct', sa.Integer(), nullable=True),
    sa.Column('weight_kg', sa.Float(), nullable=True),
    sa.Column('height_cm', sa.Float(), nullable=True),
    sa.Column('glucose_mg_dl', sa.Integer(), nullable=True),
    sa.Column('glucose_kind', sa.String(length=10), nullable=True),
    sa.Column('consciousness', sa.String(length=20), nullable=True),
    sa.Column('on_supplemental_oxygen', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['clinical_case.id'], ),
    sa.ForeignKeyConstraint(['replaces_id'], ['vitals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('vitals', schema=None) as batch_op:
        batch_op.create_index('ix_vitals_case', ['case_id'], unique=False)

    # Patient search: FTS5 trigram index over the search keys, kept in step by triggers inside the
    # same transaction as the patient write (external content: no second copy of the text).
    op.execute(
        "CREATE VIRTUAL TABLE patient_fts USING fts5(search_names, search_village, phone, abha_number, "
        "content='patient', content_rowid='rowid', tokenize='trigram')"
    )
    op.execute(
        "CREATE TRIGGER patient_fts_ai AFTER INSERT ON patient BEGIN "
        "INSERT INTO patient_fts(rowid, search_names, search_village, phone, abha_number) "
        "VALUES (new.rowid, new.search_names, new.search_village, new.phone, new.abha_number); END"
    )
    op.execute(
        "CREATE TRIGGER patient_fts_ad AFTER DELETE ON patient BEGIN "
        "INSERT INTO patient_fts(patient_fts, rowid, search_names, search_village, phone, abha_number) "
        "VALUES ('delete', old.rowid, old.search_names, old.search_village, old.phone, old.abha_number); END"
    )
    op.execute(
        "CREATE TRIGGER patient_fts_au AFTER UPDATE ON patient BEGIN "
        "INSERT INTO patient_fts(patient_fts, rowid, search_names, search_village, phone, abha_number) "
        "VALUES ('delete', old.rowid, old.search_names, old.search_village, old.phone, old.abha_number); "
        "INSERT INTO patient_fts(rowid, search_names, search_village, phone, abha_number) "
        "VALUES (new.rowid, new.search_names, new.search_village, new.phone, new.abha_number); END"
    )
    # The audit log is append-only.
    op.execute(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    )



def downgrade() -> None:
    for trigger in ("audit_log_no_delete", "audit_log_no_update", "patient_fts_au", "patient_fts_ad", "patient_fts_ai"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS patient_fts")
    
    with op.batch_alter_table('vitals', schema=None) as batch_op:
        batch_op.drop_index('ix_vitals_case')

    op.drop_table('vitals')
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_case')

    op.drop_table('consent')
    with op.batch_alter_table('clinical_case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_status_created')
        batch_op.drop_index('ix_case_patient')
        batch_op.drop_index('ix_case_created')

    op.drop_table('clinical_case')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_phone')
        batch_op.drop_index('ix_patient_abha_number')

    op.drop_table('patient')
    op.drop_table('setting')
    op.drop_table('search_vocab')
    op.drop_table('facility')
    op.drop_table('draft')
    with op.batch_alter_table('change_log', schema=None) as batch_op:
        batch_op.drop_index('ix_change_pushed')
        batch_op.drop_index('ix_change_entity')

    op.drop_table('change_log')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entity')

    op.drop_table('audit_log')
    op.drop_table('app_user')
    
