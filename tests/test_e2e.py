"""The real daemon and the real viewer as processes over loopback ZeroMQ, on a video file."""
import json
import subprocess
import sys

import cv2

from caed.sources import SyntheticSource
from deploy_processes import free_port, running

# The shipped kth2020-s1892 reaches 23.4 dB mean, 22.8 dB worst frame on this clip at its own
# 256x384 (30.1 / 27.8 when it was scaled up to 512x768, which smooths it); a broken link
# anywhere (preprocess, padding, quantization, wire, dequantization, decoder, crop) lands far
# below 20 dB (an untrained model of the same shape: 8 dB).
MIN_PSNR_DB = 20.0
FRAMES = 12


def write_clip(path, frames=30, size=(384, 256)):
    """Real photographs (the synthetic camera's views) as an MJPG file of `size` (W, H)."""
    camera = SyntheticSource(*size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        writer.write(camera.frame(i * 7))
    writer.release()
    return path


def test_daemon_to_viewer_over_loopback_reconstructs_the_source(tmp_path):
    clip = write_clip(tmp_path / "clip.avi")
    port = free_port()
    daemon_json, viewer_json = tmp_path / "daemon.json", tmp_path / "viewer.json"
    daemon = [sys.executable, "-m", "caed.cli", "--source", f"file:{clip}", "--model", "kth2020", "--fps", "4",
              "--workers", "1",
              "--bind", f"tcp://127.0.0.1:{port}", "--metrics-port", "0", "--json", str(daemon_json),
              "--log-level", "warning"]
    viewer = [sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{port}", "--sink",
              f"png:{tmp_path / 'png'}", "--reference", f"file:{clip}", "--frames", str(FRAMES),
              "--duration", "240", "--metrics-port", "0", "--quiet", "--json", str(viewer_json)]
    with running(daemon, tmp_path / "daemon.log") as d:
        out = subprocess.run(viewer, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert d.returncode == 0, (tmp_path / "daemon.log").read_text()
    s = json.loads(viewer_json.read_text())
    assert s["frames_decoded"] == FRAMES and s["resolution"] == [256, 384]  # the clip's own size
    # the viewer joins mid-stream: the inter frames before its first keyframe (2 s at 4 fps) wait
    assert set(s["messages_rejected"]) <= {"no_keyframe"} and s["frames_lost"] == 0
    assert s["messages_rejected"].get("no_keyframe", 0) < 8 and s["keyframes"] >= 1
    assert s["psnr_db_min"] >= MIN_PSNR_DB, {k: s[k] for k in ("psnr_db", "psnr_db_min")}
    assert 0 < s["bits_per_pixel"] < 8 and s["latency_ms_p50"] > 0
    assert "frames decoded      12" in out.stdout
    pngs = sorted((tmp_path / "png").glob("cam0_*.png"))
    assert len(pngs) == FRAMES and cv2.imread(str(pngs[0])).shape == (256, 384, 3)
    assert json.loads(daemon_json.read_text())["frames_published"] >= FRAMES


def test_a_camera_whose_size_is_no_multiple_of_8_is_streamed_at_its_own_size(tmp_path):
    """Native resolution: 357x638 pictures reach the viewer whole (padded for the encoder, the
    padding removed), not resized or cropped to the model's 512x768."""
    folder = tmp_path / "camera"
    folder.mkdir()
    camera = SyntheticSource(638, 357)
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:02d}.png"), camera.frame(i * 11))
    port = free_port()
    viewer_json = tmp_path / "viewer.json"
    daemon = [sys.executable, "-m", "caed.cli", "--source", f"images:{folder}", "--fps", "4", "--workers", "1",
              "--keyframe-interval", "0",  # four unrelated photos: every frame a keyframe
              "--bind", f"tcp://127.0.0.1:{port}", "--metrics-port", "0", "--log-level", "warning"]
    viewer = [sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{port}", "--sink",
              f"png:{tmp_path / 'png'}", "--reference", f"images:{folder}", "--frames", "4", "--duration", "240",
              "--metrics-port", "0", "--quiet", "--json", str(viewer_json)]
    with running(daemon, tmp_path / "daemon.log"):
        out = subprocess.run(viewer, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = json.loads(viewer_json.read_text())
    assert s["resolution"] == [357, 638] and s["messages_rejected"] == {}
    assert s["psnr_db_min"] >= 28.0, s  # dct8-q1 on these photographs: ~33-36 dB; a misplaced crop: < 15
    assert all(cv2.imread(str(p)).shape == (357, 638, 3) for p in (tmp_path / "png").glob("cam0_*.png"))
