"""Post-training int8 quantization of an encoder ONNX graph the way vai_q_pytorch does it for the
DPU: per-tensor power-of-two scales, zero-point 0, int8 weights, biases and activations.

The result is a QDQ graph (QuantizeLinear/DequantizeLinear around float ops) that ONNX Runtime
runs and whose outputs equal the DPU's up to rounding details: weights and biases become int8
initializers behind DequantizeLinear; the image input, every ReLU output and every convolution
not followed by a ReLU get a Quantize/Dequantize pair. Fix points are chosen per tensor as the
one with the least squared error on calibration data (vai_q's "diffs" method), searched from the
largest one that still holds the tensor's maximum.
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from caed.fixed_point import dequantize, fix_point_for, to_int8

from .quant import INPUT_FIX_POINT

CONV_OPS = ("Conv", "ConvTranspose")
SAMPLES_PER_BATCH = 200_000


def best_fix_point(values: np.ndarray, max_abs: float | None = None) -> int:
    """The power-of-two fix point with the least int8 round-trip squared error on `values`."""
    max_abs = float(np.abs(values).max()) if max_abs is None else max_abs
    top = fix_point_for(max_abs) if max_abs > 0 else 7
    errors = {}
    for fp in range(top, top + 3):
        errors[fp] = float(np.mean((dequantize(to_int8(values, fp), fp) - values) ** 2))
    return min(errors, key=errors.get)


def _activation_tensors(graph: onnx.GraphProto) -> list[str]:
    """Tensors the DPU stores as int8 between layers: ReLU outputs and bare convolution outputs."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names = []
    for node in graph.node:
        if node.op_type == "Relu":
            names.append(node.output[0])
        elif node.op_type in CONV_OPS:
            if not any(c.op_type == "Relu" for c in consumers.get(node.output[0], [])):
                names.append(node.output[0])
    return names


def calibrate(model: onnx.ModelProto, images: list[np.ndarray], input_name: str = "image") -> dict[str, int]:
    """Fix point of every activation tensor from running the float graph on calibration images."""
    names = _activation_tensors(model.graph)
    probe = copy.deepcopy(model)
    known = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    samples: dict[str, list[np.ndarray]] = {n: [] for n in names}
    max_abs = dict.fromkeys(names, 0.0)
    for image in images:
        outputs = session.run(names, {input_name: image})
        for name, value in zip(names, outputs):
            flat = value.ravel()
            max_abs[name] = max(max_abs[name], float(np.abs(flat).max()))
            samples[name].append(rng.choice(flat, size=min(SAMPLES_PER_BATCH, flat.size), replace=False))
    return {n: best_fix_point(np.concatenate(samples[n]), max_abs[n]) for n in names}


def _scale(fix_point: int) -> np.ndarray:
    return np.array(2.0 ** -fix_point, np.float32)


def _qdq_nodes(tensor: str, fix_point: int, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Quantize/Dequantize pair after `tensor`; returns nodes, initializers and the new tensor name."""
    scale, zero = f"{prefix}_scale", f"{prefix}_zero_point"
    inits = [numpy_helper.from_array(_scale(fix_point), scale), numpy_helper.from_array(np.array(0, np.int8), zero)]
    q, dq = f"{prefix}_q", f"{prefix}_dq"
    nodes = [helper.make_node("QuantizeLinear", [tensor, scale, zero], [q], name=q),
             helper.make_node("DequantizeLinear", [q, scale, zero], [dq], name=dq)]
    return nodes, inits, dq


def _quantize_initializer(array: np.ndarray, name: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str, int]:
    fix_point = best_fix_point(array)
    q = to_int8(array, fix_point)
    scale, zero, out = f"{name}_scale", f"{name}_zero_point", f"{name}_dq"
    inits = [numpy_helper.from_array(q, f"{name}_int8"), numpy_helper.from_array(_scale(fix_point), scale),
             numpy_helper.from_array(np.array(0, np.int8), zero)]
    node = helper.make_node("DequantizeLinear", [f"{name}_int8", scale, zero], [out], name=out)
    return [node], inits, out, fix_point


def _fold_initializer_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """The exporter shares equal parameters (e.g. zero biases) through Identity nodes; give every
    layer its own initializer so that each is quantized where it is used."""
    model = copy.deepcopy(model)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            array = numpy_helper.to_array(initializers[node.input[0]])
            graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def quantize_encoder(model: onnx.ModelProto, activation_fix_points: dict[str, int],
                     input_name: str = "image") -> tuple[onnx.ModelProto, dict[str, int]]:
    """The QDQ graph and the fix point of every quantized tensor (weights, biases, activations)."""
    model = _fold_initializer_identities(model)
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    renamed: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    fix_points: dict[str, int] = {input_name: INPUT_FIX_POINT}

    qdq, inits, renamed[input_name] = _qdq_nodes(input_name, INPUT_FIX_POINT, "input")
    nodes += qdq
    new_inits += inits
    used_initializers = set()
    for node in graph.node:
        node = copy.deepcopy(node)
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
            elif node.op_type in CONV_OPS and name in initializers:
                array = numpy_helper.to_array(initializers[name]).astype(np.float32)
                dq, inits, node.input[k], fix_points[name] = _quantize_initializer(array, name)
                nodes += dq
                new_inits += inits
                used_initializers.add(name)
        nodes.append(node)
        for k, out in enumerate(node.output):
            if out in activation_fix_points:
                prefix = out.replace("/", "_").strip("_")
                if out in graph_outputs:  # the output is the dequantized tensor; the float one is renamed
                    node.output[k] = f"{prefix}_float"
                    qdq, inits, _ = _qdq_nodes(node.output[k], activation_fix_points[out], prefix)
                    qdq[-1].output[0] = out
                else:
                    qdq, inits, renamed[out] = _qdq_nodes(out, activation_fix_points[out], prefix)
                fix_points[out] = activation_fix_points[out]
                nodes += qdq
                new_inits += inits
    kept = [i for i in graph.initializer if i.name not in used_initializers]
    new_graph = helper.make_graph(nodes, graph.name + "_int8", list(graph.input), list(graph.output), kept + new_inits)
    qmodel = helper.make_model(new_graph, opset_imports=model.opset_import, producer_name="caed_models.qdq")
    qmodel.ir_version = model.ir_version
    onnx.checker.check_model(qmodel)
    return qmodel, fix_points


def latent_tensor(model: onnx.ModelProto) -> str:
    """The last quantized activation, i.e. the latent the wire carries."""
    return _activation_tensors(model.graph)[-1]
