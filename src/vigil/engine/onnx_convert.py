"""Repairing the quantised OpenCV Zoo graphs so ONNX Runtime runs them fast and batched.

The published int8 block-quantised files (YuNet 2023mar, SFace 2021dec) have three problems:
1. SFace lists its weights as graph inputs (which ONNX Runtime and OpenCV 5 reject or
   refuse to optimise); some of those inputs are not even used.
2. Weights are stored int8 and dequantised at every run (DequantizeLinear + Reshape chains
   on constants), which costs time and blocks constant folding.
3. The batch dimension (and YuNet's spatial size) is fixed at 1x3x640x640 / 1x3x112x112.
4. ONNX Runtime's PRelu kernel falls off its blocked (NCHWc) layout and took 60% of SFace's
   time (profiled on AVX-512). We rewrite ``PRelu(x, s)`` as
   ``Relu(x) + DW(Relu(DW(x, -1)), -s)``, where ``DW(t, w)`` is a depthwise 1x1 convolution
   scaling each channel by ``w``: equal to PRelu for any slope, and made of operators that
   stay in the blocked layout. Measured on this machine (2 threads, 2 faces per run):
   12 ms per face with PRelu, 5.5 ms with an elementwise rewrite (Relu, Sub, Mul, Add),
   4.0 ms with this one.

:func:`convert` fixes all three: it folds every DequantizeLinear/Reshape on constants into
float32 initialisers, drops graph inputs that are initialisers or unused, turns data-path
reshapes of the form ``[1, -1, k]`` into ``[0, -1, k]`` (copy the batch dimension), and marks
the batch (and optionally height/width) dimensions symbolic.

:func:`repair_recogniser` applies the same repairs to any ArcFace-style recogniser a site
registers or Vigil installs (``vigil models add`` / ``install``), plus one more: a final
``Reshape(x, [1, -1])`` (an export that fixed the batch at 1 in its flatten) becomes
``[-1, D]`` with ``D`` the embedding width, so faces can be embedded in batches.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

CONVERTER_VERSION = 3


def dequantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
               axis: int = 1, block_size: int = 0) -> np.ndarray:
    """NumPy reference of ONNX DequantizeLinear (opset 21: per-tensor, per-axis, blocked)."""
    xf = x.astype(np.float32)
    zp = np.zeros_like(scale, dtype=np.float32) if zero_point is None else zero_point.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1 and x.ndim == 0:
        return (xf - zp) * scale
    axis = axis % x.ndim
    if block_size and block_size > 0:
        rep_scale = np.repeat(scale, block_size, axis=axis)
        rep_zp = np.repeat(zp, block_size, axis=axis)
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, x.shape[axis])
        return (xf - rep_zp[tuple(index)]) * rep_scale[tuple(index)]
    shape = [1] * x.ndim
    shape[axis] = -1
    return (xf - zp.reshape(shape)) * scale.reshape(shape)


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def fold_constants(model: onnx.ModelProto) -> int:
    """Fold DequantizeLinear and Reshape nodes whose inputs are all constant. Returns count."""
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    folded = 0
    changed = True
    while changed:
        changed = False
        keep = []
        for node in graph.node:
            inputs = [i for i in node.input if i]
            if node.op_type in ("DequantizeLinear", "Reshape") and all(i in consts for i in inputs):
                if node.op_type == "DequantizeLinear":
                    zp = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                    value = dequantize(consts[node.input[0]], consts[node.input[1]], zp,
                                       axis=_attr(node, "axis", 1), block_size=_attr(node, "block_size", 0))
                else:
                    data, shape = consts[node.input[0]], consts[node.input[1]].astype(np.int64)
                    shape = [data.shape[i] if s == 0 else int(s) for i, s in enumerate(shape)]
                    value = data.reshape(shape)
                consts[node.output[0]] = value.astype(np.float32) if value.dtype.kind == "f" else value
                folded += 1
                changed = True
            else:
                keep.append(node)
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for node in graph.node for i in node.input} | {o.name for o in graph.output}
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in consts.items() if name in used)
    return folded


def drop_bad_inputs(model: onnx.ModelProto) -> list[str]:
    """Remove graph inputs that are initialisers or that no node reads."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    used = {i for node in graph.node for i in node.input}
    keep, dropped = [], []
    for inp in graph.input:
        if inp.name in inits or inp.name not in used:
            dropped.append(inp.name)
        else:
            keep.append(inp)
    del graph.input[:]
    graph.input.extend(keep)
    return dropped


def make_dynamic(model: onnx.ModelProto, *, spatial: bool = False) -> None:
    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[0] not in consts and node.input[1] in consts:
            shape = numpy_helper.to_array(consts[node.input[1]]).copy()
            if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
                shape[0] = 0  # copy the batch dimension from the input
                consts[node.input[1]].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), node.input[1]))
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_param = "batch"
        if spatial and value in graph.input and len(dims) == 4:
            dims[2].dim_param = "height"
            dims[3].dim_param = "width"
        if spatial and value in graph.output and len(dims) == 3:
            dims[1].dim_param = f"anchors_{value.name}"
    del graph.value_info[:]


def rewrite_prelu(model: onnx.ModelProto) -> int:
    """Replace PRelu(x, s) by Relu(x) + DW(Relu(DW(x, -1)), -s); same values, faster kernels."""
    graph = model.graph
    slopes = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes, extra, count = [], [], 0
    for node in graph.node:
        # only channel-wise slopes of 4-D activations, shaped (C, 1, 1), map onto a depthwise conv
        if node.op_type != "PRelu" or node.input[1] not in slopes or slopes[node.input[1]].ndim != 3:
            nodes.append(node)
            continue
        x, slope_name = node.input
        y = node.output[0]
        slope = slopes[slope_name].reshape(-1).astype(np.float32)
        channels = slope.size
        extra += [numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, np.float32), f"{y}__neg_w"),
                  numpy_helper.from_array((-slope).reshape(channels, 1, 1, 1), f"{y}__slope_w")]
        nodes += [
            helper.make_node("Conv", [x, f"{y}__neg_w"], [f"{y}__neg"], group=channels, kernel_shape=[1, 1]),
            helper.make_node("Relu", [f"{y}__neg"], [f"{y}__relu_neg"]),
            helper.make_node("Relu", [x], [f"{y}__relu_pos"]),
            helper.make_node("Conv", [f"{y}__relu_neg", f"{y}__slope_w"], [f"{y}__scaled"], group=channels,
                             kernel_shape=[1, 1]),
            helper.make_node("Add", [f"{y}__relu_pos", f"{y}__scaled"], [y]),
        ]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(extra)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return count


def convert(source: bytes, *, spatial: bool = False) -> bytes:
    model = onnx.load_from_string(source)
    fold_constants(model)
    drop_bad_inputs(model)
    rewrite_prelu(model)
    make_dynamic(model, spatial=spatial)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fix_flatten_reshapes(model: onnx.ModelProto) -> int:
    """``Reshape(x, [1, -1])`` feeding a graph output of known width ``D`` becomes ``[-1, D]``."""
    graph = model.graph
    consts = {i.name: i for i in graph.initializer}
    widths = {}
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) == 2 and dims[1].dim_value > 0:
            widths[out.name] = dims[1].dim_value
    fixed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] in consts or node.input[1] not in consts:
            continue
        shape = numpy_helper.to_array(consts[node.input[1]])
        if shape.tolist() == [1, -1] and node.output[0] in widths:
            new = np.array([-1, widths[node.output[0]]], np.int64)
            consts[node.input[1]].CopyFrom(numpy_helper.from_array(new, node.input[1]))
            fixed += 1
    return fixed


def batch_dependent(model: onnx.ModelProto) -> bool:
    """True for dynamic quantisation: activation scales are computed per run, over the whole
    batch, so a face's embedding depends on the faces it shares a run with."""
    return any(node.op_type == "DynamicQuantizeLinear" for node in model.graph.node)


METADATA_KEYS = {"mean": ("input_mean", "mean", "vigil.input_mean"), "std": ("input_std", "std", "vigil.input_std")}


def metadata_normalisation(model: onnx.ModelProto) -> tuple[float, float] | None:
    """(mean, std) when the model's metadata states both, else None."""
    meta = {p.key.lower(): p.value for p in model.metadata_props}
    found = {}
    for what, keys in METADATA_KEYS.items():
        for key in keys:
            if key in meta:
                try:
                    found[what] = float(meta[key])
                except ValueError:
                    continue
                break
    return (found["mean"], found["std"]) if len(found) == 2 else None


def repair_recogniser(source: bytes) -> bytes:
    """A float32, batch-dynamic version of an ArcFace-style recogniser (same outputs per face)."""
    model = onnx.load_from_string(source)
    fold_constants(model)
    drop_bad_inputs(model)
    fix_flatten_reshapes(model)
    rewrite_prelu(model)
    make_dynamic(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()
