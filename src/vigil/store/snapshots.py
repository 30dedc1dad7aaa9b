"""Frozen watchlists (persistence only): a deployment runs on a snapshot taken when it
starts, so later edits to the watchlist never leak into a running deployment. The frozen
entries are biometric copies, so they are erased as soon as the deployment stops running.

Plain query functions that take a session; the use cases (who may freeze, when, the audit
entry) live in ``vigil.services.live_runs``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from vigil.store.schema import Collection, FaceImage, Membership, Snapshot, SnapshotEntry, Subject, TemplateRow
from vigil.store.store import snapshot_context, template_context
from vigil.timeutil import utcnow


@dataclass
class FrozenEntry:
    """One frozen watchlist entry, as the live matcher needs it (no vector: see ``load_entries``)."""

    subject_id: str
    name: str
    category: str
    watchlist_id: int
    image_blob_id: str | None
    references: int = 1  # reference photos averaged into this entry's template


def freeze(store, session, actor_name: str, watchlist: Collection, deployment_id: int | None = None, *,
           references: int = 1, combine: Callable[[np.ndarray], np.ndarray] | None = None) -> Snapshot:
    """Copy a watchlist's templates into a new snapshot. With ``references`` > 1 each subject
    is one entry: ``combine`` (the engine's mean template) of its ``references`` best-quality
    templates, the entry showing the best one's photo. With 1, each template is its own entry."""
    if references > 1 and combine is None:
        raise ValueError("several references per entry need the function that combines them")
    version = int(session.scalar(select(func.max(Snapshot.version)).where(Snapshot.watchlist_id == watchlist.id)) or 0) + 1
    snap = Snapshot(watchlist_id=watchlist.id, version=version, model_id=watchlist.model_id, frozen_by=actor_name,
                    deployment_id=deployment_id)
    session.add(snap)
    session.flush()
    rows = session.execute(
        select(TemplateRow, FaceImage.blob_id, Subject)
        .join(FaceImage, FaceImage.id == TemplateRow.image_id)
        .join(Subject, Subject.id == TemplateRow.subject_id)
        .join(Membership, Membership.subject_id == Subject.id)
        .where(Membership.collection_id == watchlist.id, TemplateRow.model_id == watchlist.model_id)
        .order_by(Subject.id, TemplateRow.quality_score.desc(), TemplateRow.id)).all()
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[2].id, []).append(row)
    for subject_rows in groups.values():
        chosen = [subject_rows[:references]] if references > 1 else [[r] for r in subject_rows]
        for part in chosen:
            vectors = np.stack([store.open_vector(t.vector_enc, template_context(t.image_id, t.model_id))
                                for t, _, _ in part])
            vector = vectors[0] if len(part) == 1 else combine(vectors)
            _, blob_id, subject = part[0]
            entry = SnapshotEntry(snapshot_id=snap.id, subject_id=subject.id, display_name=subject.display_name,
                                  category=subject.category, image_blob_id=blob_id, vector_enc=b"",
                                  reference_count=len(part))
            session.add(entry)
            session.flush()
            entry.vector_enc = store.seal_vector(np.asarray(vector, np.float32), snapshot_context(snap.id, entry.id))
    snap.size = len(groups)
    return snap


def photos_per_subject(session, watchlist: Collection) -> list[int]:
    """How many templates of the watchlist's model each listed subject has (subjects without
    one are left out: they cannot be matched)."""
    return [int(n) for n in session.scalars(
        select(func.count(TemplateRow.id))
        .join(Membership, Membership.subject_id == TemplateRow.subject_id)
        .where(Membership.collection_id == watchlist.id, TemplateRow.model_id == watchlist.model_id)
        .group_by(TemplateRow.subject_id))]


def load_entries(store, session, snapshot_ids: list[int]) -> tuple[list[FrozenEntry], np.ndarray]:
    """The frozen entries of these snapshots and their vectors (decrypted, in memory only)."""
    entries, vectors = [], []
    for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snapshot_ids or [])).order_by(Snapshot.id)):
        for e in session.scalars(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snap.id)
                                 .order_by(SnapshotEntry.id)):
            entries.append(FrozenEntry(e.subject_id, e.display_name, e.category, snap.watchlist_id, e.image_blob_id,
                                       e.reference_count or 1))
            vectors.append(store.open_vector(e.vector_enc, snapshot_context(snap.id, e.id)))
    dim = vectors[0].shape[0] if vectors else 128
    return entries, (np.stack(vectors) if vectors else np.zeros((0, dim), np.float32))


def erase_entries(session, snapshot_ids: list[int]) -> int:
    """Delete the frozen entries (alerts keep their own image copies); the snapshot row stays,
    marked deleted, as the record that it existed."""
    count = 0
    for snap in session.scalars(select(Snapshot).where(Snapshot.id.in_(snapshot_ids or []))):
        for entry in session.scalars(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snap.id)):
            session.delete(entry)
            count += 1
        if snap.deleted_at is None:
            snap.deleted_at = utcnow()
    return count


def total_size(session, snapshot_ids: list[int]) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Snapshot.size), 0))
                              .where(Snapshot.id.in_(snapshot_ids or []))))
