"""A camera stand-in that needs no files: a view panning over real photographs.

The photographs are the samples that scikit-image ships inside its wheel, so a fresh machine
gets realistic content (skin, fur, text, sky) rather than noise or gradients. Frame i is a pure
function of i, which lets the viewer regenerate the exact source frame to measure quality.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from .base import FrameSource, Pacer, SourceError

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png")
PAN_PERIOD_FRAMES = 600  # one full sweep every 20 s at 30 fps


def _photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("the synthetic source uses scikit-image's sample photos: pip install scikit-image")
    return Path(spec.submodule_search_locations[0]) / "data"


def read_photo(name: str) -> np.ndarray:
    """One of scikit-image's sample photographs, BGR (the synthetic and cctv sources' material)."""
    img = cv2.imread(str(_photo_dir() / name), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"scikit-image sample photo {name} is missing or unreadable")
    return img


def _canvas(height: int) -> np.ndarray:
    """The photos scaled to a common height and laid side by side (BGR)."""
    tiles = []
    for name in PHOTOS:
        img = read_photo(name)
        scale = height / img.shape[0]
        tiles.append(cv2.resize(img, (round(img.shape[1] * scale), height), interpolation=cv2.INTER_AREA))
    return np.ascontiguousarray(np.concatenate(tiles, axis=1))


class SyntheticSource(FrameSource):
    def __init__(self, width: int, height: int, fps: float = 30.0):
        self.width, self.height = width, height
        self.description = f"synthetic {width}x{height} @ {fps:g} fps (panning over scikit-image sample photos)"
        self._pacer = Pacer(fps)
        self._canvas: np.ndarray | None = None
        self._index = 0

    def picture_size(self) -> tuple[int, int]:
        return self.height, self.width

    def open(self) -> None:
        if self._canvas is None:
            self._canvas = _canvas(round(self.height * 1.25))
            if self._canvas.shape[1] < self.width:
                raise SourceError(f"synthetic canvas is narrower than {self.width} pixels")

    def frame(self, index: int) -> np.ndarray:
        """Frame `index`: the view moves along a smooth loop across the canvas."""
        self.open()
        ch, cw = self._canvas.shape[:2]
        phase = 2 * math.pi * (index % PAN_PERIOD_FRAMES) / PAN_PERIOD_FRAMES
        x = round((cw - self.width) * (1 - math.cos(phase)) / 2)
        y = round((ch - self.height) * (1 - math.cos(3 * phase)) / 2)
        return np.ascontiguousarray(self._canvas[y:y + self.height, x:x + self.width])

    def read(self) -> np.ndarray:
        self._pacer.wait()
        frame = self.frame(self._index)
        self._index += 1
        return frame
