"""Subjects: the people enrolled, their images and templates. Pseudonymous ids; erasure
rows that reach everywhere.

Persistence only: permission checks, audit entries and the withdrawal of watchlist
authorisations are the use cases' business (``vigil.services.subjects``).
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vigil.errors import NotFoundError, VigilError
from vigil.store.collections import check_category
from vigil.store.schema import (
    Alert, Collection, FaceImage, IndexChange, Membership, Snapshot, SnapshotEntry, Subject, TemplateRow,
)
from vigil.timeutil import iso, utcnow


def new_subject_id() -> str:
    return "S" + secrets.token_hex(8)


def create_subject(session: Session, created_by: str, display_name: str, *, category: str = "unspecified",
                   reference: str = "", notes: str = "") -> Subject:
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 200:
        raise VigilError("a subject needs a display name of 1-200 characters")
    check_category(category)
    subject = Subject(id=new_subject_id(), display_name=display_name, category=category, reference=reference,
                      notes=notes, created_by=created_by)
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


def collections_of(session: Session, subject_id: str) -> list[Collection]:
    return list(session.scalars(select(Collection).join(Membership, Membership.collection_id == Collection.id)
                                .where(Membership.subject_id == subject_id).order_by(Collection.id)))


def add_member(session: Session, collection: Collection, subject: Subject, added_by: str) -> bool:
    """Put the subject on the collection (and its same-model templates in the index log)."""
    if session.get(Membership, (collection.id, subject.id)):
        return False
    session.add(Membership(collection_id=collection.id, subject_id=subject.id, added_by=added_by))
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


def index_new_template(session: Session, subject_id: str, model_id: str, template_id: int) -> list[int]:
    """Log a new template for every collection of its model the subject is on; their ids."""
    ids = list(session.scalars(select(Membership.collection_id).join(
        Collection, Collection.id == Membership.collection_id).where(
        Membership.subject_id == subject_id, Collection.model_id == model_id)))
    for cid in ids:
        session.add(IndexChange(collection_id=cid, op="add", template_id=template_id))
    return ids


def image_with_content(session: Session, collection_id: int, digest: str) -> str | None:
    """The subject already enrolled in this collection from an image with this content key."""
    return session.scalar(select(FaceImage.subject_id).where(
        FaceImage.collection_id == collection_id, FaceImage.content_hash == digest))


def first_image(session: Session, subject_id: str) -> FaceImage | None:
    return session.scalar(select(FaceImage).where(FaceImage.subject_id == subject_id).order_by(FaceImage.id).limit(1))


def images_of(session: Session, subject_id: str) -> list[FaceImage]:
    return list(session.scalars(select(FaceImage).where(FaceImage.subject_id == subject_id).order_by(FaceImage.id)))


def describe_subject(session: Session, subject: Subject) -> dict:
    collections = session.execute(
        select(Collection.kind, Collection.name).join(Membership, Membership.collection_id == Collection.id)
        .where(Membership.subject_id == subject.id)).all()
    images = images_of(session, subject.id)
    return {
        "id": subject.id, "name": subject.display_name, "category": subject.category,
        "reference": subject.reference, "notes": subject.notes, "created_by": subject.created_by,
        "created_at": iso(subject.created_at),
        "collections": [{"kind": k, "name": n} for k, n in collections],
        "images": [{"id": i.id, "width": i.width, "height": i.height, "box": i.box,
                    "quality": i.quality.get("score"), "created_at": iso(i.created_at)} for i in images],
    }


def erase_subject_rows(session: Session, blobs, subject_id: str) -> dict:
    """Delete a subject's images, templates, index entries and snapshot entries everywhere.

    Alerts about the subject keep their record (pseudonymous id, score, decision) but lose
    every image and the name. Audit and search records only ever held the pseudonymous id.
    Returns a summary (counts, and the ids of the collections the subject was on).
    """
    subject = get_subject(session, subject_id)
    memberships = list(session.scalars(select(Membership.collection_id).where(Membership.subject_id == subject_id)))
    template_ids = session.scalars(select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)).all()
    for tid in template_ids:
        for cid in memberships:
            session.add(IndexChange(collection_id=cid, op="remove", template_id=tid))
    images = images_of(session, subject_id)
    image_blobs = {i.blob_id for i in images}
    for image in images:
        blobs.delete(session, image.blob_id)
    entries = session.scalars(select(SnapshotEntry).where(SnapshotEntry.subject_id == subject_id)).all()
    snapshot_ids = {e.snapshot_id for e in entries}
    for entry in entries:
        if entry.image_blob_id and entry.image_blob_id not in image_blobs:
            blobs.delete(session, entry.image_blob_id)
        session.delete(entry)
    for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snapshot_ids))) if snapshot_ids else []:
        snap.size = max(0, snap.size - 1)
    alerts = session.scalars(select(Alert).where(Alert.subject_id == subject_id)).all()
    for alert in alerts:
        for blob in (alert.probe_blob_id, alert.frame_blob_id, alert.watchlist_blob_id, alert.clip_blob_id):
            blobs.delete(session, blob)
        alert.probe_blob_id = alert.frame_blob_id = alert.watchlist_blob_id = alert.clip_blob_id = None
        alert.subject_name = ""
        alert.biometrics_deleted_at = utcnow()
    session.execute(delete(TemplateRow).where(TemplateRow.subject_id == subject_id))
    session.execute(delete(FaceImage).where(FaceImage.subject_id == subject_id))
    session.execute(delete(Membership).where(Membership.subject_id == subject_id))
    session.delete(subject)
    return {"images": len(images), "templates": len(template_ids), "collections": len(memberships),
            "collection_ids": memberships, "snapshot_entries": len(entries), "alerts_stripped": len(alerts)}
