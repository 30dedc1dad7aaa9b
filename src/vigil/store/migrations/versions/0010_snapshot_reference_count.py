"""snapshot_entries.reference_count: how many reference photos a frozen entry averages

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('snapshot_entries') as batch:
        batch.add_column(sa.Column('reference_count', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('snapshot_entries') as batch:
        batch.drop_column('reference_count')
