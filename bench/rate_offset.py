"""What temporal coding gains from a finer model: the daemon's `rate` against each rate's own model.

    python bench/rate_offset.py --video ../shared/data/video/vtest.avi [--frames 150] \
        [--json bench/results/rate_offset_vtest.json]

The clip's first frames at their own size, through dct8's float encoder once. Each of the rates
k = 0..4 is coded by the daemon's temporal encoder (`reference = "previous"`, a keyframe every
`--keyframe-interval` frames) two ways:

- `finer model`: the finest model's int8 latents (dct8-q0), coded k fix points coarser (the
  daemon's `--model dct8-q0 --rate k`; caed-eval's caed-temporal): the encoder knows each value to
  a fraction of the frame's step, so inter residuals round towards the reference and a still
  scene's keyframes are finer, as far as the model goes (docs/temporal.md, "What the encoder sends");
- `own model`: rate k's own model (dct8-qk), its latents rounded once to that grid, coded at the
  model's rate (the daemon's `--model dct8-qk`).

Bits are each message's (payload, topic and header); quality the mean of the frames' RGB PSNR. The
same run codes x264 with the live settings as an anchor. Prints both curves and the BD-rates.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

RATES = (0, 1, 2, 3, 4)
WAYS = ("finer model", "own model")


def temporal_curve(latents: list[np.ndarray], frames: list[np.ndarray], model, finest: int, way: str,
                   interval: int, wire) -> list[dict]:
    """Per rate, {"bpp", "psnr", "fix_point"} of the frames coded `way` from their float (H, W, C)
    latents."""
    from caed.codecs import create_codec
    from caed.fixed_point import psnr, quantize_latents
    from caed.temporal import TemporalEncoder
    from caed_models.metrics import bpp

    h, w = frames[0].shape[:2]
    points = []
    for k in RATES:
        model_fix_point, rate = (finest, k) if way == "finer model" else (finest - k, 0)
        encoder = TemporalEncoder(create_codec("arith"), latents[0].shape, model_fix_point, interval, "previous",
                                  rate=rate)
        nbytes, qualities = 0, []
        for i, (x, rgb) in enumerate(zip(latents, frames)):
            coded = encoder.encode(quantize_latents(x, model_fix_point))
            nbytes += sum(len(p) for p in wire.message(x.shape, coded.payload, picture=(h, w),
                                                       fix_point=coded.fix_point, seq=i, ref_seq=coded.ref_index,
                                                       frame_index=i, t_capture_ns=0))
            qualities.append(psnr(rgb, model.decode(encoder.values())[:h, :w]))
        points.append({"bpp": round(bpp(nbytes, h, w * len(frames)), 5), "psnr": round(float(np.mean(qualities)), 4),
                       "fix_point": finest - k})
    return points


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--keyframe-interval", type=int, default=50, help="frames (x264-live's -g 50)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not args.video.is_file():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2

    from caed.fixed_point import psnr
    from caed.manifest import find
    from caed.wire import FrameEncoder
    from caed_models.evaluate import ModelCodec, family_finest
    from caed_models.metrics import bd_rate
    from caed_models.video import X264_CRF, X264_LIVE, ffmpeg_point, read_frames

    started = time.monotonic()
    spec = family_finest(find("dct8-q0"))
    model = ModelCodec(spec)
    frames, fps = read_frames(args.video, args.frames, None)
    latents = [model.latents(rgb, "float")[0].transpose(1, 2, 0) for rgb in frames]
    wire = FrameEncoder("eval", spec.model_id, "arith")
    codecs = {}
    for way in WAYS:
        codecs[way] = temporal_curve(latents, frames, model, spec.latent_fix_point, way, args.keyframe_interval, wire)
        print(f"{way}: " + ", ".join(f"{q['bpp']:.4f} bpp {q['psnr']:.2f} dB" for q in codecs[way]), file=sys.stderr)
    points = []
    for crf in X264_CRF:
        rate, decoded = ffmpeg_point(frames, fps, ["-c:v", "libx264", *X264_LIVE, "-crf", str(crf), "-f", "h264"],
                                     ".h264")
        quality = float(np.mean([psnr(f, d) for f, d in zip(frames, decoded)]))
        points.append({"bpp": round(rate, 5), "psnr": round(quality, 4), "setting": crf})
    codecs["x264-live"] = sorted(points, key=lambda q: q["bpp"])
    curves = {name: [(q["bpp"], q["psnr"]) for q in pts] for name, pts in codecs.items()}
    bd = {anchor: {name: round(bd_rate(curves[anchor], curve), 2) for name, curve in curves.items() if name != anchor}
          for anchor in ("own model", "x264-live")}
    for anchor, rows in bd.items():
        print(f"BD-rate (PSNR) vs {anchor}: " + ", ".join(f"{name} {v:+.1f} %" for name, v in rows.items()))
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": len(frames), "fps": fps,
                                         "size": list(frames[0].shape[:2]), "keyframe_interval": args.keyframe_interval,
                                         "codecs": codecs, "bd_rate_psnr": bd,
                                         "seconds": round(time.monotonic() - started)}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
