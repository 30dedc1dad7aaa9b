"""Galleries (reference collections for retrospective search) and watchlists.

A collection keeps templates of one pack (its ``model_id``); enrolment and search use it.
A watchlist also records its purpose, legal basis, who created and who authorised it, and
an expiry; it can be used by a deployment only while authorised and unexpired.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.engine.packs import check_live_pack
from vigil.errors import ConflictError, NotFoundError, PolicyError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.store.schema import Collection, Membership, Snapshot
from vigil.timeutil import as_utc, iso, utcnow

KINDS = ("gallery", "watchlist")
CATEGORIES = ("wanted", "missing", "victim-witness", "suspect", "vulnerable", "person-of-interest",
              "reference", "unspecified")


def _manage_permission(kind: str) -> str:
    return "gallery.manage" if kind == "gallery" else "watchlist.manage"


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise VigilError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
    return category


def create_collection(session: Session, audit, actor: Actor, kind: str, name: str, *, pack: str, model_id: str,
                      purpose: str = "", legal_basis: str = "", category: str = "unspecified",
                      expires_at: datetime | None = None) -> Collection:
    if kind not in KINDS:
        raise VigilError(f"unknown collection kind {kind!r}")
    require(actor, _manage_permission(kind))
    name = name.strip()
    if not name or len(name) > 120:
        raise VigilError("a name of 1-120 characters is required")
    if kind == "watchlist" and not purpose.strip():
        raise PolicyError("a watchlist needs a purpose (--purpose)")
    if kind == "watchlist":
        check_live_pack(pack)
    check_category(category)
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        raise PolicyError("the expiry date is already past")
    if session.scalar(select(Collection).where(Collection.kind == kind, Collection.name == name)):
        raise ConflictError(f"a {kind} named {name!r} already exists")
    coll = Collection(kind=kind, name=name, pack=pack, model_id=model_id, purpose=purpose,
                      legal_basis=legal_basis, category=category, created_by=actor.username, expires_at=expires_at)
    session.add(coll)
    session.flush()
    audit.record(session, actor, f"{kind}.created", kind, coll.id,
                 {"name": name, "pack": pack, "model_id": model_id, "purpose": purpose,
                  "legal_basis": legal_basis, "category": category, "expires_at": iso(expires_at)})
    return coll


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


def collection_size(session: Session, coll_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(Membership).where(Membership.collection_id == coll_id)))


def is_expired(coll: Collection) -> bool:
    return coll.status == "expired" or (coll.expires_at is not None and as_utc(coll.expires_at) <= utcnow())


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


def list_collections(session: Session, actor: Actor, kind: str) -> list[dict]:
    require(actor, "collection.view")
    rows = session.scalars(select(Collection).where(Collection.kind == kind).order_by(Collection.name))
    return [describe(session, c) for c in rows]


def authorise_watchlist(session: Session, audit, actor: Actor, coll: Collection, note: str = "") -> Collection:
    require(actor, "watchlist.authorise")
    if coll.kind != "watchlist":
        raise VigilError("only watchlists are authorised")
    if is_expired(coll):
        raise PolicyError(f"watchlist {coll.name!r} has expired; create a new one")
    coll.authorised_by = actor.username
    coll.authorised_at = utcnow()
    audit.record(session, actor, "watchlist.authorised", "watchlist", coll.id,
                 {"name": coll.name, "note": note, "self_authorised": coll.created_by == actor.username,
                  "subjects": collection_size(session, coll.id)})
    return coll


def expire_collection(session: Session, audit, actor: Actor, coll: Collection) -> Collection:
    require(actor, _manage_permission(coll.kind))
    coll.status = "expired"
    coll.expires_at = coll.expires_at if coll.expires_at and as_utc(coll.expires_at) < utcnow() else utcnow()
    audit.record(session, actor, f"{coll.kind}.expired", coll.kind, coll.id, {"name": coll.name})
    return coll


def mark_changed(session: Session, audit, actor: Actor, coll: Collection, what: str) -> None:
    """Any change to a watchlist's content withdraws its authorisation: new content needs a new one.
    (Deployments already running are unaffected: they use the snapshot frozen at their start.)"""
    if coll.kind == "watchlist" and coll.authorised_by:
        audit.record(session, actor, "watchlist.authorisation_withdrawn", "watchlist", coll.id,
                     {"name": coll.name, "because": what, "was_authorised_by": coll.authorised_by})
        coll.authorised_by = None
        coll.authorised_at = None


def delete_collection(store, session: Session, actor: Actor, coll: Collection, reason: str) -> dict:
    """Delete a collection. Subjects enrolled only through it are erased with it; subjects
    that also belong elsewhere only lose this membership."""
    from vigil.store.subjects import erase_subject, get_subject, remove_member
    from vigil.store.schema import SnapshotEntry

    require(actor, _manage_permission(coll.kind))
    members = session.scalars(select(Membership.subject_id).where(Membership.collection_id == coll.id)).all()
    erased, kept = 0, 0
    for sid in members:
        others = session.scalar(select(func.count()).select_from(Membership).where(
            Membership.subject_id == sid, Membership.collection_id != coll.id))
        if others:
            remove_member(session, coll, get_subject(session, sid))
            kept += 1
        else:
            # Permission to delete the collection covers erasing the subjects that exist only in it.
            erase_subject(store, session, actor, sid, f"{coll.kind} {coll.name!r} deleted: {reason}",
                          check_permission=False)
            erased += 1
    for snap in session.scalars(select(Snapshot).where(Snapshot.watchlist_id == coll.id)):
        for entry in session.scalars(select(SnapshotEntry).where(SnapshotEntry.snapshot_id == snap.id)):
            session.delete(entry)
        snap.deleted_at = utcnow()
    summary = {"name": coll.name, "subjects_erased": erased, "subjects_kept_elsewhere": kept, "reason": reason}
    store.audit.record(session, actor, f"{coll.kind}.deleted", coll.kind, coll.id, summary)
    session.delete(coll)
    return summary

