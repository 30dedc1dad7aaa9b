"""Tiny ArcFace-shaped ONNX recognisers built in the test (no download, no licensed file):
N x 3 x 112 x 112 in, 64-d out, with the defects real exports carry."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def recogniser(*, metadata: dict | None = None, seed: int = 0, fixed_batch: bool = True) -> bytes:
    """Conv -> PRelu -> GlobalAveragePool -> Reshape([1, -1]): the batch fixed at 1 the way
    faceplugin's fr_feature.onnx fixes it."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(size=(64, 3, 8, 8)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.uniform(0.05, 0.3, size=(64, 1, 1)).astype(np.float32), "slope"),
        numpy_helper.from_array(np.array([1, -1] if fixed_batch else [0, -1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], strides=[8, 8], kernel_shape=[8, 8]),
        helper.make_node("PRelu", ["c", "slope"], ["p"]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Reshape", ["g", "shape"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def dynamic_int8_recogniser(tmp_path: Path) -> bytes:
    """The same shape of network through ONNX Runtime's dynamic int8 quantisation (activation
    scales computed per run over the whole batch), like buffalo_s_recognition_int8.onnx."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(64, 3, 8, 8)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(size=(64, 64)).astype(np.float32), "fc")]
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], strides=[8, 8], kernel_shape=[8, 8]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["output"])]
    graph = helper.make_graph(nodes, "tiny-int8",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 112, 112])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    src, dst = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model, src)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return dst.read_bytes()


def npm_tarball(path: Path, member: str, data: bytes) -> Path:
    """An npm-style .tgz holding ``data`` at ``member`` (what npm pack produces)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in ((member, data), ("package/package.json", b'{"name": "tiny"}')):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path
