"""The `arith` payload codec: a compiled context-adaptive arithmetic coder for int8 latents.

The coding itself is C (daemon/csrc/arith.c, extension module caed._arith): integer arithmetic
only, so the board (aarch64) and the host (x86-64) write and read identical bytes, and no
dependency beyond the C compiler Yocto's setuptools3 already uses. The payload format is
docs/wire-arith.md.
"""
from __future__ import annotations

import numpy as np

from caed import _arith
from caed.codecs import Codec, PayloadError


class ArithCodec(Codec):
    """Per position and 64-channel block: the number of non-zero coefficients (context: the
    left and upper blocks' counts and the previous block's at the same position), then only the
    coefficients up to the last non-zero in zig-zag order (zero flags, magnitudes, signs with
    contexts from the same channel in the left and upper blocks), then the DC as its residual to
    JPEG-LS's median prediction. Any (H, W, C) round-trips; C a multiple of 64 (dct8) is the
    layout the contexts are built for.
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
