"""Failed and refused logins from one client address are audited one by one only up to
``login_audit_per_address_per_minute`` in a minute; the rest of that minute's attempts are
counted, and one ``auth.login_failures_summarised`` entry per address and minute says how
many there were. A password spray of 40 usernames from one address thus writes a few
entries, not 40, and the audit log stays readable; nothing is lost (every attempt is counted,
and the lockout counters are kept apart, in ``users.count_failure``).

The minute's count lives in a ``login_throttle`` row of its own (key ``audit:<address>``):
``failures`` counts the minute's attempts, ``last_failure_at`` is when the minute began and
``locked_until`` when it ends. A minute that has ended is summarised by the next login attempt
from any address, or by :func:`summarise_ended_minutes` (the server calls it every minute)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from vigil.governance.permissions import SYSTEM
from vigil.services.unit import Unit, use_case
from vigil.store.schema import LoginThrottle
from vigil.timeutil import as_utc, iso, utcnow

WINDOW = timedelta(minutes=1)
PREFIX = "audit:"


def _summarise(uow: Unit, row: LoginThrottle, limit: int) -> None:
    """Write the entry for an ended minute whose attempts were not all audited one by one."""
    if row.failures > limit:
        client = row.key[len(PREFIX):]
        uow.vigil.audit.record(uow.session, SYSTEM, "auth.login_failures_summarised", "client", client, {
            "client": client, "summarised": row.failures - limit, "audited_one_by_one_first": limit,
            "from": iso(row.last_failure_at), "to": iso(row.locked_until)})


def summarise_ended(uow: Unit) -> int:
    """Summarise every ended minute (call under the audit lock); returns how many."""
    now = utcnow()
    limit = uow.vigil.settings.login_audit_per_address_per_minute
    rows = uow.session.scalars(select(LoginThrottle).where(LoginThrottle.key.startswith(PREFIX))).all()
    ended = [r for r in rows if r.locked_until is None or as_utc(r.locked_until) <= now]
    for row in ended:
        _summarise(uow, row, limit)
        uow.session.delete(row)
    uow.session.flush()
    return len(ended)


def summarise_ended_minutes(vigil) -> int:
    """Summarise the ended minutes of every address (the server's minute timer)."""
    with vigil.store.session() as session:
        pending = session.scalar(select(LoginThrottle.key).where(LoginThrottle.key.startswith(PREFIX)).limit(1))
    if pending is None:
        return 0
    with use_case(vigil, SYSTEM) as uow:
        vigil.audit.lock(uow.session)
        return summarise_ended(uow)


def record_attempt(uow: Unit, action: str, username: str, details: dict, client: str | None, *,
                   always: bool = False) -> bool:
    """Audit a failed or refused login (call under the audit lock): one by one while the
    address's minute allows (or ``always``: a lock being set), else counted for its summary.
    Returns whether it was written one by one."""
    summarise_ended(uow)
    limit = uow.vigil.settings.login_audit_per_address_per_minute
    if client:
        now = utcnow()
        key = PREFIX + client[:110]
        row = uow.session.get(LoginThrottle, key, populate_existing=True)
        if row is None:
            row = LoginThrottle(key=key, failures=0, last_failure_at=now, locked_until=now + WINDOW)
            uow.session.add(row)
        over = (row.failures or 0) >= limit
        if not (over and always):  # a lock being set is written even in a flood (and not counted)
            row.failures = (row.failures or 0) + 1
            uow.session.flush()
            if over:
                return False
    uow.audit(action, "user", username, {"client": client, **details})
    return True
