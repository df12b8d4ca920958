"""Payload codecs: how a frame's int8 latents are packed into the message payload.

One module per codec behind the `Codec` base (base.py); docs/wire.md specifies each payload
format byte by byte, next to the header. `create_codec` builds one from the header's name.
"""
from __future__ import annotations

from .arith import ArithCodec
from .base import Codec, PayloadError
from .raw import RawCodec
from .zstd import ZstdCodec
from .zstd_planes import PlanarZstdCodec

CODECS: dict[str, type[Codec]] = {c.name: c for c in (ArithCodec, PlanarZstdCodec, ZstdCodec, RawCodec)}

__all__ = ["CODECS", "ArithCodec", "Codec", "PayloadError", "PlanarZstdCodec", "RawCodec", "ZstdCodec",
           "create_codec"]


def create_codec(name: str, zstd_level: int = 1) -> Codec:
    """The codec a header's `codec` names (KeyError if none); `zstd_level` for the zstd ones."""
    cls = CODECS[name]
    return cls(zstd_level) if issubclass(cls, ZstdCodec) else cls()
