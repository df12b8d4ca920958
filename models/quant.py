"""The int8 fixed-point formats of the DPU and the wire, as differentiable PyTorch ops.

A tensor with fix_point F holds q = clip(round(x * 2**F), -128, 127) and means q * 2**-F. The
daemon feeds the encoder its image in this form (F = INPUT_FIX_POINT) and the wire carries the
latents in it, so training sees exactly the values the deployed model sees.
"""
from __future__ import annotations

import math

import torch

INPUT_FIX_POINT = 7


def fake_quantize(x: torch.Tensor, fix_point: int) -> torch.Tensor:
    """Round to the int8 grid of 2**-fix_point; gradients pass straight through (inside the range)."""
    scale = 2.0 ** fix_point
    q = torch.clamp(torch.round(x * scale), -128, 127) / scale
    return x + (q - x).detach()


def quantize_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> the encoder's input values, exactly as the daemon quantizes them."""
    scale = 2.0 ** INPUT_FIX_POINT
    return torch.clamp(torch.round(images_u8.float() / 255.0 * scale), -128, 127) / scale


def fix_point_for(max_abs: float) -> int:
    """Largest power-of-two fix_point whose int8 range still holds max_abs (what the DPU picks)."""
    if not math.isfinite(max_abs) or max_abs <= 0:
        raise ValueError(f"cannot choose a fix_point for max |x| = {max_abs}")
    return int(math.floor(math.log2(127.0 / max_abs)))
