"""dct8: a DPU-friendly learned transform codec that starts from JPEG's transform.

Encoder (runs on the DPU; only reorg + conv): space-to-depth by 8 turns the 3-channel image into
192 channels on a 1/8 grid, so no layer wastes the DPU's input-channel lanes on 3 channels; one
3x3 convolution over that grid (a lapped 24x24, stride-8 transform) gives 192 latent channels.
It is initialized to RGB->YCbCr followed by the 8x8 DCT, each coefficient divided by its JPEG
quantization step, so the untrained codec is JPEG's transform and quantizer.
Decoder (host): the mirrored 3x3 convolution initialized to the inverse, depth-to-space, then a
residual post-network on the 2x2 space-to-depth picture whose receptive field (~20 pixels) spans
block boundaries (ringing, blocking, low-rate structure).
The latent unit is one quantization step (wire fix_point 0); each coarser fix point (-1 ... -4)
doubles every step, and training draws among them so one decoder serves all five rates.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import CodecModel
from .qdq import best_fix_point
from .quant import fake_quantize

BLOCK = 8
CHANNELS = 3 * BLOCK * BLOCK
RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
# ITU-T T.81 Annex K tables (luminance, chrominance), for the 0..255 pixel scale
JPEG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]).reshape(8, 8)
JPEG_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32).reshape(8, 8)
# input channel of each block pixel as the NHWC encoder gathers them (row i, column j, colour c),
# as an index into PixelUnshuffle's order (c, i, j)
NHWC_BLOCK_ORDER = np.array([c * 64 + i * 8 + j for i in range(BLOCK) for j in range(BLOCK) for c in range(3)])
RATE_STEPS = (0, 1, 2, 3, 4)  # training draws step multipliers 2**k: wire fix_points 0, -1, ..., -4
# bits per pixel traded per unit of MSE on the 0..255 scale at the finest rate (the slope of
# JPEG's RD curve around quality 75); each coarser rate trades 3x less
LAMBDA = 0.034
# the post-network (everything after the synthesized picture): POST_LAYERS 3x3 convolutions of
# POST_CHANNELS on the POST_BLOCK x POST_BLOCK space-to-depth picture (see _PostNetwork)
POST_BLOCK = 2
POST_LAYERS = 4
POST_CHANNELS = 32


def dct_matrix(n: int = BLOCK) -> np.ndarray:
    """Orthonormal DCT-II: row u is basis function u (JPEG's FDCT is this, in 2-D)."""
    d = np.array([[math.cos((2 * i + 1) * u * math.pi / (2 * n)) for i in range(n)] for u in range(n)])
    d[0] *= math.sqrt(1 / n)
    d[1:] *= math.sqrt(2 / n)
    return d


def jpeg_steps(quality: int) -> np.ndarray:
    """Quantization steps per (YCbCr channel, u, v) in [0,1] pixel units, IJG quality scaling."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    tables = [np.clip(np.floor((t * scale + 50) / 100), 1, 255) for t in (JPEG_LUMA, JPEG_CHROMA, JPEG_CHROMA)]
    return np.stack(tables) / 255.0


def analysis_matrix(steps: np.ndarray) -> np.ndarray:
    """192x192 map from space-to-depth pixels (c, i, j) to scaled coefficients (k, u, v)."""
    d = dct_matrix()
    # W[k,u,v,c,i,j] = M[k,c] D[u,i] D[v,j] / step[k,u,v]
    w = np.einsum("kc,ui,vj->kuvcij", RGB_TO_YCBCR, d, d) / steps[:, :, :, None, None, None]
    return w.reshape(CHANNELS, CHANNELS)


class DCT8(CodecModel):
    latent_channels = CHANNELS
    size_multiple = BLOCK
    rate_fix_points = tuple(-k for k in RATE_STEPS)  # wire fix_point of each rate, finest first

    def __init__(self, quality: int = 75):
        super().__init__()
        self.analysis = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1)
        self.synthesis = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1)
        self.encoder = nn.Sequential(nn.PixelUnshuffle(BLOCK), self.analysis)
        self.post = _PostNetwork()
        self.decoder = _Decoder(self.synthesis, self.post)
        # per-channel Laplace rate model (location, log scale) in latent units, for training
        self.rate_loc = nn.Parameter(torch.zeros(CHANNELS))
        self.rate_log_scale = nn.Parameter(torch.zeros(CHANNELS))
        self.register_buffer("rate_model_fitted", torch.zeros((), dtype=torch.bool))
        self.reset_to_jpeg(quality)

    @torch.no_grad()
    def reset_to_jpeg(self, quality: int) -> None:
        w = analysis_matrix(jpeg_steps(quality))
        inv = np.linalg.inv(w)
        for conv, m in ((self.analysis, w), (self.synthesis, inv)):
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = torch.from_numpy(m).float()
        # centre the pixels (x - 0.5) inside the transform, and add it back after the inverse
        self.analysis.bias.copy_(torch.from_numpy(-w @ np.full(CHANNELS, 0.5)).float())
        self.synthesis.bias.fill_(0.5)
        self.post.convs[-1].weight.zero_()  # the residual post-network starts as the identity
        self.post.convs[-1].bias.zero_()

    @staticmethod
    def latent_size(height: int, width: int) -> tuple[int, int]:
        return height // BLOCK, width // BLOCK

    def encode(self, x):
        if not self.training:
            return self.encoder(x)
        # quantization-aware: the DPU multiplies with int8 weights and biases on power-of-two grids;
        # rounding the rows of constant DC weights would otherwise shift every latent by steps
        w, b = self.analysis.weight, self.analysis.bias
        return F.conv2d(nn.functional.pixel_unshuffle(x, BLOCK), _dpu_round(w), _dpu_round(b), padding=1)

    @torch.no_grad()
    def prepare_export(self) -> None:
        """Put the DPU's int8 weights into the float encoder too, so both encoders agree."""
        self.analysis.weight.copy_(_dpu_round(self.analysis.weight))
        self.analysis.bias.copy_(_dpu_round(self.analysis.bias))

    def dpu_encoder(self) -> nn.Module:
        """Space-to-depth as an 8x8, stride-8 convolution with one-hot weights, then the analysis.

        UG1414 lists conv2d kernels 1-16 and strides 1-8 for DPUCZDX8G, but no row we found
        confirms `pixel_unshuffle` (reorg) there; a reorg left to the CPU would put a CPU
        subgraph between the image and the latents. The one-hot convolution is exact in int8:
        its weights (1.0) need fix point 6 (64), each output is one input pixel, on the input's
        grid. It costs 226 MMAC at 512x768 on 3 input channels (a quarter of the ICP lanes)."""
        unshuffle = nn.Conv2d(3, CHANNELS, BLOCK, stride=BLOCK, bias=False)
        with torch.no_grad():
            unshuffle.weight.zero_()
            for c in range(3):
                for i in range(BLOCK):
                    for j in range(BLOCK):
                        unshuffle.weight[c * BLOCK * BLOCK + i * BLOCK + j, c, i, j] = 1.0
        return nn.Sequential(unshuffle, self.analysis)

    nhwc_encoder_input_order = NHWC_BLOCK_ORDER

    def nhwc_encoder(self) -> nn.Module:
        """The encoder on NHWC images, for ONNX export (the DPU build keeps PixelUnshuffle)."""
        return _NHWCEncoder(self.analysis)

    log_fields = ("bpp",)
    # weight of (1 - MS-SSIM) next to 255^2 * MSE in the distortion (caed-train --ms-ssim-weight);
    # about 2000 weighs both alike around 30 dB
    ms_ssim_weight = 0.0

    def optimizer_groups(self, lr: float) -> list[dict]:
        """Adam moves every weight by about lr per step whatever its size, so each group's rate is
        scaled to its weights: the inverse transform's weights are ~1e-2 (they multiply latents of
        up to +-128), the forward transform's ~1, the rate model's log-scales ~1-5."""
        return [
            {"params": [self.synthesis.weight, self.synthesis.bias], "lr": lr * 0.005, "name": "synthesis"},
            {"params": [self.analysis.weight, self.analysis.bias], "lr": lr * 0.05, "name": "analysis"},
            {"params": [self.rate_loc, self.rate_log_scale], "lr": lr * 10, "name": "rate"},
            {"params": list(self.post.parameters()), "lr": lr, "name": "post"},
        ]

    def training_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """bpp + lambda_k * MSE for a random rate k: uniform noise stands in for rounding in the
        rate term, straight-through rounding (clipped to int8) feeds the decoder."""
        k = RATE_STEPS[int(torch.randint(len(RATE_STEPS), (1,)))]
        step = 2.0 ** k
        y = self.encode(x)
        if not self.rate_model_fitted:
            self._fit_rate_model(y.detach())
        q = torch.clamp(torch.round(y / step), -128, 127) * step
        y_hat = y + (q - y).detach()
        noisy = y + (torch.rand_like(y) - 0.5) * step
        bpp = self.rate_bits(noisy, step) / (x.shape[0] * x.shape[2] * x.shape[3])
        x_hat = self.decode(y_hat)
        mse = torch.mean((x_hat - x) ** 2)
        distortion = 255 ** 2 * mse
        if self.ms_ssim_weight:
            from pytorch_msssim import ms_ssim

            # 7-tap windows so that five scales fit in 128-pixel crops
            distortion = distortion + self.ms_ssim_weight * (1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, win_size=7))
        loss = bpp + LAMBDA / 3 ** k * distortion
        return loss, {"mse": mse.item(), "bpp": bpp.item()}

    @torch.no_grad()
    def _fit_rate_model(self, y: torch.Tensor) -> None:
        """Start the Laplace model at the first batch's per-channel median and mean deviation."""
        per_channel = y.transpose(0, 1).reshape(CHANNELS, -1)
        median = per_channel.median(dim=1).values
        self.rate_loc.copy_(median)
        self.rate_log_scale.copy_(torch.log((per_channel - median[:, None]).abs().mean(dim=1).clamp_min(0.05)))
        self.rate_model_fitted.fill_(True)

    def rate_bits(self, y_noisy: torch.Tensor, step: float) -> torch.Tensor:
        """Bits of the int8 symbols y/step under the per-channel Laplace model (training only)."""
        loc = (self.rate_loc / step).view(1, -1, 1, 1)
        scale = (torch.exp(self.rate_log_scale) / step).clamp_min(0.05).view(1, -1, 1, 1)
        v = y_noisy / step - loc

        def cdf(t):
            return 0.5 + 0.5 * torch.sign(t) * (1 - torch.exp(-t.abs() / scale))

        p = (cdf(v + 0.5) - cdf(v - 0.5)).clamp_min(1e-9)
        return -torch.log2(p).sum()


def _dpu_round(t: torch.Tensor) -> torch.Tensor:
    """t on the int8 power-of-two grid export will give it (straight-through gradient)."""
    return fake_quantize(t, best_fix_point(t.detach().numpy()))


class _NHWCEncoder(nn.Module):
    """Space-to-depth straight from NHWC pixels: one transpose that moves rows of 24 contiguous
    values (a block row's 8 pixels x 3 colours), where NCHW + PixelUnshuffle gathers single
    values and took a quarter of ONNX Runtime's encoder time. The convolution takes its input
    channels in that order (NHWC_BLOCK_ORDER): the same function as `DCT8.encoder`."""

    def __init__(self, analysis: nn.Conv2d):
        super().__init__()
        self.analysis = analysis

    def forward(self, x):
        n, h, w, _ = x.shape
        blocks = x.reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK, 3).permute(0, 1, 3, 2, 4, 5)
        blocks = blocks.reshape(n, h // BLOCK, w // BLOCK, CHANNELS).permute(0, 3, 1, 2)
        weight = self.analysis.weight[:, torch.from_numpy(NHWC_BLOCK_ORDER)]
        return F.conv2d(blocks, weight, self.analysis.bias, padding=1)


class _SpaceToDepth(torch.autograd.Function):
    """Space-to-depth in ONNX SpaceToDepth's order (DCR: channel (i * block + j) * C + c for the
    pixel (i, j) of each block and colour c), exported as that one operator. PyTorch's
    PixelUnshuffle orders them (c, i, j) (CRD), which ONNX's SpaceToDepth cannot do: it was
    exported as a 6-D reshape/transpose that took ONNX Runtime about as long as a convolution."""

    @staticmethod
    def forward(x, block):
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, block * block * c, h // block, w // block)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.block = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        return _DepthToSpace.apply(grad, ctx.block), None

    @staticmethod
    def symbolic(g, x, block):
        return g.op("SpaceToDepth", x, blocksize_i=block)


class _DepthToSpace(torch.autograd.Function):
    """The inverse of `_SpaceToDepth` (DCR order), exported as ONNX DepthToSpace in DCR mode."""

    @staticmethod
    def forward(x, block):
        n, c, h, w = x.shape
        x = x.reshape(n, block, block, c // (block * block), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(n, c // (block * block), h * block, w * block)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.block = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        return _SpaceToDepth.apply(grad, ctx.block), None

    @staticmethod
    def symbolic(g, x, block):
        return g.op("DepthToSpace", x, blocksize_i=block, mode_s="DCR")


class _PostNetwork(nn.Module):
    """Everything after the synthesized picture, picture to picture: POST_LAYERS 3x3 convolutions
    (ReLU between them) on the 2x2 space-to-depth picture, whose output, back at full resolution,
    is added to the picture. Four layers at half resolution see ~20 pixels, more than a block.

    It replaces a full-resolution post-filter (3->16->16->3, 1.25 GMAC at 512x768, as slow in
    ONNX Runtime's int8 as in fp32: 3 and 16 channels fill its SIMD lanes badly) followed by a
    half-resolution refiner (12->24->24->24->12). Timed in ONNX Runtime before training
    (512x768, one thread, CPU ms in turns with today's pair: fp32 94, int8 56), the refiner alone
    took 53 / 21 ms, this width (32) 52 / 24, quarter-resolution (4x4, 48-64 channel) variants
    14-27 ms in int8; this one, initialized from the refiner (the extra channels' outputs at
    zero) and trained with MSE on the frozen synthesis's pictures, gains 0.08 dB at q0 and stays
    within 0.01 dB at q3-q4 on Kodak (docs/decoder.md).
    Layout for ONNX Runtime: the space-to-depth and depth-to-space export as one SpaceToDepth
    and one DepthToSpace (DCR order, the convolutions' channels in that order) rather than 6-D
    transposes; the residual is added at full resolution to the picture itself, so an int8 build
    that keeps that one Add in float never quantizes the picture that passes through (quantizing
    it costs 0.07 dB at q0 on Kodak, the whole rest of the int8 network 0.03 dB)."""

    def __init__(self):
        super().__init__()
        widths = [3 * POST_BLOCK ** 2, *[POST_CHANNELS] * (POST_LAYERS - 1), 3 * POST_BLOCK ** 2]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in zip(widths[:-1], widths[1:]))

    def forward(self, x):
        h = _SpaceToDepth.apply(x, POST_BLOCK)
        for conv in self.convs[:-1]:
            h = F.relu(conv(h))
        return x + _DepthToSpace.apply(self.convs[-1](h), POST_BLOCK)


class _Decoder(nn.Module):
    def __init__(self, synthesis: nn.Module, post: nn.Module):
        super().__init__()
        self.synthesis = synthesis
        self.post = post
        self.to_pixels = nn.PixelShuffle(BLOCK)

    def forward(self, y):
        return self.post(self.to_pixels(self.synthesis(y)))
