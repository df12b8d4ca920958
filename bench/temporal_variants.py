"""Other designs of the temporal encoder, as patches of it: their BD-rate against it on a clip.

What each would buy on issue 14's busy clip, where caed-temporal is short of its targets:

    python bench/temporal_variants.py --video ../shared/data/video/pedestrians_720p.avi [--frames 40] \
        [--rates 0,1,2,3,4] [--variants second-reference-keyframe,...] [--json F]

Each variant is today's daemon/temporal.py with a patch from bench/temporal_variants/ applied (`git
apply`) in a copy of the board package, which its own process imports ahead of the installed one.
Today's encoder and every variant run bench/lambda_sweep.py's loop at today's lambda (caed-eval
--video's evaluate_video: dct8-q0's latents at fix points 0..-4, keyframes every 50 frames, the
previous frame as reference, `arith` payloads, PSNR), and each variant's caed-temporal curve gets a
BD-rate against today's. The runs are deterministic: one each.

The variants so far give a block a second reference beside the previous frame, taken where it
leaves less than half the error. Which one a block used is charged at its ideal entropy (one binary
choice over the blocks where the two references differ) and no viewer decodes it: a proxy, an upper
bound of what the design would buy.

- second-reference-keyframe: the keyframe's values, which every viewer holds.
- second-reference-background: a long-term background both ends can keep (each block's value once
  it stayed unchanged 3 frames): a block someone walks off is predicted from what was behind them.
- second-reference-extrapolated: the last frame's values plus half their change since the frame
  before: steady motion of a pixel or two a frame moves the lapped transform's coefficients about
  linearly, with no vector and no synthesis on the board.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "bench" / "temporal_variants"
SWEEP = ROOT / "bench" / "lambda_sweep.py"


def variant_names() -> list[str]:
    return sorted(p.stem for p in PATCHES.glob("*.patch"))


def patched_package(name: str, folder: Path) -> Path:
    """A copy of the installed board package (its compiled extensions included) in folder/caed with
    the variant's patch applied; the folder to put first on PYTHONPATH. Fails with the patch's name
    if it no longer applies."""
    import caed

    folder.mkdir(parents=True)
    shutil.copytree(Path(caed.__file__).parent, folder / "daemon", ignore=shutil.ignore_patterns("__pycache__"))
    patch = PATCHES / f"{name}.patch"
    done = subprocess.run(["git", "apply", str(patch)], cwd=folder, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{patch.name} no longer applies to daemon/temporal.py: {done.stderr.strip()}")
    (folder / "daemon").rename(folder / "caed")
    return folder


def run_encoder(video: Path, frames: int, rates: list[int], package: Path | None, out: Path) -> dict:
    """bench/lambda_sweep.py at today's lambda on the clip, importing the board package from
    `package` (None: the installed one); its result at that scale."""
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, str(SWEEP), "--video", str(video), "--frames", str(frames), "--scales", "1",
                           "--rates", ",".join(map(str, rates)), "--json", str(out)],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"lambda_sweep failed ({'today' if package is None else package.name}): "
                           f"{done.stderr.strip()[-2000:]}")
    return json.loads(out.read_text())["sweep"]["1.0"]


def summarize(today: dict, variants: dict[str, dict]) -> dict:
    """BD-rate (PSNR) of each variant's caed-temporal against today's, and both against caed-intra."""
    from caed_models.metrics import bd_rate

    def curve(points):
        return [(p["bpp"], p["psnr"]) for p in points]

    out = {"today": {"bd_rate_vs_intra": today["bd_rate_vs_intra"], "caed-temporal": today["caed-temporal"]},
           "variants": {}}
    for name, result in variants.items():
        out["variants"][name] = {
            "bd_rate_vs_today": bd_rate(curve(today["caed-temporal"]), curve(result["caed-temporal"])),
            "bd_rate_vs_intra": result["bd_rate_vs_intra"],
            "caed-temporal": result["caed-temporal"],
        }
    return out


def percent(value: float | None) -> str:
    return "n/a (the curves do not overlap)" if value is None else f"{value:+.2f} %"


def compare(video: Path, frames: int, rates: list[int], names: list[str]) -> dict:
    """Today's encoder and each variant on the clip: summarize()'s result, a line printed for each."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        today = run_encoder(video, frames, rates, None, work / "today.json")
        print(f"today: BD-rate vs caed-intra {percent(today['bd_rate_vs_intra'])}", flush=True)
        variants = {}
        for name in names:
            package = patched_package(name, work / name)
            variants[name] = run_encoder(video, frames, rates, package, work / f"{name}.json")
            bd = summarize(today, {name: variants[name]})["variants"][name]["bd_rate_vs_today"]
            print(f"{name}: BD-rate vs today {percent(bd)}", flush=True)
    return summarize(today, variants)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rates", type=comma_separated(int), default="0,1,2,3,4",
                   help="comma-separated fix point steps below dct8-q0's")
    p.add_argument("--variants", help=f"comma-separated, of {', '.join(variant_names())} (default: all)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    names = args.variants.split(",") if args.variants else variant_names()
    unknown = sorted(set(names) - set(variant_names()))
    if unknown:
        print(f"temporal_variants: no such variant: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"temporal_variants: no video at {args.video}", file=sys.stderr)
        return 2
    try:
        summary = compare(args.video, args.frames, args.rates, names)
    except RuntimeError as e:
        print(f"temporal_variants: {e}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": args.frames, "rates": args.rates, **summary},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
