"""Evidence keeps only the alerted face: every stored image (thumbnail, probe crop, clip frame)
is redacted whole except the alerted face's region, without detecting anyone else.

The synthetic scene pastes the demo portraits on a textured background: Obama (the alerted
person) and Joe Biden four times, from large to barely detectable. Nothing about Biden is
given to the redaction; the checks detect faces in the results at full resolution and at a
low threshold (0.3), and match them against both people's reference photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import demo_bytes
from vigil.engine.faces import Face
from vigil.engine.images import decode_image, encode_jpeg
from vigil.engine.nms import iou_matrix
from vigil.live.alerts import alert_evidence
from vigil.live.evidence import EvidenceRecorder, kept_region, redact_except
from vigil.live.matcher import WatchlistEntry
from vigil.live.pipeline import MatchEvent

BYSTANDERS = ((20, 60, 700), (1480, 40, 420), (1250, 620, 260), (1700, 820, 150))  # x, y, photo height
ALERTED_AT = (620, 200, 560)


def paste(frame: np.ndarray, photo: np.ndarray, x: int, y: int, height: int) -> None:
    scaled = cv2.resize(photo, None, fx=height / photo.shape[0], fy=height / photo.shape[0], interpolation=cv2.INTER_AREA)
    scaled = scaled[: frame.shape[0] - y, : frame.shape[1] - x]
    frame[y : y + scaled.shape[0], x : x + scaled.shape[1]] = scaled


def scene(shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(7)
    frame = cv2.GaussianBlur(rng.integers(40, 200, (1080, 1920, 3)).astype(np.uint8), (0, 0), 2)
    biden = decode_image(demo_bytes("biden.jpg"))
    for x, y, height in BYSTANDERS:
        paste(frame, biden, x, y, height)
    x, y, height = ALERTED_AT
    paste(frame, decode_image(demo_bytes("obama_speech.jpg")), x + shift, y, height)
    return frame


@pytest.fixture(scope="module")
def people(engine):
    refs = {name: engine.primary(decode_image(demo_bytes(f"{name}.jpg"))).vector for name in ("obama", "biden")}
    return refs, engine.pack.calibration.threshold_for(1e-3)


def faces_in(engine, image: np.ndarray) -> list[Face]:
    """Every face YuNet finds at full resolution (and the usual global pass; small images also
    upscaled twice), at the low still-image fallback threshold."""
    longest = max(image.shape[:2])
    scales = [min(1.0, 640 / longest), 1.0] + ([2.0] if longest < 1200 else [])
    return engine.pack.detector.detect_scales(image, scales, threshold=0.3)


def who(engine, people, image: np.ndarray) -> list[tuple[Face, str | None]]:
    refs, threshold = people
    faces = faces_in(engine, image)
    out = []
    for analysed in engine.analyse(image, faces) if faces else []:
        name = max(refs, key=lambda n: float(analysed.vector @ refs[n]))
        out.append((analysed.face, name if float(analysed.vector @ refs[name]) >= threshold else None))
    return out


def alerted_face(engine, frame: np.ndarray) -> Face:
    x, y, height = ALERTED_AT
    region = np.array([[x, y, height, height]], np.float32)
    return max(engine.detect(frame), key=lambda f: iou_matrix(f.box[None], region)[0, 0])


def test_the_scene_holds_four_recognisable_bystanders(engine, people):
    found = who(engine, people, scene())
    assert sorted(n for _, n in found if n) == ["biden"] * len(BYSTANDERS) + ["obama"]


def test_only_the_alerted_face_survives_redaction_and_it_is_unchanged(engine, people):
    frame = scene()
    face = alerted_face(engine, frame)
    redacted = redact_except(frame, face.box)
    found = who(engine, people, redacted)
    assert [n for _, n in found] == ["obama"], found
    assert iou_matrix(found[0][0].box[None], face.box[None])[0, 0] > 0.8
    x0, y0, x1, y1 = kept_region(face.box, frame.shape)
    assert np.array_equal(redacted[y0:y1, x0:x1], frame[y0:y1, x0:x1])
    assert not who(engine, people, redact_except(frame, None))  # no kept face: nothing at all


def test_alert_thumbnail_and_probe_keep_only_the_alerted_face(engine, people):
    frame = scene()
    face = alerted_face(engine, frame)
    event = MatchEvent("north", 3, 0, 0.9, 0.6, 12.5, frame, face, 11.0)
    entry = WatchlistEntry("s1", "Barack Obama", "wanted", 1, None)
    evidence = alert_evidence(event, entry, 1e-6, 640)
    thumb = decode_image(evidence.frame_jpeg)
    assert thumb.shape[1] == 640
    assert [n for _, n in who(engine, people, thumb)] == ["obama"]
    assert [n for _, n in who(engine, people, decode_image(evidence.probe_jpeg))] == ["obama"]
    assert "no other face is detected" in evidence.redaction["method"]
    # the alerted face is the original's, downscaled: compare its inner part with a plain resize
    x0, y0, x1, y1 = (np.array(kept_region(face.box, frame.shape)) * 640 / 1920).astype(int) + [2, 2, -2, -2]
    plain = decode_image(encode_jpeg(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA), quality=80))
    diff = np.abs(thumb[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1].astype(int)).mean()
    assert diff < 2.0  # the same pixels through the same JPEG encoding


def test_clip_frames_come_from_the_window_and_keep_only_the_interpolated_alerted_face(engine, people, tmp_path):
    recorder = EvidenceRecorder(seconds=0.4, width=960, fps=10.0)
    frames = {}
    for i in range(9):  # the alerted face moves 8 px a frame; detected on even frames only
        t = i * 0.1
        frames[i] = scene(shift=8 * i)
        detected = [(5, alerted_face(engine, frames[i]).box)] if i % 2 == 0 else []
        recorder.observe("north", frames[i], t, detected)
        if i == 5:
            recorder.start("north", alert_id=1, track_id=5, t=t)  # window [0.1, 0.9] in source time
        assert not recorder.finished("north", t)
    # a stall: the next frame comes 5 s later, long after the window; it must not be taken
    recorder.observe("north", scene(), 5.8, [])
    (clip,) = recorder.finished("north", 5.8)
    assert [round(f.time, 1) for f in clip.frames] == [round(0.1 * i, 1) for i in range(1, 9)]
    encoded = recorder.encode(clip)
    assert encoded.frames == 8
    assert encoded.redaction["frames_alerted_face_detected"] == 4  # frames 2, 4, 6, 8
    assert encoded.redaction["frames_alerted_face_interpolated"] == 3  # 3, 5, 7
    assert encoded.redaction["frames_redacted_whole"] == 1  # 1: no detection of the track before it
    assert encoded.redaction["window_source_seconds"] == [0.1, 0.9]
    path = tmp_path / "clip.avi"
    path.write_bytes(encoded.data)
    cap = cv2.VideoCapture(str(path))
    names = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        names.append([n for _, n in who(engine, people, image)])
    assert len(names) == 8
    assert names[0] == []  # redacted whole
    assert all(n == ["obama"] for n in names[1:]), names  # detected or interpolated: kept; nobody else


def test_a_watch_run_stores_only_the_alerted_face_and_audits_what_was_done(vigil, admin, watchlist, video, home,
                                                                             engine, people, tmp_path):
    """The real ``vigil watch --evidence-clips``: every stored image, decrypted, shows nobody but
    the alerted person; the audit entries say what was done (and no longer claim a blur of
    detected faces)."""
    from sqlalchemy import select

    from tests.services.live_helpers import audit_entries, cli
    from vigil.store.schema import Alert

    out = cli(home, "watch", "--watchlist", "wanted", "--camera", str(video), "--fast", "--json",
              "--evidence-clips", "1")
    assert out.returncode == 0, out.stderr
    with vigil.store.session() as s:
        (alert,) = s.scalars(select(Alert)).all()
        blobs = {"thumbnail": alert.frame_blob_id, "probe": alert.probe_blob_id, "clip": alert.clip_blob_id}
    images = [decode_image(vigil.store.blobs.get(blobs["thumbnail"])),
              decode_image(vigil.store.blobs.get(blobs["probe"]))]
    path = tmp_path / "clip.avi"
    path.write_bytes(vigil.store.blobs.get(blobs["clip"]))
    cap = cv2.VideoCapture(str(path))
    while (frame := cap.read())[0]:
        images.append(frame[1])
    assert len(images) >= 12
    names = [n for image in images for _, n in who(engine, people, image)]
    assert "biden" not in names and names.count("obama") >= len(images) // 2
    (raised,) = audit_entries(vigil, "alert.raised", alert.id)
    (clip,) = audit_entries(vigil, "alert.clip_recorded", alert.id)
    assert "no other face is detected" in raised["redaction"]["method"]
    assert "other_faces_blurred" not in clip and clip["frames"] == len(images) - 2
    done = clip["redaction"]
    assert (done["frames_alerted_face_detected"] + done["frames_alerted_face_interpolated"]
            + done["frames_redacted_whole"]) == clip["frames"]
    start, end = done["window_source_seconds"]
    assert start <= done["frames_source_seconds"][0] <= done["frames_source_seconds"][1] <= end


def face_at(engine, frame: np.ndarray, x: int, y: int, height: int) -> Face:
    region = np.array([[x, y, height, height]], np.float32)
    return max(engine.detect(frame), key=lambda f: iou_matrix(f.box[None], region)[0, 0])


def clip_names(engine, people, encoded, tmp_path) -> list[list[str | None]]:
    path = tmp_path / "clip.avi"
    path.write_bytes(encoded.data)
    cap = cv2.VideoCapture(str(path))
    names = []
    while (item := cap.read())[0]:
        names.append([n for _, n in who(engine, people, item[1])])
    return names


def test_a_track_that_jumps_to_another_face_is_not_kept_sharp(engine, people, tmp_path):
    """The tracker hands the alerted track's id to a passer-by (here: Biden, across the frame)
    after the alert: from the jump on, the track's box is someone else's face, and those frames
    are redacted whole, counted as such; the frames before it keep the alerted face."""
    recorder = EvidenceRecorder(seconds=0.5, width=1920, fps=10.0)
    frame = scene()
    obama = alerted_face(engine, frame).box
    biden = face_at(engine, frame, *BYSTANDERS[2]).box
    for i in range(9):
        t = i * 0.1
        recorder.observe("north", frame, t, [(5, obama if i < 5 else biden)])  # the id jumps at frame 5
        if i == 3:
            recorder.start("north", alert_id=1, track_id=5, t=t)  # window [-0.2, 0.8]: frames 0-8
    (clip,) = recorder.finished("north", 0.8)
    encoded = recorder.encode(clip)
    done = encoded.redaction
    assert encoded.frames == 9
    assert done["frames_alerted_face_detected"] == 5 and done["frames_alerted_face_interpolated"] == 0
    assert done["frames_redacted_whole_track_jumped"] == 4 and done["frames_redacted_whole"] == 4
    names = clip_names(engine, people, encoded, tmp_path)
    assert names == [["obama"]] * 5 + [[]] * 4, names  # never Biden


def test_a_small_jump_to_a_neighbour_of_another_size_breaks_the_chain_too(engine):
    """Pure geometry: a hand-over to a face right beside the alerted one (a small centre jump but
    a clearly different size, or a jump against the track's own motion) ends the confirmed chain
    on that side, both after and before the alert."""
    from vigil.live.evidence import ClipFrame, alerted_boxes

    image = np.zeros((540, 960, 3), np.uint8)
    boxes = [np.array([100.0 + 10 * i, 200, 40, 40]) for i in range(10)]  # walking right, 10 px a frame
    boxes[8] = np.array([160.0, 190, 64, 64])  # frame 8: someone larger, just behind
    boxes[1] = np.array([40.0, 200, 40, 40])  # frame 1: 7 face widths per second against the motion
    frames = [ClipFrame(image, 0.04 * i, {5: b}) for i, b in enumerate(boxes)]
    kept, how, _ = alerted_boxes(frames, 5, alert_time=0.04 * 4)
    assert how == ["track jumped"] * 2 + ["detected"] * 6 + ["track jumped"] * 2, how
    assert all(b is None for b in kept[:2] + kept[8:])


def test_a_passer_by_in_front_of_the_hidden_alerted_face_is_not_kept(engine, people, tmp_path):
    """While Biden crosses in front of the alerted face (pasted over it), the alerted track is
    not detected and its box is interpolated there: right where Biden's face is. Those frames
    are redacted whole because another track's face is in the kept region."""
    recorder = EvidenceRecorder(seconds=0.5, width=1920, fps=10.0)
    clear = scene()
    obama = alerted_face(engine, clear).box
    hidden = clear.copy()
    x, y, height = ALERTED_AT
    paste(hidden, decode_image(demo_bytes("biden.jpg")), x, y, height)
    biden = face_at(engine, hidden, x, y, height).box
    for i in range(5):  # frames 1-3: Biden in front, detected as track 9; the alerted track 5 is not
        detected = [(5, obama)] if i in (0, 4) else [(9, biden)]
        recorder.observe("north", clear if i in (0, 4) else hidden, i * 0.1, detected)
        if i == 0:
            recorder.start("north", alert_id=1, track_id=5, t=0.0)
    (clip,) = recorder.finished("north", 0.5)  # 0.5: the window's end
    encoded = recorder.encode(clip)
    done = encoded.redaction
    assert done["frames_alerted_face_detected"] == 2 and done["frames_alerted_face_interpolated"] == 0
    assert done["frames_redacted_whole_other_face_in_kept_region"] == 3 and done["frames_redacted_whole"] == 3
    names = clip_names(engine, people, encoded, tmp_path)
    assert names == [["obama"], [], [], [], ["obama"]], names


def test_a_face_no_track_knew_inside_the_kept_region_is_cut_out(engine, people, tmp_path):
    """The bystander benchmark's last leak (a small face at the edge of the alerted face's padded
    region that the live pipeline never tracked, between two detection passes): the clip looks
    for faces inside the kept region on the frame itself and washes every one but the alerted."""
    frame = scene()
    obama = alerted_face(engine, frame).box
    x0, y0, x1, y1 = kept_region(obama, frame.shape)
    small = (x0 + 2, y1 - 120, 110)  # Biden, small, tucked into the kept region's lower left corner
    paste(frame, decode_image(demo_bytes("biden.jpg")), *small)
    assert "biden" in [n for _, n in who(engine, people, frame[y0:y1, x0:x1])]  # recognisable there

    def find_faces(crop):
        return [f.box for f in engine.pack.detector.detect(crop, threshold=0.3)]

    for finder, leaks in ((None, True), (find_faces, False)):
        recorder = EvidenceRecorder(seconds=0.2, width=1920, fps=10.0, find_faces=finder)
        for i in range(3):
            recorder.observe("north", frame, i * 0.1, [(5, obama)])  # no track for the small face
        recorder.start("north", alert_id=1, track_id=5, t=0.1)
        (clip,) = recorder.finished("north", 0.3, flush=True)
        encoded = recorder.encode(clip)
        names = clip_names(engine, people, encoded, tmp_path)
        assert all("obama" in n for n in names)
        assert any("biden" in n for n in names) is leaks, names
    done = encoded.redaction
    assert done["frames_untracked_face_cut_from_kept_region"] == done["frames_alerted_face_detected"] >= 2, done
