"""A tiny int8 QDQ ONNX encoder with the shipped models' interface, for tests that need no weights.

Input "image" float32 NHWC [1, H, W, 3] in [0, 1]; output "latent" float32 NCHW
[1, C, H/2, W/2]: one 2x2 stride-2 convolution with int8 weights, input and output quantized
with power-of-two scales (2**-input_fix_point, 2**-latent_fix_point) like the DPU does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write_tiny_encoder(path: Path, height: int, width: int, channels: int = 4, *, input_fix_point: int = 7,
                       latent_fix_point: int = 4, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    weight_q = rng.integers(-100, 100, size=(channels, 3, 2, 2), dtype=np.int8)
    weight_scale = np.float32(2.0 ** -8)
    bias = rng.normal(0, 0.1, size=channels).astype(np.float32)
    init = [
        numpy_helper.from_array(np.float32(2.0 ** -input_fix_point), "in_scale"),
        numpy_helper.from_array(np.float32(2.0 ** -latent_fix_point), "out_scale"),
        numpy_helper.from_array(weight_scale, "w_scale"),
        numpy_helper.from_array(np.int8(0), "zero"),
        numpy_helper.from_array(weight_q, "w_q"),
        numpy_helper.from_array(bias, "bias"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["image", "in_scale", "zero"], ["image_q"]),
        helper.make_node("DequantizeLinear", ["image_q", "in_scale", "zero"], ["image_dq"]),
        helper.make_node("Transpose", ["image_dq"], ["image_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "zero"], ["w"]),
        helper.make_node("Conv", ["image_nchw", "w", "bias"], ["conv"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("QuantizeLinear", ["conv", "out_scale", "zero"], ["latent_q"]),
        helper.make_node("DequantizeLinear", ["latent_q", "out_scale", "zero"], ["latent"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, height, width, 3])],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1, channels, height // 2, width // 2])],
        init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)
