"""bench/lambda_sweep.py sweeps what it says: the scale reaches the temporal encoder's decision (a
larger lambda sends fewer blocks), caed-intra is the same at every scale, and each scale gets a
BD-rate against it."""
from __future__ import annotations

import numpy as np

from bench_scripts import load_bench


def clip(frames: int = 6, h: int = 64, w: int = 96) -> list[np.ndarray]:
    """A textured still picture with a bright square crossing it, 4 pixels a frame."""
    rng = np.random.default_rng(4)
    background = (rng.random((h, w, 3)) * 120 + 60).astype(np.uint8)
    out = []
    for i in range(frames):
        frame = background.copy()
        frame[20:36, 8 + 4 * i:24 + 4 * i] = 240
        out.append(frame)
    return out


def test_a_larger_lambda_sends_fewer_blocks_against_the_same_intra_curve():
    bench = load_bench("lambda_sweep")
    result = bench.sweep(clip(), 25.0, [1.0, 8.0], rates=(0, 1, 2), progress=lambda _: None)
    low, high = result[1.0], result[8.0]
    def curve(points):
        return [(p["bpp"], p["psnr"]) for p in points]

    assert curve(low["caed-intra"]) == curve(high["caed-intra"])
    sent_low = [p["blocks_sent"] for p in low["caed-temporal"]]
    sent_high = [p["blocks_sent"] for p in high["caed-temporal"]]
    assert all(a >= b for a, b in zip(sent_low, sent_high)) and sent_low != sent_high
    assert all(r["bd_rate_vs_intra"] is not None for r in result.values())
