"""ONNX export of a codec's encoder and decoder with the daemon's tensor contract.

encoder.onnx: "image" float32 NHWC [1,H,W,3] in [0,1] -> "latent" float32 NHWC [1,h,w,c];
decoder.onnx: "latent" -> "image" (unclipped). The NCHW<->NHWC permutes are inside the graphs.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

OPSET = 18


class _NHWC(nn.Module):
    """Runs an NCHW module on an NHWC tensor."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    """Export an NHWC -> NHWC module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (example,), str(path), input_names=[input_name],
            output_names=[output_name], opset_version=OPSET, dynamo=False,
            dynamic_axes={input_name: {1: "height", 2: "width"}, output_name: {1: "height", 2: "width"}},
        )


def export_encoder(model: nn.Module, path: Path, height: int, width: int) -> None:
    """A model may provide its own NHWC form of the encoder (`nhwc_encoder()`, the same function
    laid out for ONNX Runtime); otherwise the encoder runs between two permutes."""
    module = model.nhwc_encoder() if hasattr(model, "nhwc_encoder") else _NHWC(model.encoder)
    _export(module, torch.rand(1, height, width, 3), path, "image", "latent")


def export_decoder(model: nn.Module, path: Path, latent_shape: tuple[int, int, int]) -> None:
    _export(_NHWC(model.decoder), torch.randn(1, *latent_shape), path, "latent", "image")


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Copy the convolution weights of a shipped encoder.onnx into `model.encoder` (the same
    architecture), in graph order: a DPU build must compile the very encoder whose decoder the
    host has, not whatever a training checkpoint holds today."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    first_order = getattr(model, "nhwc_encoder_input_order", None)  # see export_encoder
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    if len(nodes) != len(convs):
        raise ValueError(f"{path} has {len(nodes)} convolutions, the {type(model).__name__} encoder {len(convs)}")
    with torch.no_grad():
        for node, conv in zip(nodes, convs):
            params = [weights.get(name) for name in node.input[1:]]
            if any(p is None for p in params) or len(params) != 2 or params[0].shape != tuple(conv.weight.shape):
                raise ValueError(f"{path}: convolution {node.name} does not match {conv} (weights and bias as initializers)")
            weight = params[0]
            if first_order is not None and conv is convs[0]:
                weight = weight[:, np.argsort(first_order)]
            conv.weight.copy_(torch.tensor(weight))
            conv.bias.copy_(torch.tensor(params[1]))
