"""Subjects: show, face image, erase, subject access export, and putting an enrolled subject
on (or off) a collection. Every change to a subject on an authorised watchlist withdraws
that watchlist's authorisation (:mod:`vigil.services.authorisation`) and says so."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.errors import ConflictError, NotFoundError, VigilError
from vigil.governance.permissions import Actor
from vigil.retro.crops import face_crop_jpeg
from vigil.services.authorisation import withdraw_for_subjects
from vigil.services.collections import manage_permission, require_faces_visible
from vigil.services.exports import record_export
from vigil.services.gallery_slices import gallery_templates, record_shard_erasure
from vigil.services.unit import refuse, use_case
from vigil.store.collections import get_collection
from vigil.store.exports import check_target
from vigil.store.schema import Alert, AlertDecision, AuditEntry, SearchRecord, SnapshotEntry, TemplateRow
from vigil.store.store import template_context
from vigil.store.subjects import (
    add_member, collections_of, describe_subject, erase_subject_rows, first_image, get_subject, images_of,
    remove_member,
)
from vigil.timeutil import iso


def show_subject(vigil, actor: Actor, subject_id: str) -> dict:
    with use_case(vigil, actor, "subject.view") as uow:
        return describe_subject(uow.session, get_subject(uow.session, subject_id))


def subject_face_jpeg(vigil, actor: Actor, subject_id: str) -> bytes:
    """The subject's first enrolled face, cropped (the console's side-by-side view)."""
    with use_case(vigil, actor, "image.view") as uow:
        get_subject(uow.session, subject_id)
        require_faces_visible(uow, collections_of(uow.session, subject_id), "enrolled faces")
        image = first_image(uow.session, subject_id)
        if image is None:
            raise NotFoundError("no image")
        data, box = vigil.store.blobs.get(image.blob_id), image.box
    return face_crop_jpeg(data, box)


def erase_subject(vigil, actor: Actor, subject_id: str, reason: str, *, shard_eraser=None) -> dict:
    """Erase a subject everywhere (images, templates, index entries, snapshot entries).

    Where a gallery it is on is sharded (``shard_eraser``, by default the context's
    ``vigil.shard_eraser`` that a composition root set), the erasure is done only when every
    live replica of every shard has confirmed it, after the database's commit: the answer's
    ``shards`` holds one report per sharded gallery (replicas confirmed, replicas down), and
    the confirmation is audited (``subject.erased_from_shards``). A replica that is down is
    named in ``replicas_down``: it rebuilds from the database when it starts, so it cannot
    bring the templates back. If the shards do not confirm, the database's erasure stands
    (it is not undone), the failure is audited (``subject.shard_erasure_unconfirmed``) and a
    :class:`ConflictError` says so."""
    eraser = shard_eraser if shard_eraser is not None else vigil.shard_eraser
    with use_case(vigil, actor, "subject.delete") as uow:
        if not (reason or "").strip():
            raise VigilError("erasure needs a reason (--reason)")
        get_subject(uow.session, subject_id)
        targets = gallery_templates(uow.session, subject_id) if eraser is not None else {}
        withdrawn = withdraw_for_subjects(uow, [subject_id], f"subject {subject_id} erased")
        summary = erase_subject_rows(uow.session, vigil.store.blobs, subject_id)
        summary.pop("collection_ids")
        summary["reason"] = reason
        uow.audit("subject.erased", "subject", subject_id, summary)
        result = {"subject_id": subject_id, **summary, "authorisation_withdrawn": withdrawn}
    if targets:
        reports = _erase_from_shards(vigil, actor, subject_id, eraser, targets)
        if reports:
            result["shards"] = reports
    return result


def _erase_from_shards(vigil, actor: Actor, subject_id: str, eraser, targets: dict[str, list[int]]) -> list[dict]:
    """After the commit: every replica of the sharded galleries confirms, and that is audited."""
    try:
        reports = eraser(targets)
    except VigilError as exc:
        refuse(vigil, actor, "subject.shard_erasure_unconfirmed", "subject", subject_id, str(exc),
               {"galleries": sorted(targets)}, error=ConflictError,
               message=f"subject {subject_id} is erased from the database (audited; that is not undone), but its "
                       f"erasure from the gallery shards is not confirmed: {exc}. Every replica replays the "
                       "database's erasures before its next search, and one that starts rebuilds from the "
                       "database; check the shards ('vigil shard' processes) and NATS")
    if reports:
        record_shard_erasure(vigil, actor, subject_id, reports)
    return reports


def ensure_templates(vigil, session, subject_id: str, pack: str, model_id: str) -> int:
    """Make sure the subject has templates of ``model_id``; extract them from the stored
    images if not. Returns how many were made."""
    engine = vigil.engine(pack)
    made = 0
    for image in images_of(session, subject_id):
        if session.scalar(select(TemplateRow.id).where(TemplateRow.image_id == image.id,
                                                       TemplateRow.model_id == model_id)):
            continue
        found = engine.primary(decode_image(vigil.store.blobs.get(image.blob_id)))
        session.add(TemplateRow(image_id=image.id, subject_id=subject_id, model_id=model_id,
                                vector_enc=vigil.store.seal_vector(found.vector, template_context(image.id, model_id)),
                                quality_score=found.quality.score))
        made += 1
    session.flush()
    return made


def add_subject_to_collection(vigil, actor: Actor, kind: str, name: str, subject_id: str) -> dict:
    """Put an already-enrolled subject (e.g. from a gallery) on a collection."""
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        coll = get_collection(uow.session, kind, name)
        subject = get_subject(uow.session, subject_id)
        made = ensure_templates(vigil, uow.session, subject.id, coll.pack, coll.model_id)
        added = add_member(uow.session, coll, subject, actor.username)
        withdrawn = []
        if added or made:
            # new templates reach every same-model watchlist the subject is on (this one included)
            withdrawn = withdraw_for_subjects(uow, [subject.id] if made else [],
                                              f"subject {subject.id} added to {kind} {coll.name!r}",
                                              model_id=coll.model_id, also=coll if added else None)
        if added:
            uow.audit(f"{kind}.subject_added", kind, coll.id, {"subject_id": subject.id, "templates_extracted": made})
        return {"subject_id": subject_id, "added": added, "templates_extracted": made,
                "authorisation_withdrawn": withdrawn}


def remove_subject_from_collection(vigil, actor: Actor, kind: str, name: str, subject_id: str) -> dict:
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        coll = get_collection(uow.session, kind, name)
        removed = remove_member(uow.session, coll, get_subject(uow.session, subject_id))
        withdrawn = []
        if removed:
            withdrawn = withdraw_for_subjects(uow, [], f"subject {subject_id} removed", also=coll)
            uow.audit(f"{kind}.subject_removed", kind, coll.id, {"subject_id": subject_id})
        return {"subject_id": subject_id, "removed": removed, "authorisation_withdrawn": withdrawn}


def export_subject(vigil, actor: Actor, subject_id: str, out: Path) -> dict:
    """Subject access: everything held about one subject, gathered into a new folder (audited)."""
    with use_case(vigil, actor, "subject.export") as uow:
        session = uow.session
        target = check_target(out, directory=True)
        info = describe_subject(session, get_subject(session, subject_id))
        target.mkdir(parents=True, exist_ok=True)
        files = 0
        for image in images_of(session, subject_id):
            (target / f"image-{image.id}.jpg").write_bytes(vigil.store.blobs.get(image.blob_id))
            files += 1
        alerts = []
        for a in session.scalars(select(Alert).where(Alert.subject_id == subject_id).order_by(Alert.id)):
            kept = {}
            for what, blob_id, suffix in (("probe", a.probe_blob_id, "jpg"), ("frame", a.frame_blob_id, "jpg"),
                                          ("watchlist", a.watchlist_blob_id, "jpg"), ("clip", a.clip_blob_id, "avi")):
                if blob_id:  # the camera's images (bystanders washed out) until retention deletes them
                    name = f"alert-{a.id}-{what}.{suffix}"
                    (target / name).write_bytes(vigil.store.blobs.get(blob_id))
                    kept[what] = name
                    files += 1
            decisions = [{"decision": d.decision, "outcome": d.outcome, "by": d.decided_by,
                          "at": iso(d.decided_at), "notes": d.notes, "reason": d.reason}
                         for d in session.scalars(select(AlertDecision).where(AlertDecision.alert_id == a.id)
                                                  .order_by(AlertDecision.seq))]
            alerts.append({"id": a.id, "deployment_id": a.deployment_id, "created_at": iso(a.created_at),
                           "camera": a.camera, "score": a.score, "threshold": a.threshold, "decision": a.decision,
                           "outcome": a.outcome, "notes": a.notes, "decisions": decisions, "files": kept,
                           "images_deleted_by_retention": a.biometrics_deleted_at is not None})
        searches = [{"id": s.id, "created_at": iso(s.created_at), "case_ref": s.case_ref, "gallery": s.collection_name}
                    for s in session.scalars(select(SearchRecord)) if any(
                        c.get("subject_id") == subject_id for f in s.results for c in f.get("candidates", []))]
        snapshots = sorted({e.snapshot_id for e in session.scalars(
            select(SnapshotEntry).where(SnapshotEntry.subject_id == subject_id))})
        audit = [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action}
                 for e in session.scalars(select(AuditEntry).where(AuditEntry.details.contains(subject_id)))]
        files += 1  # subject.json
        row = record_export(uow, "subject_access", target, {"subject_id": subject_id, "files": files})
        record = {**info, "alerts": alerts, "appeared_in_searches": searches, "watchlist_snapshots": snapshots,
                  "audit_entries": audit, "exported_at": iso(row.created_at)}
        (target / "subject.json").write_text(json.dumps(record, indent=1, default=str))
    return {"path": str(target), "files": files, "subject_id": subject_id}
