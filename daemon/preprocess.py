"""The A53's per-frame work before the DPU: fit to the model input, quantize to int8 (and BGR→RGB
for an encoder that takes RGB).

Normalizing to [0, 1] and quantizing with the input tensor's fix_point collapse into one scale,
round and saturate per byte: OpenCV's convertScaleAbs (SIMD) and a saturating min at 127, two
passes that together take half the time of the 256-entry cv2.LUT pass (a scalar loop in OpenCV)
and give the same bytes, which the tests check for every byte value.
"""
from __future__ import annotations

import cv2
import numpy as np

from caed_models import COLOUR_ORDERS


def quantize_float(pixels: np.ndarray, fix_point: int) -> np.ndarray:
    """The reference formula: uint8 → [0, 1] → round-to-nearest, saturating int8 at 2**fix_point."""
    x = pixels.astype(np.float64) / 255.0
    return np.clip(np.round(x * 2.0 ** fix_point), -128, 127).astype(np.int8)


def encoder_input_float(rgb: np.ndarray, fix_point: int, colours: str = "rgb") -> np.ndarray:
    """quantize_float's values as the float32 a model's float encoder takes (times 2**-fix_point),
    in its colour order `colours`: what evaluation and calibration feed it, so they see exactly
    the daemon's input."""
    pixels = rgb[..., ::-1] if colours == "bgr" else rgb
    return quantize_float(pixels, fix_point).astype(np.float32) * np.float32(2.0 ** -fix_point)


def quantize(pixels: np.ndarray, fix_point: int, out: np.ndarray) -> np.ndarray:
    """quantize_float into the C-contiguous int8 array `out`, in SIMD, for fix points >= 0 (the
    encoder backends refuse a model whose input has another).

    Pixels are never negative, so convertScaleAbs's |x| changes nothing. It cannot round
    otherwise than np.round: x * 2**f / 255 lies at least 1/510 from any half (x * 2**(f+1) is
    even, 255 * odd is odd), far beyond its float32 scale's error, so no rounding mode or scale
    error can flip a value. It saturates at 255, so a min at 127 completes int8's saturation
    (nothing is below 0 to clip)."""
    if not out.flags.c_contiguous:  # its reshape below would be a copy, and the result lost
        raise ValueError("quantize writes into a C-contiguous array only")
    flat, dst = pixels.reshape(len(pixels), -1), out.view(np.uint8).reshape(len(out), -1)
    cv2.convertScaleAbs(flat, dst, 2.0 ** fix_point / 255.0)
    cv2.min(dst, 127, dst)
    return out


def fit_to(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height, then crop the centre: no letterboxing, no distortion."""
    h, w = frame.shape[:2]
    if (h, w) != (height, width):
        scale = max(width / w, height / h)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y, x = (size[1] - height) // 2, (size[0] - width) // 2
        frame = frame[y:y + height, x:x + width]
    return frame


class Preprocessor:
    """BGR uint8 frame of any size → C-contiguous int8 HxWx3 encoder input, its colours in the
    encoder's order. An encoder that takes BGR (as the shipped ones do) spares the A53 a pass:
    the quantization is then the only pass over a frame of the model's size.

    Writes into caller-owned buffers: allocating 1 MB per frame costs more in page faults than
    the conversion itself. One instance per thread.
    """

    def __init__(self, width: int, height: int, fix_point: int, colours: str = "rgb"):
        if colours not in COLOUR_ORDERS:
            raise ValueError(f"colour order {colours!r} is not one of {COLOUR_ORDERS}")
        self.width, self.height, self.fix_point, self.colours = width, height, fix_point, colours
        self._rgb = np.empty((height, width, 3), np.uint8) if colours == "rgb" else None

    def fit(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The RGB uint8 picture the encoder sees (what the viewer compares against)."""
        return cv2.cvtColor(fit_to(frame, self.width, self.height), cv2.COLOR_BGR2RGB, dst=out)

    def fit_for_encoder(self, frame: np.ndarray) -> np.ndarray:
        """The uint8 picture in the encoder's colour order: what the quantization takes."""
        return fit_to(frame, self.width, self.height) if self.colours == "bgr" else self.fit(frame, self._rgb)

    def __call__(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        fitted = self.fit_for_encoder(frame)
        return quantize(fitted, self.fix_point, np.empty(fitted.shape, np.int8) if out is None else out)
