"""The alert card's images (issue #15): the probe and the watchlist faces aligned as the
recogniser aligns them, at the same size, beside the images as stored; the alert's payload
names the subject's reference and the watchlist's expiry, and says the score in words."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import demo_bytes
from tests.services.live_helpers import api_client
from tests.store.conftest import admin, vigil  # noqa: F401 (fixtures)
from tests.web.seed import scene
from vigil.engine.align import ARCFACE_112
from vigil.engine.images import decode_image
from vigil.errors import NotFoundError
from vigil.governance.permissions import Actor
from vigil.live.alerts import alert_evidence
from vigil.live.matcher import WatchlistEntry
from vigil.live.pipeline import MatchEvent
from vigil.retro.manifests import EnrolItem
from vigil.services.alerts import (
    FACE_FILL, FACE_SIDE, alert_image, runner_up_words, score_words, show_alert,
)
from vigil.services.collections import create_collection
from vigil.services.enrolment import enrol_image
from vigil.store.schema import Alert, Deployment, FaceImage
from vigil.timeutil import parse_when


def _decode(name: str) -> np.ndarray:
    return decode_image(demo_bytes(name))


def _alert_from_run(vigil, engine, watchlist_name: str, subject_id: str) -> int:  # noqa: F811
    """An alert as a run records it: its evidence built by the runtime (live.alerts), the
    watchlist photograph's bytes copied as the StoreRecorder copies them."""
    with vigil.store.session() as s:
        image = s.query(FaceImage).filter(FaceImage.subject_id == subject_id).one()
        blob_id, watchlist_id = image.blob_id, image.collection_id
    frame, face = scene(engine, alerted="biden.jpg", bystander="obama_speech.jpg")
    entry = WatchlistEntry(subject_id, "Joe Biden", "wanted", watchlist_id, blob_id)
    event = MatchEvent("north", 7, 0, 0.71, 0.6, 12.5, frame, face, 12.0)
    runner_up = {"subject_id": "S-OTHER", "name": "A Relative", "category": "wanted", "score": 0.58,
                 "threshold": 0.6, "lookalike": True}
    ev = alert_evidence(event, entry, 1e-6, 640, runner_up)
    with vigil.store.session() as s:
        dep = Deployment(name="Oxford Circus", location="W1", status="ended", sources=[], watchlist_ids=[watchlist_id],
                         snapshot_ids=[], category_rates={}, record={})
        s.add(dep)
        s.flush()
        blobs = vigil.store.blobs
        alert = Alert(deployment_id=dep.id, camera="north", source_time=12.5, track_id=7, subject_id=subject_id,
                      subject_name="Joe Biden", category="wanted", watchlist_id=watchlist_id, score=0.71,
                      threshold=0.6, fmr=1e-6, runner_up=runner_up,
                      probe_blob_id=blobs.put(s, "alert_probe", ev.probe_jpeg),
                      frame_blob_id=blobs.put(s, "alert_frame", ev.frame_jpeg),
                      watchlist_blob_id=blobs.put(s, "alert_watchlist_image", vigil.store.blobs.get(blob_id)))
        s.add(alert)
        s.flush()
        return alert.id


def _aligned(engine, face_jpeg: bytes):
    """The face found again in an aligned image, after checking that it sits where the
    recogniser's template puts a face: the landmarks' centre, spread and eye line (a
    similarity fit on five points, re-detected: a few pixels of noise, nothing like the
    offsets of an unaligned crop)."""
    image = decode_image(face_jpeg)
    assert image.shape[:2] == (FACE_SIDE, FACE_SIDE)
    found = engine.primary(image, name="aligned face")
    points = found.face.landmarks.astype(np.float64)
    side = FACE_SIDE * FACE_FILL
    expected = ARCFACE_112 * (side / 112.0) + (FACE_SIDE - side) / 2
    centre_error = np.linalg.norm(points.mean(0) - expected.mean(0))
    assert centre_error < FACE_SIDE * 0.03, (points, expected)
    spread = np.linalg.norm(points - points.mean(0), axis=1).mean()
    expected_spread = np.linalg.norm(expected - expected.mean(0), axis=1).mean()
    assert abs(spread / expected_spread - 1) < 0.12, (spread, expected_spread)
    (lx, ly), (rx, ry) = points[0], points[1]
    assert abs(np.degrees(np.arctan2(ry - ly, rx - lx))) < 12, points
    return found


def _cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture()
def listed(vigil, admin):  # noqa: F811
    """A watchlist expiring at the end of 2099 with Joe Biden enrolled from the group photo under
    a warrant number: face 2 of obama_and_biden.jpg, not its primary face (Obama's, face 1)."""
    create_collection(vigil, admin, "watchlist", "Wanted", purpose="wanted on warrant", category="wanted",
                      expires_at=parse_when("2099-12-31", end_of_day=True))
    out = enrol_image(vigil, admin, "watchlist", "Wanted", demo_bytes("obama_and_biden.jpg"),
                      EnrolItem("group", "Joe Biden", category="wanted", reference="WARRANT-2207", face=2))
    assert out["status"] == "enrolled", out
    return out["subject_id"]


def test_aligned_faces_side_by_side_and_the_images_as_stored(vigil, admin, engine, listed):  # noqa: F811
    alert_id = _alert_from_run(vigil, engine, "Wanted", listed)
    operator = Actor("olive", "operator")

    # the probe: aligned like the recogniser's crop (eyes, nose, mouth on the template's points)
    probe = _aligned(engine, alert_image(vigil, operator, alert_id, "probe_face"))

    # the watchlist face: the face chosen at enrolment (face 2 of the group photo: Biden), not the
    # photo's primary face (Obama's), aligned the same way at the same size
    watchlist = _aligned(engine, alert_image(vigil, operator, alert_id, "watchlist_face"))
    obama = engine.primary(_decode("obama.jpg")).vector
    biden = engine.primary(_decode("biden.jpg")).vector
    assert _cosine(watchlist.vector, biden) > _cosine(watchlist.vector, obama) + 0.2
    assert _cosine(probe.vector, biden) > _cosine(probe.vector, obama) + 0.2  # the alerted face, not the bystander

    # the images as stored are unchanged: the whole enrolled photograph, the probe crop, the frame
    assert alert_image(vigil, operator, alert_id, "watchlist") == demo_bytes("obama_and_biden.jpg")
    probe_raw = decode_image(alert_image(vigil, operator, alert_id, "probe"))
    assert probe_raw.shape[0] < 200  # a crop around a ~90 px face, not enlarged
    frame = decode_image(alert_image(vigil, operator, alert_id, "frame"))
    assert frame.shape[1] == 640
    # the bystander stays washed out in the frame: no second face is found in it
    assert len(engine.detect(cv2.resize(frame, (1280, 720)))) <= 1


def test_watchlist_face_without_the_enrolment_record(vigil, admin, engine, listed):  # noqa: F811
    """Without the enrolment's face box a group photo does not say whose face was listed: it is
    shown whole (padded to the square, not aligned) rather than guessed; erasing the subject
    deletes the alert's images and its reference."""
    from vigil.services.subjects import erase_subject

    alert_id = _alert_from_run(vigil, engine, "Wanted", listed)
    with vigil.store.session() as s:
        s.query(FaceImage).filter(FaceImage.subject_id == listed).update({FaceImage.content_hash: "gone"})
    whole = decode_image(alert_image(vigil, admin, alert_id, "watchlist_face"))
    assert whole.shape[:2] == (FACE_SIDE, FACE_SIDE)
    assert len(engine.detect(whole)) == 2  # both people of the group photo, neither chosen
    erase_subject(vigil, admin, listed, "test: the subject left the watchlist")
    with pytest.raises(NotFoundError, match="deleted"):
        alert_image(vigil, admin, alert_id, "watchlist_face")
    shown = show_alert(vigil, admin, alert_id)
    assert shown["reference"] is None and shown["subject_on_record"] is False
    assert shown["has_images"] is False


def test_payload_names_reference_expiry_and_the_score_in_words(vigil, admin, engine, listed, settings):  # noqa: F811
    alert_id = _alert_from_run(vigil, engine, "Wanted", listed)
    shown = show_alert(vigil, Actor("olive", "operator"), alert_id)
    assert shown["reference"] == "WARRANT-2207" and shown["subject_on_record"] is True
    assert shown["category"] == "wanted"
    assert shown["watchlist"] == "Wanted" and shown["watchlist_expires_at"].startswith("2099-12-31T23:59:59")
    assert shown["score_words"] == "0.710, well above the threshold 0.600 (+0.110)"
    assert shown["runner_up_words"] == "A Relative: 0.580, just below their threshold 0.600 (-0.020): a look-alike"

    client, headers = api_client(vigil, settings, admin, roles=("operator", "auditor"))
    with client:
        listed_alerts = client.get("/api/alerts", headers=headers["operator"]).json()
        items = listed_alerts["items"] if isinstance(listed_alerts, dict) else listed_alerts
        assert [a["reference"] for a in items if a["id"] == alert_id] == ["WARRANT-2207"]
        for which in ("probe_face", "watchlist_face", "probe", "watchlist", "frame"):
            r = client.get(f"/api/alerts/{alert_id}/{which}.jpg", headers=headers["operator"])
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", which
            assert r.headers["cache-control"] == "no-store"
        assert client.get(f"/api/alerts/{alert_id}/probe_face.jpg", headers=headers["auditor"]).status_code == 403
        assert client.get(f"/api/alerts/{alert_id}/other_face.jpg", headers=headers["operator"]).status_code == 422


@pytest.mark.parametrize(("score", "threshold", "words"), [
    (0.62, 0.48, "0.620, well above the threshold 0.480 (+0.140)"),
    (0.50, 0.48, "0.500, just above the threshold 0.480 (+0.020)"),
    (0.58, 0.48, "0.580, well above the threshold 0.480 (+0.100)"),
    (0.55, 0.48, "0.550, above the threshold 0.480 (+0.070)"),
    (0.40, 0.48, "0.400, below the threshold 0.480 (-0.080)"),
    (0.48, 0.48, "0.480, just above the threshold 0.480 (+0.000)"),
])
def test_score_in_words(score, threshold, words):
    assert score_words(score, threshold) == words


def test_runner_up_in_words():
    assert runner_up_words(None) is None
    far = {"name": "B", "score": 0.2, "threshold": 0.6, "lookalike": False}
    assert runner_up_words(far) == "B: 0.200, below their threshold 0.600 (-0.400)"
    over = {"name": "C", "score": 0.65, "threshold": 0.6, "lookalike": True}
    assert runner_up_words(over) == "C: 0.650, also above their threshold 0.600 (+0.050): a look-alike"
