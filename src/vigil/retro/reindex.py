"""``vigil reindex --pack P``: re-extract every template of a collection from its stored
(encrypted) images with another pack, so a gallery survives a model upgrade. Templates of
the old model that no other collection uses are deleted afterwards (data minimisation)."""

from __future__ import annotations

from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.engine.packs import check_live_pack
from vigil.errors import NoFaceError
from vigil.governance.permissions import Actor, require
from vigil.progress import progress_bar
from vigil.store.schema import Collection, FaceImage, IndexChange, Membership, TemplateRow
from vigil.store.store import template_context


def reindex(vigil, actor: Actor, pack: str, collections: list[Collection], *, show_progress: bool = True) -> dict:
    require(actor, "system.admin")
    if any(c.kind == "watchlist" for c in collections):
        check_live_pack(pack)  # a watchlist must stay deployable
    engine = vigil.engine(pack)
    new_model = engine.model_id
    summary = {"pack": pack, "model_id": new_model, "collections": [], "templates_made": 0,
               "failed_images": 0, "old_templates_deleted": 0}
    for coll in collections:
        old_model = coll.model_id
        with vigil.store.session() as session:
            images = session.scalars(select(FaceImage).join(Membership, Membership.subject_id == FaceImage.subject_id)
                                     .where(Membership.collection_id == coll.id)).all()
        made = failed = 0
        with progress_bar(f"Reindexing {coll.kind} {coll.name}", len(images), enabled=show_progress) as advance:
            for image in images:
                with vigil.store.session() as session:
                    if session.scalar(select(TemplateRow.id).where(TemplateRow.image_id == image.id,
                                                                   TemplateRow.model_id == new_model)):
                        advance()
                        continue
                    try:
                        found = engine.primary(decode_image(vigil.store.blobs.get(image.blob_id)))
                    except NoFaceError:
                        failed += 1
                        advance()
                        continue
                    session.add(TemplateRow(image_id=image.id, subject_id=image.subject_id, model_id=new_model,
                                            vector_enc=vigil.store.seal_vector(
                                                found.vector, template_context(image.id, new_model)),
                                            quality_score=found.quality.score))
                    made += 1
                advance()
        with vigil.store.session() as session:
            row = session.get(Collection, coll.id)
            row.pack, row.model_id = pack, new_model
            session.flush()
            still_used = set(session.scalars(select(Membership.subject_id).join(
                Collection, Collection.id == Membership.collection_id).where(Collection.model_id == old_model)))
            stale = session.scalars(select(TemplateRow).where(TemplateRow.model_id == old_model)).all()
            deleted = 0
            for t in stale:
                if t.subject_id not in still_used:
                    session.delete(t)
                    deleted += 1
            for tid in session.scalars(select(TemplateRow.id).join(
                    Membership, Membership.subject_id == TemplateRow.subject_id).where(
                    Membership.collection_id == coll.id, TemplateRow.model_id == new_model)):
                session.add(IndexChange(collection_id=coll.id, op="add", template_id=tid))
            vigil.store.audit.record(session, actor, f"{coll.kind}.reindexed", coll.kind, coll.id,
                                     {"from": old_model, "to": new_model, "templates_made": made,
                                      "failed_images": failed, "old_templates_deleted": deleted})
        vigil.indexes.drop(coll.id)
        summary["collections"].append(coll.name)
        summary["templates_made"] += made
        summary["failed_images"] += failed
        summary["old_templates_deleted"] += deleted
    return summary
