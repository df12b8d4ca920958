"""ONNX export of a codec's encoder and decoder with the daemon's tensor contract.

encoder.onnx: "image" float32 NHWC [1,H,W,3] in [0,1] -> "latent" float32 NCHW [1,c,h,w];
decoder.onnx: "latent" float32 NCHW [1,c,h,w] -> "image" NHWC [1,H,W,3] (unclipped). Pictures
are NHWC as OpenCV holds them; latents are channel planes, the layout a convolution computes
and the one the planar payload codec and the host's decoder use, so neither side permutes them.
(The DPU writes NHWC latents whatever the ONNX layout: the codecs take both.)
A decoder that is a synthesis convolution followed by depth-to-space and a picture-to-picture
stage (`decoder.post`, dct8) is also written split, for the host's sparse synthesis:
synthesis.npz (the convolution's "weight" (c_out, c, 3, 3) and "bias", and the depth-to-space
"block") and decoder_post.onnx:
"synthesized" float32 NCHW [1,3,H,W], the depth-to-space picture -> "picture" NCHW [1,3,H,W].
The encoder takes its colours in the order the model.json names (`input.colours`): BGR, as
cameras deliver them through OpenCV, so the A53 need not swap them (`swap_input_colours`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from .base import CodecModel
    import onnx

OPSET = 18


class _NCHWToNHWC(nn.Module):
    """Runs an NCHW module and returns its output NHWC."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).permute(0, 2, 3, 1)


def _export(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str,
            input_hw_axes: tuple[int, int], output_hw_axes: tuple[int, int]) -> None:
    """Export a module whose input's and output's height and width are those axes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (example,), str(path), input_names=[input_name],
            output_names=[output_name], opset_version=OPSET, dynamo=False,
            dynamic_axes={input_name: dict(zip(input_hw_axes, ("height", "width"))),
                          output_name: dict(zip(output_hw_axes, ("height", "width")))},
        )


def export_encoder(model: CodecModel, path: Path, height: int, width: int) -> None:
    """A model may provide its own form of the encoder for NHWC pictures (`nhwc_encoder()`, the same
    function laid out for ONNX Runtime); otherwise the encoder runs after a permute."""
    module = model.nhwc_encoder()
    _export(module, torch.rand(1, height, width, 3), path, "image", "latent", (1, 2), (2, 3))


def export_decoder(model: CodecModel, path: Path, latent_shape: tuple[int, int, int]) -> None:
    """`latent_shape` is the wire's (h, w, c); the graph takes (1, c, h, w)."""
    h, w, c = latent_shape
    _export(_NCHWToNHWC(model.decoder), torch.randn(1, c, h, w), path, "latent", "image", (2, 3), (1, 2))


class _Post(nn.Module):
    """A decoder's picture-to-picture stage as a module of its own (for export)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner.post(x)


def has_split_decoder(model: CodecModel) -> bool:
    return hasattr(model.decoder, "post")


def export_decoder_split(model: CodecModel, directory: Path, latent_shape: tuple[int, int, int]) -> tuple[str, str]:
    """synthesis.npz and decoder_post.onnx in `directory` (module docstring); their file names.

    The synthesis weights go to a .npz rather than being read from decoder.onnx's initializers:
    the host then needs numpy only (ONNX Runtime does not expose initializers, and `onnx` is not a
    host dependency), and nothing depends on the ONNX graph's node names."""
    h, w, _ = latent_shape
    synthesis, block = model.decoder.synthesis, model.decoder.to_pixels.upscale_factor
    np.savez(directory / "synthesis.npz", weight=synthesis.weight.detach().numpy().astype(np.float32),
             bias=synthesis.bias.detach().numpy().astype(np.float32), block=np.int64(block))
    _export(_Post(model.decoder), torch.rand(1, 3, h * block, w * block), directory / "decoder_post.onnx",
            "synthesized", "picture", (2, 3), (2, 3))
    return "synthesis.npz", "decoder_post.onnx"


def load_encoder_weights(model: CodecModel, path: Path) -> None:
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


def swap_input_colours(encoder: onnx.ModelProto, order: np.ndarray | None = None) -> onnx.ModelProto:
    """The same encoder for the colours in the other order (RGB <-> BGR), in place: the first
    convolution's input channels permuted, in its float or int8 (QDQ) weight alike. Exact, and free
    on the DPU and in ONNX Runtime, where swapping colours costs the A53 a pass over every frame.

    `order`: the PyTorch channel each input channel of that convolution holds, when the encoder
    gathers them itself (a model's `nhwc_encoder_input_order`); PyTorch's order keeps each colour
    in a contiguous third of the channels."""
    from onnx import numpy_helper

    graph = encoder.graph
    initializers = {t.name: t for t in graph.initializer}
    name = next(n for n in graph.node if n.op_type == "Conv").input[1]
    if name not in initializers:  # int8: the weight is DequantizeLinear(int8 initializer, scale)
        name = next(n for n in graph.node if name in n.output and n.op_type == "DequantizeLinear").input[0]
    weight = numpy_helper.to_array(initializers[name])
    order = np.arange(weight.shape[1]) if order is None else np.asarray(order)
    third = weight.shape[1] // 3
    if len(order) != weight.shape[1] or weight.shape[1] % 3:
        raise ValueError(f"first convolution has {weight.shape[1]} input channels, not 3 colours in {len(order)}")
    columns = np.argsort(order)[(2 - order // third) * third + order % third]
    initializers[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight[:, columns]), name))
    return encoder
