"""Reading and verifying the audit log (permission ``audit.view``).

Reading the log is not itself audited (as before the service layer): a trail of every look
at the trail would grow without bound and record nothing that changed.
"""

from __future__ import annotations

from vigil.governance.audit_query import query_entries
from vigil.governance.permissions import Actor
from vigil.services.unit import use_case


def list_audit(vigil, actor: Actor, *, action: str | None = None, actor_name: str | None = None,
               object_type: str | None = None, limit: int = 100, before: int | None = None) -> list[dict]:
    """Entries newest first (at most 1,000), filtered by action prefix, actor or object type."""
    with use_case(vigil, actor, "audit.view") as uow:
        return query_entries(uow.session, action=action, actor_name=actor_name, object_type=object_type,
                             limit=limit, before=before)


def verify_audit(vigil, actor: Actor) -> dict:
    """Walk the whole chain and compare it with the head kept outside the database: ``ok``,
    ``entries``, ``first_bad_entry`` and the ``reason`` it is bad."""
    with use_case(vigil, actor, "audit.view") as uow:
        return vigil.audit.verify(uow.session)
