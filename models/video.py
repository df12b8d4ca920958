"""`caed-eval --video`: rate-distortion over consecutive frames of a clip, caed against video codecs.

Frames are the pictures the daemon would stream with the same `resolution`: by default the clip's
own size (native: the encoder pads it, the decoded picture is cropped back, nothing is resized), or
scaled to cover a size and centre-cropped; every codec sees those pictures. In one run:
- `caed-intra`: every frame alone, at each rate of the multi-rate model (fix points F0..F0-4);
- `caed-temporal`: caed.temporal's keyframes and inter frames at each rate (same rates);
- `mjpeg`: ffmpeg's MJPEG at a range of q:v;
- `x264-live`: libx264 with the live settings of issue 14 (`-preset veryfast -tune zerolatency
  -g 50`, yuv420p) at a range of CRF.
caed's rate is the real wire message (topic, header and payload); ffmpeg's the elementary stream
(no container). PSNR and MS-SSIM are means over frames, as for images.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from caed.codecs import create_codec
from caed.fixed_point import cover_and_crop, dequantize, psnr, quantize_latents
from caed.manifest import ModelSpec
from caed.temporal import KEYFRAME_INTERVAL_S, TemporalEncoder
from caed.wire import FrameEncoder

from .evaluate import ModelCodec
from .metrics import bpp

RATES = (0, 1, 2, 3, 4)  # fix point reductions from the finest rate: dct8-q0..q4
MJPEG_Q = (3, 5, 8, 12, 18, 25)
X264_CRF = (20, 24, 28, 32, 36, 40)
X264_LIVE = ("-preset", "veryfast", "-tune", "zerolatency", "-g", "50", "-pix_fmt", "yuv420p")
KEYFRAME_INTERVAL = 50  # frames: x264-live's -g 50


class FfmpegMissing(RuntimeError):
    pass


def read_frames(path: Path, frames: int, size: tuple[int, int] | None = None) -> tuple[list[np.ndarray], float]:
    """The first `frames` frames of a clip as RGB uint8, at their own size (size None) or covering
    size = (H, W) and centre-cropped as the daemon fits a camera; and the clip's frame rate."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out = []
    while len(out) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        if size is not None:
            frame = cover_and_crop(frame, size[1], size[0])
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise ValueError(f"no frames decoded from {path}")
    return out, fps


def int8_latents(model: ModelCodec, rgb: np.ndarray, fix_point: int) -> np.ndarray:
    """The picture's latents as the daemon's encoder hands them to the temporal coder: int8 (H, W, C)
    at `fix_point`."""
    return quantize_latents(model.latents(rgb, "float")[0], fix_point).transpose(1, 2, 0)


def ffmpeg() -> str:
    """ffmpeg from PATH (Debian's package) or imageio-ffmpeg's bundled binary."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise FfmpegMissing("ffmpeg not found: apt-get install ffmpeg (or pip install imageio-ffmpeg) to compare "
                            "with MJPEG and x264") from None


def ffmpeg_point(frames: list[np.ndarray], fps: float, codec_args: list[str], suffix: str) -> tuple[float, list]:
    """(bpp, decoded RGB frames) of the frames through ffmpeg with `codec_args`."""
    h, w = frames[0].shape[:2]
    exe = ffmpeg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"stream{suffix}"
        raw = b"".join(f.tobytes() for f in frames)
        subprocess.run([exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r",
                        f"{fps:g}", "-i", "-", *codec_args, str(out)], input=raw, check=True)
        nbytes = out.stat().st_size
        decoded = subprocess.run([exe, "-v", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                                 capture_output=True, check=True).stdout
    pictures = np.frombuffer(decoded, np.uint8).reshape(-1, h, w, 3)
    if len(pictures) != len(frames):
        raise RuntimeError(f"ffmpeg decoded {len(pictures)} frames of {len(frames)}")
    return bpp(nbytes, h, w * len(frames)), list(pictures)


def evaluate_video(frames: list[np.ndarray], fps: float, spec: ModelSpec, codec: str, measure,
                   keyframe_interval: int = KEYFRAME_INTERVAL, reference: str = "keyframe", rates=RATES,
                   lambda_scale: float = 1.0, classic: bool = True, progress=print,
                   decoder_precision: str = "auto") -> dict:
    """{"codecs": {name: [point dicts]}} for the frames; `measure(reference, decoded, nbytes)` → Point."""
    from .evaluate import mean_point

    model = ModelCodec(spec, decoder_precision)
    finest = spec.latent_fix_point  # the finest rate of the family: every coarser one derives from it
    wire = FrameEncoder("eval", spec.model_id, codec)
    latents = []
    for rgb in frames:
        latents.append(int8_latents(model, rgb, finest))
    progress(f"encoded {len(frames)} frames with {spec.encoder.name}")
    codecs: dict[str, list[dict]] = {}
    shape = latents[0].shape
    h, w = frames[0].shape[:2]
    for k in rates:
        fix_point = finest - k
        intra, temporal, sent_share = [], [], []
        temporal_encoder = TemporalEncoder(create_codec(codec), shape, finest, keyframe_interval, reference,
                                           rate=k, lambda_scale=lambda_scale)
        for i, (rgb, q) in enumerate(zip(frames, latents)):
            coarse = quantize_latents(dequantize(q, finest), fix_point)
            parts = wire.encode(coarse, picture=rgb.shape[:2], fix_point=fix_point, seq=i, frame_index=i,
                                t_capture_ns=0)
            intra.append(measure(rgb, model.decode(dequantize(coarse.transpose(2, 0, 1), fix_point))[:h, :w],
                                 sum(len(p) for p in parts)))
            coded = temporal_encoder.encode(q)
            nbytes = sum(len(p) for p in wire.message(shape, coded.payload, picture=rgb.shape[:2],
                                                      fix_point=coded.fix_point, seq=i, ref_seq=coded.ref_index,
                                                      frame_index=i, t_capture_ns=0))
            temporal.append(measure(rgb, model.decode(temporal_encoder.values())[:h, :w], nbytes))
            if not coded.keyframe:
                sent_share.append(coded.blocks_sent / coded.blocks)
        for name, points in (("caed-intra", intra), ("caed-temporal", temporal)):
            codecs.setdefault(name, []).append(mean_point(points).as_dict(fix_point=fix_point, payload_codec=codec))
        codecs["caed-temporal"][-1]["blocks_sent"] = round(float(np.mean(sent_share)), 4) if sent_share else None
        progress(f"fix point {fix_point}: intra {codecs['caed-intra'][-1]}, temporal {codecs['caed-temporal'][-1]}")
    if classic:
        for name, args, values, suffix in (
                ("mjpeg", lambda q: ["-c:v", "mjpeg", "-q:v", str(q), "-pix_fmt", "yuvj420p", "-f", "mjpeg"], MJPEG_Q,
                 ".mjpeg"),
                ("x264-live", lambda crf: ["-c:v", "libx264", *X264_LIVE, "-crf", str(crf), "-f", "h264"], X264_CRF,
                 ".h264")):
            points = []
            for v in values:
                rate, decoded = ffmpeg_point(frames, fps, args(v), suffix)
                point = mean_point([measure(f, d, 0) for f, d in zip(frames, decoded)])
                points.append({**point.as_dict(), "bpp": round(rate, 5), "setting": v})
            codecs[name] = sorted(points, key=lambda p: p["bpp"])
            progress(f"{name}: " + ", ".join(f"{p['bpp']:.3f} bpp {p['psnr']:.2f} dB" for p in codecs[name]))
    for name in ("caed-intra", "caed-temporal"):
        codecs[name].sort(key=lambda p: p["bpp"])
    return {"frames": len(frames), "fps": fps, "size": list(frames[0].shape[:2]), "payload_codec": codec,
            "keyframe_interval": keyframe_interval, "reference": reference, "codecs": codecs}


def hold_bitrate(path: Path, spec: ModelSpec, codec: str, kbps: float, fps: float, seconds: float,
                 size: tuple[int, int] | None = None, keyframe_interval_s: float = KEYFRAME_INTERVAL_S, psnr_every: int = 3,
                 progress=print, decoder_precision: str = "auto") -> dict:
    """The daemon's rate control on a clip played at `fps` and looped (as the daemon loops a file)
    for `seconds`: bitrate over every 10 s window (sliding by one frame) against the target, the
    PSNR spread of the frames (every `psnr_every`-th, decoded), and the size of the PSNR step at
    each keyframe from the frame before it (the pumping a viewer sees: mean and largest; the loop's
    cuts left out, where the scene itself jumps)."""
    model = ModelCodec(spec, decoder_precision)
    clip, _ = read_frames(path, 100_000, size)
    h, w = clip[0].shape[:2]
    total = round(seconds * fps)
    cache = {0: int8_latents(model, clip[0], spec.latent_fix_point)}
    wire = FrameEncoder("eval", spec.model_id, codec)
    encoder = TemporalEncoder(create_codec(codec), cache[0].shape, spec.latent_fix_point,
                              max(1, round(keyframe_interval_s * fps)), bitrate_bps=1e3 * kbps, fps=fps,
                              overhead_bytes=wire.overhead_bytes(cache[0].shape, (h, w)))
    bits, psnrs, fix_points, keyframe_steps = [], [], [], []
    for i in range(total):
        k = i % len(clip)
        if k not in cache:
            cache[k] = int8_latents(model, clip[k], spec.latent_fix_point)
        before = encoder.values()  # the picture shown until this frame
        coded = encoder.encode(cache[k], force_keyframe=k == 0 and i > 0)  # the loop's cut
        bits.append(8 * sum(len(p) for p in wire.message(cache[k].shape, coded.payload, picture=clip[k].shape[:2],
                                                         fix_point=coded.fix_point, seq=i, ref_seq=coded.ref_index,
                                                         frame_index=i, t_capture_ns=0)))
        fix_points.append(coded.fix_point)
        if i % psnr_every == 0 or (coded.keyframe and i > 0):
            shown = psnr(clip[k], model.decode(encoder.values())[:h, :w])
            if i % psnr_every == 0:
                psnrs.append(shown)
            if coded.keyframe and i > 0 and k > 0:  # not the loop's cut, where the scene itself jumps
                keyframe_steps.append(shown - psnr(clip[k - 1], model.decode(before)[:h, :w]))
    window = round(10 * fps)
    rates = np.convolve(bits, np.ones(window), "valid") / 10 / 1e3 if total >= window else np.array([])
    result = {
        "video": path.name, "size": [h, w], "codec": codec, "target_kbps": kbps, "fps": fps, "frames": total,
        "keyframe_interval_s": keyframe_interval_s,
        "clip_frames": len(clip), "mean_kbps": round(float(np.sum(bits) / total * fps / 1e3), 2),
        "window_kbps_min": round(float(rates.min()), 2) if rates.size else None,
        "window_kbps_max": round(float(rates.max()), 2) if rates.size else None,
        "windows_within_10pct": round(float(np.mean(np.abs(rates / kbps - 1) <= 0.1)), 4) if rates.size else None,
        "psnr_mean": round(float(np.mean(psnrs)), 3), "psnr_std": round(float(np.std(psnrs)), 3),
        "psnr_p5": round(float(np.percentile(psnrs, 5)), 3), "psnr_p95": round(float(np.percentile(psnrs, 95)), 3),
        "psnr_max_step": round(float(np.max(np.abs(np.diff(psnrs)))), 3) if len(psnrs) > 1 else None,
        "keyframes_measured": len(keyframe_steps),
        "keyframe_psnr_step_mean": round(float(np.mean(np.abs(keyframe_steps))), 3) if keyframe_steps else None,
        "keyframe_psnr_step_max": round(float(np.max(np.abs(keyframe_steps))), 3) if keyframe_steps else None,
        "fix_points": {str(f): fix_points.count(f) for f in sorted(set(fix_points))},
    }
    progress(f"{path.name} at {kbps:g} kbit/s: {result}")
    return result
