"""The daemon end to end with `--backend vart` on the timed vart/xir double."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zmq

from dpu_double_xmodel import write_xmodel
from tiny_models import write_tiny_encoder

from caed.wire import FrameDecoder

H, W, C = 64, 96, 4


def caed(*args: str, double) -> subprocess.Popen:
    """The daemon in a child process that loads the vart/xir double; the synthetic camera is
    scaled to the xmodel's size (resolution = fit), as on a board with one xmodel; every frame a
    keyframe, so that each can be decoded alone."""
    return subprocess.Popen([sys.executable, "-m", "caed.cli", "--metrics-port", "0", "--log-level", "warning",
                             "--resolution", "fit", "--keyframe-interval", "0", *args],
                            env=double.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_frames_publish_in_order_when_dpu_jobs_finish_out_of_order(dpu_double, free_port, tmp_path):
    """Two cores, jobs alternately 300 ms and 5 ms: every second job overtakes the one before it on the
    DPU, yet subscribers see gapless sequence numbers and increasing source frame indices."""
    onnx_model = write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C)
    stats = tmp_path / "dpu-stats.json"
    xmodel = write_xmodel(tmp_path / "tiny.xmodel", encoder_onnx=onnx_model, input_shape=(H, W, 3), input_fix_point=7,
                          latent_shape=(H // 2, W // 2, C), latent_fix_point=4, cores=2, latency_ms=[300.0, 5.0],
                          stats_file=stats, name="tiny-e2e")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 30_000)
    sub.connect(endpoint)
    daemon = caed("--source", "synthetic", "--fps", "20", "--backend", "vart", "--model", str(xmodel),
                  "--workers", "2", "--frames", "12", "--bind", endpoint, "--json", str(tmp_path / "summary.json"),
                  double=dpu_double)
    decoder, frames = FrameDecoder(), []
    try:
        while len(frames) < 12:
            try:
                frames.append(decoder.decode(sub.recv_multipart()))
            except zmq.Again:
                break
        _, err = daemon.communicate(timeout=120)
    finally:
        daemon.kill()
        sub.close(linger=0)
    assert daemon.returncode == 0, err
    assert len(frames) >= 8, f"received only {len(frames)} frames; daemon stderr: {err}"
    seqs = [f.header.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    indices = [f.header.frame_index for f in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(f.header.model_id == "tiny-e2e" and f.header.shape == (H // 2, W // 2, C) for f in frames)
    assert any(np.any(f.latents != 0) for f in frames)
    dpu = json.loads(stats.read_text())
    assert dpu["out_of_order"] >= 1 and dpu["jobs_per_core"][0] >= 1 and dpu["jobs_per_core"][1] >= 1
    assert json.loads((tmp_path / "summary.json").read_text())["frames_published"] == 12


def test_check_prints_the_dpu_tensors(dpu_double, tmp_path):
    onnx_model = write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C)
    xmodel = write_xmodel(tmp_path / "tiny.xmodel", encoder_onnx=onnx_model, input_shape=(H, W, 3), input_fix_point=7,
                          latent_shape=(H // 2, W // 2, C), latent_fix_point=4, name="tiny-check")
    out, err = caed("--check", "--backend", "vart", "--model", str(xmodel), "--keyframe-interval", "2",
                    "--rate", "1", double=dpu_double).communicate(timeout=120)
    described = json.loads(out)
    assert described["backend"] == "vart" and described["model_id"] == "tiny-check"
    assert described["input"]["name"] == "image_fix" and described["input"]["fix_point"] == 7
    assert described["latent"]["shape"] == [H // 2, W // 2, C] and described["latent"]["fix_point"] == 4
    assert described["frames_fix_points"] == [3]  # the model's, less the rate
    assert described["dpu_target"] == "DPUCZDX8G_ISA1_B2304"


@pytest.mark.parametrize("problem, expected", [
    ("missing", "xmodel not found"),
    ("no-dpu", "no DPU subgraph"),
])
def test_check_fails_with_a_clear_message(dpu_double, tmp_path, problem, expected):
    onnx_model = write_tiny_encoder(tmp_path / "tiny.onnx", H, W, C)
    xmodel = tmp_path / "m.xmodel"
    if problem == "no-dpu":
        write_xmodel(xmodel, encoder_onnx=onnx_model, input_shape=(H, W, 3), input_fix_point=7,
                     latent_shape=(H // 2, W // 2, C), latent_fix_point=4, devices=("USER", "CPU"))
    proc = caed("--check", "--backend", "vart", "--model", str(xmodel), double=dpu_double)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert expected in err and "Traceback" not in err


def _stream(double, endpoint: str, tmp_path: Path, name: str, backend_args: list[str],
            frames: int) -> dict[int, object]:
    """Run the daemon on the synthetic source and collect every published frame by source frame index."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVTIMEO, 120_000)
    sub.connect(endpoint)
    daemon = caed("--source", "synthetic", "--fps", "2", "--workers", "2", "--frames", str(frames),
                  "--bind", endpoint, "--json", str(tmp_path / f"{name}.json"), *backend_args, double=double)
    decoder, received = FrameDecoder(), {}
    try:
        while len(received) < frames:
            try:
                frame = decoder.decode(sub.recv_multipart())
            except zmq.Again:
                break
            received[frame.header.frame_index] = frame
        _, err = daemon.communicate(timeout=300)
    finally:
        daemon.kill()
        sub.close(linger=0)
    assert daemon.returncode == 0, err
    return received


def test_vart_on_the_double_matches_the_onnx_int8_backend(dpu_double, free_port, tmp_path):
    """The host decodes the vart stream to the same PSNR as the onnx int8 stream (same frames, same model)."""
    from caed import manifest
    from caed.fixed_point import psnr
    from caed_host.decoder import DecoderSet
    from caed_host.reference import ReferenceFrames

    spec = manifest.find("kth2020")
    if spec.encoder_int8 is None or not spec.encoder_int8.is_file():
        pytest.skip("the shipped kth2020 model has no int8 encoder")
    from dpu_double_xmodel import write_for_model

    xmodel = write_for_model(spec, tmp_path / "kth2020.xmodel", latency_ms=35.72)
    vart_frames = _stream(dpu_double, f"tcp://127.0.0.1:{free_port()}", tmp_path, "vart",
                          ["--backend", "vart", "--model", str(xmodel)], 6)
    onnx_frames = _stream(dpu_double, f"tcp://127.0.0.1:{free_port()}", tmp_path, "onnx",
                          ["--backend", "onnx", "--onnx-int8", "--model", "kth2020"], 6)
    common = sorted(set(vart_frames) & set(onnx_frames))
    assert len(common) >= 4, (sorted(vart_frames), sorted(onnx_frames))
    decoders, reference = DecoderSet(), ReferenceFrames("synthetic")

    def mean_psnr(frames: dict) -> float:
        values = []
        for index in common:
            h = frames[index].header
            rgb = decoders.get(h.model_id, h.shape, h.picture).decode(frames[index].planes, h.fix_point)
            values.append(psnr(reference.get(index, *rgb.shape[:2]), rgb))
        return float(np.mean(values))

    for index in common:
        assert vart_frames[index].header.model_id == onnx_frames[index].header.model_id == spec.model_id
        assert vart_frames[index].header.fix_point == onnx_frames[index].header.fix_point
    vart_db, onnx_db = mean_psnr(vart_frames), mean_psnr(onnx_frames)
    assert abs(vart_db - onnx_db) <= 0.1, (vart_db, onnx_db)
    assert vart_db > 10  # a real picture, not noise
