"""What every frame source is: a blocking reader of BGR uint8 frames."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import cv2
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
        """The next frame, HxWx3 BGR uint8 (grey or BGRA is converted, see as_bgr); raise
        SourceError or EndOfStream."""

    def close(self) -> None:
        """Release the device or file; the source may be opened again."""

    def picture_size(self) -> tuple[int, int]:
        """(H, W) of the frames, before streaming: the daemon encodes at the source's own size.
        Reads one frame (a camera says its size only by delivering one) and closes the source
        again; SourceError if there is none. A source whose frames are numbered across opening
        and closing (generated ones, image folders) overrides this so that the probe takes none
        of them: the viewer's reference replays frame i as the i-th published."""
        self.open()
        try:
            return as_bgr(self.read()).shape[:2]
        except EndOfStream:
            raise SourceError(f"{self} has no frame") from None
        finally:
            self.close()

    def __str__(self) -> str:
        return self.description


def as_bgr(image: object) -> np.ndarray:
    """A frame as the pipeline takes it, HxWx3 BGR uint8. Grey and BGRA frames (a GStreamer
    pipeline ending in GRAY8 or BGRx, a mono camera) are converted; anything else is a
    SourceError that names what arrived."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or not image.size:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise SourceError(f"frames are {what}, expected 8-bit BGR (HxWx3)")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 3:
        return image
    if channels in (1, 4):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_BGRA2BGR)
    raise SourceError(f"frames have {channels} channels, expected 8-bit BGR (HxWx3)")


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
