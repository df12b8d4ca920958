"""The `arith` payload codec: a compiled context-adaptive arithmetic coder for int8 latents.

The coding itself is C (daemon/csrc/arith.c, extension module caed._arith): integer arithmetic
only, so the board (aarch64) and the host (x86-64) write and read identical bytes, and no
dependency beyond the C compiler Yocto's setuptools3 already uses. The binding releases the GIL
while it codes. The payload format is docs/wire.md (`arith`).
"""
from __future__ import annotations

import numpy as np

from .. import _arith
from .base import Codec, PayloadError, Reference


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
    max_reference_shift = _arith.MAX_REFERENCE_SHIFT
    codes_positions = True

    def encode(self, latents: np.ndarray) -> bytes:
        return _arith.encode(_readable(latents))

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        planes = np.empty((shape[2], shape[0], shape[1]), np.int8)
        try:
            _arith.decode(payload, planes, *shape)
        except _arith.CorruptPayload as e:
            raise PayloadError(f"arith payload {e}") from None
        return planes

    # Temporal coding: the state is the coder's models as a payload leaves them (`STATE_BYTES`,
    # ~390 kB); an inter frame's payload starts from its reference's, and predicts its residual
    # DCs as 0 (docs/wire.md, arith §7). Measured on both clips' inter frames (bench/inter_coder.py,
    # rates 1-3): 5.5-7.2 % fewer bytes on pedestrians_720p, 11.4-14.4 % on vtest, whose inter
    # frames are small enough (0.7-1.9 kB) that fresh models spent much of them learning.
    #
    # Since protocol 4 an inter frame's contexts also read its reference's values (`reference`):
    # where the picture moves the reference holds detail, and the residual's counts, DCs, zero
    # flags, magnitudes and signs follow it (docs/wire.md, arith §7). Measured on the first 60
    # frames of each clip (bench/inter_coder.py, rates 1-3): the inter frames' bytes fall a further
    # 7.9-9.2 % on pedestrians_720p and 7.1-7.9 % on vtest.
    def encode_keyframe(self, latents: np.ndarray) -> tuple[bytes, object]:
        return _arith.encode_frame(_readable(latents), None, False)

    #
    # Since protocol 5 an inter frame codes which positions it sent, one decision each, and then
    # only their blocks (docs/wire.md, arith §7 item 4): the ~90 % of a fixed camera's positions not
    # sent cost one decision instead of a count and a DC per block, and the walk, the copies and
    # the decoder skip them.
    def encode_residuals(self, residuals: np.ndarray, start: object, reference: Reference | None = None,
                         sent: np.ndarray | None = None) -> tuple[bytes, object]:
        flags = None if sent is None else np.ascontiguousarray(sent, np.uint8)
        return _arith.encode_frame(_readable(residuals), start, True, *_reference(reference), flags)

    def decode_keyframe(self, payload: bytes, shape: tuple[int, int, int]) -> tuple[np.ndarray, object]:
        return self._decode_frame(payload, shape, None, False, None)

    def decode_residuals(self, payload: bytes, shape: tuple[int, int, int], start: object,
                         reference: Reference | None = None,
                         positions: bool = False) -> tuple[np.ndarray, object, np.ndarray | None]:
        sent = np.zeros(shape[:2], np.uint8) if positions else None
        planes, end = self._decode_frame(payload, shape, start, True, reference, sent)
        return planes, end, None if sent is None else sent.view(bool)

    @staticmethod
    def _decode_frame(payload: bytes, shape: tuple[int, int, int], start, residual: bool,
                      reference: Reference | None, sent: np.ndarray | None = None) -> tuple[np.ndarray, object]:
        planes = np.empty((shape[2], shape[0], shape[1]), np.int8)
        try:
            end = _arith.decode_frame(payload, planes, *shape, start, residual, *_reference(reference), sent)
        except _arith.CorruptPayload as e:
            raise PayloadError(f"arith payload {e}") from None
        return planes, end


def _reference(reference: Reference | None) -> tuple:
    return (None, 0) if reference is None else (reference.values, reference.shift)


def _readable(latents: np.ndarray) -> np.ndarray:
    """int8 (H, W, C) latents as the core reads them in place: NHWC or planes views, else a copy."""
    if latents.dtype != np.int8 or latents.ndim != 3:
        raise ValueError(f"arith encodes int8 (H, W, C) latents, not {latents.dtype} {latents.shape}")
    height, width, _ = latents.shape
    if height > 1 and latents.strides[0] != width * latents.strides[1]:
        return np.ascontiguousarray(latents)
    return latents
