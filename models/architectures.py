"""Trainable codec architectures by name (the names are the directories under daemon/weights/ and
checkpoints/)."""
from __future__ import annotations

from .base import CodecModel
from .dct8 import DCT8
from .kth2020 import KTH2020

ARCHITECTURES: dict[str, type[CodecModel]] = {"kth2020": KTH2020, "dct8": DCT8}


def build(name: str) -> CodecModel:
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
