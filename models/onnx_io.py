"""ONNX export of a codec's encoder and decoder with the daemon's tensor contract.

encoder.onnx: "image" float32 NHWC [1,H,W,3] in [0,1] -> "latent" float32 NHWC [1,h,w,c];
decoder.onnx: "latent" -> "image" (unclipped). The NCHW<->NHWC permutes are inside the graphs.
"""
from __future__ import annotations

import warnings
from pathlib import Path

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _NHWC(module).eval(), (example,), str(path), input_names=[input_name],
            output_names=[output_name], opset_version=OPSET, dynamo=False,
            dynamic_axes={input_name: {1: "height", 2: "width"}, output_name: {1: "height", 2: "width"}},
        )


def export_encoder(model: nn.Module, path: Path, height: int, width: int) -> None:
    _export(model.encoder, torch.rand(1, height, width, 3), path, "image", "latent")


def export_decoder(model: nn.Module, path: Path, latent_shape: tuple[int, int, int]) -> None:
    _export(model.decoder, torch.randn(1, *latent_shape), path, "latent", "image")
