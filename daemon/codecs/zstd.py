"""`zstd`: the int8 latents in pixel order, in one zstd frame."""
from __future__ import annotations

import math

import numpy as np
import zstandard

from .base import Codec, PayloadError, pixel_order, planes_from_pixels


class ZstdCodec(Codec):
    """zstd at a low level: cheap enough for the A53, and it removes the latents' redundancy."""

    name = "zstd"

    def __init__(self, level: int = 1):
        self._compressor = self._compressor_for(level)
        self._decompressor = zstandard.ZstdDecompressor()

    @staticmethod
    def _compressor_for(level: int) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=level, write_content_size=True)

    def encode(self, latents: np.ndarray) -> bytes:
        return self._compressor.compress(pixel_order(latents).data)

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        return planes_from_pixels(self._decompress(payload, math.prod(shape)), shape)

    def _decompress(self, payload: bytes, nbytes: int) -> bytes:
        """Exactly `nbytes` from one zstd frame that declares that size."""
        try:
            params = zstandard.get_frame_parameters(payload)
        except zstandard.ZstdError as e:
            raise PayloadError(f"not a zstd frame: {e}") from None
        if params.content_size != nbytes:
            raise PayloadError(f"zstd frame declares {params.content_size} bytes, header declares {nbytes}")
        try:
            out = self._decompressor.decompress(payload, max_output_size=nbytes)
        except zstandard.ZstdError as e:
            raise PayloadError(f"zstd payload is corrupt: {e}") from None
        if len(out) != nbytes:
            raise PayloadError(f"zstd payload decodes to {len(out)} bytes, header declares {nbytes}")
        return out
