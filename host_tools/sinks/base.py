"""What every sink is: somewhere decoded RGB frames go."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class SinkError(RuntimeError):
    """The sink cannot be used (no GUI, unwritable path); the message says what to do instead."""


class Sink(ABC):
    @abstractmethod
    def write(self, rgb: np.ndarray, stream: str, seq: int) -> None:
        """Take one decoded HxWx3 RGB uint8 frame."""

    def poll(self) -> None:
        """Called from the receive loop's thread between receives, while `write` is called from
        the decode workers: a sink whose toolkit must run on one thread (a GUI) works here."""

    def close(self) -> None:
        """Flush and release."""
