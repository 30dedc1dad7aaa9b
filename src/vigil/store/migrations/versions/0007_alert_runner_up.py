"""alerts.runner_up: the closest other watchlist subject of an alert, for the look-alike warning

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('runner_up', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('runner_up')
