"""Keeping each collection's in-memory index in step with the database (glue between
persistence and search, so it lives in the service layer: ``vigil.index`` knows no database).

The database is the source of truth. Every enrolment, membership change and erasure
appends an ``index_changes`` row in the same transaction, so after a crash nothing is
lost: an index (loaded from its encrypted snapshot file, or rebuilt from the templates)
replays the changes after the sequence number it was saved at. A snapshot file that is
missing, corrupt, or from another key is ignored and the index is rebuilt.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.fsutil import atomic_write
from vigil.index.factory import index_from_bytes, make_index
from vigil.store.schema import Collection, IndexChange, Membership, TemplateRow
from vigil.store.store import template_context

PERSIST_MIN_SIZE = 50_000  # smaller indexes rebuild from the database in well under a second


@dataclass
class LoadedIndex:
    index: object
    seq: int
    model_id: str
    dirty_changes: int = 0




class IndexManager:
    def __init__(self, store):
        self.store = store
        self.dir = store.home / "index"
        self._indexes: dict[int, LoadedIndex] = {}
        self._lock = threading.RLock()

    # -- public -----------------------------------------------------------------------------
    def get(self, session: Session, collection: Collection):
        """The collection's index, brought up to date with the database."""
        with self._lock:
            loaded = self._indexes.get(collection.id)
            if loaded is None or loaded.model_id != collection.model_id:
                loaded = self._load_file(collection) or self._build(session, collection)
                self._indexes[collection.id] = loaded
            self._replay(session, collection, loaded)
            return loaded.index

    def drop(self, collection_id: int) -> None:
        with self._lock:
            self._indexes.pop(collection_id, None)
            path = self._path(collection_id)
            path.unlink(missing_ok=True)

    def save(self, session: Session, collection: Collection, force: bool = False) -> bool:
        with self._lock:
            loaded = self._indexes.get(collection.id)
            if loaded is None:
                return False
            self._replay(session, collection, loaded)
            if not force and len(loaded.index) < PERSIST_MIN_SIZE:
                return False
            payload = io.BytesIO()
            header = json.dumps({"seq": loaded.seq, "model_id": loaded.model_id}).encode()
            payload.write(len(header).to_bytes(4, "big") + header + loaded.index.to_bytes())
            sealed = self.store.keyring.encrypt(payload.getvalue(), self._context(collection.id))
            atomic_write(self._path(collection.id), sealed)
            loaded.dirty_changes = 0
            return True

    def forget(self) -> None:
        with self._lock:
            self._indexes.clear()

    # -- internals ----------------------------------------------------------------------------
    def _path(self, collection_id: int):
        return self.dir / f"collection-{collection_id}.idx"

    @staticmethod
    def _context(collection_id: int) -> bytes:
        return f"index:{collection_id}".encode()

    def _load_file(self, collection: Collection) -> LoadedIndex | None:
        path = self._path(collection.id)
        if not path.is_file():
            return None
        try:
            raw = self.store.keyring.decrypt(path.read_bytes(), self._context(collection.id))
            n = int.from_bytes(raw[:4], "big")
            header = json.loads(raw[4 : 4 + n])
            if header["model_id"] != collection.model_id:
                return None
            return LoadedIndex(index_from_bytes(raw[4 + n :]), int(header["seq"]), header["model_id"])
        except Exception:  # corrupt, truncated, or another key: rebuild from the database
            path.unlink(missing_ok=True)
            return None

    def _build(self, session: Session, collection: Collection) -> LoadedIndex:
        seq = int(session.scalar(select(func.max(IndexChange.seq))) or 0)
        rows = session.execute(
            select(TemplateRow.id, TemplateRow.image_id, TemplateRow.vector_enc)
            .join(Membership, Membership.subject_id == TemplateRow.subject_id)
            .where(Membership.collection_id == collection.id, TemplateRow.model_id == collection.model_id)
        ).all()
        ids, vectors = self._decrypt(rows, collection.model_id)
        dim = vectors.shape[1] if len(vectors) else self._dim_for(collection)
        index = self._new_index(dim, len(ids))
        if len(ids):
            index.add(ids, vectors)
        return LoadedIndex(index, seq, collection.model_id)

    def _new_index(self, dim: int, size: int):
        """Exact search up to ``exact_search_limit`` templates, approximate beyond."""
        return make_index(dim, size, self.store.settings.exact_search_limit)

    def _dim_for(self, collection: Collection) -> int:
        from vigil.engine.packs import get_pack

        return get_pack(collection.pack, self.store.settings).dim

    def _decrypt(self, rows, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.array([r[0] for r in rows], np.int64)
        vectors = np.stack([self.store.open_vector(r[2], template_context(r[1], model_id)) for r in rows])
        return ids, vectors

    def _replay(self, session: Session, collection: Collection, loaded: LoadedIndex) -> None:
        changes = session.execute(
            select(IndexChange.seq, IndexChange.op, IndexChange.template_id)
            .where(IndexChange.collection_id == collection.id, IndexChange.seq > loaded.seq)
            .order_by(IndexChange.seq)
        ).all()
        if not changes:
            return
        # Net effect per template: the last operation wins.
        last: dict[int, str] = {}
        for _, op, tid in changes:
            last[tid] = op
        removes = [t for t, op in last.items() if op == "remove"]
        adds = [t for t, op in last.items() if op == "add"]
        if removes:
            loaded.index.remove(np.array(removes, np.int64))
        for start in range(0, len(adds), 5000):
            rows = session.execute(
                select(TemplateRow.id, TemplateRow.image_id, TemplateRow.vector_enc)
                .join(Membership, Membership.subject_id == TemplateRow.subject_id)
                .where(TemplateRow.id.in_(adds[start : start + 5000]), Membership.collection_id == collection.id,
                       TemplateRow.model_id == collection.model_id)
            ).all()
            ids, vectors = self._decrypt(rows, collection.model_id)
            if len(ids):
                loaded.index.add(ids, vectors)
        loaded.seq = max(c[0] for c in changes)
        loaded.dirty_changes += len(changes)
