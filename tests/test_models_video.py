"""caed-eval --video on a short clip: the four codecs in one run, and the bitrate report."""
import json
import shutil

import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from caed.sources import CctvSource  # noqa: E402
from caed_models.evaluate import main  # noqa: E402

from bench_scripts import load_bench  # noqa: E402


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Six frames of the fixed-camera source as an MJPG file, smaller than the model's input and not a
    multiple of its 8-pixel blocks (the encoder pads it, the decoded pictures are cropped back)."""
    path = tmp_path_factory.mktemp("video") / "cctv.avi"
    camera = CctvSource(378, 250)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (378, 250))
    for i in range(6):
        writer.write(camera.frame(4 * i))
    writer.release()
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed: run tests/setup-system.sh "
                    "(apt-get install ffmpeg) to compare with MJPEG and x264")
def test_video_eval_measures_the_four_codecs_in_one_run(clip, tmp_path, capsys):
    out, plot = tmp_path / "rd.json", tmp_path / "rd.png"
    assert main(["--video", str(clip), "--frames", "4", "--keyframe-interval", "2", "--codec", "zstd-planes",
                 "--json", str(out), "--plot", str(plot)]) == 0
    result = json.loads(out.read_text())
    assert set(result["codecs"]) == {"caed-intra", "caed-temporal", "mjpeg", "x264-live"}
    assert result["frames"] == 4 and result["size"] == [250, 378] and plot.stat().st_size > 0  # native
    for points in result["codecs"].values():
        assert len(points) >= 5 and all(p["bpp"] > 0 and 15 < p["psnr"] < 60 and 0 < p["ms_ssim"] <= 1
                                        for p in points)
    assert "caed-temporal" in result["bd_rate"]["caed-intra"] and "caed-temporal" in result["bd_rate"]["x264-live"]
    # two keyframes among four frames, the inter frames of a still scene: temporal costs less at equal
    # PSNR (not at equal fix point: a still scene's keyframes are finer than the rate, and cost more)
    assert result["bd_rate"]["caed-intra"]["caed-temporal"]["psnr"] < -20
    assert "BD-rate vs caed-intra" in capsys.readouterr().out


def test_video_eval_holds_a_bitrate_and_reports_windows(clip, tmp_path):
    out = tmp_path / "bitrate.json"
    assert main(["--video", str(clip), "--bitrate", "500", "--fps", "2", "--seconds", "12", "--codec", "zstd-planes",
                 "--resolution", "fit", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["size"] == [512, 768]  # the model's input size: covered and centre-cropped
    assert result["frames"] == 24 and result["clip_frames"] == 6 and result["window_kbps_min"] > 0
    assert result["psnr_std"] >= 0 and sum(result["fix_points"].values()) == 24
    # keyframes every 4 frames (2 s at 2 fps) and at each of the 6-frame loop's cuts: 0, 4, 6, 10, 12,
    # 16, 18, 22; the cuts (0, 6, 12, 18) are not measured, the scene itself jumps there
    assert result["keyframes_measured"] == 4
    assert result["keyframe_psnr_step_max"] >= result["keyframe_psnr_step_mean"] >= 0


def test_video_eval_holds_a_bitrate_with_keyframes_as_often_as_asked(clip, tmp_path, capsys):
    out = tmp_path / "bitrate.json"
    assert main(["--video", str(clip), "--bitrate", "500", "--fps", "2", "--seconds", "12", "--codec", "zstd-planes",
                 "--resolution", "fit", "--keyframe-seconds", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # every 2 frames, counted again from each loop's cut (0, 6, 12, 18, not measured): 2, 4, 8, 10, 14, 16, 20, 22
    assert result["keyframe_interval_s"] == 1.0 and result["keyframes_measured"] == 8
    with pytest.raises(SystemExit) as exit_info:
        main(["--video", str(clip), "--bitrate", "500", "--keyframe-seconds", "0", "--json", str(out)])
    assert exit_info.value.code == 2 and "--keyframe-seconds must be > 0" in capsys.readouterr().err


def test_video_eval_refuses_a_bad_resolution(clip, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--video", str(clip), "--resolution", "720p", "--json", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2 and "--resolution must be native, fit or HxW" in capsys.readouterr().err


def test_video_eval_names_a_missing_clip(tmp_path, capsys):
    assert main(["--video", str(tmp_path / "none.avi"), "--json", str(tmp_path / "x.json")]) == 2
    assert "cannot open video" in capsys.readouterr().err


def test_decoder_versions_bench_compares_a_revisions_decoder_on_a_clip(clip, tmp_path):
    """bench/decoder_versions.py against HEAD's own decoder: the same PSNR at every rate (the
    revision's file is read from git, today's from the tree, which this commit leaves alone)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[1]
    if subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "daemon/weights/dct8/decoder.onnx"]).returncode:
        pytest.skip("the working tree's dct8 decoder differs from HEAD's")
    bench = load_bench("decoder_versions")
    out = tmp_path / "versions.json"
    assert bench.main(["--video", str(clip), "--baseline", "HEAD", "--frames", "2", "--json", str(out)]) == 0
    psnr = json.loads(out.read_text())["psnr_db"]
    assert sorted(int(f) for f in psnr) == [-4, -3, -2, -1, 0]
    assert all(p["today"] == p["baseline"] and 15 < p["today"] < 60 for p in psnr.values())
