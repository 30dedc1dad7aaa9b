"""Who searched what: the record every retrospective search leaves (permission ``search.view``).

Each search is stored with its case reference, reason, the gallery, how many faces the probe
held and the candidates' subject ids and scores (never the probe's face unless kept as
evidence). Auditors, supervisors and administrators see every search; an investigator sees
their own. Reading the record is not itself audited (see :mod:`vigil.services.audit_views`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from vigil.errors import VigilError
from vigil.governance.permissions import Actor
from vigil.services.pages import Page, keyset_page
from vigil.services.unit import use_case
from vigil.store.schema import SearchRecord
from vigil.timeutil import iso

def list_searches(vigil, actor: Actor, *, since: datetime | None = None, until: datetime | None = None,
                  case_ref: str | None = None, by: str | None = None, cursor: str | None = None,
                  limit: int | None = None) -> Page:
    """Search records newest first, one page at a time, filtered by time (UTC, inclusive),
    case reference and who searched."""
    if since is not None and until is not None and since > until:
        raise VigilError("the start of the period is after its end")
    with use_case(vigil, actor, "search.view") as uow:
        query = select(SearchRecord)
        if not actor.can("audit.view"):
            query = query.where(SearchRecord.actor == actor.username)  # an investigator's own searches
        if by:
            query = query.where(SearchRecord.actor == by)
        if case_ref:
            query = query.where(SearchRecord.case_ref == case_ref)
        if since is not None:
            query = query.where(SearchRecord.created_at >= since)
        if until is not None:
            query = query.where(SearchRecord.created_at <= until)
        return keyset_page(uow.session, query, list_name="searches", order=[SearchRecord.id], descending=True,
                           key_of=lambda r: (r.id,), cursor=cursor, limit=limit, item_of=lambda r: {
                               "id": r.id, "at": iso(r.created_at), "by": r.actor, "case_ref": r.case_ref,
                               "reason": r.reason, "collection": r.collection_name, "probe": r.probe_kind,
                               "faces": r.faces, "top": r.top_k, "candidates": len(r.results or []),
                               "probe_kept": r.probe_blob_id is not None})
