"""Running the retention policy (permission ``system.admin``; the API runs it hourly as the
system). What is due is decided in :mod:`vigil.governance.retention`; here it is purged in
one transaction with one audit entry that gives the counts and the policy applied."""

from __future__ import annotations

from vigil.governance import retention
from vigil.governance.permissions import Actor
from vigil.services.unit import use_case
from vigil.timeutil import utcnow


def run_retention(vigil, actor: Actor, *, now=None) -> dict:
    """Purge what the policy says must go; returns how many of each kind were purged."""
    store, policy = vigil.store, vigil.settings.retention
    now = now or utcnow()
    counts: dict[str, int] = {}
    with use_case(vigil, actor, "system.admin") as uow:
        session = uow.session
        for kind, alerts in retention.due_alerts(session, policy, now).items():
            for alert in alerts:
                retention.strip_alert(store.blobs, session, alert, now)
            counts[f"alerts_{kind}"] = len(alerts)
        snapshots = retention.finished_snapshot_ids(session) if policy.snapshot_delete_on_end else []
        counts["snapshot_entries"] = retention.delete_snapshots(session, snapshots, now)
        counts["snapshots"] = len(snapshots)
        probes = retention.due_probes(session, policy, now)
        for rec in probes:
            store.blobs.delete(session, rec.probe_blob_id)
            rec.probe_blob_id = None
        counts["search_probes"] = len(probes)
        uow.audit("retention.run", "retention", "", {**counts, "policy": policy.model_dump()})
    with store.session() as session:  # files whose rows are gone (a crash between commit and unlink)
        counts["orphan_files"] = store.blobs.collect_garbage(session)
    return counts
