"""Galleries and watchlists: create, list, show, list members, authorise, expire, delete.

Each use case checks its permission, runs in one transaction and writes its audit entry
there (see :func:`vigil.services.unit.use_case`). Who may see a collection's *faces* (its
member list, a member's image) is narrower than who may see that it exists: people with
``subject.view``, and for the watchlists a deployment uses, the operators who run it and
adjudicate its alerts (``image.view``). Custody galleries stay with investigators.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from vigil.engine.packs import check_live_pack
from vigil.errors import ConflictError, PermissionDenied, PolicyError, VigilError
from vigil.governance.permissions import PERMISSIONS, Actor
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import use_case
from vigil.store import collections as repo
from vigil.store.schema import Collection, Membership, Subject
from vigil.store.subjects import erase_subject_rows, get_subject, remove_member
from vigil.timeutil import as_utc, iso, utcnow

CATEGORIES = repo.CATEGORIES
check_category = repo.check_category  # for front ends that validate a category up front


def manage_permission(kind: str) -> str:
    return "gallery.manage" if repo.check_kind(kind) == "gallery" else "watchlist.manage"


def permissions_of(actor: Actor) -> set[str]:
    """Every permission the actor's role holds (the console decides which menus to show)."""
    return {p for p, roles in PERMISSIONS.items() if actor.role in roles}


def require_faces_visible(uow, collections: list[Collection], what: str) -> None:
    """Faces and member lists: ``subject.view``, or ``image.view`` for a watchlist a
    deployment uses. Raises PermissionDenied naming the rule."""
    if uow.actor.can("subject.view"):
        return
    uow.require("image.view")
    deployed = repo.deployed_watchlist_ids(uow.session)
    if not any(c.kind == "watchlist" and c.id in deployed for c in collections):
        raise PermissionDenied(f"{uow.actor.username} ({uow.actor.role}) may see {what} only for watchlists "
                               "used by deployments, not galleries")


def create_collection(vigil, actor: Actor, kind: str, name: str, *, pack: str | None = None, purpose: str = "",
                      legal_basis: str = "", category: str = "unspecified",
                      expires_at: datetime | None = None) -> dict:
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        name = (name or "").strip()
        if not name or len(name) > 120:
            raise VigilError("a name of 1-120 characters is required")
        if kind == "watchlist" and not purpose.strip():
            raise PolicyError("a watchlist needs a purpose (--purpose)")
        repo.check_category(category)
        if expires_at is not None and as_utc(expires_at) <= utcnow():
            raise PolicyError("the expiry date is already past")
        engine = vigil.engine(pack)
        if kind == "watchlist":
            check_live_pack(engine.pack.name)
        if repo.find_collection(uow.session, kind, name):
            raise ConflictError(f"a {kind} named {name!r} already exists")
        coll = repo.add_collection(uow.session, kind=kind, name=name, pack=engine.pack.name, model_id=engine.model_id,
                                   purpose=purpose, legal_basis=legal_basis, category=category,
                                   created_by=actor.username, expires_at=expires_at)
        uow.audit(f"{kind}.created", kind, coll.id,
                  {"name": name, "pack": coll.pack, "model_id": coll.model_id, "purpose": purpose,
                   "legal_basis": legal_basis, "category": category, "expires_at": iso(expires_at)})
        return repo.describe(uow.session, coll)


PLURAL = {"gallery": "galleries", "watchlist": "watchlists"}


def list_collections(vigil, actor: Actor, kind: str, *, cursor: str | None = None,
                     limit: int | None = None) -> Page:
    """Watchlists or galleries by name, one page at a time."""
    repo.check_kind(kind)
    with use_case(vigil, actor, "collection.view") as uow:
        query = select(Collection).where(Collection.kind == kind)
        return keyset_page(uow.session, query, list_name=PLURAL[kind], order=[Collection.name],
                           key_of=lambda c: (c.name,), item_of=lambda c: repo.describe(uow.session, c),
                           cursor=cursor, limit=limit)


def show_collection(vigil, actor: Actor, kind: str, name: str) -> dict:
    repo.check_kind(kind)
    with use_case(vigil, actor, "collection.view") as uow:
        return repo.describe(uow.session, repo.get_collection(uow.session, kind, name))


def collection_members(vigil, actor: Actor, kind: str, name: str, *, q: str | None = None,
                       cursor: str | None = None, limit: int | None = None) -> Page:
    """A collection's subjects, the most recently added first, one page at a time (from an index:
    a page a million subjects deep costs what the first does); ``q`` keeps those whose name or
    reference contains it (case-insensitive)."""
    repo.check_kind(kind)
    with use_case(vigil, actor, "collection.view") as uow:
        coll = repo.get_collection(uow.session, kind, name)
        require_faces_visible(uow, [coll], "member lists")
        query = select(Membership, Subject).join(Subject, Membership.subject_id == Subject.id) \
            .where(Membership.collection_id == coll.id)
        if q and q.strip():
            pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(func.lower(Subject.display_name).like(pattern, escape="\\"),
                                    func.lower(Subject.reference).like(pattern, escape="\\")))
        return keyset_page(uow.session, query, list_name=f"{PLURAL[kind]}/{coll.id}/subjects", scalars=False,
                           order=[Membership.added_at, Membership.subject_id], descending=True,
                           key_of=lambda row: (as_utc(row[0].added_at).isoformat(), row[0].subject_id),
                           key_from_cursor=lambda k: (as_utc(datetime.fromisoformat(k[0])), k[1]),
                           cursor=cursor, limit=limit, item_of=lambda row: {
                               "id": row[1].id, "name": row[1].display_name, "category": row[1].category,
                               "reference": row[1].reference, "added_at": iso(row[0].added_at)})


def authorise_watchlist(vigil, actor: Actor, name: str, note: str = "") -> dict:
    with use_case(vigil, actor, "watchlist.authorise") as uow:
        coll = repo.get_collection(uow.session, "watchlist", name)
        if repo.is_expired(coll):
            raise PolicyError(f"watchlist {coll.name!r} has expired; create a new one")
        coll.authorised_by = actor.username
        coll.authorised_at = utcnow()
        uow.audit("watchlist.authorised", "watchlist", coll.id,
                  {"name": coll.name, "note": note, "self_authorised": coll.created_by == actor.username,
                   "subjects": repo.collection_size(uow.session, coll.id)})
        return repo.describe(uow.session, coll)


def expire_collection(vigil, actor: Actor, kind: str, name: str) -> dict:
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        coll = repo.get_collection(uow.session, kind, name)
        coll.status = "expired"
        coll.expires_at = coll.expires_at if coll.expires_at and as_utc(coll.expires_at) < utcnow() else utcnow()
        uow.audit(f"{kind}.expired", kind, coll.id, {"name": coll.name})
        return repo.describe(uow.session, coll)


def delete_collection(vigil, actor: Actor, kind: str, name: str, reason: str) -> dict:
    """Delete a collection. Subjects enrolled only through it are erased with it, which needs
    the erasure permission (``subject.delete``) as well; subjects that also belong elsewhere
    only lose this membership."""
    with use_case(vigil, actor, manage_permission(kind)) as uow:
        if not (reason or "").strip():
            raise VigilError("deleting needs a reason (--reason)")
        session = uow.session
        coll = repo.get_collection(session, kind, name)
        members = repo.member_ids(session, coll.id)
        only_here = [sid for sid in members if not repo.other_membership_count(session, sid, coll.id)]
        if only_here:
            uow.require("subject.delete")
        why = f"{kind} {coll.name!r} deleted: {reason}"
        for sid in members:
            if sid in only_here:
                summary = erase_subject_rows(session, vigil.store.blobs, sid)
                uow.audit("subject.erased", "subject", sid,
                          {k: v for k, v in summary.items() if k != "collection_ids"} | {"reason": why})
            else:
                remove_member(session, coll, get_subject(session, sid))
        repo.retire_snapshots(session, coll.id)
        result = {"name": coll.name, "subjects_erased": len(only_here),
                  "subjects_kept_elsewhere": len(members) - len(only_here), "reason": reason}
        uow.audit(f"{kind}.deleted", kind, coll.id, result)
        cid = coll.id
        session.delete(coll)
        uow.after_commit(lambda: vigil.indexes.drop(cid))
        return result
