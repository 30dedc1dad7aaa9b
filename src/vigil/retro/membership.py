"""Putting existing subjects on (or off) a collection, re-extracting templates from their
stored images when the collection uses another pack."""

from __future__ import annotations

from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.governance.permissions import Actor, require
from vigil.store.collections import get_collection, mark_changed
from vigil.store.schema import FaceImage, IndexChange, Membership, TemplateRow
from vigil.store.store import template_context
from vigil.store.subjects import add_member, get_subject, remove_member


def ensure_templates(vigil, session, subject_id: str, pack: str, model_id: str) -> int:
    """Make sure the subject has templates of ``model_id``; extract from stored images if not."""
    engine = vigil.engine(pack)
    made = 0
    for image in session.scalars(select(FaceImage).where(FaceImage.subject_id == subject_id)):
        has = session.scalar(select(TemplateRow.id).where(TemplateRow.image_id == image.id,
                                                          TemplateRow.model_id == model_id))
        if has:
            continue
        pixels = decode_image(vigil.store.blobs.get(image.blob_id))
        found = engine.primary(pixels)
        session.add(TemplateRow(image_id=image.id, subject_id=subject_id, model_id=model_id,
                                vector_enc=vigil.store.seal_vector(found.vector, template_context(image.id, model_id)),
                                quality_score=found.quality.score))
        made += 1
    session.flush()
    return made


def add_subject_to_collection(vigil, actor: Actor, kind: str, name: str, subject_id: str) -> dict:
    with vigil.store.session() as session:
        coll = get_collection(session, kind, name)
        require(actor, "gallery.manage" if kind == "gallery" else "watchlist.manage")
        subject = get_subject(session, subject_id)
        made = ensure_templates(vigil, session, subject.id, coll.pack, coll.model_id)
        added = add_member(session, coll, subject, actor)
        if added:
            mark_changed(session, vigil.store.audit, actor, coll, "subject added")
            vigil.store.audit.record(session, actor, f"{kind}.subject_added", kind, coll.id,
                                     {"subject_id": subject.id, "templates_extracted": made})
    return {"subject_id": subject_id, "added": added, "templates_extracted": made}


def remove_subject_from_collection(vigil, actor: Actor, kind: str, name: str, subject_id: str) -> dict:
    with vigil.store.session() as session:
        coll = get_collection(session, kind, name)
        require(actor, "gallery.manage" if kind == "gallery" else "watchlist.manage")
        removed = remove_member(session, coll, get_subject(session, subject_id))
        if removed:
            mark_changed(session, vigil.store.audit, actor, coll, "subject removed")
            vigil.store.audit.record(session, actor, f"{kind}.subject_removed", kind, coll.id, {"subject_id": subject_id})
    return {"subject_id": subject_id, "removed": removed}


__all__ = ["add_subject_to_collection", "remove_subject_from_collection", "ensure_templates", "Membership",
           "IndexChange"]
