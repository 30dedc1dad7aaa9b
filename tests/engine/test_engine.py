"""The engine end to end on real photographs shipped with the package."""

import numpy as np
import pytest

from tests.conftest import demo_bytes
from vigil.engine.images import decode_image
from vigil.engine.templates import Template
from vigil.errors import ModelMismatchError, NoFaceError, QualityError


def img(name):
    return decode_image(demo_bytes(name), name=name)


def test_finds_one_face_with_sane_landmarks(engine):
    faces = engine.detect(img("obama.jpg"))
    assert len(faces) == 1
    f = faces[0]
    x, y, w, h = f.box
    lm = f.landmarks
    assert (lm[:, 0] > x).all() and (lm[:, 0] < x + w).all()
    assert lm[0, 0] < lm[1, 0]  # image-left eye first
    assert lm[2, 1] > lm[0, 1] and lm[3, 1] > lm[2, 1]  # nose below eyes, mouth below nose
    assert f.score > 0.8


def test_finds_both_people(engine):
    faces = engine.detect(img("obama_and_biden.jpg"))
    assert len(faces) == 2


def test_small_faces_in_a_large_frame_are_found(engine):
    # Paste the small portrait face into a 4K canvas at reduced size: ~30 px between the eyes.
    import cv2

    face = img("obama.jpg")
    small = cv2.resize(face, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    canvas = np.full((2160, 3840, 3), 90, np.uint8)
    canvas[1500 : 1500 + small.shape[0], 3000 : 3000 + small.shape[1]] = small
    faces = engine.detect(canvas)
    assert len(faces) >= 1
    centre = faces[0].center
    assert 3000 < centre[0] < 3000 + small.shape[1] and 1500 < centre[1] < 1500 + small.shape[0]


def test_templates_are_unit_vectors_of_the_model(engine):
    found = engine.primary(img("obama.jpg"))
    assert found.vector.dtype == np.float32
    assert found.vector.shape == (128,)
    assert abs(np.linalg.norm(found.vector) - 1) < 1e-5
    assert found.template.model_id == engine.model_id == "sface-2021dec-fp32-flip"


def test_verify_same_and_different_people(engine):
    same = engine.verify(img("obama.jpg"), img("obama_speech.jpg"))
    diff = engine.verify(img("obama.jpg"), img("biden.jpg"))
    assert same.match and same.score > same.threshold
    assert not diff.match and diff.score < same.score - 0.3
    assert diff.fmr > same.fmr
    assert 0 < same.fmr <= 1e-4


def test_batch_equals_single(engine):
    images = [img("obama.jpg"), img("biden.jpg"), img("obama_speech.jpg")]
    batch = engine.primary_batch(images)
    for image, b in zip(images, batch):
        single = engine.primary(image)
        assert np.allclose(single.vector, b.vector, atol=1e-5)


def test_different_models_are_never_compared():
    a = Template("sface-2021dec-fp32-flip", np.ones(128, np.float32))
    b = Template("dlib-resnet-v1-flip", np.ones(128, np.float32))
    with pytest.raises(ModelMismatchError, match="different models"):
        a.similarity(b)


def test_no_face_is_a_clear_error(engine):
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError):
        engine.primary(blank)


def test_enrolment_gate_rejects_a_tiny_face_with_reason(engine):
    import cv2

    tiny = cv2.resize(img("obama.jpg"), None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[200 : 200 + tiny.shape[0], 300 : 300 + tiny.shape[1]] = tiny
    with pytest.raises(QualityError) as info:
        engine.enrolment_face(canvas)
    assert any("too small" in r for r in info.value.reasons)


def test_grayscale_and_rotated_input(engine):
    import cv2

    gray = cv2.cvtColor(cv2.cvtColor(img("obama.jpg"), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    ref = engine.primary(img("obama.jpg")).template
    assert engine.primary(gray).template.similarity(ref) > 0.8
    rotated = cv2.rotate(img("obama.jpg"), cv2.ROTATE_90_CLOCKWISE)
    found = engine.detect(rotated)  # a sideways face is either found (and matches) or not found; never a crash
    if found:
        assert isinstance(found[0].score, float)
