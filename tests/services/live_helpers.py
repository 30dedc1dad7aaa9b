"""Helpers shared by the deployment and alert service tests: an API client with one user per
role, the CLI (in this process), and checks made in a fresh session (outside the transaction
under test)."""

from __future__ import annotations

import subprocess

from sqlalchemy import select

from tests.cli_run import run_cli


def api_client(vigil, settings, admin, roles=("supervisor", "operator")):
    """(TestClient, {role: bearer headers}) on the same data directory as ``vigil``."""
    from fastapi.testclient import TestClient

    from vigil.server import create_app
    from vigil.services.accounts import add_user, create_token

    app = create_app(settings, retention_every=None)
    headers = {}
    for role in roles:
        add_user(vigil, admin, f"{role}1", role, password=f"{role}-password-123")
        token = create_token(vigil, admin, for_user=f"{role}1", name="test")["token"]
        headers[role] = {"Authorization": f"Bearer {token}"}
    admin_token = create_token(vigil, admin, name="test")["token"]
    headers["admin"] = {"Authorization": f"Bearer {admin_token}"}
    return TestClient(app), headers


def cli(home, *args: str) -> subprocess.CompletedProcess:
    """The real CLI (run in this process, tests/cli_run.py), as the data directory's first
    admin (the OS user)."""
    return run_cli(home, *args)


def audit_entries(vigil, action: str, object_id=None) -> list:
    import json

    from vigil.store.schema import AuditEntry

    with vigil.store.session() as s:
        query = select(AuditEntry).where(AuditEntry.action == action)
        if object_id is not None:
            query = query.where(AuditEntry.object_id == str(object_id))
        return [{"actor": e.actor, **json.loads(e.details)} for e in s.scalars(query.order_by(AuditEntry.seq))]


def deployment_row(vigil, dep_id: int) -> dict:
    """The deployment as stored, and how many frozen entries its snapshots still hold."""
    from sqlalchemy import func

    from vigil.store.schema import Deployment, Snapshot, SnapshotEntry

    with vigil.store.session() as s:
        dep = s.get(Deployment, dep_id)
        snaps = s.scalars(select(Snapshot).where(Snapshot.deployment_id == dep_id)).all()
        entries = s.scalar(select(func.count()).select_from(SnapshotEntry)
                           .where(SnapshotEntry.snapshot_id.in_([x.id for x in snaps]))) if snaps else 0
        return {"status": dep.status, "record": dict(dep.record or {}), "heartbeat_at": dep.heartbeat_at,
                "snapshots": len(snaps), "snapshot_entries": entries,
                "snapshots_deleted": all(x.deleted_at is not None for x in snaps)}
