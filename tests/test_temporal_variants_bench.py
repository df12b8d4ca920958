"""bench/temporal_variants.py measures what it says: every variant's patch still applies to today's
daemon/temporal.py, its process imports the patched encoder (its payloads differ from today's on a
clip with motion, and caed-intra does not), and the summary's BD-rates are the variant's curve
against today's."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench_scripts import load_bench, stale_patches


@pytest.fixture(scope="module")
def bench():
    return load_bench("temporal_variants")


def clip(frames: int = 8, h: int = 64, w: int = 96) -> list[np.ndarray]:
    """A smooth still background, a soft blob drifting 2 pixels a frame (what extrapolation
    predicts) and a bright square crossing 4 pixels a frame (uncovering what was behind it)."""
    y, x = np.mgrid[0:h, 0:w]
    background = np.stack([60 + x, 80 + y, 120 + 0 * x], -1).astype(np.float64)
    out = []
    for i in range(frames):
        blob = 120 * np.exp(-((x - 30 - 2 * i) ** 2 + (y - 32) ** 2) / 72.0)
        frame = np.clip(background + blob[..., None], 0, 255)
        frame[8:24, 8 + 4 * i:24 + 4 * i] = 240
        out.append(frame.astype(np.uint8))
    return out


def write_clip(path, frames):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_every_variant_applies_and_runs_the_patched_encoder(bench, tmp_path):
    video = write_clip(tmp_path / "clip.avi", clip())
    names = bench.variant_names()
    assert {"second-reference-keyframe", "second-reference-background", "second-reference-extrapolated"} <= set(names)
    today = bench.run_encoder(video, 8, [1, 2], None, tmp_path / "today.json")
    for name in names:
        package = bench.patched_package(name, tmp_path / name)
        assert "_second_reference" in (package / "caed" / "temporal.py").read_text()
        result = bench.run_encoder(video, 8, [1, 2], package, tmp_path / f"{name}.json")
        assert result["caed-intra"] == today["caed-intra"], name
        assert result["caed-temporal"] != today["caed-temporal"], name


def test_a_patch_that_no_longer_applies_names_itself(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "PATCHES", stale_patches(tmp_path / "patches", "daemon/temporal.py"))
    with pytest.raises(RuntimeError, match="stale.patch no longer applies"):
        bench.patched_package("stale", tmp_path / "src")


def test_summary_is_each_variant_against_today(bench):
    today = {"bd_rate_vs_intra": -40.0,
             "caed-temporal": [{"bpp": 0.1, "psnr": 30.0}, {"bpp": 0.2, "psnr": 33.0}, {"bpp": 0.4, "psnr": 36.0},
                               {"bpp": 0.8, "psnr": 39.0}]}
    cheaper = {"bd_rate_vs_intra": -52.0,
               "caed-temporal": [{"bpp": 0.08 * 2 ** k, "psnr": 30.0 + 3 * k} for k in range(4)]}
    summary = bench.summarize(today, {"cheaper": cheaper, "same": today})
    assert summary["variants"]["cheaper"]["bd_rate_vs_today"] == pytest.approx(-20.0, abs=0.01)
    assert summary["variants"]["same"]["bd_rate_vs_today"] == pytest.approx(0.0, abs=1e-9)
    assert summary["variants"]["cheaper"]["bd_rate_vs_intra"] == -52.0
    assert summary["today"]["bd_rate_vs_intra"] == -40.0
