"""Retention policy: what is due for deletion, and deleting it. The use case (who may run it,
the transaction, the audit entry) is ``vigil.services.retention.run_retention``.

Policy (``[retention]`` in config, ``VIGIL_RETENTION__*``):
- false alerts: images deleted ``false_alert_hours`` after the alert (default 24 h);
- confirmed alerts: after ``confirmed_alert_days`` (31) unless linked to a case reference;
- unverified alerts: after ``unverified_alert_days`` (7); undecided: ``undecided_alert_days`` (31);
- a deployment's frozen watchlist snapshot: once the deployment has finished (ended, failed or
  cancelled), if ``snapshot_delete_on_end`` (the default); a running deployment's snapshot is
  never touched, and with the setting off snapshots are kept whole (alerts keep their own copy
  of the watchlist image, which follows the alert);
- retrospective search probes: ``search_probe_days`` (31).

"Deleted" for an alert means its probe crop, frame thumbnail, watchlist image copy, evidence
clip, the subject's name and the operator's notes are removed; a statistical stub (time,
camera, score, decision, outcome, pseudonymous subject id) stays so the published deployment
record still adds up. The audit log is never purged.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from vigil.store.schema import Alert, Deployment, SearchRecord, Snapshot, SnapshotEntry
from vigil.timeutil import utcnow

# Deployment states after which nothing will run on the snapshot again. Draft and
# authorised deployments have no snapshot yet; a running one needs its snapshot.
FINISHED_STATES = ("ended", "failed", "cancelled")


def due_alerts(session: Session, policy, now=None) -> dict[str, list[Alert]]:
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
    return {kind: list(session.scalars(select(Alert).where(live, rule))) for kind, rule in rules.items()}


def strip_alert(blobs, session: Session, alert: Alert, now=None) -> None:
    """Remove an alert's images, clip, name and notes; keep its statistical stub."""
    for blob in (alert.probe_blob_id, alert.frame_blob_id, alert.watchlist_blob_id, alert.clip_blob_id):
        blobs.delete(session, blob)
    alert.probe_blob_id = alert.frame_blob_id = alert.watchlist_blob_id = alert.clip_blob_id = None
    alert.subject_name = ""
    alert.notes = ""
    alert.biometrics_deleted_at = now or utcnow()


def finished_snapshot_ids(session: Session) -> list[int]:
    """Snapshots of finished deployments that are not yet marked deleted."""
    lists = session.scalars(select(Deployment.snapshot_ids).where(Deployment.status.in_(FINISHED_STATES))).all()
    ids = sorted({int(sid) for ids in lists for sid in (ids or [])})
    if not ids:
        return []
    return list(session.scalars(select(Snapshot.id).where(Snapshot.id.in_(ids), Snapshot.deleted_at.is_(None))))


def delete_snapshots(session: Session, snapshot_ids: list[int], now=None) -> int:
    """Delete the frozen entries (biometric copies) of these snapshots and mark them deleted;
    returns the number of entries deleted."""
    if not snapshot_ids:
        return 0
    entries = int(session.scalar(select(func.count()).select_from(SnapshotEntry)
                                 .where(SnapshotEntry.snapshot_id.in_(snapshot_ids))) or 0)
    session.execute(delete(SnapshotEntry).where(SnapshotEntry.snapshot_id.in_(snapshot_ids)))
    for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snapshot_ids))):
        snap.deleted_at = now or utcnow()
    return entries


def due_probes(session: Session, policy, now=None) -> list[SearchRecord]:
    now = now or utcnow()
    return list(session.scalars(select(SearchRecord).where(
        SearchRecord.probe_blob_id.is_not(None),
        SearchRecord.created_at <= now - timedelta(days=policy.search_probe_days))))
