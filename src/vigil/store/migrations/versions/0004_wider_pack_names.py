"""wider pack names: a collection's pack may name a fused pair of any two registered models
(``fusion:sface+faceplugin`` is 23 characters; 20 were allowed).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths; PostgreSQL does.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("collections", "pack", type_=sa.String(64), existing_type=sa.String(20))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("collections", "pack", type_=sa.String(20), existing_type=sa.String(64))
