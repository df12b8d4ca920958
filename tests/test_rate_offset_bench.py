"""bench/rate_offset.py compares what docs/temporal.md says it does: at the finest rate its two
ways are one and the same stream; below it, the finest model's latents coded at the rate and the
rate's own latents are different streams, the first's keyframe one fix point finer."""
from __future__ import annotations

import numpy as np

from caed.manifest import find
from caed.wire import FrameEncoder

from bench_scripts import load_bench


def test_the_two_ways_agree_at_the_finest_rate_and_differ_below_it(monkeypatch):
    import cv2

    from caed_models.evaluate import ModelCodec, family_finest

    bench = load_bench("rate_offset")
    monkeypatch.setattr(bench, "RATES", (0, 1))
    spec = family_finest(find("dct8-q0"))
    model = ModelCodec(spec)
    rng = np.random.default_rng(5)
    background = cv2.GaussianBlur(rng.random((64, 96, 3)).astype(np.float32), (0, 0), 1.5)
    frames = []
    for i in range(4):  # a still picture, a square moving over it
        picture = background.copy()
        picture[20:36, 10 + 6 * i:26 + 6 * i] = 0.9
        frames.append(np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8))
    latents = [model.latents(rgb, "float")[0].transpose(1, 2, 0) for rgb in frames]
    wire = FrameEncoder("eval", spec.model_id, "arith")
    finer, own = (bench.temporal_curve(latents, frames, model, spec.latent_fix_point, way, 50, wire)
                  for way in bench.WAYS)
    assert finer[0] == own[0]
    assert finer[1]["fix_point"] == own[1]["fix_point"] == spec.latent_fix_point - 1
    assert (finer[1]["bpp"], finer[1]["psnr"]) != (own[1]["bpp"], own[1]["psnr"])
    # the finer way's first keyframe is the model's own grid (a still scene's, one finer than the rate)
    assert finer[1]["bpp"] > own[1]["bpp"]
