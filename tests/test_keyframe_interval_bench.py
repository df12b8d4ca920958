"""bench/keyframe_interval.py measures what it says: each interval reaches the temporal encoder (on a
still scene with one moving object, fewer keyframes send fewer bits at every rate), and each gets a
BD-rate against the first."""
from __future__ import annotations

from bench_scripts import load_bench
from test_lambda_sweep_bench import clip


def test_a_longer_interval_sends_fewer_bits_and_is_compared_with_the_first():
    bench = load_bench("keyframe_interval")
    result = bench.compare(clip(frames=12), 2.0, [1.0, 3.0], [1, 2, 3], progress=lambda _: None)["intervals"]
    assert [r["frames"] for r in result] == [2, 6]
    assert result[0]["bd_rate_vs_first"] == 0.0
    short, long = ({p["fix_point"]: p for p in r["points"]} for r in result)
    assert short.keys() == long.keys() == {-1, -2, -3}
    assert all(long[f]["bpp"] < short[f]["bpp"] for f in short)
    assert result[1]["bd_rate_vs_first"] is not None and result[1]["bd_rate_vs_first"] < 0


def test_the_demo_camera_is_read_as_a_clip_is():
    bench = load_bench("keyframe_interval")
    frames = bench.cctv_frames(2, 15.0)
    assert len(frames) == 2 and frames[0].shape == (512, 768, 3) and frames[0].dtype.name == "uint8"
    assert (frames[0] != frames[1]).any()  # the noise, and the objects, move
