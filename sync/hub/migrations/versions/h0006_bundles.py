"""USB bundles: the hub's X25519 key, each device's, the bundles imported (for idempotence and replays), and
bundles arriving part by part from relay PCs.

Revision ID: h0006
Revises: h0005
Create Date: 2026-12-01 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'h0006'
down_revision = 'h0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('hub_device', sa.Column('box_key', sa.String(length=64), nullable=True))
    op.add_column('hub_device', sa.Column('bundle_cursor', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('hub_box_key',
                    sa.Column('key_id', sa.String(length=16), nullable=False),
                    sa.Column('private_pem', sa.Text(), nullable=False),
                    sa.Column('public_b64', sa.String(length=64), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('key_id'))
    op.create_table('hub_bundle',
                    sa.Column('bundle_id', sa.String(length=64), nullable=False),
                    sa.Column('device_id', sa.String(length=36), nullable=False),
                    sa.Column('sequence', sa.BigInteger(), nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('changes', sa.Integer(), nullable=False),
                    sa.Column('files', sa.Integer(), nullable=False),
                    sa.Column('accepted', sa.Integer(), nullable=False),
                    sa.Column('duplicates', sa.Integer(), nullable=False),
                    sa.Column('rejected', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['device_id'], ['hub_device.id']),
                    sa.PrimaryKeyConstraint('bundle_id'))
    op.create_index(op.f('ix_hub_bundle_device_id'), 'hub_bundle', ['device_id'], unique=False)
    op.create_table('hub_bundle_upload',
                    sa.Column('bundle_id', sa.String(length=64), nullable=False),
                    sa.Column('part', sa.Integer(), nullable=False),
                    sa.Column('parts', sa.Integer(), nullable=False),
                    sa.Column('device_id', sa.String(length=36), nullable=False),
                    sa.Column('size', sa.BigInteger(), nullable=False),
                    sa.Column('received', sa.BigInteger(), nullable=False),
                    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('outcome', sa.Text(), server_default='', nullable=False),
                    sa.PrimaryKeyConstraint('bundle_id', 'part'))


def downgrade() -> None:
    op.drop_table('hub_bundle_upload')
    op.drop_index(op.f('ix_hub_bundle_device_id'), table_name='hub_bundle')
    op.drop_table('hub_bundle')
    op.drop_table('hub_box_key')
    with op.batch_alter_table('hub_device', schema=None) as batch_op:
        batch_op.drop_column('bundle_cursor')
        batch_op.drop_column('box_key')
