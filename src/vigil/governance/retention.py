"""Retention: data kept no longer than policy allows, every purge audited.

Policy (``[retention]`` in config, ``VIGIL_RETENTION__*``):
- false alerts: images deleted ``false_alert_hours`` after the alert (default 24 h);
- confirmed alerts: after ``confirmed_alert_days`` (31) unless linked to a case reference;
- unverified alerts: after ``unverified_alert_days`` (7); undecided: ``undecided_alert_days`` (31);
- a deployment's frozen watchlist snapshot: when the deployment ends (alerts keep their own
  copy of the watchlist image, which then follows the alert);
- retrospective search probes: ``search_probe_days`` (31).

"Deleted" for an alert means its probe crop, frame thumbnail, watchlist image copy, the
subject's name and the operator's notes are removed; a statistical stub (time, camera,
score, decision, outcome, pseudonymous subject id) stays so the published deployment
record still adds up. The audit log is never purged.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select

from vigil.governance.permissions import Actor, require
from vigil.store.schema import Alert, Deployment, SearchRecord, Snapshot, SnapshotEntry
from vigil.timeutil import utcnow


def _strip_alert(store, session, alert: Alert) -> None:
    for blob in (alert.probe_blob_id, alert.frame_blob_id, alert.watchlist_blob_id, alert.clip_blob_id):
        store.blobs.delete(session, blob)
    alert.probe_blob_id = alert.frame_blob_id = alert.watchlist_blob_id = alert.clip_blob_id = None
    alert.subject_name = ""
    alert.notes = ""
    alert.biometrics_deleted_at = utcnow()


def due_alerts(session, policy, now=None):
    now = now or utcnow()
    live = Alert.biometrics_deleted_at.is_(None)
    rules = {
        "false_alert": and_(Alert.decision == "false_alert",
                            Alert.created_at <= now - timedelta(hours=policy.false_alert_hours)),
        "confirmed": and_(Alert.decision == "confirmed", or_(Alert.case_ref.is_(None), Alert.case_ref == ""),
                          Alert.created_at <= now - timedelta(days=policy.confirmed_alert_days)),
        "unverified": and_(Alert.decision == "unverified",
                           Alert.created_at <= now - timedelta(days=policy.unverified_alert_days)),
        "undecided": and_(Alert.decision.is_(None),
                          Alert.created_at <= now - timedelta(days=policy.undecided_alert_days)),
    }
    return {kind: session.scalars(select(Alert).where(live, rule)).all() for kind, rule in rules.items()}


def run_retention(vigil, actor: Actor, *, now=None) -> dict:
    require(actor, "system.admin")
    store, policy = vigil.store, vigil.settings.retention
    now = now or utcnow()
    counts: dict[str, int] = {}
    with store.session() as session:
        for kind, alerts in due_alerts(session, policy, now).items():
            for alert in alerts:
                _strip_alert(store, session, alert)
            counts[f"alerts_{kind}"] = len(alerts)
        ended = session.scalars(select(Deployment.snapshot_ids).where(Deployment.status == "ended")).all()
        snap_ids = sorted({sid for ids in ended for sid in (ids or [])})
        entries = session.scalars(select(SnapshotEntry).where(SnapshotEntry.snapshot_id.in_(snap_ids))).all() \
            if snap_ids and policy.snapshot_delete_on_end else []
        for entry in entries:
            session.delete(entry)
        for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snap_ids), Snapshot.deleted_at.is_(None))):
            snap.deleted_at = now
        counts["snapshot_entries"] = len(entries)
        probes = session.scalars(select(SearchRecord).where(
            SearchRecord.probe_blob_id.is_not(None),
            SearchRecord.created_at <= now - timedelta(days=policy.search_probe_days))).all()
        for rec in probes:
            store.blobs.delete(session, rec.probe_blob_id)
            rec.probe_blob_id = None
        counts["search_probes"] = len(probes)
        store.audit.record(session, actor, "retention.run", "retention", "", {
            **counts, "policy": policy.model_dump()})
    with store.session() as session:
        counts["orphan_files"] = store.blobs.collect_garbage(session)
    return counts
