"""Retention of deployments' frozen watchlists: every deployment state, both settings.
The rows are written directly (no model needed); retention runs through the service and the
CLI, and the result is read back in a fresh session."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from vigil.errors import PermissionDenied
from vigil.services.retention import run_retention
from vigil.store.schema import AuditEntry, Collection, Deployment, Snapshot, SnapshotEntry, Subject

STATES = ("draft", "authorised", "running", "ended", "failed", "cancelled")


def _world(vigil) -> dict[str, int]:
    """One deployment per state, each with its own snapshot of two entries; the snapshot ids by state."""
    with vigil.store.session() as s:
        wl = Collection(kind="watchlist", name="wanted", pack="sface", model_id="m", created_by="t")
        s.add(wl)
        subject = Subject(id="subj-1", display_name="A Person")
        s.add(subject)
        s.flush()
        snaps = {}
        for state in STATES:
            snap = Snapshot(watchlist_id=wl.id, version=len(snaps) + 1, model_id="m", size=1)
            s.add(snap)
            s.flush()
            for _ in range(2):
                s.add(SnapshotEntry(snapshot_id=snap.id, subject_id=subject.id, display_name="A Person",
                                    category="wanted", vector_enc=b"sealed"))
            dep = Deployment(name=f"dep-{state}", status=state, watchlist_ids=[wl.id], snapshot_ids=[snap.id])
            s.add(dep)
            s.flush()
            snap.deployment_id = dep.id
            snaps[state] = snap.id
    return snaps


def _entries_by_state(vigil, snaps) -> dict[str, tuple[int, bool]]:
    with vigil.store.session() as s:
        return {state: (s.scalar(select(func.count()).select_from(SnapshotEntry)
                                 .where(SnapshotEntry.snapshot_id == sid)),
                         s.get(Snapshot, sid).deleted_at is not None)
                for state, sid in snaps.items()}


def test_finished_deployments_lose_their_snapshots_running_ones_keep_them(vigil, admin):
    snaps = _world(vigil)
    counts = run_retention(vigil, admin)
    assert counts["snapshots"] == 3 and counts["snapshot_entries"] == 6
    state = _entries_by_state(vigil, snaps)
    for finished in ("ended", "failed", "cancelled"):
        assert state[finished] == (0, True), finished
    for kept in ("draft", "authorised", "running"):
        assert state[kept] == (2, False), kept
    assert run_retention(vigil, admin)["snapshots"] == 0  # nothing twice
    with vigil.store.session() as s:
        runs = s.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")
                         .order_by(AuditEntry.seq)).all()
        assert [json.loads(r.details)["snapshot_entries"] for r in runs] == [6, 0]


def test_with_snapshot_delete_on_end_off_snapshots_are_kept_whole(vigil, admin):
    snaps = _world(vigil)
    vigil.settings.retention.snapshot_delete_on_end = False
    counts = run_retention(vigil, admin)
    assert counts["snapshots"] == 0 and counts["snapshot_entries"] == 0
    assert all(v == (2, False) for v in _entries_by_state(vigil, snaps).values())  # not even marked deleted


def test_retention_through_the_cli_needs_system_admin(vigil, admin, home):
    from vigil.cli import app
    from vigil.services import accounts

    snaps = _world(vigil)
    accounts.add_user(vigil, admin, "sue", "supervisor")
    sue = accounts.create_token(vigil, admin, for_user="sue")["token"]
    refused = CliRunner().invoke(app, ["retention", "run", "--json"], env={"VIGIL_TOKEN": sue})
    assert isinstance(refused.exception, PermissionDenied) and "may not" in str(refused.exception)
    assert _entries_by_state(vigil, snaps)["ended"] == (2, False)
    done = CliRunner().invoke(app, ["retention", "run", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["snapshot_entries"] == 6
    assert _entries_by_state(vigil, snaps)["ended"] == (0, True)


def test_finished_states_match_the_deployment_state_machine():
    from vigil.governance.retention import FINISHED_STATES

    deployments = pytest.importorskip("vigil.services.deployments")
    assert set(FINISHED_STATES) == set(deployments.FINAL)
