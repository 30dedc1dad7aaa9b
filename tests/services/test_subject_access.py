"""Subject access: the export holds everything kept about the person, the camera images of
their alerts and every decision on them included, and is itself recorded."""

from __future__ import annotations

import json
import stat

from tests.conftest import demo_bytes
from tests.services.live_helpers import audit_entries, cli
from tests.store.conftest import admin, vigil  # noqa: F401 (fixtures)
from vigil.services.alerts import decide
from vigil.services.collections import create_collection
from vigil.services.enrolment import EnrolItem, enrol_image
from vigil.store.schema import Alert, Deployment


def test_the_export_holds_the_alert_images_and_every_decision(vigil, admin, settings, tmp_path):  # noqa: F811
    create_collection(vigil, admin, "watchlist", "wanted", purpose="test")
    subject = enrol_image(vigil, admin, "watchlist", "wanted", demo_bytes("obama.jpg"),
                          EnrolItem("a", "Barack Obama", reference="WARRANT-9"))["subject_id"]
    probe, frame = demo_bytes("obama_small.jpg"), demo_bytes("obama_speech.jpg")
    with vigil.store.session() as s:
        dep = Deployment(name="Oxford Circus", location="W1", status="ended", sources=[], watchlist_ids=[],
                         snapshot_ids=[], category_rates={}, record={})
        s.add(dep)
        s.flush()
        alert = Alert(deployment_id=dep.id, camera="north", source_time=1.5, track_id=3, subject_id=subject,
                      subject_name="Barack Obama", category="wanted", score=0.81, threshold=0.62, fmr=1e-6,
                      probe_blob_id=vigil.store.blobs.put(s, "alert", probe),
                      frame_blob_id=vigil.store.blobs.put(s, "alert", frame))
        s.add(alert)
        s.flush()
        alert_id = alert.id
    decide(vigil, admin, alert_id, decision="confirmed", outcome="engaged", notes="spoke to him at the gate")
    decide(vigil, admin, alert_id, decision="false_alert", reason="CCTV review: his brother")
    out = tmp_path / "sar"
    done = cli(settings.home, "subject", "export", subject, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "subject.json").read_text())
    [listed] = record["alerts"]
    assert listed["files"] == {"probe": f"alert-{alert_id}-probe.jpg", "frame": f"alert-{alert_id}-frame.jpg"}
    assert (out / listed["files"]["probe"]).read_bytes() == probe  # decrypted: what the camera kept
    assert (out / listed["files"]["frame"]).read_bytes() == frame
    assert [(d["decision"], d["reason"]) for d in listed["decisions"]] == [
        ("confirmed", ""), ("false_alert", "CCTV review: his brother")]
    assert listed["decision"] == "false_alert" and listed["decisions"][0]["notes"] == "spoke to him at the gate"
    assert json.loads(done.stdout)["files"] == len(list(out.iterdir()))  # images, alert files and subject.json
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    [entry] = audit_entries(vigil, "export.written")
    assert entry["subject_id"] == subject and entry["files"] == json.loads(done.stdout)["files"]
