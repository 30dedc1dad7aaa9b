"""indexes for paged lists: a collection's subjects newest first (a million deep), a user's
login sessions newest first

Revision ID: 0009
Revises: 0008
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_memberships_collection_added', 'memberships', ['collection_id', 'added_at', 'subject_id'])
    op.create_index('ix_sessions_user_created', 'sessions', ['user_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_sessions_user_created', 'sessions')
    op.drop_index('ix_memberships_collection_added', 'memberships')
