"""Training crops: every image of a folder held in memory as uint8, cut into random crops."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff"}


def image_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return paths


def load_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB; a clear error for files OpenCV cannot read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


class CropSampler:
    """Batches of random crops (random flips too) from a fixed image set, driven by one seeded RNG
    whose state is checkpointed, so a resumed run sees the same crops an unbroken one would."""

    def __init__(self, folder: Path, crop: int, seed: int):
        self.images = [im for im in map(load_rgb, image_paths(folder)) if min(im.shape[:2]) >= crop]
        if not self.images:
            raise ValueError(f"no image in {folder} is at least {crop}x{crop}")
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> np.ndarray:
        """NHWC uint8."""
        out = np.empty((size, self.crop, self.crop, 3), np.uint8)
        for k in range(size):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.crop + 1)
            x = self.rng.integers(im.shape[1] - self.crop + 1)
            c = im[y:y + self.crop, x:x + self.crop]
            if self.rng.integers(2):
                c = c[:, ::-1]
            if self.rng.integers(2):
                c = c[::-1]
            out[k] = c
        return out

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
