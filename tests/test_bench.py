"""caed-bench runs the real pipeline and writes every figure the issue asks for (no timing
thresholds here: the figures are for the person running it on a quiet machine)."""
import json

import numpy as np
import pytest

from caed_host import bench


def test_writes_every_measurement(tmp_path):
    out = tmp_path / "bench.json"
    # a camera size that is no multiple of 8: every section streams it padded (and faster than 512x768)
    assert bench.main(["--json", str(out), "--repeats", "1", "--frames", "3", "--threads", "1",
                       "--picture", "202x302"]) == 0
    result = json.loads(out.read_text())
    assert result["picture"] == [202, 302] and result["preprocess"]["frame"] == [202, 302]
    pre, enc, streaming, latency = result["preprocess"], result["encoder"], result["streaming"], result["latency"]
    assert pre["bit_exact"] is True and pre["speedup"] > 0
    assert enc["ratio_vs_matmul"] > 0 and enc["encoder_gmac"] > 0
    assert streaming["frames"] == 15 and streaming["frames_received"] > 0  # by the subscriber process
    threads = streaming["daemon_cpu_ms_per_frame"]
    assert set(threads) == {"preprocess", "compress", "publish", "other"} and min(threads.values()) > 0
    assert streaming["daemon_cpu_ms_per_frame_excluding_source"] == pytest.approx(sum(threads.values()))
    assert streaming["encoder_cpu_ms_per_frame"] > 0 and streaming["source_cpu_ms_per_frame"] > 0
    dec = result["decoder"]
    assert dec["decoder_fps"] > 0 and dec["fp32_decoder_fps"] > 0 and dec["frame"] == [202, 302]
    assert dec["decoder_fps"] == pytest.approx(float(np.median(dec["decoder_fps_runs"])))
    assert dec["decoder_all_threads_ms_p50"] > 0 and dec["fp32_decoder_all_threads_ms_p50"] > 0
    assert dec["decoder"] == "decoder_post_int8.onnx" and dec["sparse_synthesis"]  # the default model ships the split
    assert dec["synthesis_cpu_ms"]["p50"] > 0 and 0 < dec["latent_nonzero_share"] < 1
    assert dec["decoder_ms"]["p10"] <= dec["decoder_ms_p50"] <= dec["decoder_ms"]["p90"]
    for parts in dec["profile_ms_per_part"].values():
        assert {"synthesis", "post", "layout"} <= set(parts)
    codec = result["codec"]
    assert codec["name"] == "arith" and codec["frames"] >= 50 and codec["frame"] == [202, 302]
    assert min(codec[k] for k in ("encode_ms", "decode_ms", "zstd_planes_encode_ms", "zstd_planes_decode_ms")) > 0
    assert 0 < codec["bits_per_pixel"] < codec["zstd_planes_bits_per_pixel"]  # the same latents, fewer bits
    assert latency["frames"] == 3 and latency["warmup_frames_excluded"] == bench.WARMUP_FRAMES
    assert latency["latency_ms_p50"] >= latency["latency_beyond_model_ms_p50"]
    assert latency["latency_beyond_model_ms_p99"] >= latency["latency_beyond_model_ms_p50"]
