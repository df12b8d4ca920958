"""The study's convolutional autoencoder (KTH 2020), layer for layer.

Encoder: five valid-padded 3x3 convolutions, strides 1,2,1,2,2, ReLU between them and a linear
latent; 512x768x3 -> 62x94x32 (the study's workload table). The decoder mirrors it with
transposed convolutions; `output_padding` restores the row/column that each valid stride-2
convolution drops, so any input whose sides are multiples of 8 comes back at exactly its size.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import CodecModel
from caed.fixed_point import fix_point_for

from .quant import fake_quantize

SIZE_MULTIPLE = 8

# (name, in_ch, out_ch, stride) in encoder order; all kernels 3x3, valid padding
ENCODER_LAYERS = (
    ("conv1", 3, 32, 1),
    ("conv2", 32, 32, 2),
    ("conv3", 32, 64, 1),
    ("conv4", 64, 64, 2),
    ("conv5", 64, 32, 2),
)
# output_padding of the mirrored transposed convolution for sides that are multiples of 8:
# conv2 and conv4 see an even side and drop one row; conv5 sees an odd side and drops none.
_OUTPUT_PADDING = {"conv1": 0, "conv2": 1, "conv3": 0, "conv4": 1, "conv5": 0}


def _chain(layers: list[nn.Module]) -> nn.Sequential:
    """Layers with ReLU between them and none after the last (linear latent / linear image)."""
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if i < len(layers) - 1:
            out.append(nn.ReLU())
    return nn.Sequential(*out)


class KTH2020(CodecModel):
    """Encoder and decoder in NCHW; images in [0, 1], latents unquantized floats."""

    latent_channels = 32
    size_multiple = SIZE_MULTIPLE

    def __init__(self):
        super().__init__()
        self.encoder = _chain([nn.Conv2d(i, o, 3, stride=s) for _, i, o, s in ENCODER_LAYERS])
        self.decoder = _chain([
            nn.ConvTranspose2d(o, i, 3, stride=s, output_padding=_OUTPUT_PADDING[name])
            for name, i, o, s in reversed(ENCODER_LAYERS)
        ])
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                # PyTorch's default init shrinks the signal ~3x per layer; through ten layers the
                # output is nearly constant and training stalls at "predict the mean colour".
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @staticmethod
    def latent_size(height: int, width: int) -> tuple[int, int]:
        return height // 8 - 2, width // 8 - 2

    # training: MSE with the latents rounded (straight-through) to the int8 grid of the batch's
    # largest latent, the power-of-two fix point calibration will pick at export
    log_fields = ("latent_fix_point",)

    def training_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        y = self.encode(x)
        fix_point = fix_point_for(float(y.detach().abs().max()))
        mse = torch.mean((self.decode(fake_quantize(y, fix_point)) - x) ** 2)
        return mse, {"mse": mse.item(), "latent_fix_point": fix_point}
