"""The one shape of a use case: permission, transaction, audit.

    with use_case(vigil, actor, "watchlist.authorise") as uow:
        coll = collections_repo.get(uow.session, "watchlist", name)
        ...
        uow.audit("watchlist.authorised", "watchlist", coll.id, {...})

A refusal that must leave a trace (a rule said no, a locked account tried to log in) is
written by :func:`refuse` in its own transaction, so the refusal is recorded even though
the use case's own transaction rolls back; then it raises.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy.orm import Session

from vigil.errors import PolicyError, VigilError
from vigil.governance.permissions import Actor, require


@dataclass
class Unit:
    """One use case in progress: who acts, inside which transaction."""

    vigil: "object"
    actor: Actor
    session: Session

    def audit(self, action: str, object_type: str = "", object_id: str | int | None = "",
              details: dict | None = None):
        """Add an audit entry to this transaction (it commits with the action or not at all)."""
        return self.vigil.audit.record(self.session, self.actor, action, object_type, object_id, details)

    def require(self, permission: str) -> None:
        """A further permission the use case needs once it knows what it is acting on."""
        require(self.actor, permission)

    def after_commit(self, callback) -> None:
        """Run ``callback`` once this transaction has committed (index updates, files)."""
        self.session.info.setdefault("after_commit_callbacks", []).append(callback)


@contextmanager
def use_case(vigil, actor: Actor, permission: str | None = None) -> Iterator[Unit]:
    """Check ``permission`` (if given), open a transaction, yield a :class:`Unit`.

    Commits when the block ends normally, rolls back (audit entries included) on error.
    """
    if permission is not None:
        require(actor, permission)
    with vigil.store.session() as session:
        yield Unit(vigil, actor, session)


def refuse(vigil, actor: Actor | str, action: str, object_type: str, object_id, reason: str,
           details: dict | None = None, error: type[VigilError] = PolicyError, message: str | None = None):
    """Record a refusal in its own transaction, then raise ``error`` naming the real reason."""
    with vigil.store.session() as session:
        vigil.audit.record(session, actor, action, object_type, object_id, {"why": reason, **(details or {})})
    raise error(message or reason)
