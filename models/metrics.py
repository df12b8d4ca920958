"""Image quality and rate metrics: MS-SSIM, bits per pixel, Bjøntegaard delta rate (PSNR is
caed.fixed_point's, the one the viewer reports)."""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WINDOW = 11


def _gaussian_blur(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """'Valid' separable filtering of an HxWxC float32 image (the border that a full window does
    not cover is dropped, as in the reference MS-SSIM)."""
    r = len(window) // 2
    return cv2.sepFilter2D(x, cv2.CV_32F, window, window)[r:-r, r:-r]


def ms_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM (Wang et al. 2003: 11-tap sigma-1.5 Gaussian, K=(0.01, 0.03), five scales, per
    channel then averaged) of two HxWx3 uint8 images. Images too small for five scales use the
    first scales that fit, with their weights renormalized."""
    side = min(reference.shape[:2])
    if side < MS_SSIM_WINDOW:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_WINDOW} pixels per side, got {side}")
    levels = 1
    while levels < len(MS_SSIM_WEIGHTS) and side // 2 ** levels >= MS_SSIM_WINDOW:
        levels += 1
    weights = np.array(MS_SSIM_WEIGHTS[:levels]) / sum(MS_SSIM_WEIGHTS[:levels])
    coords = np.arange(MS_SSIM_WINDOW) - MS_SSIM_WINDOW // 2
    window = np.exp(-(coords ** 2) / (2 * 1.5 ** 2))
    window = (window / window.sum()).astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = reference.astype(np.float32), test.astype(np.float32)
    factors = []
    for level in range(levels):
        mx, my = _gaussian_blur(x, window), _gaussian_blur(y, window)
        sxx = _gaussian_blur(x * x, window) - mx * mx
        syy = _gaussian_blur(y * y, window) - my * my
        sxy = _gaussian_blur(x * y, window) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        if level == levels - 1:
            ssim = ((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs
            factors.append(np.maximum(ssim.mean(axis=(0, 1), dtype=np.float64), 0))
        else:
            factors.append(np.maximum(cs.mean(axis=(0, 1), dtype=np.float64), 0))
            x, y = (_downsample(t) for t in (x, y))
    per_channel = np.prod(np.stack(factors) ** weights[:, None], axis=0)
    return float(per_channel.mean())


def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling; an odd side is padded by repeating its last row/column first."""
    if x.shape[0] % 2 or x.shape[1] % 2:
        x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2), (0, 0)), mode="edge")
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def bpp(nbytes: int, height: int, width: int) -> float:
    return 8.0 * nbytes / (height * width)


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Average bitrate difference in percent of `test` vs `anchor` at equal quality, over the
    overlapping quality range; each curve is [(bpp, quality), ...]. Piecewise cubic (PCHIP)
    interpolation of log-rate over quality, as in current Bjøntegaard practice. None when the
    curves do not overlap or a curve has fewer than two distinct quality values."""
    def curve(points):
        pts = sorted({q: math.log(r) for r, q in points if r > 0 and math.isfinite(q)}.items())
        if len(pts) < 2:
            return None
        q, lr = zip(*pts)
        return PchipInterpolator(q, lr), q[0], q[-1]

    a, t = curve(anchor), curve(test)
    if a is None or t is None:
        return None
    lo, hi = max(a[1], t[1]), min(a[2], t[2])
    if hi <= lo:
        return None
    diff = (t[0].integrate(lo, hi) - a[0].integrate(lo, hi)) / (hi - lo)
    return (math.exp(diff) - 1) * 100
