"""`raw`: the int8 latents as they are."""
from __future__ import annotations

import math

import numpy as np

from .base import Codec, PayloadError, pixel_order, planes_from_pixels


class RawCodec(Codec):
    """The int8 bytes as they are: no CPU cost, for fat links."""

    name = "raw"

    def encode(self, latents: np.ndarray) -> bytes:
        return pixel_order(latents).tobytes()

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        nbytes = math.prod(shape)
        if len(payload) != nbytes:
            raise PayloadError(f"raw payload is {len(payload)} bytes, header declares {nbytes}")
        return planes_from_pixels(payload, shape)
