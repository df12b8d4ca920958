"""What every frame source is: a blocking reader of BGR uint8 frames."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np


class SourceError(IOError):
    """The source failed (camera unplugged, pipeline died, unreadable file); reopening may help."""


class EndOfStream(Exception):
    """A finite source (file, folder) has delivered its last frame."""


class FrameSource(ABC):
    """Opened once, read from one thread; `read` blocks until the next frame."""

    description: str = ""

    def open(self) -> None:
        """Acquire the device or file; raise SourceError if it is not there."""

    @abstractmethod
    def read(self) -> np.ndarray:
        """The next HxWx3 BGR uint8 frame; raise SourceError or EndOfStream."""

    def close(self) -> None:
        """Release the device or file; the source may be opened again."""

    def __str__(self) -> str:
        return self.description


class Pacer:
    """Holds a reader to a frame rate, as a camera would (no catch-up bursts after a stall)."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next = 0.0

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
            now = self._next
        self._next = max(self._next + self.period, now)
