"""Galleries (reference collections for retrospective search) and watchlists: their rows.

Persistence only. Who may create, authorise or delete a collection, and what is audited,
is decided by the use cases in ``vigil.services.collections``; these functions just read
and write rows inside the session they are given.

A collection keeps templates of one pack (its ``model_id``). A watchlist also records its
purpose, legal basis, who created and who authorised it, and an expiry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.errors import NotFoundError, VigilError
from vigil.store.schema import Collection, Deployment, Membership, Snapshot, SnapshotEntry
from vigil.timeutil import as_utc, iso, utcnow

KINDS = ("gallery", "watchlist")
CATEGORIES = ("wanted", "missing", "victim-witness", "suspect", "vulnerable", "person-of-interest",
              "reference", "unspecified")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise VigilError(f"unknown collection kind {kind!r}")
    return kind


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise VigilError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
    return category


def find_collection(session: Session, kind: str, name: str) -> Collection | None:
    return session.scalar(select(Collection).where(Collection.kind == kind, Collection.name == name))


def get_collection(session: Session, kind: str, name_or_id: str | int) -> Collection:
    query = select(Collection).where(Collection.kind == kind)
    if isinstance(name_or_id, int) or (isinstance(name_or_id, str) and name_or_id.isdigit()):
        coll = session.scalar(query.where(Collection.id == int(name_or_id)))
        if coll is None:
            coll = session.scalar(query.where(Collection.name == str(name_or_id)))
    else:
        coll = session.scalar(query.where(Collection.name == name_or_id))
    if coll is None:
        raise NotFoundError(f"no {kind} {name_or_id!r}")
    return coll


def add_collection(session: Session, *, kind: str, name: str, pack: str, model_id: str, purpose: str,
                   legal_basis: str, category: str, created_by: str, expires_at: datetime | None) -> Collection:
    coll = Collection(kind=kind, name=name, pack=pack, model_id=model_id, purpose=purpose, legal_basis=legal_basis,
                      category=category, created_by=created_by, expires_at=expires_at)
    session.add(coll)
    session.flush()
    return coll


def all_collections(session: Session) -> list[Collection]:
    return list(session.scalars(select(Collection).order_by(Collection.id)))


def collection_size(session: Session, coll_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Membership).where(Membership.collection_id == coll_id)))


def member_ids(session: Session, coll_id: int) -> list[str]:
    return list(session.scalars(select(Membership.subject_id).where(Membership.collection_id == coll_id)))


def other_membership_count(session: Session, subject_id: str, coll_id: int) -> int:
    """In how many collections besides ``coll_id`` the subject is enrolled."""
    return int(session.scalar(select(func.count()).select_from(Membership).where(
        Membership.subject_id == subject_id, Membership.collection_id != coll_id)))


def is_expired(coll: Collection) -> bool:
    return coll.status == "expired" or (coll.expires_at is not None and as_utc(coll.expires_at) <= utcnow())


def watchlists_holding(session: Session, subject_ids, *, model_id: str | None = None,
                       authorised_only: bool = True) -> list[Collection]:
    """The watchlists any of these subjects is on (optionally only those keeping ``model_id``
    templates, and by default only those currently authorised)."""
    ids = list(subject_ids)
    if not ids:
        return []
    query = (select(Collection).join(Membership, Membership.collection_id == Collection.id)
             .where(Collection.kind == "watchlist", Membership.subject_id.in_(ids)).distinct())
    if model_id is not None:
        query = query.where(Collection.model_id == model_id)
    if authorised_only:
        query = query.where(Collection.authorised_by.is_not(None))
    return list(session.scalars(query.order_by(Collection.id)))


def deployed_watchlist_ids(session: Session) -> set[int]:
    """Watchlists that some deployment record names (whatever its status)."""
    ids: set[int] = set()
    for listed in session.scalars(select(Deployment.watchlist_ids)):
        ids.update(int(i) for i in (listed or []))
    return ids


def retire_snapshots(session: Session, coll_id: int) -> int:
    """Delete the entries of every snapshot of a watchlist and mark the snapshots deleted."""
    retired = 0
    for snap in session.scalars(select(Snapshot).where(Snapshot.watchlist_id == coll_id)):
        for entry in session.scalars(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snap.id)):
            session.delete(entry)
        snap.deleted_at = utcnow()
        retired += 1
    return retired


def describe(session: Session, coll: Collection) -> dict:
    return {
        "id": coll.id, "kind": coll.kind, "name": coll.name, "pack": coll.pack, "model_id": coll.model_id,
        "purpose": coll.purpose, "legal_basis": coll.legal_basis, "category": coll.category,
        "status": "expired" if is_expired(coll) else coll.status,
        "created_by": coll.created_by, "created_at": iso(coll.created_at),
        "authorised_by": coll.authorised_by, "authorised_at": iso(coll.authorised_at),
        "expires_at": iso(coll.expires_at), "subjects": collection_size(session, coll.id),
        "snapshots": int(session.scalar(select(func.count()).select_from(Snapshot)
                                        .where(Snapshot.watchlist_id == coll.id, Snapshot.deleted_at.is_(None)))),
    }
