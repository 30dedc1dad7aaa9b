"""Reading the audit log (for the CLI, the API and the console)."""

from __future__ import annotations

import json

from sqlalchemy import select

from vigil.governance.permissions import Actor, require
from vigil.store.schema import AuditEntry


def query_audit(vigil, actor: Actor, *, action: str | None = None, actor_name: str | None = None,
                object_type: str | None = None, limit: int = 100, before: int | None = None) -> list[dict]:
    require(actor, "audit.view")
    with vigil.store.session() as session:
        query = select(AuditEntry)
        if action:
            query = query.where(AuditEntry.action.startswith(action))
        if actor_name:
            query = query.where(AuditEntry.actor == actor_name)
        if object_type:
            query = query.where(AuditEntry.object_type == object_type)
        if before:
            query = query.where(AuditEntry.seq < before)
        rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(min(limit, 1000))).all()
        return [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action, "object_type": e.object_type,
                 "object_id": e.object_id, "details": json.loads(e.details)} for e in rows]
