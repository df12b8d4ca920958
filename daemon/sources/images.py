"""A folder of still images played as a video, in name order."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .base import EndOfStream, FrameSource, Pacer, SourceError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}


class ImageFolderSource(FrameSource):
    def __init__(self, folder: str, loop: bool = True, fps: float = 0.0):
        self.folder = Path(folder)
        self.loop = loop
        self.description = f"image folder {folder}" + (" (looping)" if loop else "")
        self._pacer = Pacer(fps if fps > 0 else 30.0)
        self._files: list[Path] = []
        self._next = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"image folder {self.folder} does not exist")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"image folder {self.folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def picture_size(self) -> tuple[int, int]:
        """The first image's size, read without moving the folder's position."""
        self.open()
        frame = cv2.imread(str(self._files[0]), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot decode image {self._files[0]}")
        return frame.shape[:2]

    def read(self) -> np.ndarray:
        self._pacer.wait()
        if self._next >= len(self._files):
            if not self.loop:
                raise EndOfStream(str(self.folder))
            self._next = 0
        path = self._files[self._next]
        self._next += 1
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot decode image {path}")
        return frame
