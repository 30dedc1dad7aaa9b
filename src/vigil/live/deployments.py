"""Deployments: the authorised, time-boxed use of live recognition at one location.

Lifecycle: created (draft) -> authorised (by a supervisor) -> running (watchlists frozen)
-> ended (record written). A deployment refuses to start without authorisation, outside
its window, or with an expired watchlist. ``vigil watch`` without a deployment creates a
*trial*: recorded as such, authorised by the acting user, and allowed only to roles that
may authorise deployments.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from vigil.engine.packs import check_live_pack
from vigil.errors import NotFoundError, PolicyError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.live.snapshots import delete_snapshot_entries, freeze
from vigil.store.collections import get_collection, is_expired
from vigil.store.schema import Alert, Collection, Deployment, Snapshot
from vigil.timeutil import as_utc, iso, utcnow

DECISIONS = ("confirmed", "false_alert", "unverified")
OUTCOMES = ("no_action", "engaged", "arrested")


def get_deployment(session, deployment_id: int | str) -> Deployment:
    dep = session.get(Deployment, int(deployment_id)) if str(deployment_id).isdigit() else None
    if dep is None:
        dep = session.scalar(select(Deployment).where(Deployment.name == str(deployment_id))
                             .order_by(Deployment.id.desc()).limit(1))
    if dep is None:
        raise NotFoundError(f"no deployment {deployment_id!r}")
    return dep


def create_deployment(vigil, actor: Actor, *, name: str, location: str, sources: list[dict], watchlists: list[str],
                      window_start: datetime | None, window_end: datetime | None, legal_basis: str = "",
                      purpose: str = "", false_alert_rate: float = 1e-4,
                      category_rates: dict[str, float] | None = None, trial: bool = False) -> dict:
    require(actor, "deployment.trial" if trial else "deployment.create")
    if not name.strip():
        raise VigilError("a deployment needs a name")
    if not watchlists:
        raise VigilError("a deployment needs at least one watchlist")
    if not sources:
        raise VigilError("a deployment needs at least one camera source")
    if not 0 < false_alert_rate < 0.1:
        raise VigilError("the accepted false alert rate per face must be between 0 and 0.1 (e.g. 0.0001)")
    for cat, rate in (category_rates or {}).items():
        if not 0 < rate < 0.1:
            raise VigilError(f"category {cat}: rate must be between 0 and 0.1")
    start = window_start or utcnow()
    end = window_end or start + timedelta(hours=4)
    if end <= start:
        raise VigilError("the window must end after it starts")
    if not trial and not legal_basis.strip():
        raise PolicyError("a deployment needs its legal basis (--legal-basis)")
    with vigil.store.session() as session:
        colls = [get_collection(session, "watchlist", w) for w in watchlists]
        for c in colls:
            check_live_pack(c.pack)
        models = {c.model_id for c in colls}
        if len(models) > 1:
            raise VigilError(f"the watchlists use different models ({', '.join(sorted(models))}); reindex one")
        cams = [s.get("camera") for s in sources]
        if len(set(cams)) != len(cams):
            raise VigilError("camera names must be unique")
        dep = Deployment(name=name.strip(), location=location, purpose=purpose, legal_basis=legal_basis,
                         sources=sources, watchlist_ids=[c.id for c in colls], window_start=start, window_end=end,
                         false_alert_rate=false_alert_rate, category_rates=category_rates or {}, is_trial=trial,
                         created_by=actor.username, status="draft")
        if trial:
            dep.status, dep.authorised_by, dep.authorised_at = "authorised", actor.username, utcnow()
        session.add(dep)
        session.flush()
        vigil.store.audit.record(session, actor, "deployment.created", "deployment", dep.id, {
            "name": dep.name, "location": location, "trial": trial, "watchlists": [c.name for c in colls],
            "cameras": cams, "window_start": iso(start), "window_end": iso(end),
            "false_alert_rate": false_alert_rate, "category_rates": category_rates or {}})
        if trial:
            vigil.store.audit.record(session, actor, "deployment.authorised", "deployment", dep.id,
                                     {"trial": True, "self_authorised": True})
        return describe(session, dep)


def authorise_deployment(vigil, actor: Actor, deployment_id, note: str = "") -> dict:
    require(actor, "deployment.authorise")
    with vigil.store.session() as session:
        dep = get_deployment(session, deployment_id)
        if dep.status not in ("draft", "authorised"):
            raise PolicyError(f"deployment {dep.id} is {dep.status}; only a draft can be authorised")
        dep.status, dep.authorised_by, dep.authorised_at = "authorised", actor.username, utcnow()
        vigil.store.audit.record(session, actor, "deployment.authorised", "deployment", dep.id,
                                 {"note": note, "self_authorised": dep.created_by == actor.username})
        return describe(session, dep)


def start_deployment(vigil, actor: Actor, deployment_id) -> dict:
    """Checks every rule, freezes the watchlists, marks the deployment running."""
    require(actor, "deployment.run")
    with vigil.store.session() as session:
        dep = get_deployment(session, deployment_id)
        now = utcnow()
        if dep.status == "running":
            raise PolicyError(f"deployment {dep.id} is already running")
        if dep.status != "authorised" or not dep.authorised_by:
            _refuse(vigil, actor, dep, "it has not been authorised by a supervisor")
        if as_utc(dep.window_start) and now < as_utc(dep.window_start):
            _refuse(vigil, actor, dep, f"its window opens at {iso(dep.window_start)}")
        if as_utc(dep.window_end) and now >= as_utc(dep.window_end):
            _refuse(vigil, actor, dep, f"its window closed at {iso(dep.window_end)}")
        snapshot_ids, notes = [], []
        for wid in dep.watchlist_ids:
            coll = session.get(Collection, wid)
            if coll is None:
                _refuse(vigil, actor, dep, f"watchlist {wid} no longer exists")
            if is_expired(coll):
                _refuse(vigil, actor, dep, f"watchlist {coll.name!r} has expired")
            if not coll.authorised_by:
                if not dep.is_trial:
                    _refuse(vigil, actor, dep, f"watchlist {coll.name!r} is not authorised (or changed since)")
                notes.append(f"trial with unauthorised watchlist {coll.name!r}")
            snap = freeze(vigil.store, session, actor.username, coll, dep.id)
            snapshot_ids.append(snap.id)
        dep.snapshot_ids = snapshot_ids
        dep.watchlist_size = int(session.scalar(select(func.coalesce(func.sum(Snapshot.size), 0))
                                                .where(Snapshot.id.in_(snapshot_ids))))
        dep.status, dep.started_at = "running", now
        dep.record = {**(dep.record or {}), "notes": notes}
        vigil.store.audit.record(session, actor, "deployment.started", "deployment", dep.id,
                                 {"snapshots": snapshot_ids, "watchlist_size": dep.watchlist_size, "notes": notes})
        return describe(session, dep)


def _refuse(vigil, actor: Actor, dep: Deployment, why: str):
    with vigil.store.session() as session:
        vigil.store.audit.record(session, actor, "deployment.refused", "deployment", dep.id, {"why": why})
    raise PolicyError(f"deployment {dep.id} ({dep.name}) refused to start: {why}")


def end_deployment(vigil, actor: Actor, deployment_id, summary: dict) -> dict:
    """Stop: counts are stored, the frozen snapshots are deleted (retention), the record written."""
    with vigil.store.session() as session:
        dep = get_deployment(session, deployment_id)
        dep.status, dep.ended_at = "ended", utcnow()
        dep.frames = int(summary.get("frames", 0))
        dep.frames_dropped = int(summary.get("frames_dropped", 0))
        dep.faces_seen = int(summary.get("faces_seen", 0))
        removed = 0
        if vigil.settings.retention.snapshot_delete_on_end:
            removed = delete_snapshot_entries(session, dep.snapshot_ids or [])
        dep.record = {**(dep.record or {}), "summary": {k: v for k, v in summary.items() if k != "type"}}
        vigil.store.audit.record(session, actor, "deployment.ended", "deployment", dep.id,
                                 {"faces_seen": dep.faces_seen, "alerts": summary.get("alerts", 0),
                                  "frames": dep.frames, "snapshot_entries_deleted": removed})
        return deployment_record(session, dep)


def record_outcomes(vigil, actor: Actor, deployment_id, *, engagements: int | None, arrests: int | None) -> dict:
    require(actor, "deployment.record")
    with vigil.store.session() as session:
        dep = get_deployment(session, deployment_id)
        if engagements is not None:
            dep.engagements = engagements
        if arrests is not None:
            dep.arrests = arrests
        vigil.store.audit.record(session, actor, "deployment.outcomes_recorded", "deployment", dep.id,
                                 {"engagements": dep.engagements, "arrests": dep.arrests})
        return deployment_record(session, dep)


def describe(session, dep: Deployment) -> dict:
    names = [c.name for c in session.scalars(select(Collection).where(Collection.id.in_(dep.watchlist_ids or [])))]
    return {"id": dep.id, "name": dep.name, "location": dep.location, "status": dep.status, "trial": dep.is_trial,
            "purpose": dep.purpose, "legal_basis": dep.legal_basis, "sources": dep.sources, "watchlists": names,
            "window_start": iso(dep.window_start), "window_end": iso(dep.window_end),
            "false_alert_rate": dep.false_alert_rate, "category_rates": dep.category_rates,
            "created_by": dep.created_by, "authorised_by": dep.authorised_by, "authorised_at": iso(dep.authorised_at),
            "started_at": iso(dep.started_at), "ended_at": iso(dep.ended_at), "watchlist_size": dep.watchlist_size}


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
        "accepted_false_alert_rate": dep.false_alert_rate,
        "expected_miss_rate": (dep.record or {}).get("thresholds", {}).get("expected_fnmr"),
        "notes": (dep.record or {}).get("notes", []),
    }


def list_deployments(vigil, actor: Actor) -> list[dict]:
    require(actor, "deployment.view")
    with vigil.store.session() as session:
        return [describe(session, d) for d in session.scalars(select(Deployment).order_by(Deployment.id.desc()))]
