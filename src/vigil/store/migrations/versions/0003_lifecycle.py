"""lifecycle: deployment heartbeats and stop requests; append-only alert decisions.

A running deployment's runner refreshes ``heartbeat_at`` so that another process can tell a
live runner from a dead one, and reads ``stop_requested_by`` so that it can be stopped from
another process. Every adjudication of an alert becomes a row of ``alert_decisions``; the
decisions already on alerts are carried over as each alert's first.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('stop_requested_by', sa.String(length=80), nullable=True))
    op.create_table('alert_decisions',
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('decided_by', sa.String(length=80), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('case_ref', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', 'seq')
    )
    op.execute(
        "INSERT INTO alert_decisions (alert_id, seq, decided_by, decided_at, decision, outcome, notes, case_ref, reason) "
        "SELECT id, 1, COALESCE(decided_by, ''), COALESCE(decided_at, created_at), decision, "
        "COALESCE(outcome, 'no_action'), COALESCE(notes, ''), COALESCE(case_ref, ''), '' "
        "FROM alerts WHERE decision IS NOT NULL")


def downgrade() -> None:
    op.drop_table('alert_decisions')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_column('stop_requested_by')
        batch_op.drop_column('heartbeat_at')
