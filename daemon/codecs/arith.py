"""The `arith` payload codec: a compiled context-adaptive arithmetic coder for int8 latents.

The coding itself is C (daemon/csrc/arith.c, extension module caed._arith): integer arithmetic
only, so the board (aarch64) and the host (x86-64) write and read identical bytes, and no
dependency beyond the C compiler Yocto's setuptools3 already uses. The binding releases the GIL
while it codes. The payload format is docs/wire.md (`arith`).
"""
from __future__ import annotations

import numpy as np

from .. import _arith
from .base import Codec, PayloadError


class ArithCodec(Codec):
    """Per position and 64-channel block: the number of non-zero coefficients, then the DC as its
    residual to JPEG-LS's median prediction, then only the coefficients up to the last non-zero
    in zig-zag order (zero flags, magnitudes, signs), each binary decision coded with the mean of
    two adaptive context models (docs/wire.md (`arith`)). Any (H, W, C) round-trips; C a multiple of
    64 (dct8: Y, Cb, Cr blocks) is the layout the contexts are built for.

    Why: at dct8's default rate ~92 % of the values are zero, so coding every symbol (what
    `laplace` does, in Python and Rust) costs time for nothing; counting the non-zeros first
    makes the cost follow them. Measured on the 24 Kodak photos' dct8 latents: 3.9 % (q0) to
    12.7 % (q4) fewer bytes than `laplace` (the coder it replaced), 35-48 % fewer than
    `zstd-planes`; dct8's BD-rate vs WebP becomes -0.2 % on PSNR and -20.6 % on MS-SSIM
    (caed-eval on Kodak; laplace: +6.7 % / -14.9 %).
    """

    name = "arith"

    def encode(self, latents: np.ndarray) -> bytes:
        if latents.dtype != np.int8 or latents.ndim != 3:
            raise ValueError(f"arith encodes int8 (H, W, C) latents, not {latents.dtype} {latents.shape}")
        height, width, _ = latents.shape
        if height > 1 and latents.strides[0] != width * latents.strides[1]:
            latents = np.ascontiguousarray(latents)  # NHWC and planes views are read in place
        return _arith.encode(latents)

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        height, width, channels = shape
        planes = np.empty((channels, height, width), np.int8)
        try:
            _arith.decode(payload, planes, height, width, channels)
        except _arith.CorruptPayload as e:
            raise PayloadError(f"arith payload {e}") from None
        return planes
