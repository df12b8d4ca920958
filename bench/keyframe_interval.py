"""What a longer keyframe interval saves on a fixed camera, and what it costs in quality.

    python bench/keyframe_interval.py [--source cctv | --video FILE] [--frames 300] [--fps 15] \
        [--seconds 2,5,10] [--rates 1,2,3] [--json F]

On a quiet fixed camera the keyframes are most of the stream: the inter frames send only the few
blocks that changed, and a keyframe codes them all. A viewer that joins or loses a frame asks for
a keyframe (docs/temporal.md), so the schedule no longer decides how soon it sees a picture; it
bounds how long a block below the send threshold can stay stale, and how far a replay seeks.

Each interval (in seconds of the clip's frame rate) runs caed-eval --video's loop on the same
frames (caed_models.video.evaluate_video: dct8-q0's latents at the given fix point steps below
its own, the previous frame as reference, `arith`, PSNR) and gets a BD-rate against the first
interval. Sources: the `cctv` camera `make demo` streams (768x512 at --fps), or a clip at its own
size and frame rate. The runs are deterministic: one each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402
from motion_proxy import psnr_only  # noqa: E402


def cctv_frames(frames: int, fps: float) -> list:
    """The demo camera's first frames, RGB, as caed-eval reads a clip."""
    from caed.sources.cctv import CctvSource

    camera = CctvSource(768, 512, fps)
    return [camera.frame(i)[..., ::-1].copy() for i in range(frames)]


def compare(frames: list, fps: float, seconds: list[float], rates: list[int], progress=print) -> dict:
    """{"intervals": [{"seconds", "frames", "points": [...], "bd_rate_vs_first"}]}: each interval's
    caed-temporal points and its BD-rate (PSNR) against the first interval's."""
    from caed.manifest import find
    from caed_models.evaluate import family_finest
    from caed_models.metrics import bd_rate
    from caed_models.video import evaluate_video

    spec = family_finest(find("dct8-q0"))
    out = []
    for s in seconds:
        started = time.monotonic()
        interval = max(1, round(s * fps))
        points = evaluate_video(frames, fps, spec, "arith", psnr_only, keyframe_interval=interval,
                                reference="previous", rates=rates, classic=False,
                                progress=lambda _: None)["codecs"]["caed-temporal"]
        bd = bd_rate([(p["bpp"], p["psnr"]) for p in out[0]["points"]],
                     [(p["bpp"], p["psnr"]) for p in points]) if out else 0.0
        out.append({"seconds": s, "frames": interval, "points": points, "bd_rate_vs_first": bd})
        finest = max(points, key=lambda p: p["bpp"])
        progress(f"keyframes every {s:g} s ({interval} frames): BD-rate vs every {seconds[0]:g} s "
                 f"{'n/a' if bd is None else f'{bd:+.2f} %'}; at fix point {finest['fix_point']} "
                 f"{finest['bpp']:.4f} bpp, {finest['psnr']:.2f} dB ({time.monotonic() - started:.0f} s)")
    return {"intervals": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--source", choices=["cctv"], default="cctv", help="the demo camera (default)")
    source.add_argument("--video", type=Path, help="a clip, at its own size and frame rate")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps", type=float, default=15.0, help="the cctv camera's frame rate (default 15, as make demo)")
    p.add_argument("--seconds", type=comma_separated(float), default="2,5,10",
                   help="comma-separated keyframe intervals; the first is the baseline")
    p.add_argument("--rates", type=comma_separated(int), default="1,2,3",
                   help="comma-separated fix point steps below dct8-q0's")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    try:
        if args.video:
            from caed_models.video import read_frames

            frames, fps = read_frames(args.video, args.frames, None)
        else:
            frames, fps = cctv_frames(args.frames, args.fps), args.fps
    except (ValueError, FileNotFoundError) as e:
        print(f"keyframe_interval: {e}", file=sys.stderr)
        return 2
    result = compare(frames, fps, args.seconds, args.rates)
    if args.json:
        args.json.write_text(json.dumps({"source": args.video.name if args.video else "cctv", "frames": len(frames),
                                         "fps": fps, "size": list(frames[0].shape[:2]), **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
