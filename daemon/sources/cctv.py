"""A fixed camera stand-in: a still photograph with a few objects moving over it, and sensor noise.

What most users of the daemon watch: a scene that does not move, where only a few things change
and every pixel carries the sensor's noise, which a temporal coder must not mistake for change
(see caed.temporal). The photographs are scikit-image's samples (as for the synthetic source);
frame i is a pure function of i, noise included, so the viewer's --reference regenerates it.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..fixed_point import cover_and_crop
from .base import FrameSource, Pacer
from .synthetic import read_photo

SCENE = "motorcycle_left.png"  # a room seen from a fixed point
# (photo, crop x, y, w, h as shares of the photo, path period in frames, phase): people-sized
# cut-outs crossing the scene at walking pace (1-3 pixels per frame at 30 fps on 768x512)
OBJECTS = (
    ("chelsea.png", (0.25, 0.05, 0.45, 0.9), 900, 0.0),
    ("astronaut.png", (0.3, 0.0, 0.4, 0.55), 1200, 0.35),
    ("coffee.png", (0.2, 0.1, 0.5, 0.8), 700, 0.7),
)
OBJECT_HEIGHT = 0.3  # of the frame height
# Sensor noise in 8-bit levels: shot noise (variance proportional to the signal) and read noise,
# about what a small CCTV sensor shows in indoor light (sigma ~2.6 levels at mid grey).
SHOT_VARIANCE_PER_LEVEL = 0.04
READ_NOISE_SIGMA = 1.5
NOISE_SEED = 14


class CctvSource(FrameSource):
    def __init__(self, width: int, height: int, fps: float = 30.0):
        self.width, self.height = width, height
        self.description = f"cctv {width}x{height} @ {fps:g} fps (fixed view, {len(OBJECTS)} moving objects, noise)"
        self._pacer = Pacer(fps)
        self._scene: np.ndarray | None = None
        self._sprites: list[tuple[np.ndarray, np.ndarray, int, float]] = []
        self._index = 0

    def picture_size(self) -> tuple[int, int]:
        return self.height, self.width

    def open(self) -> None:
        if self._scene is not None:
            return
        self._scene = cover_and_crop(read_photo(SCENE), self.width, self.height).astype(np.float32)
        side = max(8, round(OBJECT_HEIGHT * self.height))
        for name, (x, y, w, h), period, phase in OBJECTS:
            img = read_photo(name)
            ih, iw = img.shape[:2]
            crop = img[round(y * ih):round((y + h) * ih), round(x * iw):round((x + w) * iw)]
            size = (max(4, round(side * crop.shape[1] / crop.shape[0])), side)
            sprite = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            mask = np.zeros((side, size[0]), np.float32)  # an ellipse with a soft edge, like a silhouette
            cv2.ellipse(mask, (size[0] // 2, side // 2), (size[0] // 2 - 1, side // 2 - 1), 0, 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (5, 5), 1.5)[..., None]
            self._sprites.append((sprite, mask, period, phase))

    def frame(self, index: int) -> np.ndarray:
        """Frame `index`: the scene, each object at its place on its path, then the sensor's noise."""
        self.open()
        picture = self._scene.copy()
        for sprite, mask, period, phase in self._sprites:
            sh, sw = sprite.shape[:2]
            t = (index / period + phase) % 1.0
            x = round(-sw + (self.width + sw) * t)  # enters left, leaves right
            y = round((self.height - sh) * (0.55 + 0.3 * math.sin(2 * math.pi * (t + phase))))
            x0, x1 = max(0, x), min(self.width, x + sw)
            y0, y1 = max(0, y), min(self.height, y + sh)
            if x1 <= x0 or y1 <= y0:
                continue
            s, m = sprite[y0 - y:y1 - y, x0 - x:x1 - x], mask[y0 - y:y1 - y, x0 - x:x1 - x]
            picture[y0:y1, x0:x1] = picture[y0:y1, x0:x1] * (1 - m) + s * m
        # The noise in OpenCV (Gaussian generator, arithmetic, saturating rounding): a 768x512 frame
        # takes 12 ms of CPU instead of numpy's 19, and the demo's camera and the viewer's
        # --reference both render every frame. The generator is the calling thread's, reseeded per
        # frame, so every process draws the same noise.
        noise = np.empty(picture.shape, np.float32)
        cv2.setRNGSeed((NOISE_SEED * 1_000_003 + index) % 2 ** 31)
        cv2.randn(noise, (0.0,) * 3, (1.0,) * 3)
        sigma = cv2.sqrt(cv2.addWeighted(picture, SHOT_VARIANCE_PER_LEVEL, picture, 0.0, READ_NOISE_SIGMA ** 2))
        return cv2.convertScaleAbs(cv2.max(cv2.add(picture, cv2.multiply(sigma, noise)), 0.0))

    def read(self) -> np.ndarray:
        self._pacer.wait()
        frame = self.frame(self._index)
        self._index += 1
        return frame
