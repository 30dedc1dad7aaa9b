"""Reading the audit log: the query behind every view of it (CLI, API, console). Who may
read it is the service layer's business (``vigil.services.audit_views``)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.store.schema import AuditEntry

MAX_ROWS = 1000


def _stamp(value: datetime) -> str:
    """A UTC instant in the audit log's own ISO form, to the second (``ts`` compares as text)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def query_entries(session: Session, *, action: str | None = None, actor_name: str | None = None,
                  object_type: str | None = None, limit: int = 100, before: int | None = None,
                  since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Entries newest first, filtered; at most ``MAX_ROWS`` + 1 (a page and a look ahead). ``action`` matches a prefix
    (``auth.`` for every login event); ``before`` pages back from a sequence number;
    ``since``/``until`` bound the time (UTC, both inclusive to the second)."""
    query = select(AuditEntry)
    if since is not None:
        query = query.where(AuditEntry.ts >= _stamp(since))
    if until is not None:
        query = query.where(AuditEntry.ts < _stamp(until + timedelta(seconds=1)))
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if actor_name:
        query = query.where(AuditEntry.actor == actor_name)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if before:
        query = query.where(AuditEntry.seq < before)
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(max(1, min(limit, MAX_ROWS + 1)))).all()
    return [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action, "object_type": e.object_type,
             "object_id": e.object_id, "details": json.loads(e.details)} for e in rows]


CSV_COLUMNS = ("seq", "ts", "actor", "action", "object_type", "object_id", "details")


def entries_csv(entries: list[dict]) -> str:
    """Entries as CSV (details as canonical JSON), for an auditor's spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([e["seq"], e["ts"], e["actor"], e["action"], e["object_type"], e["object_id"],
                         json.dumps(e["details"], sort_keys=True)])
    return out.getvalue()
