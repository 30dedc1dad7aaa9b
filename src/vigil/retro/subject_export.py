"""Subject access: everything held about one subject, gathered into a folder (audited)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from vigil.governance.permissions import Actor, require
from vigil.store.exports import check_target, record_export
from vigil.store.schema import Alert, AuditEntry, FaceImage, SearchRecord, SnapshotEntry
from vigil.store.subjects import describe_subject, get_subject
from vigil.timeutil import iso


def export_subject(vigil, actor: Actor, subject_id: str, out: Path) -> dict:
    require(actor, "subject.export")
    target = check_target(out, directory=True)
    with vigil.store.session() as session:
        subject = get_subject(session, subject_id)
        info = describe_subject(session, subject)
        target.mkdir(parents=True, exist_ok=True)
        files = 0
        for image in session.scalars(select(FaceImage).where(FaceImage.subject_id == subject_id)):
            (target / f"image-{image.id}.jpg").write_bytes(vigil.store.blobs.get(image.blob_id))
            files += 1
        alerts = [{"id": a.id, "deployment_id": a.deployment_id, "created_at": iso(a.created_at), "camera": a.camera,
                   "score": a.score, "decision": a.decision, "outcome": a.outcome, "notes": a.notes}
                  for a in session.scalars(select(Alert).where(Alert.subject_id == subject_id))]
        searches = [{"id": s.id, "created_at": iso(s.created_at), "case_ref": s.case_ref, "gallery": s.collection_name}
                    for s in session.scalars(select(SearchRecord)) if any(
                        c.get("subject_id") == subject_id for f in s.results for c in f.get("candidates", []))]
        snapshots = sorted({e.snapshot_id for e in session.scalars(
            select(SnapshotEntry).where(SnapshotEntry.subject_id == subject_id))})
        audit = [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action}
                 for e in session.scalars(select(AuditEntry).where(AuditEntry.details.contains(subject_id)))]
        record = {**info, "alerts": alerts, "appeared_in_searches": searches, "watchlist_snapshots": snapshots,
                  "audit_entries": audit, "exported_at": None}
        (target / "subject.json").write_text(json.dumps(record, indent=1, default=str))
        files += 1
        row = record_export(vigil.store, session, actor, "subject_access", target,
                            {"subject_id": subject_id, "files": files})
        record["exported_at"] = iso(row.created_at)
        (target / "subject.json").write_text(json.dumps(record, indent=1, default=str))
    return {"path": str(target), "files": files, "subject_id": subject_id}
