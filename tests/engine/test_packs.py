"""The optional packs: dlib, fusion, and a site's own ArcFace-style ONNX model."""

import json

import numpy as np
import pytest

from tests.conftest import demo_bytes
from vigil.engine.images import decode_image
from vigil.errors import ModelError


def img(name):
    return decode_image(demo_bytes(name), name=name)


@pytest.fixture(scope="module")
def dlib_available():
    pytest.importorskip("dlib", reason="the dlib pack is an optional extra: pip install 'vigil[dlib]'")


def test_dlib_pack_detects_and_verifies(dlib_available, session_settings):
    from vigil.engine.face_engine import FaceEngine

    engine = FaceEngine.from_settings(session_settings, "dlib")
    faces = engine.detect(img("obama_and_biden.jpg"))
    assert len(faces) == 2
    a = engine.primary(img("obama.jpg"))
    b = engine.primary(img("obama_speech.jpg"))
    c = engine.primary(img("biden.jpg"))
    assert a.vector.shape == (128,) and abs(np.linalg.norm(a.vector) - 1) < 1e-5
    assert a.template.similarity(b.template) > a.template.similarity(c.template) + 0.05
    assert engine.model_id == "dlib-resnet-v1-flip"


def test_fusion_template_is_the_weighted_sum_of_both_scores(dlib_available, session_settings):
    from vigil.engine.face_engine import FaceEngine
    from vigil.engine.fusion import split

    fusion = FaceEngine.from_settings(session_settings, "fusion")
    w = fusion.pack.embedder.weight
    a = fusion.primary(img("obama.jpg")).vector
    b = fusion.primary(img("obama_speech.jpg")).vector
    assert a.shape == (256,) and abs(np.linalg.norm(a) - 1) < 1e-5
    sa, da = split(a, 128, w)
    sb, db = split(b, 128, w)
    assert float(a @ b) == pytest.approx(w * float(sa[0] @ sb[0]) + (1 - w) * float(da[0] @ db[0]), abs=1e-5)
    sface = FaceEngine.from_settings(session_settings, "sface")
    assert float(sa[0] @ sb[0]) == pytest.approx(
        float(sface.primary(img("obama.jpg")).vector @ sface.primary(img("obama_speech.jpg")).vector), abs=1e-4)


def test_fit_weight_recovers_the_informative_score():
    from vigil.engine.fusion import fit_weight

    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 2000)
    good = np.where(labels == 1, rng.normal(0.6, 0.1, 4000), rng.normal(0.1, 0.1, 4000))
    noise = rng.normal(0.3, 0.1, 4000)  # carries no information
    assert fit_weight(good, noise, labels) > 0.9
    assert fit_weight(noise, good, labels) < 0.1


def test_custom_arcface_pack_from_config(tmp_path, monkeypatch, model_cache):
    """A site's own model: here SFace's repaired file stands in for a licensed ArcFace model."""
    from vigil.config import Settings
    from vigil.engine import model_files as mf
    from vigil.engine.face_engine import FaceEngine

    model = mf.converted_model(mf.SFACE, model_cache)
    home = tmp_path / "h"
    (home / "models").mkdir(parents=True)
    settings = Settings(home=home, custom_pack={"model_path": str(model), "model_id": "site-model",
                                                 "input_mean": 0.0, "input_std": 1.0, "rgb": True})
    engine = FaceEngine.from_settings(settings, "custom")
    assert engine.model_id.startswith("site-model@")
    with pytest.raises(ModelError, match="vigil calibrate"):
        engine.verify(img("obama.jpg"), img("obama_speech.jpg"))
    # with a calibration table of its own, verification works and the scores equal SFace's
    shipped = json.loads((mf.package_dir("vigil") / "engine" / "calibration" /
                          "sface-2021dec-fp32-flip.json").read_text())
    shipped["model_id"] = engine.model_id
    (home / "calibration").mkdir()
    from vigil.engine.calibration import calibration_filename

    (home / "calibration" / calibration_filename(engine.model_id)).write_text(json.dumps(shipped))
    engine.pack.reload_calibration()
    result = engine.verify(img("obama.jpg"), img("obama_speech.jpg"))
    assert result.match and result.model_id == engine.model_id


def test_custom_pack_needs_a_model_path(tmp_path):
    from vigil.config import Settings
    from vigil.engine.packs import build_pack

    with pytest.raises(ModelError, match="model_path"):
        build_pack("custom", Settings(home=tmp_path))
    with pytest.raises(ModelError, match="unknown pack"):
        build_pack("nonsense", Settings(home=tmp_path))
