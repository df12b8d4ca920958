"""The int8 fixed-point format of the DPU and the wire, as a differentiable PyTorch op.

A tensor with fix_point F holds q = clip(round(x * 2**F), -128, 127) and means q * 2**-F
(caed.fixed_point, where the daemon, the viewer and evaluation take the rule from). Training
feeds the encoder its image through caed.fixed_point.encoder_input_float at INPUT_FIX_POINT and
rounds the latents with fake_quantize, the same rule with a straight-through gradient, so it sees
exactly the values the deployed model sees.
"""
from __future__ import annotations

import torch

INPUT_FIX_POINT = 7


def fake_quantize(x: torch.Tensor, fix_point: int) -> torch.Tensor:
    """Round to the int8 grid of 2**-fix_point; gradients pass straight through (inside the range)."""
    scale = 2.0 ** fix_point
    q = torch.clamp(torch.round(x * scale), -128, 127) / scale
    return x + (q - x).detach()


