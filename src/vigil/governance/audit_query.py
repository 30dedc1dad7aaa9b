"""Reading the audit log: the query behind every view of it (CLI, API, console). Who may
read it is the service layer's business (``vigil.services.audit_views``)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.store.schema import AuditEntry

MAX_ROWS = 1000


def query_entries(session: Session, *, action: str | None = None, actor_name: str | None = None,
                  object_type: str | None = None, limit: int = 100, before: int | None = None) -> list[dict]:
    """Entries newest first, filtered; at most ``MAX_ROWS``. ``action`` matches a prefix
    (``auth.`` for every login event); ``before`` pages back from a sequence number."""
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if actor_name:
        query = query.where(AuditEntry.actor == actor_name)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if before:
        query = query.where(AuditEntry.seq < before)
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(max(1, min(limit, MAX_ROWS)))).all()
    return [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action, "object_type": e.object_type,
             "object_id": e.object_id, "details": json.loads(e.details)} for e in rows]
