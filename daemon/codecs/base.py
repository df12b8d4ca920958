"""What every payload codec is: int8 latents (H, W, C) in, bytes out, and back.

Decoding is bounded by the size the (already validated) header declares, so a hostile payload
can never make the receiver allocate more than the declared latent tensor.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np


class PayloadError(ValueError):
    """The payload does not decode to exactly the declared number of bytes."""


@dataclass(frozen=True)
class Reference:
    """An inter frame's reference values as both ends hold them (protocol 4), for a codec whose
    contexts read them: C-contiguous int16, one row of C values per position (H, W, C) or (H*W, C),
    at a fix point `shift` steps finer than the frame's (value v is sign(v) * (|v| >> shift) on the
    frame's grid)."""

    values: np.ndarray
    shift: int


class Codec(ABC):
    name: str
    # How many fix point steps finer than an inter frame its reference's values may be for this
    # codec's residuals to read them (Reference.shift); None: they read none, and a viewer keeps no
    # Reference for its streams.
    max_reference_shift: int | None = None
    # Whether its inter payloads code which positions were sent (protocol 5): encode_residuals then
    # reads `sent` and only the sent positions' values, decode_residuals(positions=True) returns
    # them, and the inter payload's zeroed-block map stays empty.
    codes_positions: bool = False

    @abstractmethod
    def encode(self, latents: np.ndarray) -> bytes:
        """Pack an int8 (H, W, C) tensor: NHWC in memory, or a view of (C, H, W) planes."""

    @abstractmethod
    def decode(self, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        """The int8 tensor of HWC `shape` as C planes, a fresh (C, H, W) array, or PayloadError.
        Planes are what the host's decoder takes, and what a planar codec holds anyway."""

    # Temporal coding (docs/wire.md, "Keyframes and inter frames"): a codec may carry state from a
    # payload of a stream to the inter frames predicted from its frame, and code an inter frame's
    # residual tensor its own way, its contexts reading the reference's values where given. Each end
    # keeps its own state; it never travels. These defaults carry none (None) and code residuals
    # like any tensor.
    def encode_keyframe(self, latents: np.ndarray) -> tuple[bytes, object]:
        """A keyframe's payload and the state the inter frames predicted from it start from."""
        return self.encode(latents), None

    def encode_residuals(self, residuals: np.ndarray, start: object, reference: Reference | None = None,
                         sent: np.ndarray | None = None) -> tuple[bytes, object]:
        """An inter frame's payload of its residual tensor, starting from `start`, the state its
        reference frame's payload left (and reading `reference`, its values, and `sent`, the (H, W)
        bool positions sent, where the codec codes them); and the state it leaves."""
        return self.encode(residuals), None

    def decode_keyframe(self, payload: bytes, shape: tuple[int, int, int]) -> tuple[np.ndarray, object]:
        return self.decode(payload, shape), None

    def decode_residuals(self, payload: bytes, shape: tuple[int, int, int], start: object,
                         reference: Reference | None = None,
                         positions: bool = False) -> tuple[np.ndarray, object, np.ndarray | None]:
        """(planes, the state it leaves, and with `positions` (a codec that codes them, protocol 5)
        the (H, W) bool positions sent, else None)."""
        return self.decode(payload, shape), None, None


def planes_from_pixels(pixels: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """HWC int8 bytes (exactly prod(shape) of them) → a fresh (C, H, W) array."""
    h, w, c = shape
    return cv2.transpose(np.frombuffer(pixels, np.int8).reshape(h * w, c)).reshape(c, h, w)


def planar(latents: np.ndarray) -> np.ndarray | None:
    """The (C, H*W) planes an (H, W, C) view of channel planes is made of, or None if it is not one."""
    planes = latents.transpose(2, 0, 1)
    return planes.reshape(len(planes), -1) if planes.flags.c_contiguous else None


def pixel_order(latents: np.ndarray) -> np.ndarray:
    """(H, W, C) latents in HWC byte order, as the wire's raw and zstd payloads carry them."""
    planes = planar(latents)
    if planes is None or latents.flags.c_contiguous:  # (1x1 latents are both)
        return np.ascontiguousarray(latents)
    return cv2.transpose(planes)


def check_channels(payload: bytes, offset: int, channels: int, codec: str) -> None:
    """The uint16 LE channel count a payload carries at `offset` must be the header's."""
    carried = int.from_bytes(payload[offset:offset + 2], "little")
    if carried != channels:
        raise PayloadError(f"{codec} payload has {carried} channels, header declares {channels}")
