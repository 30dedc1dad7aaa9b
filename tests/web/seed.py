"""Alerts as a live run leaves them, made in a moment for the console tests: evidence built by
the runtime's own code (vigil.live.alerts.alert_evidence: the frame washed out but for the
alerted face, the probe crop cut from it), the watchlist photograph's bytes copied as the
StoreRecorder copies them. Only the bundled demo photographs (public-domain White House
portraits, src/vigil/demo_data) are used: never LFW or other people's data."""

from __future__ import annotations

from datetime import timedelta

import cv2
import numpy as np

from tests.conftest import demo_bytes
from vigil.engine.images import decode_image
from vigil.live.alerts import alert_evidence
from vigil.live.matcher import WatchlistEntry
from vigil.live.pipeline import MatchEvent
from vigil.retro.manifests import EnrolItem
from vigil.services.collections import authorise_watchlist, create_collection
from vigil.services.enrolment import enrol_image
from vigil.store.schema import Alert, AlertDecision, Deployment, FaceImage
from vigil.timeutil import parse_when, utcnow


def scene(engine, alerted: str, bystander: str) -> tuple[np.ndarray, object]:
    """A 1280x720 camera frame: the bystander's photo on the left, the alerted person's on the
    right (faces ~90 px wide); and the alerted person's detected face."""
    frame = np.full((720, 1280, 3), (185, 195, 200), np.uint8)
    for name, x0 in ((bystander, 200), (alerted, 760)):
        photo = decode_image(demo_bytes(name))
        x, y, w, h = engine.primary(photo, name=name).face.box_list()
        scale = 90.0 / w
        small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cx, cy = int((x + w / 2) * scale), int((y + h / 2) * scale)
        patch = small[max(0, cy - 150):cy + 200, max(0, cx - 150):cx + 150]
        frame[150:150 + patch.shape[0], x0:x0 + patch.shape[1]] = patch
    faces = sorted(engine.detect(frame), key=lambda f: f.box[0])
    assert len(faces) == 2, f"the scene should show two faces, found {len(faces)}"
    return frame, faces[1]


def _subject_image(vigil, subject_id: str) -> tuple[str, int]:
    with vigil.store.session() as s:
        image = s.query(FaceImage).filter(FaceImage.subject_id == subject_id).one()
        return image.blob_id, image.collection_id


def add_alert(vigil, engine, dep_id: int, subject: dict, *, camera: str, score: float, threshold: float,
              alerted: str, bystander: str, runner_up: dict | None = None, decision: str | None = None,
              minutes_ago: float = 0.0) -> int:
    blob_id, watchlist_id = _subject_image(vigil, subject["id"])
    frame, face = scene(engine, alerted, bystander)
    entry = WatchlistEntry(subject["id"], subject["name"], subject["category"], watchlist_id, blob_id)
    event = MatchEvent(camera, 3, 0, score, threshold, 41.5, frame, face, 40.0)
    ev = alert_evidence(event, entry, 2e-6, 640, runner_up)
    blobs = vigil.store.blobs
    with vigil.store.session() as s:
        when = utcnow() - timedelta(minutes=minutes_ago)
        alert = Alert(deployment_id=dep_id, created_at=when, camera=camera, source_time=41.5, track_id=3,
                      subject_id=subject["id"], subject_name=subject["name"], category=subject["category"],
                      watchlist_id=watchlist_id, score=score, threshold=threshold, fmr=2e-6, runner_up=runner_up,
                      probe_blob_id=blobs.put(s, "alert_probe", ev.probe_jpeg),
                      frame_blob_id=blobs.put(s, "alert_frame", ev.frame_jpeg),
                      watchlist_blob_id=blobs.put(s, "alert_watchlist_image", blobs.get(blob_id)))
        s.add(alert)
        s.flush()
        if decision:
            s.add(AlertDecision(alert_id=alert.id, seq=1, decided_by="operator", decided_at=when, decision=decision,
                                outcome="no_action", notes="compared on the day"))
            alert.decision, alert.outcome, alert.decided_by, alert.decided_at = decision, "no_action", "operator", when
            alert.notes = "compared on the day"
        return alert.id


def seed_alert_history(vigil, engine) -> dict:
    """A watchlist (expiring at the end of 2099) with two people listed under their warrant
    numbers: Joe Biden from the group photo (its second face) and Barack Obama from his
    portrait. Two ended deployments; Biden alerted at both (the earlier one decided: a false
    alert), Obama once, just above his threshold. Biden's alert has Obama as a close runner-up."""
    admin = vigil.cli_actor()
    create_collection(vigil, admin, "watchlist", "Wanted on warrant", purpose="people wanted on a warrant",
                      legal_basis="common law; DPA 2018 s.35", category="wanted",
                      expires_at=parse_when("2099-12-31", end_of_day=True))
    biden = enrol_image(vigil, admin, "watchlist", "Wanted on warrant", demo_bytes("obama_and_biden.jpg"),
                        EnrolItem("group", "Joe Biden", category="wanted", reference="WARRANT-2207", face=2))
    obama = enrol_image(vigil, admin, "watchlist", "Wanted on warrant", demo_bytes("obama.jpg"),
                        EnrolItem("portrait", "Barack Obama", category="wanted", reference="WARRANT-0451"))
    assert biden["status"] == obama["status"] == "enrolled", (biden, obama)
    authorise_watchlist(vigil, admin, "Wanted on warrant")
    people = {"biden": {"id": biden["subject_id"], "name": "Joe Biden", "category": "wanted"},
              "obama": {"id": obama["subject_id"], "name": "Barack Obama", "category": "wanted"}}
    with vigil.store.session() as s:
        deps = []
        for name, where in (("High Street", "High St, north end"), ("Station forecourt", "Station Rd")):
            dep = Deployment(name=name, location=where, status="ended",
                             sources=[{"camera": "gate", "source": "rtsp://camera.example/gate"}],
                             watchlist_ids=[], snapshot_ids=[], category_rates={}, record={},
                             created_by="operator", legal_basis="common law")
            s.add(dep)
            s.flush()
            deps.append(dep.id)
    high_street, station = deps
    lookalike = {"subject_id": people["obama"]["id"], "name": "Barack Obama", "category": "wanted",
                 "score": 0.571, "threshold": 0.6, "lookalike": True}
    earlier = add_alert(vigil, engine, high_street, people["biden"], camera="north", score=0.62, threshold=0.6,
                        alerted="biden.jpg", bystander="obama_speech.jpg", decision="false_alert", minutes_ago=90)
    obama_alert = add_alert(vigil, engine, station, people["obama"], camera="gate", score=0.632, threshold=0.6,
                            alerted="obama_speech.jpg", bystander="biden.jpg", minutes_ago=5)
    biden_alert = add_alert(vigil, engine, station, people["biden"], camera="gate", score=0.712, threshold=0.6,
                            alerted="biden.jpg", bystander="obama_speech.jpg", runner_up=lookalike, minutes_ago=1)
    return {"people": people, "deployments": {"high_street": high_street, "station": station},
            "alerts": {"earlier": earlier, "obama": obama_alert, "biden": biden_alert}}
