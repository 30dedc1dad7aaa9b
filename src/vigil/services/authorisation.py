"""The rule that keeps a watchlist's authorisation honest: a supervisor authorises the
content they saw, so any later change to that content withdraws it.

A change is anything that alters what a deployment using the watchlist would match: a
template added, replaced or removed for one of its subjects (through whichever collection
the change came in), a subject erased, or its membership changed. Each withdrawal is
audited in the transaction that made the change, and reported to the person who made it
(``authorisation_withdrawn`` in every use case's result). Deployments already running keep
the snapshot frozen at their start.
"""

from __future__ import annotations

from vigil.store.collections import watchlists_holding
from vigil.store.schema import Collection


def withdraw(uow, watchlist: Collection, because: str) -> dict | None:
    """Withdraw one watchlist's authorisation (if it has one); what to tell the user."""
    if watchlist.kind != "watchlist" or not watchlist.authorised_by:
        return None
    uow.audit("watchlist.authorisation_withdrawn", "watchlist", watchlist.id,
              {"name": watchlist.name, "because": because, "was_authorised_by": watchlist.authorised_by})
    watchlist.authorised_by = None
    watchlist.authorised_at = None
    return {"watchlist": watchlist.name, "because": because}


def withdraw_for_subjects(uow, subject_ids, because: str, *, model_id: str | None = None,
                          also: Collection | None = None) -> list[dict]:
    """Withdraw the authorisation of every authorised watchlist holding any of these subjects
    (only those keeping ``model_id`` templates when the change concerns one model), and of
    ``also`` (a watchlist whose membership itself changed)."""
    found = watchlists_holding(uow.session, subject_ids, model_id=model_id)
    if also is not None and also.kind == "watchlist" and all(w.id != also.id for w in found):
        found.append(also)
    return [w for w in (withdraw(uow, coll, because) for coll in found) if w]
