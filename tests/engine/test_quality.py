import cv2
import numpy as np

from vigil.config import QualitySettings
from vigil.engine.align import ARCFACE_112
from vigil.engine.faces import Face
from vigil.engine.quality import assess, estimate_pose


def _face(landmarks, score=0.95):
    lm = np.asarray(landmarks, np.float32)
    x0, y0 = lm.min(0) - 20
    x1, y1 = lm.max(0) + 20
    return Face(box=np.array([x0, y0, x1 - x0, y1 - y0], np.float32), landmarks=lm, score=score)


def _textured(brightness=128, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(brightness, 30, size=(112, 112)).clip(0, 255).astype(np.uint8)
    return cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)


def test_frontal_landmarks_give_near_zero_pose():
    yaw, pitch, roll = estimate_pose(ARCFACE_112)
    assert abs(yaw) < 3 and abs(pitch) < 3 and abs(roll) < 1


def test_roll_follows_the_eye_line():
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    _, _, roll = estimate_pose((ARCFACE_112 - 56) @ rot.T + 56)
    assert 23 < roll < 27


def test_nose_off_centre_means_yaw():
    turned = ARCFACE_112.copy()
    turned[2, 0] += 15  # nose towards one eye
    yaw, _, _ = estimate_pose(turned)
    assert yaw > 30


def test_good_face_passes_and_scores_high():
    report = assess(_face(ARCFACE_112 * 1.0), _textured(), QualitySettings(min_eye_distance=24))
    assert report.passed, report.reasons
    assert report.score > 0.6


def test_each_failure_is_named():
    limits = QualitySettings()
    small = assess(_face(ARCFACE_112 * 0.3), _textured(), limits)
    assert any("too small" in r for r in small.reasons)
    dark = assess(_face(ARCFACE_112), _textured(brightness=15), limits)
    assert any("under-exposed" in r for r in dark.reasons)
    bright = assess(_face(ARCFACE_112), _textured(brightness=245), limits)
    assert any("over-exposed" in r for r in bright.reasons)
    blurred = assess(_face(ARCFACE_112), cv2.GaussianBlur(_textured(), (0, 0), 6), limits)
    assert any("blurred" in r for r in blurred.reasons)
    unsure = assess(_face(ARCFACE_112, score=0.4), _textured(), limits)
    assert any("uncertain detection" in r for r in unsure.reasons)
    turned = ARCFACE_112.copy()
    turned[2, 0] += 16
    assert any("head turned" in r for r in assess(_face(turned), _textured(), limits).reasons)
    # a failing factor pulls the score down
    assert small.score < assess(_face(ARCFACE_112), _textured(), limits).score


def test_a_face_cut_by_the_image_edge_fails_the_gate(engine):
    """Issue #15: a face cut by the image's edge scored quality 1.00 (the detector clips its box
    to the image and the aligned crop is padded)."""
    from tests.conftest import demo_bytes
    from vigil.engine.images import decode_image

    image = decode_image(demo_bytes("obama.jpg"))
    whole = engine.primary(image)
    assert whole.quality.passed and not any("cut off" in r for r in whole.quality.reasons)
    x, y, w, h = whole.face.box_list()
    for cut in (image[:, x + w // 4:], image[y + h // 4:, :]):  # a quarter of the face gone, left or top
        found = engine.primary(np.ascontiguousarray(cut))
        assert not found.quality.passed
        assert any("cut off by the image edge" in r for r in found.quality.reasons)
        assert found.quality.score < whole.quality.score
