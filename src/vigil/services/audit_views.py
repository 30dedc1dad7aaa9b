"""Reading and verifying the audit log (permission ``audit.view``).

Reading the log is not itself audited (as before the service layer): a trail of every look
at the trail would grow without bound and record nothing that changed.
"""

from __future__ import annotations

import json
from datetime import datetime

from pathlib import Path

from vigil.errors import VigilError
from vigil.fsutil import atomic_write
from vigil.governance.audit_query import entries_csv, query_entries
from vigil.governance.permissions import Actor
from vigil.services.exports import record_export
from vigil.services.pages import MAX_LIMIT, Page, check_limit, decode_cursor, encode_cursor, every_item
from vigil.services.unit import use_case
from vigil.store.exports import check_target


def list_audit(vigil, actor: Actor, *, action: str | None = None, actor_name: str | None = None,
               object_type: str | None = None, since: datetime | None = None, until: datetime | None = None,
               cursor: str | None = None, limit: int | None = None) -> Page:
    """Entries newest first, one page at a time, filtered by action prefix, actor, object type
    and time (``since``/``until``, UTC, inclusive)."""
    if since is not None and until is not None and since > until:
        raise VigilError("the start of the period is after its end")
    limit = check_limit(limit)
    after = decode_cursor("audit", cursor, 1)
    with use_case(vigil, actor, "audit.view") as uow:
        entries = query_entries(uow.session, action=action, actor_name=actor_name, object_type=object_type,
                                limit=limit + 1, before=after[0] if after else None, since=since, until=until)
    more = len(entries) > limit
    entries = entries[:limit]
    return Page(entries, encode_cursor("audit", (entries[-1]["seq"],)) if more else None)


def audit_entries(vigil, actor: Actor, **filters) -> list[dict]:
    """Every entry the filters select (as :func:`list_audit`), newest first: an export's rows."""
    return list(every_item(lambda cursor: list_audit(vigil, actor, cursor=cursor, limit=MAX_LIMIT, **filters)))


def export_audit(vigil, actor: Actor, target: Path, fmt: str, **filters) -> dict:
    """Write every entry ``filters`` select (as :func:`list_audit`) to a file, CSV or JSON, mode
    0600. Unlike reading, an export leaves the system, so it is recorded (``export.written``,
    with the filters and the number of entries)."""
    if fmt not in ("csv", "json"):
        raise VigilError("an audit export is csv or json")
    path = check_target(target, directory=False)
    entries = audit_entries(vigil, actor, **filters)
    text = entries_csv(entries) if fmt == "csv" else json.dumps(entries, indent=1)
    with use_case(vigil, actor, "audit.view") as uow:
        atomic_write(path, text.encode())
        record_export(uow, "audit_log", path, {"format": fmt, "entries": len(entries),
                                               **{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                                  for k, v in filters.items() if v is not None}})
    return {"path": str(path), "format": fmt, "entries": len(entries)}


def verify_audit(vigil, actor: Actor) -> dict:
    """Walk the whole chain and compare it with the head file and, where ``audit.anchor`` is
    set, the signed heads the anchor holds: ``ok``, ``entries``, ``first_bad_entry``, the
    ``reason`` it is bad, ``anchor`` (what it holds, the restores that rolled the log back)."""
    with use_case(vigil, actor, "audit.view") as uow:
        return vigil.audit.verify(uow.session)


def publish_anchor(vigil, actor: Actor) -> dict:
    """Publish the log's head to the anchor now (``system.admin``): after configuring an anchor
    for a log that already has entries, or from cron where nothing else writes. It is itself an
    audit entry, whose head is what gets anchored; heads spooled while the anchor was down go
    out first. ``pending`` says how many still wait (0 when the anchor took them)."""
    if vigil.audit.anchor is None:
        raise VigilError("no audit anchor is configured: set audit.anchor (VIGIL_AUDIT__ANCHOR) to a file path "
                         "outside the data directory or a nats:// URL")
    waiting = vigil.audit.anchor.pending()
    with use_case(vigil, actor, "system.admin") as uow:
        entry = uow.audit("audit.anchored", "audit", "", {"anchor": vigil.audit.anchor.describe()["location"],
                                                          "spooled_before": waiting})
        seq = entry.seq
    return {"anchored_entry": seq, "pending": vigil.audit.anchor.flush(), **vigil.audit.anchor.describe()}
