"""Trainable codec architectures by name (the names are the directories under weights/ and
checkpoints/)."""
from __future__ import annotations

from torch import nn

from .dct8 import DCT8
from .kth2020 import KTH2020

ARCHITECTURES: dict[str, type[nn.Module]] = {"kth2020": KTH2020, "dct8": DCT8}


def build(name: str) -> nn.Module:
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(sorted(ARCHITECTURES))}") from None
