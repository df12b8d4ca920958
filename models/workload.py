"""Per-layer convolution workload of a PyTorch module, measured by running it once.

MOP follows the study's convention: 2 operations (multiply + add) per MAC, 1 MOP = 1e6 ops.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ConvLayer:
    name: str  # conv1, conv2, ... / deconv1, ... in execution order
    module: str  # the module's path in the PyTorch model
    kind: str  # "conv" or "deconv"
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    macs: int

    @property
    def mop(self) -> float:
        return 2 * self.macs / 1e6

    def as_dict(self) -> dict:
        return {**asdict(self), "mop": self.mop}


def conv_layers(module: nn.Module, input_shape: tuple[int, int, int, int]) -> list[ConvLayer]:
    """Every Conv2d/ConvTranspose2d in execution order, for one NCHW input of `input_shape`.

    A transposed convolution's MACs count every input pixel against the whole kernel, which is
    the work a DPU does for it.
    """
    layers: list[ConvLayer] = []
    names = {m: n for n, m in module.named_modules()}

    def hook(mod, inputs, output):
        x = inputs[0]
        kh, kw = mod.kernel_size
        groups = mod.groups
        if isinstance(mod, nn.ConvTranspose2d):
            pixels, kind = x.shape[2] * x.shape[3], "deconv"
        else:
            pixels, kind = output.shape[2] * output.shape[3], "conv"
        macs = pixels * kh * kw * mod.in_channels * mod.out_channels // groups
        index = 1 + sum(layer.kind == kind for layer in layers)
        layers.append(ConvLayer(f"{kind}{index}", names[mod], kind, mod.in_channels, mod.out_channels, (kh, kw), tuple(mod.stride),
                                (x.shape[2], x.shape[3]), (output.shape[2], output.shape[3]), macs))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    return layers
