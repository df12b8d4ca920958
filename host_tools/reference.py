"""The source frames again, on the host, so the viewer can measure reconstruction quality.

Works for deterministic sources only: the synthetic and cctv sources (frame i is a function of i), video
files and image folders (read in order; frame i of a looping source is i modulo its length).
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from caed.fixed_point import cover_and_crop
from caed.sources import CctvSource, SyntheticSource
from caed.sources.images import IMAGE_SUFFIXES

GENERATED = {"synthetic": SyntheticSource, "cctv": CctvSource}


class ReferenceError(ValueError):
    pass


class ReferenceFrames:
    """Frames by the source's frame index, fitted to the decoded size (known from the first frame).

    The viewer's decode workers ask for frames concurrently (consecutive frames of one stream
    decode side by side), and every kind of source here holds state (a file read in order, a
    camera that builds its scene on first use), so one frame is produced at a time."""

    def __init__(self, spec: str):
        self.spec = spec
        kind, _, arg = spec.partition(":")
        self.synthetic = spec in GENERATED  # rendered at the decoded size, once that is known
        self._camera = self._files = self._cap = None
        self._size = self._fit = None
        self._pos, self._length = 0, None
        self._lock = threading.Lock()
        if kind == "images" and Path(arg).is_dir():
            self._files = sorted(p for p in Path(arg).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif kind == "file" and Path(arg).is_file():
            self._path = arg
        elif not self.synthetic:
            raise ReferenceError(f"reference must be cctv, synthetic, file:PATH or images:DIR (existing), got {spec!r}")

    def get(self, index: int, height: int, width: int) -> np.ndarray | None:
        """RGB uint8 frame `index` fitted to height x width as the daemon did, or None."""
        with self._lock:
            return self._get(index, height, width)

    def _get(self, index: int, height: int, width: int) -> np.ndarray | None:
        if self._size != (height, width):
            self._size = (height, width)
            if self.synthetic:
                self._camera = GENERATED[self.spec](width, height)
        if self.synthetic:
            frame = self._camera.frame(index)
        elif self._files is not None:
            frame = cv2.imread(str(self._files[index % len(self._files)])) if self._files else None
        else:
            frame = self._video_frame(index)
        return None if frame is None else cv2.cvtColor(cover_and_crop(frame, width, height), cv2.COLOR_BGR2RGB)

    def _video_frame(self, index: int) -> np.ndarray | None:
        if self._length:
            index %= self._length
        if self._cap is None or index < self._pos:
            if self._cap is not None:
                self._cap.release()
            self._cap, self._pos = cv2.VideoCapture(self._path), 0
        frame = None
        while self._pos <= index:
            ok, frame = self._cap.read()
            if not ok:
                if self._pos == 0:
                    return None
                self._length = self._pos
                self._cap.release()
                self._cap = None
                return self._video_frame(index)
            self._pos += 1
        return frame

