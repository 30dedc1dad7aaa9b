"""Alerts: a person decides every one, and every decision is kept.

A decision (confirmed match / false alert / could not verify), its outcome (no action /
engaged / arrested), notes and case reference are appended to ``alert_decisions``; nothing
is overwritten. The first decision needs ``alert.decide``; changing it is a *revision*: it
needs ``alert.revise`` (supervisors and administrators) and a reason, and its audit entry
says what it revised. The alert row keeps the latest decision (denormalised) so that
reports and retention read one row.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from vigil.errors import NotFoundError, VigilError
from vigil.governance.permissions import Actor
from vigil.services.unit import use_case
from vigil.store.exports import add_export_record, check_target
from vigil.store.schema import Alert, AlertDecision, Deployment
from vigil.timeutil import iso, utcnow

DECISIONS = ("confirmed", "false_alert", "unverified")
OUTCOMES = ("no_action", "engaged", "arrested")
IMAGES = ("probe", "frame", "watchlist")


def alert_payload(alert: Alert, deployment_name: str = "") -> dict:
    return {"type": "alert", "alert_id": alert.id, "deployment_id": alert.deployment_id,
            "deployment": deployment_name, "subject_id": alert.subject_id, "name": alert.subject_name,
            "category": alert.category, "score": round(alert.score, 5), "threshold": round(alert.threshold, 5),
            "fmr": alert.fmr, "camera": alert.camera, "time": round(alert.source_time, 3),
            "utc": iso(alert.created_at), "track_id": alert.track_id, "decision": alert.decision,
            "outcome": alert.outcome, "decided_by": alert.decided_by, "notes": alert.notes or None,
            "runner_up": alert.runner_up, "lookalike_warning": lookalike_warning(alert)}


def lookalike_warning(alert: Alert) -> str | None:
    """What the operator reads when another listed person scored nearly as high (a relative,
    a twin): compare with both before deciding."""
    other = alert.runner_up
    if not other or not other.get("lookalike"):
        return None
    return (f"look-alike: {other['name']} ({other['subject_id']}) on the same watchlist scored {other['score']:.3f} "
            f"against their threshold {other['threshold']:.3f}; compare the face with both before deciding")


def _decision_row(d: AlertDecision) -> dict:
    return {"seq": d.seq, "decided_by": d.decided_by, "decided_at": iso(d.decided_at), "decision": d.decision,
            "outcome": d.outcome, "notes": d.notes or None, "case_ref": d.case_ref or None,
            "reason": d.reason or None}


def _history(session, alert_id: int) -> list[dict]:
    rows = session.scalars(select(AlertDecision).where(AlertDecision.alert_id == alert_id)
                           .order_by(AlertDecision.seq))
    return [_decision_row(d) for d in rows]


def _get(session, alert_id) -> Alert:
    alert = session.get(Alert, int(alert_id))
    if alert is None:
        raise NotFoundError(f"no alert {alert_id} (it may have been deleted by retention)")
    return alert


def list_alerts(vigil, actor: Actor, *, deployment_id=None, undecided_only: bool = False,
                after_id: int = 0, limit: int = 500) -> list[dict]:
    with use_case(vigil, actor, "alert.view") as uow:
        query = select(Alert, Deployment.name).join(Deployment, Deployment.id == Alert.deployment_id)
        if deployment_id is not None:
            query = query.where(Alert.deployment_id == int(deployment_id))
        if undecided_only:
            query = query.where(Alert.decision.is_(None))
        if after_id:
            query = query.where(Alert.id > after_id)
        rows = uow.session.execute(query.order_by(Alert.id.desc() if not after_id else Alert.id).limit(limit)).all()
        out = []
        for alert, dep_name in rows:
            payload = alert_payload(alert, dep_name)
            payload.update(undecided=alert.decision is None, has_images=alert.probe_blob_id is not None,
                           case_ref=alert.case_ref or None)
            out.append(payload)
        return out


def show_alert(vigil, actor: Actor, alert_id: int) -> dict:
    """One alert with its latest decision and ``history``: every decision, oldest first."""
    with use_case(vigil, actor, "alert.view") as uow:
        alert = _get(uow.session, alert_id)
        dep = uow.session.get(Deployment, alert.deployment_id)
        return {**alert_payload(alert, dep.name if dep else ""), "case_ref": alert.case_ref or None,
                "has_images": alert.probe_blob_id is not None, "has_clip": alert.clip_blob_id is not None,
                "history": _history(uow.session, alert.id)}


def decision_history(vigil, actor: Actor, alert_id: int) -> list[dict]:
    """Every decision on an alert, oldest first (for the subject-access export and reviews)."""
    with use_case(vigil, actor, "alert.view") as uow:
        return _history(uow.session, _get(uow.session, alert_id).id)


def decide(vigil, actor: Actor, alert_id: int, *, decision: str, outcome: str = "no_action", notes: str = "",
           case_ref: str = "", reason: str = "") -> dict:
    """Append a decision. A second one revises the first: ``alert.revise`` and a reason needed."""
    if decision not in DECISIONS:
        raise VigilError(f"decision must be one of {', '.join(DECISIONS)}")
    if outcome not in OUTCOMES:
        raise VigilError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if decision == "false_alert" and outcome == "arrested":
        raise VigilError("an arrest on a false alert must be recorded as 'confirmed' or 'unverified' with notes")
    with use_case(vigil, actor, "alert.decide") as uow:
        alert = _get(uow.session, alert_id)
        last = uow.session.scalar(select(func.max(AlertDecision.seq)).where(AlertDecision.alert_id == alert.id)) or 0
        revising = last > 0 or alert.decision is not None
        previous = {"decision": alert.decision, "outcome": alert.outcome, "decided_by": alert.decided_by}
        if revising:
            uow.require("alert.revise")
            if not reason.strip():
                raise VigilError(f"alert {alert.id} was already decided ({alert.decision}, by {alert.decided_by}); "
                                 "changing a decision needs a reason (--reason)")
        now = utcnow()
        case_ref = case_ref or alert.case_ref or ""
        uow.session.add(AlertDecision(alert_id=alert.id, seq=last + 1, decided_by=actor.username, decided_at=now,
                                      decision=decision, outcome=outcome, notes=notes, case_ref=case_ref,
                                      reason=reason.strip()))
        alert.decision, alert.outcome, alert.notes, alert.case_ref = decision, outcome, notes, case_ref
        alert.decided_by, alert.decided_at = actor.username, now
        details = {"decision": decision, "outcome": outcome, "seq": last + 1, "revision": revising,
                   "deployment_id": alert.deployment_id, "subject_id": alert.subject_id,
                   "case_ref": case_ref or None, "notes_length": len(notes)}
        if revising:
            details.update(revises_seq=last, previous_decision=previous["decision"],
                           previous_outcome=previous["outcome"], previous_decided_by=previous["decided_by"],
                           reason=reason.strip())
        uow.audit("alert.decision_revised" if revising else "alert.decided", "alert", alert.id, details)
        uow.session.flush()
        dep = uow.session.get(Deployment, alert.deployment_id)
        return {**alert_payload(alert, dep.name if dep else ""), "case_ref": case_ref or None,
                "history": _history(uow.session, alert.id)}


def alert_image(vigil, actor: Actor, alert_id: int, which: str) -> bytes:
    """probe | frame | watchlist, decrypted in memory."""
    if which not in IMAGES:
        raise NotFoundError(f"no such image {which!r} (one of {', '.join(IMAGES)})")
    with use_case(vigil, actor, "alert.view") as uow:
        alert = _get(uow.session, alert_id)
        blob = {"probe": alert.probe_blob_id, "frame": alert.frame_blob_id, "watchlist": alert.watchlist_blob_id}[which]
    if not blob:
        raise NotFoundError("no such image (deleted by retention, or not recorded)")
    return vigil.store.blobs.get(blob)


def read_clip(vigil, actor: Actor, alert_id: int, *, destination: str) -> bytes:
    """An alert's evidence clip (other faces already blurred), recorded as an export to ``destination``."""
    with use_case(vigil, actor, "alert.export") as uow:
        alert = _get(uow.session, alert_id)
        if not alert.clip_blob_id:
            raise NotFoundError(f"alert {alert_id} has no evidence clip (clips are recorded only when "
                                "live.evidence_clip_seconds > 0, and deleted with the alert's images by retention)")
        data = vigil.store.blobs.get(alert.clip_blob_id)
        details = {"alert_id": alert.id, "deployment_id": alert.deployment_id, "bytes": len(data)}
        row = add_export_record(uow.session, actor.username, "evidence_clip", Path(destination), details)
        uow.audit("export.written", "evidence_clip", row.id, {"path": destination, **details})
    return data


def export_clip(vigil, actor: Actor, alert_id: int, out) -> dict:
    """Write the evidence clip to a path the user names (an audited export)."""
    target = check_target(Path(out), directory=False)
    data = read_clip(vigil, actor, alert_id, destination=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"alert_id": int(alert_id), "path": str(target), "bytes": len(data)}
