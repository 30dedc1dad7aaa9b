"""lifecycle (placeholder: filled in by the change that needs it; a no-op until then).

Revision ID: 0003
Revises: 0002
"""

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
