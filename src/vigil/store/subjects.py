"""Subjects: the people enrolled. Pseudonymous ids; erasure that reaches everywhere."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vigil.errors import NotFoundError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.store.collections import check_category
from vigil.store.schema import (
    Alert, Collection, FaceImage, IndexChange, Membership, Snapshot, SnapshotEntry, Subject, TemplateRow,
)
from vigil.timeutil import iso, utcnow


def new_subject_id() -> str:
    return "S" + secrets.token_hex(8)


def create_subject(session: Session, actor: Actor, display_name: str, *, category: str = "unspecified",
                   reference: str = "", notes: str = "") -> Subject:
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 200:
        raise VigilError("a subject needs a display name of 1-200 characters")
    check_category(category)
    subject = Subject(id=new_subject_id(), display_name=display_name, category=category, reference=reference,
                      notes=notes, created_by=actor.username)
    session.add(subject)
    session.flush()
    return subject


def get_subject(session: Session, subject_id: str) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise NotFoundError(f"no subject {subject_id!r} (it may have been erased)")
    return subject


def find_member_by_name(session: Session, collection_id: int, display_name: str) -> Subject | None:
    return session.scalar(
        select(Subject).join(Membership, Membership.subject_id == Subject.id)
        .where(Membership.collection_id == collection_id, Subject.display_name == display_name)
        .order_by(Subject.created_at).limit(1)
    )


def add_member(session: Session, collection: Collection, subject: Subject, actor: Actor) -> bool:
    if session.get(Membership, (collection.id, subject.id)):
        return False
    session.add(Membership(collection_id=collection.id, subject_id=subject.id, added_by=actor.username))
    templates = session.scalars(select(TemplateRow.id).where(TemplateRow.subject_id == subject.id,
                                                             TemplateRow.model_id == collection.model_id))
    for tid in templates:
        session.add(IndexChange(collection_id=collection.id, op="add", template_id=tid))
    return True


def remove_member(session: Session, collection: Collection, subject: Subject) -> bool:
    member = session.get(Membership, (collection.id, subject.id))
    if member is None:
        return False
    session.delete(member)
    for tid in session.scalars(select(TemplateRow.id).where(TemplateRow.subject_id == subject.id)):
        session.add(IndexChange(collection_id=collection.id, op="remove", template_id=tid))
    return True


def describe_subject(session: Session, subject: Subject) -> dict:
    collections = session.execute(
        select(Collection.kind, Collection.name).join(Membership, Membership.collection_id == Collection.id)
        .where(Membership.subject_id == subject.id)).all()
    images = session.scalars(select(FaceImage).where(FaceImage.subject_id == subject.id)).all()
    return {
        "id": subject.id, "name": subject.display_name, "category": subject.category,
        "reference": subject.reference, "notes": subject.notes, "created_by": subject.created_by,
        "created_at": iso(subject.created_at),
        "collections": [{"kind": k, "name": n} for k, n in collections],
        "images": [{"id": i.id, "width": i.width, "height": i.height, "box": i.box,
                    "quality": i.quality.get("score"), "created_at": iso(i.created_at)} for i in images],
    }


def erase_subject(store, session: Session, actor: Actor, subject_id: str, reason: str, *,
                  check_permission: bool = True) -> dict:
    """Delete a subject's images, templates, index entries and snapshot entries everywhere.

    Alerts about the subject keep their record (pseudonymous id, score, decision) but lose
    every image and the name. Audit and search records only ever held the pseudonymous id.
    """
    if check_permission:
        require(actor, "subject.delete")
    if not reason.strip():
        raise VigilError("erasure needs a reason (--reason)")
    subject = get_subject(session, subject_id)
    memberships = session.scalars(select(Membership.collection_id).where(Membership.subject_id == subject_id)).all()
    template_ids = session.scalars(select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)).all()
    all_collections = set(memberships)
    for tid in template_ids:
        for cid in all_collections:
            session.add(IndexChange(collection_id=cid, op="remove", template_id=tid))
    images = session.scalars(select(FaceImage).where(FaceImage.subject_id == subject_id)).all()
    for image in images:
        store.blobs.delete(session, image.blob_id)
    entries = session.scalars(select(SnapshotEntry).where(SnapshotEntry.subject_id == subject_id)).all()
    snapshot_ids = {e.snapshot_id for e in entries}
    for entry in entries:
        if entry.image_blob_id and entry.image_blob_id not in {i.blob_id for i in images}:
            store.blobs.delete(session, entry.image_blob_id)
        session.delete(entry)
    for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snapshot_ids))) if snapshot_ids else []:
        snap.size = max(0, snap.size - 1)
    alerts = session.scalars(select(Alert).where(Alert.subject_id == subject_id)).all()
    for alert in alerts:
        for blob in (alert.probe_blob_id, alert.frame_blob_id, alert.watchlist_blob_id, alert.clip_blob_id):
            store.blobs.delete(session, blob)
        alert.probe_blob_id = alert.frame_blob_id = alert.watchlist_blob_id = alert.clip_blob_id = None
        alert.subject_name = ""
        alert.biometrics_deleted_at = utcnow()
    session.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))
    session.execute(delete(FaceImage).where(FaceImage.subject_id == subject_id))
    session.execute(delete(Membership).where(Membership.subject_id == subject_id))
    session.delete(subject)
    summary = {"images": len(images), "templates": len(template_ids), "collections": len(all_collections),
               "snapshot_entries": len(entries), "alerts_stripped": len(alerts), "reason": reason}
    store.audit.record(session, actor, "subject.erased", "subject", subject_id, summary)
    return summary
