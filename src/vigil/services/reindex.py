"""``vigil reindex --pack P``: re-extract every template of a collection from its stored
(encrypted) images with another pack, so a gallery survives a model upgrade. Templates of
the old model that no other collection uses are deleted afterwards (data minimisation).

Replacing templates changes what a watchlist matches: the reindexed watchlist, and any
other authorised watchlist of the new model holding a subject that got new templates, loses
its authorisation (reported in ``authorisation_withdrawn``)."""

from __future__ import annotations

from sqlalchemy import select

from vigil.engine.images import decode_image
from vigil.engine.packs import check_live_pack
from vigil.errors import NoFaceError
from vigil.governance.permissions import Actor
from vigil.progress import progress_bar
from vigil.services.authorisation import withdraw_for_subjects
from vigil.services.unit import use_case
from vigil.store.collections import all_collections, get_collection
from vigil.store.schema import Collection, FaceImage, IndexChange, Membership, TemplateRow
from vigil.store.store import template_context


def reindex(vigil, actor: Actor, pack: str, *, kind: str | None = None, name: str | None = None,
            show_progress: bool = True) -> dict:
    """Reindex one collection (``kind`` and ``name``) or, with neither, every collection."""
    with use_case(vigil, actor, "system.admin") as uow:
        colls = [get_collection(uow.session, kind, name)] if kind else all_collections(uow.session)
        targets = [(c.id, c.kind, c.name) for c in colls]
    if any(k == "watchlist" for _, k, _ in targets):
        check_live_pack(pack)  # a watchlist must stay deployable
    engine = vigil.engine(pack)
    summary = {"pack": pack, "model_id": engine.model_id, "collections": [], "templates_made": 0,
               "failed_images": 0, "old_templates_deleted": 0, "authorisation_withdrawn": []}
    for coll_id, coll_kind, coll_name in targets:
        made, failed, subjects = _extract(vigil, engine, coll_id, coll_kind, coll_name, show_progress)
        deleted, withdrawn = _switch(vigil, actor, coll_id, pack, engine.model_id, made, failed, subjects)
        vigil.indexes.drop(coll_id)
        summary["collections"].append(coll_name)
        summary["templates_made"] += made
        summary["failed_images"] += failed
        summary["old_templates_deleted"] += deleted
        summary["authorisation_withdrawn"] += withdrawn
    return summary


def _extract(vigil, engine, coll_id: int, kind: str, name: str, show_progress: bool) -> tuple[int, int, set[str]]:
    """New-model templates for every image of the collection's subjects, one per transaction."""
    new_model = engine.model_id
    with vigil.store.session() as session:
        images = session.scalars(select(FaceImage).join(Membership, Membership.subject_id == FaceImage.subject_id)
                                 .where(Membership.collection_id == coll_id)).all()
    made = failed = 0
    subjects: set[str] = set()
    with progress_bar(f"Reindexing {kind} {name}", len(images), enabled=show_progress) as advance:
        for image in images:
            with vigil.store.session() as session:
                if not session.scalar(select(TemplateRow.id).where(TemplateRow.image_id == image.id,
                                                                   TemplateRow.model_id == new_model)):
                    try:
                        found = engine.primary(decode_image(vigil.store.blobs.get(image.blob_id)))
                    except NoFaceError:
                        failed += 1
                    else:
                        session.add(TemplateRow(image_id=image.id, subject_id=image.subject_id, model_id=new_model,
                                                vector_enc=vigil.store.seal_vector(
                                                    found.vector, template_context(image.id, new_model)),
                                                quality_score=found.quality.score))
                        made += 1
                        subjects.add(image.subject_id)
            advance()
    return made, failed, subjects


def _switch(vigil, actor: Actor, coll_id: int, pack: str, new_model: str, made: int, failed: int,
            subjects: set[str]) -> tuple[int, list[dict]]:
    """Switch the collection to the new model, drop unused old templates, audit, withdraw."""
    with use_case(vigil, actor, "system.admin") as uow:
        session = uow.session
        row = session.get(Collection, coll_id)
        old_model = row.model_id
        row.pack, row.model_id = pack, new_model
        session.flush()
        still_used = set(session.scalars(select(Membership.subject_id).join(
            Collection, Collection.id == Membership.collection_id).where(Collection.model_id == old_model)))
        deleted = 0
        for t in session.scalars(select(TemplateRow).where(TemplateRow.model_id == old_model)).all():
            if t.subject_id not in still_used:
                session.delete(t)
                deleted += 1
        for tid in session.scalars(select(TemplateRow.id).join(
                Membership, Membership.subject_id == TemplateRow.subject_id).where(
                Membership.collection_id == coll_id, TemplateRow.model_id == new_model)):
            session.add(IndexChange(collection_id=coll_id, op="add", template_id=tid))
        because = f"templates re-extracted with {new_model} (reindex of {row.kind} {row.name!r})"
        withdrawn = withdraw_for_subjects(uow, subjects, because, model_id=new_model,
                                          also=row if old_model != new_model or made else None)
        uow.audit(f"{row.kind}.reindexed", row.kind, row.id,
                  {"from": old_model, "to": new_model, "templates_made": made, "failed_images": failed,
                   "old_templates_deleted": deleted})
    return deleted, withdrawn
