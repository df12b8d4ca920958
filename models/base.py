"""What every trainable codec model is to training, export and evaluation (in the manner of
CompressAI's `CompressionModel`): an `encoder` and a `decoder` module, the latent geometry, and a
training loss. The tools call these methods on any model instead of probing it for attributes, so
a new architecture states what it does differently by overriding one method.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class NHWCToNCHW(nn.Module):
    """Runs an NCHW module on an NHWC tensor."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 3, 1, 2))


class CodecModel(nn.Module, ABC):
    """Images NCHW in [0, 1]; latents NCHW floats, which the wire rounds to int8 at a fix point.

    Subclasses set `encoder` and `decoder` (nn.Modules) in __init__ and the class attributes."""

    latent_channels: int
    size_multiple: int  # picture height and width must be multiples of this
    log_fields: tuple[str, ...] = ()  # keys of training_loss's info that caed-train logs per step
    # weight of (1 - MS-SSIM) next to 255^2 * MSE in the distortion; None: the loss has no such term
    ms_ssim_weight: float | None = None

    encoder: nn.Module
    decoder: nn.Module

    @staticmethod
    @abstractmethod
    def latent_size(height: int, width: int) -> tuple[int, int]:
        """Latent rows and columns of a height x width picture."""

    @abstractmethod
    def training_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The loss of a batch of quantized pictures, and the figures to log (at least "mse")."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def optimizer_groups(self, lr: float) -> list[dict]:
        """Parameter groups by name (caed-train --freeze names them); one group by default."""
        return [{"params": list(self.parameters()), "lr": lr, "name": "all"}]

    def prepare_export(self) -> None:
        """Bring the float model in line with what the DPU will run, before export (no-op by default)."""

    def dpu_encoder(self) -> nn.Module:
        """The encoder as the DPU build quantizes and compiles it (vitis_build) and as
        caed-dpu-estimate counts it: the same function, in operators the DPUCZDX8G runs. By
        default the encoder itself."""
        return self.encoder

    def nhwc_encoder(self) -> nn.Module:
        """The encoder on NHWC pictures, as ONNX Runtime is fed; by default a permute before it."""
        return NHWCToNCHW(self.encoder)
