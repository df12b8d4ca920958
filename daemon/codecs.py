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


class LaplaceCodec(Codec):
    """Entropy coding of the int8 latents with a factorized prior: per channel a discrete
    Laplace distribution (location, scale) fitted to this frame, sent as two bytes per channel,
    and an ANS coder (the `constriction` library) over all symbols. Learned transform codecs put
    most of each channel's values near one location, where this beats zstd's byte matching.

    Payload: b"L1", uint16 channel count C, C x (int8 location, uint8 scale code), then the ANS
    words (uint32, little-endian). Scale code 0 means every value of the channel equals its
    location (nothing coded); otherwise scale = 2 ** ((code - 64) / 16). The probability tables
    are integer counts, so sender and receiver build bit-identical models on any CPU.
    """

    name = "laplace"
    MAGIC = b"L1"
    _ALPHABET = np.arange(-128, 128)

    def __init__(self):
        try:
            import constriction
        except ImportError:
            raise ValueError("payload codec 'laplace' needs the constriction package (pip install constriction)") from None
        self._constriction = constriction

    @classmethod
    def _model_counts(cls, location: int, code: int) -> np.ndarray:
        decay = np.exp2(-np.abs(cls._ALPHABET - location) * 2.0 ** (-(code - 64) / 16) / np.log(2))
        return np.floor(decay * 65536.0) + 1.0

    def encode(self, latents: np.ndarray) -> bytes:
        channels = latents.shape[-1]
        columns = latents.reshape(-1, channels)
        locations = np.clip(np.round(np.median(columns, axis=0)), -128, 127).astype(np.int8)
        spread = np.abs(columns.astype(np.int16) - locations.astype(np.int16)).mean(axis=0)
        codes = np.where(spread > 0, np.clip(np.round(16 * np.log2(np.maximum(spread, 1e-9))) + 64, 1, 255), 0)
        codes = codes.astype(np.uint8)
        coder = self._constriction.stream.stack.AnsCoder()
        categorical = self._constriction.stream.model.Categorical
        for c in reversed(range(channels)):
            if codes[c]:
                model = categorical(self._model_counts(int(locations[c]), int(codes[c])), perfect=False)
                coder.encode_reverse((columns[:, c].astype(np.int32) + 128), model)
        params = np.stack([locations.view(np.uint8), codes], axis=1)
        words = coder.get_compressed().astype("<u4")
        return self.MAGIC + np.uint16(channels).tobytes() + params.tobytes() + words.tobytes()

    def decode(self, payload: bytes, nbytes: int) -> bytes:
        if len(payload) < 4 or payload[:2] != self.MAGIC:
            raise PayloadError("not a laplace payload")
        channels = int(np.frombuffer(payload, "<u2", 1, 2)[0])
        if channels == 0 or nbytes % channels:
            raise PayloadError(f"{channels} channels do not divide the declared {nbytes} bytes")
        body = 4 + 2 * channels
        if len(payload) < body or (len(payload) - body) % 4:
            raise PayloadError("laplace payload is truncated")
        params = np.frombuffer(payload, np.uint8, 2 * channels, 4).reshape(channels, 2)
        words = np.frombuffer(payload, "<u4", offset=body).astype(np.uint32)
        count = nbytes // channels
        out = np.empty((count, channels), np.int8)
        categorical = self._constriction.stream.model.Categorical
        try:
            coder = self._constriction.stream.stack.AnsCoder(words)
            for c in range(channels):
                location, code = int(params[c, 0].view(np.int8)), int(params[c, 1])
                if code:
                    model = categorical(self._model_counts(location, code), perfect=False)
                    out[:, c] = coder.decode(model, count) - 128
                else:
                    out[:, c] = location
        except (ValueError, RuntimeError, OverflowError) as e:
            raise PayloadError(f"laplace payload is corrupt: {e}") from None
        if not coder.is_empty():
            raise PayloadError("laplace payload has trailing data")
        return out.tobytes()


CODECS[LaplaceCodec.name] = LaplaceCodec
