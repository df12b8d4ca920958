"""caed-eval: rate-distortion of the shipped codecs against JPEG and WebP on a folder of images.

For every model the rate is the real size of the wire message (topic, header and payload, as
caed.wire packs it), so bpp includes the header. Each image is coded as the daemon streams a
picture of its size: padded (not resized, not cropped) to the multiple the model needs, the
padding removed from the decoded picture before it is measured. The `<model>` curve uses the int8 encoder (what the
DPU computes), `<model>-float` the float encoder; extra points on each curve coarsen the latent
grid by powers of two (fix_point F-1, F-2, ...), a rate knob the wire header already carries.
The rates of a multi-rate model (model.json "family", e.g. dct8-q0..q4) form one curve.

With --video FILE it measures consecutive frames of a clip instead (models/video.py): caed intra,
caed temporal, MJPEG and x264 with live settings, BD-rates against caed-intra and x264-live.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from caed.fixed_point import (dequantize, encoder_input_float, padded_size, psnr,
                              quantize_latents, replicate_padding)

from caed.manifest import ModelNotFound, ModelSpec, available, find
from caed.sources import RESOLUTIONS_HELP, parse_resolution
from caed.temporal import KEYFRAME_INTERVAL_S, REFERENCES
from caed_host.decoder import PRECISIONS
from .data import image_paths, load_rgb
from .metrics import bd_rate, bpp, ms_ssim

JPEG_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


@dataclass(frozen=True)
class Point:
    bpp: float
    psnr: float
    ms_ssim: float

    def as_dict(self, **extra) -> dict:
        return {"bpp": round(self.bpp, 5), "psnr": round(self.psnr, 4), "ms_ssim": round(self.ms_ssim, 5), **extra}


def mean_point(points: list[Point]) -> Point:
    return Point(*(float(np.mean([getattr(p, f) for p in points])) for f in ("bpp", "psnr", "ms_ssim")))


def measure(reference: np.ndarray, decoded: np.ndarray, nbytes: int) -> Point:
    h, w = reference.shape[:2]
    return Point(bpp(nbytes, h, w), psnr(reference, decoded), ms_ssim(reference, decoded))


def classic_point(rgb: np.ndarray, ext: str, flag: int, quality: int) -> Point:
    ok, buf = cv2.imencode(ext, rgb[:, :, ::-1], [flag, quality])
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode {ext}")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return measure(rgb, decoded, buf.size)


class ModelCodec:
    """One shipped model run the way the daemon and viewer run it: its pictures decoded by the
    decoder caed-view picks on the CPU (caed_host.decoder.load_decoder) at `decoder_precision`."""

    def __init__(self, spec: ModelSpec, decoder_precision: str = "auto"):
        from caed.wire import encode_frame
        from caed_host.decoder import load_decoder

        self._encode_frame = encode_frame
        self.spec = spec
        manifest = spec.manifest
        self.multiple = spec.size_multiple
        self.family = manifest.get("family")  # the rates of one multi-rate model form one curve
        self.payload_codec = manifest.get("payload_codec", "zstd")  # what --codec auto uses
        opts = ort.SessionOptions()
        providers = ["CPUExecutionProvider"]
        self.encoders = {"float": ort.InferenceSession(str(spec.encoder), opts, providers=providers)}
        if spec.encoder_int8 is not None:
            self.encoders["int8"] = ort.InferenceSession(str(spec.encoder_int8), opts, providers=providers)
        self.decoder = load_decoder(spec, precision=decoder_precision)

    def latents(self, rgb: np.ndarray, encoder: str) -> np.ndarray:
        """The encoder's float latents, (1, C, H, W), of the picture padded as the daemon pads it."""
        h, w = rgb.shape[:2]
        padded = np.empty((*padded_size(h, w, self.multiple), 3), np.uint8)
        padded[:h, :w] = rgb
        x = encoder_input_float(replicate_padding(padded, h, w), self.spec.input_fix_point, self.spec.input_colours)
        return self.encoders[encoder].run(["latent"], {"image": x[None]})[0]

    def decode(self, values: np.ndarray) -> np.ndarray:
        """float32 latent values (C, H, W) → the RGB uint8 picture, the encoder's padding included."""
        return self.decoder.decode_values(values)

    def point(self, rgb: np.ndarray, latent: np.ndarray, fix_point: int, codec: str) -> Point:
        h, w = rgb.shape[:2]
        planes = quantize_latents(latent[0], fix_point)
        parts = self._encode_frame(planes.transpose(1, 2, 0), picture=(h, w), fix_point=fix_point,
                                   model_id=self.spec.model_id, codec=codec)
        return measure(rgb, self.decode(dequantize(planes, fix_point))[:h, :w], sum(len(p) for p in parts))


def evaluate(images: list[np.ndarray], specs: list[ModelSpec], coarsen: list[int], codec: str,
             jpeg_qualities=JPEG_QUALITIES, webp_qualities=WEBP_QUALITIES, progress=print,
             decoder_precision: str = "auto") -> dict:
    codecs: dict[str, list[dict]] = {}
    for name, ext, flag, qualities in (("jpeg", ".jpg", cv2.IMWRITE_JPEG_QUALITY, jpeg_qualities),
                                       ("webp", ".webp", cv2.IMWRITE_WEBP_QUALITY, webp_qualities)):
        codecs[name] = [mean_point([classic_point(im, ext, flag, q) for im in images]).as_dict(quality=q)
                        for q in qualities]
        progress(f"{name}: {len(qualities)} qualities")
    curves: dict[str, list[dict]] = {}
    for spec in specs:
        model = ModelCodec(spec, decoder_precision)
        reductions = [0] if model.family else coarsen
        payload_codec = model.payload_codec if codec == "auto" else codec
        for encoder in model.encoders:
            points: dict[int, list[Point]] = {k: [] for k in reductions}
            for rgb in images:
                latent = model.latents(rgb, encoder)
                for k in reductions:
                    points[k].append(model.point(rgb, latent, spec.latent_fix_point - k, payload_codec))
            name = model.family or spec.name
            curve = name if encoder == "int8" else f"{name}-float"
            means = {k: mean_point(points[k]) for k in reductions}
            curves.setdefault(curve, []).extend(
                means[k].as_dict(model=spec.name, fix_point=spec.latent_fix_point - k,
                                 model_id=spec.model_id, payload_codec=payload_codec)
                for k in reductions)
            progress(f"{spec.name} ({encoder} encoder): "
                     + ", ".join(f"{m.bpp:.3f} bpp {m.psnr:.2f} dB" for m in means.values()))
    for curve, points in curves.items():
        codecs[curve] = sorted(points, key=lambda p: p["bpp"])
    return {"images": len(images), "payload_codec": codec, "decoder_precision": decoder_precision, "codecs": codecs,
            "bd_rate_vs_jpeg": bd_rates(codecs)}


def _ms_ssim_db(v: float) -> float:
    return -10 * math.log10(max(1e-12, 1 - v))


def bd_rates(codecs: dict[str, list[dict]]) -> dict:
    anchor = codecs["jpeg"]
    out = {}
    for name, points in codecs.items():
        if name == "jpeg":
            continue
        out[name] = {
            "psnr": _round(bd_rate([(p["bpp"], p["psnr"]) for p in anchor], [(p["bpp"], p["psnr"]) for p in points])),
            "ms_ssim": _round(bd_rate([(p["bpp"], _ms_ssim_db(p["ms_ssim"])) for p in anchor],
                                      [(p["bpp"], _ms_ssim_db(p["ms_ssim"])) for p in points])),
        }
    return out


def _pct(v) -> str:
    return "n/a (curves do not overlap)" if v is None else f"{v:+.1f} %"


def _round(v):
    return None if v is None else round(v, 2)


def plot(result: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, points in result["codecs"].items():
        pts = sorted(points, key=lambda p: p["bpp"])
        style = "--" if name in ("jpeg", "webp", "mjpeg", "x264-live") else "-o"
        axes[0].plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], style, label=name, markersize=4)
        axes[1].plot([p["bpp"] for p in pts], [p["ms_ssim"] for p in pts], style, label=name, markersize=4)
    for ax, label in zip(axes, ("PSNR RGB (dB)", "MS-SSIM")):
        ax.set_xlabel("bits per pixel (wire bytes incl. header)")
        ax.set_ylabel(label)
        ax.set_xlim(0, 2.5 if "images" in result else 1.0)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title or f"Rate-distortion on {result['images']} images")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="caed-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of test images (e.g. Kodak)")
    source.add_argument("--video", type=Path, help="a clip: consecutive frames at the daemon's streaming size")
    p.add_argument("--frames", type=int, default=150, help="--video: frames from the start of the clip (default 150)")
    p.add_argument("--keyframe-interval", type=int, default=50,
                   help="--video: frames between caed-temporal's keyframes (default 50, x264-live's -g)")
    p.add_argument("--resolution", default="native",
                   help="--video: the pictures streamed, as the daemon's setting: " + RESOLUTIONS_HELP +
                        " (default native)")
    p.add_argument("--reference", default="previous", choices=REFERENCES,
                   help="--video: what caed-temporal's inter frames are predicted from")
    p.add_argument("--bitrate", type=float, metavar="KBPS",
                   help="--video: instead of RD curves, hold this bitrate (the daemon's rate control) on the clip "
                        "played at --fps and looped for --seconds; report 10 s windows and the PSNR spread")
    p.add_argument("--fps", type=float, default=0.0,
                   help="--bitrate: frame rate to play the clip at (default: its own)")
    p.add_argument("--seconds", type=float, default=0.0, help="--bitrate: how long (default: the clip once, >= 20 s)")
    p.add_argument("--keyframe-seconds", type=float, default=KEYFRAME_INTERVAL_S,
                   help="--bitrate: seconds between keyframes (default: %(default)g, the daemon's keyframe_interval)")
    p.add_argument("--json", type=Path, required=True, help="where to write the results")
    p.add_argument("--plot", type=Path, help="RD plot (PNG)")
    p.add_argument("--models", nargs="*", help="shipped model names or model.json paths (default: all shipped)")
    p.add_argument("--coarsen", default="0,1,2", help="latent fix_point reductions to evaluate, e.g. 0,1,2")
    p.add_argument("--codec", default="auto",
                   help="wire payload codec for every model, or auto: each model's manifest payload_codec (default zstd)")
    p.add_argument("--max-images", type=int, help="use only the first N images")
    p.add_argument("--decoder-precision", default="auto", choices=PRECISIONS,
                   help="the decoder caed-view would run on the CPU with this --decoder-precision (default: auto)")
    args = p.parse_args(argv)
    try:
        args.coarsen = sorted({int(v) for v in args.coarsen.split(",")})
    except ValueError:
        p.error(f"--coarsen must be comma-separated integers, got {args.coarsen!r}")
    if any(k < 0 for k in args.coarsen):
        p.error("--coarsen values must be >= 0")
    if args.keyframe_seconds <= 0:
        p.error(f"--keyframe-seconds must be > 0, got {args.keyframe_seconds:g}")
    try:
        args.picture = parse_resolution(args.resolution)  # (H, W), or None for native and fit
    except ValueError:
        p.error(f"--resolution must be native, fit or HxW (e.g. 720x1280), got {args.resolution!r}")
    if args.picture is not None and min(args.picture) < 1:
        p.error(f"--resolution sides must be positive, got {args.resolution!r}")
    return args


def video_main(args) -> int:
    from caed.codecs import CODECS

    from .video import FfmpegMissing, evaluate_video, read_frames

    try:
        spec = family_finest(find(args.models[0] if args.models else DEFAULT_VIDEO_MODEL))
        codec = spec.manifest.get("payload_codec", "zstd") if args.codec == "auto" else args.codec
        if codec not in CODECS:
            raise ValueError(f"unknown payload codec {codec!r}; known: {', '.join(CODECS)}")
        size = spec.input_shape[:2] if args.resolution == "fit" else args.picture
        if args.bitrate:
            return bitrate_main(args, spec, codec, size)
        frames, fps = read_frames(args.video, args.frames, size)
        result = evaluate_video(frames, fps, spec, codec, measure, args.keyframe_interval, args.reference,
                                progress=lambda s: print(s, file=sys.stderr), decoder_precision=args.decoder_precision)
    except (FileNotFoundError, ValueError, ModelNotFound, FfmpegMissing) as e:
        print(f"caed-eval: {e}", file=sys.stderr)
        return 2
    result["video"] = args.video.name
    result["bd_rate"] = {anchor: video_bd_rates(result["codecs"], anchor) for anchor in ("caed-intra", "x264-live")}
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        h, w = result["size"]
        plot(result, args.plot, f"{args.video.name}: {result['frames']} frames at {w}x{h}, {codec}")
    for anchor, rates in result["bd_rate"].items():
        for name, bd in rates.items():
            print(f"{name:>14}: BD-rate vs {anchor:<10}  PSNR {_pct(bd['psnr'])}  MS-SSIM {_pct(bd['ms_ssim'])}")
    return 0


DEFAULT_VIDEO_MODEL = "dct8-q0"


def bitrate_main(args, spec: ModelSpec, codec: str, size: tuple[int, int] | None) -> int:
    import cv2

    from .video import hold_bitrate

    cap = cv2.VideoCapture(str(args.video))
    native_fps, length = cap.get(cv2.CAP_PROP_FPS) or 30.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    fps = args.fps or native_fps
    seconds = args.seconds or max(20.0, length / fps)
    result = hold_bitrate(args.video, spec, codec, args.bitrate, fps, seconds, size, args.keyframe_seconds,
                          progress=lambda s: print(s, file=sys.stderr), decoder_precision=args.decoder_precision)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{result['video']}: target {args.bitrate:g} kbit/s, 10 s windows {result['window_kbps_min']} .. "
          f"{result['window_kbps_max']} kbit/s ({100 * result['windows_within_10pct']:.0f} % within 10 %), "
          f"PSNR {result['psnr_mean']:.2f} dB (std {result['psnr_std']:.2f}, 5-95 % {result['psnr_p5']:.2f} .. "
          f"{result['psnr_p95']:.2f}; {result['keyframes_measured']} keyframes step {result['keyframe_psnr_step_mean']} dB "
          f"from the frame before on average, {result['keyframe_psnr_step_max']} dB at most)")
    return 0


def family_finest(spec: ModelSpec) -> ModelSpec:
    """The finest rate of a multi-rate model (its highest latent fix point): every coarser rate is
    derived from its latents, as the daemon's temporal coder does."""
    family = spec.manifest.get("family")
    if not family:
        return spec
    members = [s for s in available().values() if s.manifest.get("family") == family]
    return max(members, key=lambda s: s.latent_fix_point)


def video_bd_rates(codecs: dict[str, list[dict]], anchor: str) -> dict:
    """BD-rates of every other curve against `anchor` (PSNR and MS-SSIM), None where they do not overlap."""
    if anchor not in codecs:
        return {}
    return {name: {
        "psnr": _round(bd_rate([(p["bpp"], p["psnr"]) for p in codecs[anchor]], [(p["bpp"], p["psnr"]) for p in pts])),
        "ms_ssim": _round(bd_rate([(p["bpp"], _ms_ssim_db(p["ms_ssim"])) for p in codecs[anchor]],
                                  [(p["bpp"], _ms_ssim_db(p["ms_ssim"])) for p in pts]))}
        for name, pts in codecs.items() if name != anchor}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.video is not None:
        return video_main(args)
    try:
        paths = image_paths(args.images)[: args.max_images]
        images = [load_rgb(p) for p in paths]
        specs = [find(m) for m in args.models] if args.models is not None else list(available().values())
        from caed.codecs import CODECS

        if args.codec != "auto" and args.codec not in CODECS:
            raise ValueError(f"unknown payload codec {args.codec!r}; known: {', '.join(CODECS)}")
        result = evaluate(images, specs, args.coarsen, args.codec, progress=lambda s: print(s, file=sys.stderr),
                          decoder_precision=args.decoder_precision)
    except (FileNotFoundError, ValueError, ModelNotFound) as e:
        print(f"caed-eval: {e}", file=sys.stderr)
        return 2
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)
    for name, bd in result["bd_rate_vs_jpeg"].items():
        print(f"{name:>20}: BD-rate vs JPEG  PSNR {_pct(bd['psnr'])}  MS-SSIM {_pct(bd['ms_ssim'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
