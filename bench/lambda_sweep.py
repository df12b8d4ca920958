"""caed-temporal's block decision at other lambdas: its BD-rate against caed-intra on a clip.

    python bench/lambda_sweep.py --video ../shared/data/video/pedestrians_720p.avi --frames 40 \
        --scales 0.7,1,1.6,2.5 [--rates 0,1,2,3,4] [--json F]

Each scale multiplies caed.temporal's lambda (LAMBDA_PER_STEP2, the weight of a block's estimated
bits against the error skipping it leaves). The clip's first frames at their own size go through
`caed-eval --video`'s own loop (caed_models.video.evaluate_video: dct8-q0's latents at fix points
0..-4, keyframes every 50 frames, the previous frame as reference, `arith` payloads), PSNR only
(MS-SSIM at 720p costs minutes); caed-intra is the same at every scale. docs/temporal.md quotes
the results.
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


def sweep(frames: list, fps: float, scales: list[float], rates=None, progress=print) -> dict:
    """{scale: {"bd_rate_vs_intra": %, "caed-temporal": points, "caed-intra": points}}."""
    from caed.manifest import find
    from caed_models.evaluate import family_finest
    from caed_models.metrics import bd_rate
    from caed_models.video import RATES, evaluate_video

    spec = family_finest(find("dct8-q0"))
    out = {}
    for scale in scales:
        started = time.monotonic()
        codecs = evaluate_video(frames, fps, spec, "arith", psnr_only, reference="previous", rates=rates or RATES,
                                lambda_scale=scale, classic=False, progress=lambda _: None)["codecs"]
        curve = {name: [(p["bpp"], p["psnr"]) for p in points] for name, points in codecs.items()}
        bd = bd_rate(curve["caed-intra"], curve["caed-temporal"])
        out[scale] = {"bd_rate_vs_intra": bd, "caed-temporal": codecs["caed-temporal"],
                      "caed-intra": codecs["caed-intra"]}
        progress(f"lambda x{scale:g}: caed-temporal BD-rate vs caed-intra (PSNR) "
                 f"{'n/a' if bd is None else f'{bd:+.2f} %'}  ({time.monotonic() - started:.0f} s)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--scales", type=comma_separated(float), default="0.7,1,1.6,2.5",
                   help="comma-separated multiples of today's lambda")
    p.add_argument("--rates", type=comma_separated(int), default="0,1,2,3,4",
                   help="comma-separated fix point steps below dct8-q0's")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    from caed_models.video import read_frames

    try:
        frames, fps = read_frames(args.video, args.frames, None)
    except (ValueError, FileNotFoundError) as e:
        print(f"lambda_sweep: {e}", file=sys.stderr)
        return 2
    result = sweep(frames, fps, args.scales, args.rates)
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": len(frames), "sweep": result},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
