"""Deployment rows and their published record (persistence only: plain queries that take a
session). The lifecycle, permissions and audit entries live in ``vigil.services.deployments``
and ``vigil.services.live_runs``."""

from __future__ import annotations

from sqlalchemy import func, select

from vigil.errors import NotFoundError
from vigil.store.schema import Alert, Collection, Deployment
from vigil.timeutil import as_utc, iso


def get_deployment(session, deployment_id: int | str, *, for_update: bool = False) -> Deployment:
    """By id, or by name (the newest of that name)."""
    dep = None
    if str(deployment_id).isdigit():
        query = select(Deployment).where(Deployment.id == int(deployment_id))
        dep = session.scalar(query.with_for_update() if for_update else query)
    if dep is None:
        dep = session.scalar(select(Deployment).where(Deployment.name == str(deployment_id))
                             .order_by(Deployment.id.desc()).limit(1))
    if dep is None:
        raise NotFoundError(f"no deployment {deployment_id!r}")
    return dep


def all_deployments(session) -> list[Deployment]:
    return list(session.scalars(select(Deployment).order_by(Deployment.id.desc())))


def describe(session, dep: Deployment) -> dict:
    names = [c.name for c in session.scalars(select(Collection).where(Collection.id.in_(dep.watchlist_ids or [])))]
    return {"id": dep.id, "name": dep.name, "location": dep.location, "status": dep.status, "trial": dep.is_trial,
            "purpose": dep.purpose, "legal_basis": dep.legal_basis, "cameras": dep.sources, "watchlists": names,
            "window_start": iso(dep.window_start), "window_end": iso(dep.window_end),
            "false_alert_rate": dep.false_alert_rate, "category_rates": dep.category_rates,
            "created_by": dep.created_by, "authorised_by": dep.authorised_by, "authorised_at": iso(dep.authorised_at),
            "started_at": iso(dep.started_at), "ended_at": iso(dep.ended_at), "watchlist_size": dep.watchlist_size,
            "heartbeat_at": iso(dep.heartbeat_at), "stop_requested_by": dep.stop_requested_by,
            "ended_because": (dep.record or {}).get("ended_because"), "placement": dep.placement or "local"}


def deployment_record(session, dep: Deployment) -> dict:
    """The published record of one deployment (the fields the Met publishes, and a few more)."""
    counts = dict(session.execute(select(Alert.decision, func.count()).where(Alert.deployment_id == dep.id)
                                  .group_by(Alert.decision)).all())
    alerts = sum(counts.values())
    outcome_counts = dict(session.execute(select(Alert.outcome, func.count()).where(Alert.deployment_id == dep.id)
                                          .group_by(Alert.outcome)).all())
    start, end = as_utc(dep.started_at), as_utc(dep.ended_at)
    false_alerts = counts.get("false_alert", 0)
    return {
        "deployment_id": dep.id, "name": dep.name, "location": dep.location, "trial": dep.is_trial,
        "date": start.date().isoformat() if start else None, "start": iso(start), "end": iso(end),
        "duration_minutes": round((end - start).total_seconds() / 60, 1) if start and end else None,
        "status": dep.status, "legal_basis": dep.legal_basis, "authorised_by": dep.authorised_by,
        "watchlist_size": dep.watchlist_size, "faces_seen": dep.faces_seen, "alerts": alerts,
        "true_alerts": counts.get("confirmed", 0), "false_alerts": false_alerts,
        "unverified_alerts": counts.get("unverified", 0), "undecided_alerts": counts.get(None, 0),
        "false_alert_rate": (false_alerts / dep.faces_seen) if dep.faces_seen else None,
        "engagements": max(dep.engagements, outcome_counts.get("engaged", 0) + outcome_counts.get("arrested", 0)),
        "arrests": max(dep.arrests, outcome_counts.get("arrested", 0)),
        "frames": dep.frames, "frames_dropped": dep.frames_dropped,
        "threshold": (dep.record or {}).get("thresholds", {}).get("default"),
        "threshold_by_references": (dep.record or {}).get("thresholds", {}).get("by_references"),
        "accepted_false_alert_rate": dep.false_alert_rate,
        "expected_miss_rate": (dep.record or {}).get("thresholds", {}).get("expected_fnmr"),
        "notes": (dep.record or {}).get("notes", []),
        "ended_because": (dep.record or {}).get("ended_because"),
    }
