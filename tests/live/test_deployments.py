"""Deployments: rules, frozen watchlists, alerts, records, and immediate discard of non-matches."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import demo_bytes
from vigil.engine.images import decode_image
from vigil.errors import PermissionDenied, PolicyError
from vigil.governance.permissions import Actor
from tests.live.conftest import enrol_biden
from tests.security.cameras_helper import register_sources
from vigil.services.deployments import authorise_deployment, create_deployment, get_deployment_record
from vigil.services.live_runs import DeploymentRunner, RunOptions, start_deployment
from vigil.timeutil import utcnow


def make(vigil, actor, video, **kw):
    args = dict(name="Oxford Circus", location="Oxford Circus, W1", sources=[{"camera": "north", "source": str(video)}],
                watchlists=["wanted"], window_start=None, window_end=None, legal_basis="common law; DPA 2018 s.35")
    args.update(kw)
    register_sources(vigil, args["sources"])
    return create_deployment(vigil, actor, **args)


def run(vigil, actor, dep_id):
    return DeploymentRunner(vigil, actor, dep_id, [], RunOptions(fast=True)).run()


def test_refuses_without_authorisation_outside_window_and_with_stale_watchlist(vigil, admin, watchlist, video):
    dep = make(vigil, admin, video)
    with pytest.raises(PolicyError, match="not been authorised"):
        start_deployment(vigil, admin, dep["id"])
    later = make(vigil, admin, video, window_start=utcnow() + timedelta(hours=2), window_end=utcnow() + timedelta(hours=3))
    authorise_deployment(vigil, admin, later["id"])
    with pytest.raises(PolicyError, match="window opens"):
        start_deployment(vigil, admin, later["id"])
    # a watchlist edited after authorisation must be authorised again
    enrol_biden(vigil, admin)
    authorise_deployment(vigil, admin, dep["id"])
    with pytest.raises(PolicyError, match="not authorised"):
        start_deployment(vigil, admin, dep["id"])
    from vigil.store.schema import AuditEntry

    with vigil.store.session() as s:
        refusals = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "deployment.refused"))
    assert refusals == 3


def test_only_authorising_roles_may_run_trials(vigil, admin, watchlist, video):
    operator = Actor("olive", "operator")
    with pytest.raises(PermissionDenied):
        make(vigil, operator, video, trial=True)
    dep = make(vigil, admin, video, trial=True, legal_basis="")
    assert dep["trial"] and dep["authorised_by"] == admin.username


def test_alert_for_the_watchlisted_person_and_nothing_kept_of_anyone_else(vigil, admin, watchlist, video, home):
    from vigil.engine.face_engine import FaceEngine
    from vigil.store.schema import Alert, Blob, SnapshotEntry, TemplateRow

    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    result = run(vigil, admin, dep["id"])
    assert [a["subject_id"] for a in result.alerts] == [watchlist["obama"]]  # once per track and subject
    alert = result.alerts[0]
    assert alert["camera"] == "north" and alert["decision"] is None and alert["score"] >= alert["threshold"]
    assert result.summary["faces_seen"] >= 2 and result.summary["frames_dropped"] == 0

    engine = FaceEngine.from_settings(vigil.settings)
    biden = engine.primary(decode_image(demo_bytes("biden.jpg"))).vector
    threshold = engine.pack.calibration.threshold_for(1e-3)
    with vigil.store.session() as s:
        # only the watchlist's own template exists; the snapshot was deleted at the end
        assert s.scalar(select(func.count()).select_from(TemplateRow)) == 1
        assert s.scalar(select(func.count()).select_from(SnapshotEntry)) == 0
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        blobs = s.scalars(select(Blob)).all()
    kinds = sorted(b.kind for b in blobs)
    assert kinds == ["alert_frame", "alert_probe", "alert_watchlist_image", "face_image"]
    # No image held anywhere shows Biden recognisably: the alert thumbnail blurs every other face.
    for blob in blobs:
        image = decode_image(vigil.store.blobs.get(blob.id))
        for face in engine.analyse(image):
            assert float(face.vector @ biden) < threshold, f"{blob.kind} holds a recognisable non-matched face"
    # And nothing else was written under the data directory (models excepted).
    known = {vigil.store.blobs.path(b.id).name for b in blobs}
    for root, _dirs, files in os.walk(home / "blobs"):
        for f in files:
            assert f in known, f"unexpected file {f}"


def test_watchlist_is_frozen_at_start(vigil, admin, watchlist, video):
    from vigil.store.deployments import get_deployment
    from vigil.store.snapshots import load_entries

    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    enrol_biden(vigil, admin)  # an edit while the deployment runs
    with vigil.store.session() as s:
        entries, vectors = load_entries(vigil.store, s, get_deployment(s, dep["id"]).snapshot_ids)
    assert [e.name for e in entries] == ["Barack Obama"] and vectors.shape == (1, 128)
    result = run(vigil, admin, dep["id"])
    assert {a["name"] for a in result.alerts} == {"Barack Obama"}  # Biden's later enrolment did not leak in


def test_record_adjudication_and_outcomes(vigil, admin, watchlist, video):
    from vigil.services.alerts import decide
    from vigil.services.deployments import record_outcomes

    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    result = run(vigil, admin, dep["id"])
    rec = get_deployment_record(vigil, admin, dep["id"])
    assert rec["alerts"] == 1 and rec["undecided_alerts"] == 1 and rec["faces_seen"] >= 2
    decide(vigil, admin, result.alerts[0]["id"], decision="confirmed", outcome="arrested", notes="stopped")
    rec = record_outcomes(vigil, admin, dep["id"], engagements=1, arrests=None)
    assert rec["true_alerts"] == 1 and rec["arrests"] == 1 and rec["engagements"] == 1
    assert rec["false_alert_rate"] == 0.0 and rec["watchlist_size"] == 1
    assert 0 < rec["expected_miss_rate"] < 0.1  # one listed person at 1 in 10,000: a loose threshold


def test_threshold_follows_watchlist_size_and_category_rate():
    from vigil.engine.calibration import load_calibration
    from vigil.live.matcher import WatchlistEntry, WatchlistMatcher

    cal = load_calibration("sface-2021dec-fp32-flip")
    small = WatchlistMatcher([WatchlistEntry("s", "n", "wanted", 1, None)] * 10, np.zeros((10, 128), np.float32),
                             cal, false_alert_rate=1e-4)
    large = WatchlistMatcher([WatchlistEntry("s", "n", "wanted", 1, None)] * 1000, np.zeros((1000, 128), np.float32),
                             cal, false_alert_rate=1e-4, category_rates={"missing": 1e-3})
    assert large.default_threshold > small.default_threshold  # a bigger watchlist is stricter
    assert large.thresholds()["per_comparison_fmr"] == pytest.approx(1e-7)
    assert large.category_thresholds["missing"] < large.default_threshold
    # the record states what the stricter threshold costs (LFW genuine pairs below it)
    assert 0 < small.thresholds()["expected_fnmr"] < large.thresholds()["expected_fnmr"] < 1


def test_evidence_clip_blurs_everyone_but_the_alerted_face(vigil, admin, watchlist, video, tmp_path):
    import cv2

    from vigil.engine.face_engine import FaceEngine
    from vigil.services.alerts import export_clip

    vigil.settings.live.evidence_clip_seconds = 1.0
    try:
        dep = make(vigil, admin, video)
        authorise_deployment(vigil, admin, dep["id"])
        start_deployment(vigil, admin, dep["id"])
        result = run(vigil, admin, dep["id"])
    finally:
        vigil.settings.live.evidence_clip_seconds = 0.0
    alert_id = result.alerts[0]["id"]
    out = export_clip(vigil, admin, alert_id, tmp_path / "clip.avi")
    assert out["bytes"] > 1000
    engine = FaceEngine.from_settings(vigil.settings)
    biden = engine.primary(decode_image(demo_bytes("biden.jpg"))).vector
    obama = engine.primary(decode_image(demo_bytes("obama.jpg"))).vector
    threshold = engine.pack.calibration.threshold_for(1e-3)
    cap = cv2.VideoCapture(str(tmp_path / "clip.avi"))
    frames, obama_seen = 0, False
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        for face in engine.analyse(frame):
            assert float(face.vector @ biden) < threshold, "a non-matched face is recognisable in the clip"
            obama_seen |= float(face.vector @ obama) >= threshold
    assert frames >= 10 and obama_seen
    from vigil.store.schema import AuditEntry, ExportRecord

    with vigil.store.session() as s:
        assert s.scalar(select(func.count()).select_from(ExportRecord).where(ExportRecord.kind == "evidence_clip")) == 1
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "alert.clip_recorded"))


def test_two_cameras_seeing_the_same_person_raise_one_alert(vigil, admin, watchlist, video):
    dep = make(vigil, admin, video, sources=[{"camera": "north", "source": str(video)},
                                             {"camera": "south", "source": str(video)}])
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    result = run(vigil, admin, dep["id"])
    assert len(result.alerts) == 1 and result.summary["duplicates_suppressed"] >= 1
    assert {c["camera"] for c in result.summary["cameras"]} == {"north", "south"}


def test_webhook_receives_each_alert(vigil, admin, watchlist, video):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from vigil.live.alerts import WebhookSink

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dep = make(vigil, admin, video)
        authorise_deployment(vigil, admin, dep["id"])
        start_deployment(vigil, admin, dep["id"])
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/alerts")
        DeploymentRunner(vigil, admin, dep["id"], [sink], RunOptions(fast=True)).run()
    finally:
        server.shutdown()
    alerts = [r for r in received if r["type"] == "alert"]
    assert len(alerts) == 1 and alerts[0]["name"] == "Barack Obama" and sink.failed == 0


def test_webhook_failures_are_counted_with_the_reason():
    import socket

    from vigil.live.alerts import WebhookSink

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/alerts", retries=1, timeout=2.0)
    sink.send({"type": "alert", "name": "x"})
    sink.close()
    assert sink.sent == 0 and sink.failed == 1
    assert sink.last_error and "refused" in sink.last_error.lower()


def test_an_alert_names_its_runner_up_and_warns_of_a_look_alike(vigil, admin, video):
    """Issue #13/#15: the runner-up beside every alert, and a look-alike warning when another
    listed person nearly alerted too (here a second entry made from another photo of the same
    man, as a twin would be)."""
    from vigil.retro.manifests import EnrolItem
    from vigil.services.alerts import show_alert
    from vigil.services.collections import authorise_watchlist, create_collection
    from vigil.services.enrolment import enrol_image
    from vigil.store.schema import AuditEntry

    create_collection(vigil, admin, "watchlist", "wanted", pack="sface", purpose="test", category="wanted")
    for photo, name in (("obama.jpg", "Barack Obama"), ("obama_standing.jpg", "His Twin")):
        enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes(photo), EnrolItem(photo, name))
    authorise_watchlist(vigil, admin, "wanted")
    dep = make(vigil, admin, video)
    authorise_deployment(vigil, admin, dep["id"])
    start_deployment(vigil, admin, dep["id"])
    alerts = run(vigil, admin, dep["id"]).alerts
    assert alerts and {a["name"] for a in alerts} <= {"Barack Obama", "His Twin"}
    first = alerts[0]
    other = {"Barack Obama": "His Twin", "His Twin": "Barack Obama"}[first["name"]]
    assert first["runner_up"]["name"] == other and first["runner_up"]["lookalike"] is True
    assert other in first["lookalike_warning"] and "compare the face with both" in first["lookalike_warning"]
    shown = show_alert(vigil, admin, first["id"])  # as the operator's screen reads it, from the store
    assert shown["runner_up"]["name"] == other and shown["lookalike_warning"]
    with vigil.store.session() as s:
        raised = s.scalars(select(AuditEntry).where(AuditEntry.action == "alert.raised")).first()
        assert '"lookalike_of"' in raised.details
