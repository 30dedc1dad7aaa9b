"""Adjudications are append-only: a second decision is a revision (a role allowed to revise, a
reason), every decision stays in the history, the alert shows the latest, and the audit entry
says what was revised."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.services.live_helpers import api_client, audit_entries, cli
from tests.store.conftest import admin, vigil  # noqa: F401 (fixtures)
from vigil.errors import PermissionDenied, VigilError
from vigil.governance.permissions import Actor
from vigil.services.alerts import decide, decision_history, show_alert
from vigil.store.schema import Alert, AlertDecision, Deployment


def an_alert(vigil) -> int:
    """An undecided alert on an ended deployment (rows only: what a run leaves behind)."""
    with vigil.store.session() as s:
        dep = Deployment(name="Oxford Circus", location="W1", status="ended", sources=[], watchlist_ids=[],
                         snapshot_ids=[], category_rates={}, record={})
        s.add(dep)
        s.flush()
        alert = Alert(deployment_id=dep.id, camera="north", source_time=1.5, track_id=3, subject_id="S1",
                      subject_name="Barack Obama", category="wanted", score=0.81, threshold=0.62, fmr=1e-6)
        s.add(alert)
        s.flush()
        return alert.id


def test_decisions_are_kept_and_a_revision_needs_a_reason_and_a_role(vigil, admin, settings):  # noqa: F811
    alert_id = an_alert(vigil)
    client, headers = api_client(vigil, settings, admin)
    with client:
        r = client.post(f"/api/alerts/{alert_id}/decision", headers=headers["operator"],
                        json={"decision": "confirmed", "outcome": "engaged", "notes": "stopped at the gate"})
        assert r.status_code == 200, r.text
        # the same decider, or anyone, deciding again without a reason is refused
        r = client.post(f"/api/alerts/{alert_id}/decision", headers=headers["supervisor"],
                        json={"decision": "false_alert", "outcome": "no_action"})
        assert r.status_code == 400 and "needs a reason" in r.text
        # an operator may decide but not revise
        r = client.post(f"/api/alerts/{alert_id}/decision", headers=headers["operator"],
                        json={"decision": "false_alert", "outcome": "no_action", "reason": "looked again"})
        assert r.status_code == 403, r.text
        r = client.post(f"/api/alerts/{alert_id}/decision", headers=headers["supervisor"],
                        json={"decision": "false_alert", "outcome": "no_action", "reason": "CCTV review: not him"})
        assert r.status_code == 200, r.text
        shown = client.get(f"/api/alerts/{alert_id}", headers=headers["operator"]).json()
    assert shown["decision"] == "false_alert" and shown["decided_by"] == "supervisor1"
    assert [(h["seq"], h["decision"], h["decided_by"], h["reason"]) for h in shown["history"]] == [
        (1, "confirmed", "operator1", None), (2, "false_alert", "supervisor1", "CCTV review: not him")]
    assert shown["history"][0]["notes"] == "stopped at the gate"
    with vigil.store.session() as s:  # outside the requests' transactions
        rows = s.scalars(select(AlertDecision).where(AlertDecision.alert_id == alert_id)).all()
        assert len(rows) == 2
        assert s.get(Alert, alert_id).decision == "false_alert"  # the row holds the latest, for reports
    revised = audit_entries(vigil, "alert.decision_revised", alert_id)
    assert len(revised) == 1 and revised[0]["actor"] == "supervisor1"
    assert revised[0]["previous_decision"] == "confirmed" and revised[0]["revises_seq"] == 1
    assert revised[0]["reason"] == "CCTV review: not him"
    assert len(audit_entries(vigil, "alert.decided", alert_id)) == 1


def test_decision_history_for_other_services_and_the_cli(vigil, admin, home):  # noqa: F811
    alert_id = an_alert(vigil)
    decide(vigil, Actor("olive", "operator"), alert_id, decision="unverified", notes="lost in the crowd")
    with pytest.raises(VigilError, match="needs a reason"):
        decide(vigil, admin, alert_id, decision="confirmed")
    with pytest.raises(PermissionDenied):
        decide(vigil, Actor("olive", "operator"), alert_id, decision="confirmed", reason="found him")
    out = cli(home, "alert", "decide", str(alert_id), "--decision", "confirmed", "--outcome", "arrested",
              "--case", "C-17", "--reason", "identified on review", "--json")
    assert out.returncode == 0, out.stderr
    assert [h["decision"] for h in json.loads(out.stdout)["history"]] == ["unverified", "confirmed"]
    history = decision_history(vigil, admin, alert_id)
    assert [h["decided_by"] for h in history][0] == "olive" and history[1]["case_ref"] == "C-17"
    assert show_alert(vigil, admin, alert_id)["case_ref"] == "C-17"
    with pytest.raises(PermissionDenied):
        decision_history(vigil, Actor("ann", "auditor"), alert_id)
