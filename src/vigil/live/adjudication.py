"""A person decides every alert: decision (confirmed match / false alert / could not verify),
outcome (no action / engaged / arrested) and notes. Undecided alerts are flagged."""

from __future__ import annotations

from sqlalchemy import select

from vigil.errors import NotFoundError, VigilError
from vigil.governance.permissions import Actor, require
from vigil.live.alerts import alert_payload
from vigil.live.deployments import DECISIONS, OUTCOMES
from vigil.store.schema import Alert, Deployment
from vigil.timeutil import utcnow


def list_alerts(vigil, actor: Actor, *, deployment_id=None, undecided_only: bool = False,
                after_id: int = 0, limit: int = 500) -> list[dict]:
    require(actor, "alert.view")
    with vigil.store.session() as session:
        query = select(Alert, Deployment.name).join(Deployment, Deployment.id == Alert.deployment_id)
        if deployment_id is not None:
            query = query.where(Alert.deployment_id == int(deployment_id))
        if undecided_only:
            query = query.where(Alert.decision.is_(None))
        if after_id:
            query = query.where(Alert.id > after_id)
        rows = session.execute(query.order_by(Alert.id.desc() if not after_id else Alert.id).limit(limit)).all()
        out = []
        for alert, dep_name in rows:
            payload = alert_payload(alert, dep_name)
            payload.update(undecided=alert.decision is None, has_images=alert.probe_blob_id is not None,
                           case_ref=alert.case_ref or None)
            out.append(payload)
        return out


def decide(vigil, actor: Actor, alert_id: int, *, decision: str, outcome: str = "no_action", notes: str = "",
           case_ref: str = "") -> dict:
    require(actor, "alert.decide")
    if decision not in DECISIONS:
        raise VigilError(f"decision must be one of {', '.join(DECISIONS)}")
    if outcome not in OUTCOMES:
        raise VigilError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if decision == "false_alert" and outcome == "arrested":
        raise VigilError("an arrest on a false alert must be recorded as 'confirmed' or 'unverified' with notes")
    with vigil.store.session() as session:
        alert = session.get(Alert, int(alert_id))
        if alert is None:
            raise NotFoundError(f"no alert {alert_id} (it may have been deleted by retention)")
        previous = alert.decision
        alert.decision, alert.outcome = decision, outcome
        alert.notes = notes
        alert.case_ref = case_ref or alert.case_ref
        alert.decided_by, alert.decided_at = actor.username, utcnow()
        vigil.store.audit.record(session, actor, "alert.decided", "alert", alert.id, {
            "decision": decision, "outcome": outcome, "previous_decision": previous,
            "deployment_id": alert.deployment_id, "subject_id": alert.subject_id, "case_ref": alert.case_ref or None,
            "notes_length": len(notes)})
        dep_name = session.get(Deployment, alert.deployment_id).name
        return alert_payload(alert, dep_name)


def get_alert(vigil, actor: Actor, alert_id: int) -> Alert:
    require(actor, "alert.view")
    with vigil.store.session() as session:
        alert = session.get(Alert, int(alert_id))
        if alert is None:
            raise NotFoundError(f"no alert {alert_id}")
        return alert


def read_clip(vigil, actor: Actor, alert_id: int, *, destination: str) -> bytes:
    """An alert's evidence clip (other faces already blurred), recorded as an export to ``destination``."""
    from pathlib import Path

    from vigil.store.exports import record_export

    require(actor, "alert.export")
    with vigil.store.session() as session:
        alert = session.get(Alert, int(alert_id))
        if alert is None:
            raise NotFoundError(f"no alert {alert_id}")
        if not alert.clip_blob_id:
            raise NotFoundError(f"alert {alert_id} has no evidence clip (clips are recorded only when "
                                "live.evidence_clip_seconds > 0, and deleted with the alert's images by retention)")
        data = vigil.store.blobs.get(alert.clip_blob_id)
        record_export(vigil.store, session, actor, "evidence_clip", Path(destination),
                      {"alert_id": alert.id, "deployment_id": alert.deployment_id, "bytes": len(data)})
    return data


def export_clip(vigil, actor: Actor, alert_id: int, out) -> dict:
    """Write the evidence clip to a path the user names (an audited export)."""
    from vigil.store.exports import check_target

    target = check_target(out, directory=False)
    data = read_clip(vigil, actor, alert_id, destination=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"alert_id": int(alert_id), "path": str(target), "bytes": len(data)}
