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


# --------------------------------------------------------------------------- registered models as packs
@pytest.fixture()
def tiny_registered(tmp_path, model_cache):
    """A home with a tiny generated recogniser registered as 'tiny' (stands in for a licensed model)."""
    from tests.engine import tiny_onnx
    from vigil.config import Settings
    from vigil.engine.model_install import prepare

    home = tmp_path / "h"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    prepare(tiny_onnx.recogniser(), "tiny", mean=127.5, std=127.5).publish(home)
    return Settings(home=home)


def test_a_registered_model_is_a_pack_by_name(tiny_registered):
    from vigil.engine.face_engine import FaceEngine
    from vigil.engine.packs import check_live_pack, pack_for_model_id

    engine = FaceEngine.from_settings(tiny_registered, "tiny")
    found = engine.primary(img("obama.jpg"))
    assert found.vector.shape == (64,) and abs(np.linalg.norm(found.vector) - 1) < 1e-5
    assert engine.model_id.startswith("tiny@") and engine.model_id.endswith("-flip")
    check_live_pack("tiny")  # YuNet-detected ArcFace-style: live-capable
    assert pack_for_model_id(engine.model_id, tiny_registered).name == "tiny"
    with pytest.raises(ModelError, match="vigil calibrate"):
        engine.pack.calibration


def test_any_two_models_fuse_and_the_template_is_the_weighted_sum(tiny_registered):
    from vigil.engine.face_engine import FaceEngine
    from vigil.engine.fusion import split
    from vigil.engine.packs import check_live_pack, fused_weight

    fused = FaceEngine.from_settings(tiny_registered, "fusion:sface+tiny")
    assert fused.pack.dim == 128 + 64 and fused.pack.embedder.weight == 0.5
    assert fused_weight("sface", "tiny", tiny_registered.home)["source"] == "default"
    a, b = fused.primary(img("obama.jpg")).vector, fused.primary(img("obama_speech.jpg")).vector
    sa, ta = split(a, 128, 0.5)
    sb, tb = split(b, 128, 0.5)
    assert float(a @ b) == pytest.approx(0.5 * float(sa[0] @ sb[0]) + 0.5 * float(ta[0] @ tb[0]), abs=1e-5)
    tiny = FaceEngine.from_settings(tiny_registered, "tiny")
    assert float(ta[0] @ tb[0]) == pytest.approx(
        float(tiny.primary(img("obama.jpg")).vector @ tiny.primary(img("obama_speech.jpg")).vector), abs=1e-4)
    with pytest.raises(ModelError, match="stills only"):
        check_live_pack("fusion:sface+tiny")


def test_a_site_fitted_fusion_weight_is_used(tiny_registered):
    from vigil.engine.packs import build_pack

    (tiny_registered.home / "calibration").mkdir()
    (tiny_registered.home / "calibration" / "fusion_weight_sface+tiny.json").write_text(
        json.dumps({"weight": 0.8, "fitted_on": "site pairs"}))
    pack = build_pack("fusion:sface+tiny", tiny_registered)
    assert pack.embedder.weight == 0.8 and "w0.800" in pack.model_id


@pytest.mark.parametrize("name, message", [
    ("fusion:sface", "two different models"),
    ("fusion:sface+sface", "two different models"),
    ("fusion:sface+nothing", "unknown model 'nothing'"),
    ("faceplugin", "vigil models install faceplugin"),
    ("nothing", "unknown pack"),
])
def test_unknown_or_malformed_packs_are_clear_errors(tiny_registered, name, message):
    from vigil.engine.packs import build_pack

    with pytest.raises(ModelError, match=message):
        build_pack(name, tiny_registered)


def test_the_fusion_pack_is_unchanged():
    from vigil.engine.packs import check_live_pack, fusion_weight

    check_live_pack("fusion")
    assert 0 < fusion_weight()["weight"] < 1
    with pytest.raises(ModelError):
        check_live_pack("dlib")


def test_a_registered_model_embeds_live_shots(tiny_registered):
    """Live-capable: the live pipeline's shot embedder takes it as it takes SFace."""
    from vigil.engine.align import align_face
    from vigil.engine.face_engine import FaceEngine
    from vigil.live.shot_embedding import ShotEmbedder

    engine = FaceEngine.from_settings(tiny_registered, "tiny")
    frame = img("obama_and_biden.jpg")
    faces = engine.detect(frame, still=False)
    shots = ShotEmbedder(engine.pack).embed(frame, faces, [align_face(frame, f.landmarks) for f in faces])
    assert len(shots) == 2 and all(s.primary.shape == (64,) and s.chip is None for s in shots)
