"""The fixed-point rules both ends and training share, each written once.

A tensor with fix point F holds q = clip(round(x * 2**F), -128, 127) and means q * 2**-F. The
daemon quantizes the camera picture this way for the encoder (its input fix point), the wire
carries the latents this way (the header's fix_point), the viewer turns the decoder's [0, 1]
output back into pixels, and evaluation and calibration must see exactly those values. A copy of
one of these formulas that drifts (as a calibration crop that never downscaled once did) makes
the measured quality a different codec's, so every package imports them from here.

Only NumPy and OpenCV: the board imports this module.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


# ----- the format itself -----
def to_int8(values: np.ndarray, fix_point: int) -> np.ndarray:
    """The reference formula: round half to even at 2**-fix_point, saturate to int8."""
    return np.clip(np.round(values * 2.0 ** fix_point), -128, 127).astype(np.int8)


def fix_point_for(max_abs: float) -> int:
    """The largest fix point whose int8 range still holds max_abs (what the DPU's quantizer picks)."""
    if not math.isfinite(max_abs) or max_abs <= 0:
        raise ValueError(f"cannot choose a fix_point for max |x| = {max_abs}")
    return int(math.floor(math.log2(127.0 / max_abs)))


# ----- the encoder's input -----
def quantize_float(pixels: np.ndarray, fix_point: int) -> np.ndarray:
    """uint8 pixels → [0, 1] → int8 at fix_point: what the encoder's input means."""
    return to_int8(pixels.astype(np.float64) / 255.0, fix_point)


def encoder_input_float(rgb: np.ndarray, fix_point: int, colours: str = "rgb") -> np.ndarray:
    """quantize_float's values as the float32 a model's float encoder takes (times 2**-fix_point),
    in its colour order `colours`: what training, evaluation and calibration feed it, so they see
    exactly the daemon's input."""
    pixels = rgb[..., ::-1] if colours == "bgr" else rgb
    return quantize_float(pixels, fix_point).astype(np.float32) * np.float32(2.0 ** -fix_point)


def quantize(pixels: np.ndarray, fix_point: int, out: np.ndarray) -> np.ndarray:
    """quantize_float into the int8 array `out` (whose rows are each contiguous: a C-contiguous
    array, or the top-left corner of one), in SIMD, for fix points >= 0 (the encoder backends
    refuse a model whose input has another).

    Pixels are never negative, so convertScaleAbs's |x| changes nothing. It cannot round
    otherwise than np.round: x * 2**f / 255 lies at least 1/510 from any half (x * 2**(f+1) is
    even, 255 * odd is odd), far beyond its float32 scale's error, so no rounding mode or scale
    error can flip a value. It saturates at 255, so a min at 127 completes int8's saturation
    (nothing is below 0 to clip). Half the time of a 256-entry cv2.LUT pass (a scalar loop in
    OpenCV), the same bytes."""
    if not out[0].flags.c_contiguous:  # its reshape below would be a copy, and the result lost
        raise ValueError("quantize writes into an array whose rows are contiguous only")
    flat, dst = pixels.reshape(len(pixels), -1), out.view(np.uint8).reshape(len(out), -1)
    cv2.convertScaleAbs(flat, dst, 2.0 ** fix_point / 255.0)
    cv2.min(dst, 127, dst)
    return out


def cover_and_crop(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height (down with INTER_AREA, up with INTER_LINEAR), then crop the
    centre: no letterboxing, no distortion. What the daemon does to every camera frame, so also
    what the viewer's reference and the DPU calibration do to theirs."""
    h, w = frame.shape[:2]
    if (h, w) != (height, width):
        scale = max(width / w, height / h)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y, x = (size[1] - height) // 2, (size[0] - width) // 2
        frame = frame[y:y + height, x:x + width]
    return frame


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The encoder input that holds a height x width picture: each side rounded up to the
    model's size multiple."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def replicate_padding(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fill `image` beyond its top-left height x width picture, in place, by repeating the
    picture's last column and row: a padded picture whose edge continues costs the encoder no
    bits for a step the viewer crops away (zero padding would put an edge in every border block)."""
    image[:height, width:] = image[:height, width - 1:width]
    image[height:] = image[height - 1:height]
    return image


# ----- the latents on the wire -----
def quantize_latents(latents: np.ndarray, fix_point: int) -> np.ndarray:
    """float → int8 at scale 2**fix_point, rounding half to even and saturating like the DPU's
    output stage. One OpenCV pass (its saturate_cast rounds and clips in SIMD) instead of numpy's
    four over the float tensor, which cost ~10 % of dct8's whole encoder time. (Exact for
    |value * 2**fix_point| < 2**31; a model whose latents reach that is broken anyway.)"""
    flat = np.ascontiguousarray(latents, np.float32).reshape(-1, latents.shape[-1])
    return cv2.addWeighted(flat, 2.0 ** fix_point, flat, 0.0, 0.0, dtype=cv2.CV_8S).reshape(latents.shape)


def dequantize(q: np.ndarray, fix_point: int) -> np.ndarray:
    """int8 at a fix point → the float32 values it means (q * 2**-fix_point): what an ONNX
    encoder takes for the quantized picture, and the decoder for the latents."""
    return np.multiply(q, np.float32(2.0 ** -fix_point), dtype=np.float32)


# ----- the decoder's picture -----
def decoded_pixels(image: np.ndarray) -> np.ndarray:
    """The decoder's [0, 1] output → uint8 pixels, rounding half to even and saturating."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error on a scale whose peak is `peak` (inf for a perfect match)."""
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB over all samples of two uint8 pictures (RGB: the three channels pooled)."""
    return psnr_from_mse(float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)))
