"""Payload codecs for int8 latents: how the latent bytes are packed into the message payload.

Decoding is bounded by the size the (already validated) header declares, so a hostile payload
can never make the receiver allocate more than the declared latent tensor.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import zstandard


class PayloadError(ValueError):
    """The payload does not decode to exactly the declared number of bytes."""


class Codec(ABC):
    name: str

    @abstractmethod
    def encode(self, latents: np.ndarray) -> bytes:
        """Pack a C-contiguous int8 tensor."""

    @abstractmethod
    def decode(self, payload: bytes, nbytes: int) -> bytes:
        """Unpack exactly `nbytes` bytes or raise PayloadError."""


class RawCodec(Codec):
    """The int8 bytes as they are: no CPU cost, for fat links."""

    name = "raw"

    def encode(self, latents: np.ndarray) -> bytes:
        return latents.tobytes()

    def decode(self, payload: bytes, nbytes: int) -> bytes:
        if len(payload) != nbytes:
            raise PayloadError(f"raw payload is {len(payload)} bytes, header declares {nbytes}")
        return payload


class ZstdCodec(Codec):
    """zstd at a low level: cheap enough for the A53, and it removes the latents' redundancy."""

    name = "zstd"

    def __init__(self, level: int = 1):
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
        self._decompressor = zstandard.ZstdDecompressor()

    def encode(self, latents: np.ndarray) -> bytes:
        return self._compressor.compress(latents.data)

    def decode(self, payload: bytes, nbytes: int) -> bytes:
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


CODECS: dict[str, type[Codec]] = {c.name: c for c in (RawCodec, ZstdCodec)}
