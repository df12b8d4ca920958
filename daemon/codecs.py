"""Payload codecs for int8 latents: how the latent bytes are packed into the message payload.

Decoding is bounded by the size the (already validated) header declares, so a hostile payload
can never make the receiver allocate more than the declared latent tensor.
"""
from __future__ import annotations

import decimal
import functools
import math
from abc import ABC, abstractmethod

import cv2
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
    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> bytes:
        """Unpack exactly the bytes of an int8 HWC tensor of `shape` or raise PayloadError."""


class RawCodec(Codec):
    """The int8 bytes as they are: no CPU cost, for fat links."""

    name = "raw"

    def encode(self, latents: np.ndarray) -> bytes:
        return latents.tobytes()

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> bytes:
        nbytes = math.prod(shape)
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

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> bytes:
        nbytes = math.prod(shape)
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


class PlanarZstdCodec(ZstdCodec):
    """zstd over the channel planes that are not all zero.

    A learned codec's channels differ in kind: in dct8 at its default rate about 120 of the 192
    planes are entirely zero and the rest are mostly zero. One plane after another gives zstd long
    runs where pixel order interleaves 192 unlike values, and skipping the empty planes spares it
    most of the bytes: on dct8 latents this is ~30-40 % smaller than `zstd` and costs less CPU.

    Payload: uint16 LE channel count C (must match the header), a bitmap of the planes present
    (ceil(C/8) bytes, numpy.packbits order, padding bits zero), then one zstd frame of the present
    planes (H*W bytes each, in channel order).
    """

    name = "zstd-planes"

    def __init__(self, level: int = 1):
        super().__init__(level)
        self._planes = np.empty(0, np.uint8)  # reused: one codec per thread

    def encode(self, latents: np.ndarray) -> bytes:
        pixels = latents.reshape(-1, latents.shape[-1]).view(np.uint8)
        if self._planes.size != pixels.size:
            self._planes = np.empty(pixels.size, np.uint8)
        planes = self._planes.reshape(pixels.shape[::-1])
        cv2.transpose(pixels, planes)
        present = planes.any(axis=1)
        return (np.uint16(len(present)).astype("<u2").tobytes() + np.packbits(present).tobytes()
                + self._compressor.compress(planes[present].data))

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> bytes:
        channels, plane = shape[-1], math.prod(shape[:-1])
        head = 2 + (channels + 7) // 8
        if len(payload) < head:
            raise PayloadError(f"zstd-planes payload is {len(payload)} bytes, shorter than its {head}-byte plane map")
        if int.from_bytes(payload[:2], "little") != channels:
            raise PayloadError(f"zstd-planes payload has {int.from_bytes(payload[:2], 'little')} channels, "
                               f"header declares {channels}")
        bits = np.unpackbits(np.frombuffer(payload, np.uint8, head - 2, 2))
        if bits[channels:].any():
            raise PayloadError("zstd-planes plane map marks planes beyond the declared channels")
        present = bits[:channels].astype(bool)
        data = super().decode(payload[head:], (int(present.sum()), plane, 1))
        planes = np.zeros((channels, plane), np.uint8)
        planes[present] = np.frombuffer(data, np.uint8).reshape(-1, plane)
        return cv2.transpose(planes).tobytes()


CODECS: dict[str, type[Codec]] = {c.name: c for c in (RawCodec, ZstdCodec, PlanarZstdCodec)}


@functools.lru_cache(maxsize=None)
def _laplace_counts(code: int) -> np.ndarray:
    """floor(65536 * exp(-d / scale)) + 1 for distances d = 0..510, scale = 2 ** ((code - 64) / 16).

    Computed in decimal arithmetic, which is exact software math: float exp differs in the last
    bit between libms (the board's aarch64 and the host's x86), and one count that differs
    between sender and receiver would silently desynchronise the entropy decoder.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        step = (-(decimal.Decimal(2) ** (decimal.Decimal(64 - code) / 16))).exp()
        value, counts = decimal.Decimal(65536), []
        for _ in range(511):
            counts.append(int(value) + 1)
            value *= step
    return np.array(counts, np.float64)


class LaplaceCodec(Codec):
    """Entropy coding of the int8 latents with a factorized prior and ANS (the `constriction`
    library). Learned transform codecs put most of each channel's values near one location,
    where this beats zstd's byte matching.

    - Per channel, the symbols are either the values or their differences to the previous value
      in raster order (chosen per frame; DC-like channels take differences, as JPEG codes DC).
    - Channels are taken in groups of GROUP consecutive channels (a block transform keeps a
      frequency row together). At each position a group is "significant" if any of its symbols
      is off its channel's location; one binary flag per position and group lets the coder
      skip the many all-zero groups (what JPEG's end-of-block does) instead of paying for every
      zero. A flag is coded with the group's frequency given the previous group's flag at the
      same position (a block whose lower frequencies are all zero rarely has higher ones).
    - Significant symbols are coded with a discrete Laplace (location, scale) per channel fitted
      to this frame.

    Payload: b"L1", uint16 channel count C, C x (int8 location, uint8 scale code, uint8 mode),
    ceil(C/GROUP) x 2 uint8 flag codes (after a non-significant / significant previous group;
    the first group counts as after a significant one), then the ANS words (uint32, LE). Mode 0 codes
    values, mode 1 differences. Scale code 0: every significant symbol equals the location;
    otherwise scale = 2 ** ((code - 64) / 16). Flag code 0: no such position significant, 255: all,
    else P(significant) = code / 255. Probability tables are integer counts, so sender and
    receiver build bit-identical models on any CPU.
    """

    name = "laplace"
    MAGIC = b"L1"
    GROUP = 4
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
        counts = _laplace_counts(code)[np.abs(alphabet - location)]
        return self._categorical(counts, perfect=False), int(alphabet[0])

    def _flag_model(self, codes: np.ndarray):
        """Per-position probabilities of [not significant, significant] from uint8 codes."""
        codes = codes.astype(np.float64)
        return np.ascontiguousarray(np.stack([255.0 - codes, codes], axis=1))

    @staticmethod
    def _flag_code(flags: np.ndarray) -> int:
        if flags.size == 0:
            return 0
        share = float(flags.mean())
        return 0 if share == 0 else 255 if share == 1 else int(np.clip(np.round(share * 255), 1, 254))

    @staticmethod
    def _fit(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per column: location (median) and total absolute deviation from it."""
        location = np.clip(np.round(np.median(symbols, axis=0)), -128, 127).astype(np.int32)
        return location, np.abs(symbols - location).sum(axis=0)

    @staticmethod
    def _scale_code(deviation: np.ndarray, count: int) -> int:
        spread = float(deviation.sum()) / max(count, 1)
        return int(np.clip(np.round(16 * np.log2(spread)) + 64, 1, 255)) if spread > 0 else 0

    def _groups(self, channels: int) -> list[range]:
        return [range(g, min(g + self.GROUP, channels)) for g in range(0, channels, self.GROUP)]

    def encode(self, latents: np.ndarray) -> bytes:
        channels = latents.shape[-1]
        values = latents.reshape(-1, channels).astype(np.int32)
        differences = np.diff(values, axis=0, prepend=0)
        # location and mode only steer the coder (the receiver reads them), so every 4th
        # position is enough to choose them
        v_loc, v_cost = self._fit(values[::4])
        d_loc, d_cost = self._fit(differences[::4])
        mode = (d_cost < v_cost).astype(np.int32)
        location = np.where(mode, d_loc, v_loc)
        symbols = np.where(mode, differences, values)
        off = symbols != location
        params = np.zeros((channels, 3), np.uint8)
        flag_codes = []
        plan = []  # per group, in decode order: (per-position flag codes, significant mask, [(channel, code)])
        previous = np.ones(len(values), bool)
        for group in self._groups(channels):
            significant = off[:, group.start:group.stop].any(axis=1)
            codes = (self._flag_code(significant[~previous]), self._flag_code(significant[previous]))
            flag_codes += codes
            per_position = np.where(previous, codes[1], codes[0])
            coded = []
            for c in group:
                code = self._scale_code(np.abs(symbols[significant, c] - location[c]), int(significant.sum()))
                params[c] = (location[c] & 0xFF, code, mode[c])
                coded.append((c, code))
            plan.append((per_position, significant, coded))
            previous = significant
        coder = self._coder()
        for per_position, significant, coded in reversed(plan):
            for c, code in reversed(coded):
                if code:
                    model, first = self._model(int(mode[c]), int(location[c]), code)
                    coder.encode_reverse(np.ascontiguousarray(symbols[significant, c] - first, dtype=np.int32), model)
            uncertain = (per_position > 0) & (per_position < 255)
            if uncertain.any():
                coder.encode_reverse(significant[uncertain].astype(np.int32), self._categorical(perfect=False),
                                     self._flag_model(per_position[uncertain]))
        words = coder.get_compressed().astype("<u4")
        return (self.MAGIC + np.uint16(channels).tobytes() + params.tobytes()
                + np.array(flag_codes, np.uint8).tobytes() + words.tobytes())

    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> bytes:
        nbytes = math.prod(shape)
        if len(payload) < 4 or payload[:2] != self.MAGIC:
            raise PayloadError("not a laplace payload")
        channels = int(np.frombuffer(payload, "<u2", 1, 2)[0])
        if channels == 0 or nbytes % channels:
            raise PayloadError(f"{channels} channels do not divide the declared {nbytes} bytes")
        groups = self._groups(channels)
        body = 4 + 3 * channels + 2 * len(groups)
        if len(payload) < body or (len(payload) - body) % 4:
            raise PayloadError("laplace payload is truncated")
        params = np.frombuffer(payload, np.uint8, 3 * channels, 4).reshape(channels, 3)
        flag_codes = np.frombuffer(payload, np.uint8, 2 * len(groups), 4 + 3 * channels).reshape(-1, 2)
        if np.any(params[:, 2] > 1):
            raise PayloadError("laplace payload has an unknown channel mode")
        words = np.frombuffer(payload, "<u4", offset=body).astype(np.uint32)
        count = nbytes // channels
        out = np.empty((count, channels), np.int8)
        previous = np.ones(count, bool)
        try:
            coder = self._coder(words)
            for group, codes in zip(groups, flag_codes):
                per_position = np.where(previous, codes[1], codes[0])
                rows = per_position == 255
                uncertain = (per_position > 0) & (per_position < 255)
                if uncertain.any():
                    rows[uncertain] = coder.decode(self._categorical(perfect=False),
                                                   self._flag_model(per_position[uncertain])).astype(bool)
                n = int(rows.sum())
                for c in group:
                    location, code, mode = int(params[c, 0].view(np.int8)), int(params[c, 1]), int(params[c, 2])
                    symbols = np.full(count, location, np.int32)
                    if code and n:
                        model, first = self._model(mode, location, code)
                        symbols[rows] = coder.decode(model, n).astype(np.int32) + first
                    values = np.cumsum(symbols) if mode else symbols
                    if values.min() < -128 or values.max() > 127:
                        raise PayloadError("laplace payload decodes outside int8")
                    out[:, c] = values
                previous = rows
        except (ValueError, RuntimeError, OverflowError, TypeError) as e:
            raise PayloadError(f"laplace payload is corrupt: {e}") from None
        if not coder.is_empty():
            raise PayloadError("laplace payload has trailing data")
        return out.tobytes()


CODECS[LaplaceCodec.name] = LaplaceCodec
