"""Slices of a gallery's templates, for processes that hold only part of a gallery (the gallery
shards of ``vigil.cluster``, which may read the database only through this layer).

A slice is the gallery's index restricted to the templates a ``keep(template_ids) -> mask``
predicate selects (the cluster passes its stable hash of template ids to shard numbers). It
is the :class:`~vigil.services.indexes.IndexManager` logic with three differences:

* it always rebuilds from the database (decrypting only the kept rows) and never reads or
  writes the gallery's snapshot file, which holds the whole gallery;
* it is always an :class:`~vigil.index.exact.ExactIndex` (float32 by default), so a merge of
  every slice's top-k is exactly the gallery's top-k;
* the change log is replayed on every :meth:`GallerySlice.current`, as the local index does on
  every search, so a template erased in the database is never answered again.

Loading a slice (decrypted templates in a long-lived process) is audited
(``gallery.shard_loaded``); so is an erasure confirmed by every replica of every shard
(``subject.erased_from_shards``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from vigil.governance.permissions import SYSTEM, Actor
from vigil.index.exact import ExactIndex
from vigil.services.indexes import IndexManager
from vigil.services.unit import use_case
from vigil.store.collections import get_collection
from vigil.store.schema import Collection, Membership, TemplateRow
from vigil.store.subjects import get_subject


class _SliceManager(IndexManager):
    def __init__(self, store, keep: Callable[[np.ndarray], np.ndarray], dtype: str):
        super().__init__(store)
        self.keep = keep
        self.dtype = dtype

    def _load_file(self, collection: Collection):  # the snapshot file holds the whole gallery
        return None

    def save(self, session, collection, force: bool = False) -> bool:
        return False

    def drop(self, collection_id: int) -> None:  # never the gallery's snapshot file
        with self._lock:
            self._indexes.pop(collection_id, None)

    def _new_index(self, dim: int, size: int) -> ExactIndex:  # exact, so merged slices are the gallery
        return ExactIndex(dim, self.dtype)

    def _decrypt(self, rows, model_id: str):
        if rows:
            mask = np.asarray(self.keep(np.array([r[0] for r in rows], np.int64)), bool)
            rows = [r for r, kept in zip(rows, mask) if kept]
        return super()._decrypt(rows, model_id)


class GallerySlice:
    """The templates of gallery ``gallery`` that ``keep`` selects, in step with the database."""

    def __init__(self, vigil, gallery: str, keep: Callable[[np.ndarray], np.ndarray], *, dtype: str = "float32"):
        self.vigil = vigil
        self.gallery = gallery
        self._manager = _SliceManager(vigil.store, keep, dtype)

    def current(self) -> ExactIndex:
        """The slice, with every change since the last call applied (built on the first call)."""
        with self.vigil.store.session() as session:
            coll = get_collection(session, "gallery", self.gallery)
            return self._manager.get(session, coll)

    def load(self, label: str, actor: Actor = SYSTEM) -> ExactIndex:
        """Build the slice and record who holds it: ``label`` names the shard and replica."""
        index = self.current()
        with use_case(self.vigil, actor) as uow:
            coll = get_collection(uow.session, "gallery", self.gallery)
            uow.audit("gallery.shard_loaded", "gallery", coll.id,
                      {"gallery": coll.name, "shard": label, "templates": len(index), "host": socket.gethostname()})
        return index


def gallery_templates(session, subject_id: str) -> dict[str, list[int]]:
    """The subject's template ids per gallery it is on (read in the caller's transaction)."""
    galleries = session.scalars(
        select(Collection.name).join(Membership, Membership.collection_id == Collection.id)
        .where(Membership.subject_id == subject_id, Collection.kind == "gallery")).all()
    template_ids = sorted(session.scalars(select(TemplateRow.id).where(TemplateRow.subject_id == subject_id)))
    return {name: list(template_ids) for name in sorted(galleries)}


def erasure_targets(vigil, actor: Actor, subject_id: str) -> dict[str, list[int]]:
    """The subject's template ids per gallery it is on: what every shard of those galleries must
    drop when it is erased. Needs the erasure permission: it is the first step of one."""
    with use_case(vigil, actor, "subject.delete") as uow:
        get_subject(uow.session, subject_id)
        return gallery_templates(uow.session, subject_id)


def record_shard_erasure(vigil, actor: Actor, subject_id: str, reports: list[dict]) -> None:
    """Audit that the shards confirmed an erasure: per gallery, the replicas that acknowledged
    and those that were down (they rebuild from the database, which no longer holds it)."""
    with use_case(vigil, actor, "subject.delete") as uow:
        uow.audit("subject.erased_from_shards", "subject", subject_id, {"galleries": [
            {"gallery": r["gallery"], "replicas_confirmed": len(r["replicas_confirmed"]),
             "replicas_down": len(r["replicas_down"]), "templates_removed": r["templates_removed"],
             "seconds": r["seconds"]} for r in reports]})
