"""The A53's per-frame work before the DPU: fit to the model input, quantize to int8 (and BGR→RGB
for an encoder that takes RGB).

Normalizing to [0, 1] and quantizing with the input tensor's fix_point collapse into one scale,
round and saturate per byte (`fixed_point.quantize`, two SIMD passes that give the same bytes as
the float formula, which the tests check for every byte value).
"""
from __future__ import annotations

import cv2
import numpy as np

from .fixed_point import cover_and_crop, quantize, replicate_padding
from .manifest import COLOUR_ORDERS


class Preprocessor:
    """BGR uint8 frame of any size → C-contiguous int8 HxWx3 encoder input, its colours in the
    encoder's order. An encoder that takes BGR (as the shipped ones do) spares the A53 a pass:
    the quantization is then the only pass over a frame of the model's size.

    Writes into caller-owned buffers: allocating 1 MB per frame costs more in page faults than
    the conversion itself. One instance per thread.
    """

    def __init__(self, width: int, height: int, fix_point: int, colours: str = "rgb",
                 input_size: tuple[int, int] | None = None):
        """width x height: the picture the daemon streams (a frame of another size is scaled to
        cover it and centre-cropped); input_size (H, W): the encoder's input, the picture padded
        at the bottom and right to it (`replicate_padding`); by default the picture's size."""
        if colours not in COLOUR_ORDERS:
            raise ValueError(f"colour order {colours!r} is not one of {COLOUR_ORDERS}")
        self.width, self.height, self.fix_point, self.colours = width, height, fix_point, colours
        self.input_size = input_size or (height, width)
        if self.input_size[0] < height or self.input_size[1] < width:
            raise ValueError(f"encoder input {self.input_size[0]}x{self.input_size[1]} is smaller than the "
                             f"picture {height}x{width}")
        self._rgb = np.empty((height, width, 3), np.uint8) if colours == "rgb" else None

    def fit(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The RGB uint8 picture the encoder sees (what the viewer compares against)."""
        return cv2.cvtColor(cover_and_crop(frame, self.width, self.height), cv2.COLOR_BGR2RGB, dst=out)

    def fit_for_encoder(self, frame: np.ndarray) -> np.ndarray:
        """The uint8 picture in the encoder's colour order: what the quantization takes."""
        return cover_and_crop(frame, self.width, self.height) if self.colours == "bgr" else self.fit(frame, self._rgb)

    def __call__(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The encoder's int8 input (into `out`, C-contiguous, of the input size, if given)."""
        out = np.empty((*self.input_size, 3), np.int8) if out is None else out
        quantize(self.fit_for_encoder(frame), self.fix_point, out[:self.height, :self.width])
        if self.input_size != (self.height, self.width):
            replicate_padding(out, self.height, self.width)
        return out
