"""cluster: deployments.placement and camera_status, alerts.alert_uid (unique)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployments') as batch:
        batch.add_column(sa.Column('placement', sa.String(length=80), nullable=True))
        batch.add_column(sa.Column('camera_status', sa.JSON(), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('alert_uid', sa.String(length=36), nullable=True))
    op.create_index('ix_alerts_alert_uid', 'alerts', ['alert_uid'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_alerts_alert_uid', table_name='alerts')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('alert_uid')
    with op.batch_alter_table('deployments') as batch:
        batch.drop_column('camera_status')
        batch.drop_column('placement')
