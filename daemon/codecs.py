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
    Laplace distribution (location, scale) fitted to this frame and sent in three bytes, and an
    ANS coder (the `constriction` library) over all symbols. Learned transform codecs put most of
    each channel's values near one location, where this beats zstd's byte matching. A channel
    whose neighbouring values are alike (e.g. the DC of a block transform) is coded as
    differences to the previous value in raster order, as JPEG codes its DC.

    Payload: b"L1", uint16 channel count C, C x (int8 location, uint8 scale code, uint8 mode),
    then the ANS words (uint32, little-endian). Mode 0 codes values, mode 1 differences. Scale
    code 0 means every coded symbol equals the location (nothing in the ANS stream); otherwise
    scale = 2 ** ((code - 64) / 16). Probability tables are integer counts, so sender and
    receiver build bit-identical models on any CPU.
    """

    name = "laplace"
    MAGIC = b"L1"
    _VALUES = np.arange(-128, 128)  # mode 0 alphabet
    _DIFFERENCES = np.arange(-255, 256)  # mode 1 alphabet

    def __init__(self):
        try:
            import constriction
        except ImportError:
            raise ValueError("payload codec 'laplace' needs the constriction package (pip install constriction)") from None
        self._coder = constriction.stream.stack.AnsCoder
        self._categorical = constriction.stream.model.Categorical

    def _model(self, mode: int, location: int, code: int):
        alphabet = self._DIFFERENCES if mode else self._VALUES
        decay = np.exp(-np.abs(alphabet - location) * 2.0 ** (-(code - 64) / 16))
        return self._categorical(np.floor(decay * 65536.0) + 1.0, perfect=False), int(alphabet[0])

    @staticmethod
    def _fit(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per column: location, scale code and total absolute deviation."""
        location = np.clip(np.round(np.median(symbols, axis=0)), -128, 127).astype(np.int32)
        deviation = np.abs(symbols - location).sum(axis=0)
        spread = deviation / symbols.shape[0]
        code = np.where(spread > 0, np.clip(np.round(16 * np.log2(np.maximum(spread, 1e-9))) + 64, 1, 255), 0)
        return location, code.astype(np.int32), deviation

    def encode(self, latents: np.ndarray) -> bytes:
        channels = latents.shape[-1]
        values = latents.reshape(-1, channels).astype(np.int32)
        differences = np.diff(values, axis=0, prepend=0)
        v_loc, v_code, v_cost = self._fit(values)
        d_loc, d_code, d_cost = self._fit(differences)
        mode = (d_cost < v_cost).astype(np.int32)
        location, code = np.where(mode, d_loc, v_loc), np.where(mode, d_code, v_code)
        coder = self._coder()
        for c in reversed(range(channels)):
            if code[c]:
                model, first = self._model(int(mode[c]), int(location[c]), int(code[c]))
                symbols = (differences if mode[c] else values)[:, c]
                coder.encode_reverse(np.ascontiguousarray(symbols - first, dtype=np.int32), model)
        params = np.stack([location & 0xFF, code, mode], axis=1).astype(np.uint8)
        words = coder.get_compressed().astype("<u4")
        return self.MAGIC + np.uint16(channels).tobytes() + params.tobytes() + words.tobytes()

    def decode(self, payload: bytes, nbytes: int) -> bytes:
        if len(payload) < 4 or payload[:2] != self.MAGIC:
            raise PayloadError("not a laplace payload")
        channels = int(np.frombuffer(payload, "<u2", 1, 2)[0])
        if channels == 0 or nbytes % channels:
            raise PayloadError(f"{channels} channels do not divide the declared {nbytes} bytes")
        body = 4 + 3 * channels
        if len(payload) < body or (len(payload) - body) % 4:
            raise PayloadError("laplace payload is truncated")
        params = np.frombuffer(payload, np.uint8, 3 * channels, 4).reshape(channels, 3)
        if np.any(params[:, 2] > 1):
            raise PayloadError("laplace payload has an unknown channel mode")
        words = np.frombuffer(payload, "<u4", offset=body).astype(np.uint32)
        count = nbytes // channels
        out = np.empty((count, channels), np.int8)
        try:
            coder = self._coder(words)
            for c in range(channels):
                location, code, mode = int(params[c, 0].view(np.int8)), int(params[c, 1]), int(params[c, 2])
                if code:
                    model, first = self._model(mode, location, code)
                    symbols = coder.decode(model, count).astype(np.int32) + first
                else:
                    symbols = np.full(count, location, np.int32)
                values = np.cumsum(symbols) if mode else symbols
                if values.min() < -128 or values.max() > 127:
                    raise PayloadError("laplace payload decodes outside int8")
                out[:, c] = values
        except (ValueError, RuntimeError, OverflowError) as e:
            raise PayloadError(f"laplace payload is corrupt: {e}") from None
        if not coder.is_empty():
            raise PayloadError("laplace payload has trailing data")
        return out.tobytes()


CODECS[LaplaceCodec.name] = LaplaceCodec
