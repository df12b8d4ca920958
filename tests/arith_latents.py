"""Latents for the arith codec's tests: dct8-like synthetic tensors, and the real thing from Kodak
when the photos are on this machine (never copied into the repository)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

KODAK = Path("/work/shared/data/kodak")


def blocky(seed: int = 0, shape: tuple[int, int, int] = (24, 32, 192)) -> np.ndarray:
    """Transform-like sparse latents: 8x8 frequency blocks whose spread falls with frequency and
    follows a texture map (flat top half, textured bottom), chroma weaker than luma, smooth DCs."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    texture = np.where(np.arange(h)[:, None] < h // 2, 0.1, 3.0) * rng.uniform(0.5, 1.5, (h, w))
    u, v = np.divmod(np.arange(c) % 64, 8)
    spread = texture[..., None] * np.where(np.arange(c) < 64, 1.0, 0.3) / (1 + u + v)
    x = rng.laplace(0, spread)
    x[..., ::64] = np.cumsum(rng.integers(-2, 3, (h, w, len(range(0, c, 64)))), axis=1) - 20
    return np.clip(np.round(x), -128, 127).astype(np.int8)


def pinned(shape: tuple[int, int, int]) -> np.ndarray:
    """A sparse tensor from integer arithmetic alone (no RNG whose stream could change), with
    values up to -128 and 127 and large DC-like steps in channels 0, 64, ..."""
    index = np.arange(np.prod(shape), dtype=np.uint64)
    mixed = (index * np.uint64(2654435761)) % np.uint64(2 ** 32)
    magnitude = (mixed >> np.uint64(24)).astype(np.int64)  # 0..255
    values = np.where(magnitude < 210, 0, (magnitude - 200) // 8 * np.where(mixed & np.uint64(1), 1, -1))
    values = np.where(magnitude == 255, -128, np.where(magnitude == 254, 127, values)).reshape(shape)
    h, w, c = shape
    ramp = (np.arange(h)[:, None] * 37 + np.arange(w) * 23) % 256 - 128  # DC-like, large steps
    values[..., ::64] = ramp[..., None]
    return values.astype(np.int8)


def kodak(count: int, rate: int = 1) -> list[np.ndarray]:
    """The int8 dct8-q<rate> latents, (H, W, C), of the first `count` Kodak photos, computed the way
    caed-eval computes them; [] when the photos, the model or onnxruntime are missing."""
    paths = sorted(KODAK.glob("*.png"))[:count]
    if not paths:
        return []
    try:
        from caed.fixed_point import quantize_latents
        from caed.manifest import find
        from caed_models.data import load_rgb
        from caed_models.evaluate import ModelCodec
    except ImportError:
        return []
    spec = find(f"dct8-q{rate}")
    model = ModelCodec(spec)
    return [np.ascontiguousarray(quantize_latents(model.latents(load_rgb(path), "int8")[0], spec.latent_fix_point)
                                 .transpose(1, 2, 0)) for path in paths]
