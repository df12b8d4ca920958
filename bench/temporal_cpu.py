"""The temporal encoder's CPU per frame, alone, at this machine's SIMD and at the A53's:

    python bench/temporal_cpu.py --source cctv --json bench/results/temporal_cpu_cctv.json [--baseline REV]
    python bench/temporal_cpu.py --source ../shared/data/video/pedestrians_720p.avi --json F [--baseline REV]

This times `caed.temporal.TemporalEncoder` (the daemon's "compress" on a fixed camera), with the arith
codec, keyframes every 60 frames and the previous frame as reference. It feeds it the int8 latents of
dct8-q0, the finest model, and codes them at `--rates` (0: dct8-q0's own step; 1: dct8-q1's, the
board's config).

The latents come from one of two sources:
- the `cctv` camera at 512x768, through the daemon's preprocessing and ONNX encoder;
- a video file at its own size (caed-eval's int8 latents).

Each run is one process, set up as the daemon is (caed.tuning). It makes three passes over the frames
and takes the process CPU per frame of each; the summary leaves the first out. Every configuration
runs in two modes:
- as it is;
- with OpenCV and NumPy held to 128-bit SIMD, the A53's NEON width (bench/a53_budget.py's switches).

With --baseline the encoder of that git revision runs too: a worktree of it is built in a temporary
folder. The two versions run in turns, so that both see the same machine. The payload bytes of
each run are printed: equal bytes mean the same decisions.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from a53_budget import MODES, SIMD_128
from arguments import comma_separated  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYFRAME_INTERVAL = 60

# One run, in a child process: the `caed` package of another checkout where given (its daemon/
# folder, through the editable install's finder: make setup-dev), the latents from a .npy file, three
# passes at one rate; prints JSON.
CHILD = """
import json, sys, time
daemon, latents_file, rate, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if daemon:
    import __editable___caed_0_1_0_finder as finder
    finder.MAPPING["caed"] = daemon
import numpy as np
from caed.tuning import keep_freed_memory, single_threaded_opencv
keep_freed_memory(); single_threaded_opencv()
from caed.codecs import create_codec
from caed.manifest import find
from caed.temporal import TemporalEncoder
latents = np.load(latents_file)
fix_point = find("dct8-q0").latent_fix_point
passes, payload_bytes = [], 0
for _ in range(3):
    encoder = TemporalEncoder(create_codec("arith"), latents[0].shape, fix_point, interval, "previous", rate=rate)
    start, payload_bytes = time.process_time(), 0
    for q in latents:
        payload_bytes += len(encoder.encode(q).payload)
    passes.append((time.process_time() - start) / len(latents) * 1e3)
print(json.dumps({"ms_per_frame": passes, "bytes": payload_bytes}))
"""


def camera_latents(frames: int) -> np.ndarray:
    """dct8-q0's int8 latents of the cctv camera's first frames at 512x768, as the daemon computes them."""
    import numpy as np
    from caed.encoders.onnx import OnnxEncoder
    from caed.manifest import find
    from caed.preprocess import Preprocessor
    from caed.sources.cctv import CctvSource

    spec = find("dct8-q0")
    encoder = OnnxEncoder(spec, workers=1, threads=2, picture=(512, 768))
    camera = CctvSource(768, 512)
    pre = Preprocessor(768, 512, spec.input_fix_point, spec.input_colours, encoder.input.shape[:2])
    latents = np.stack([encoder.submit(pre(camera.frame(i))).result() for i in range(frames)])
    encoder.close()
    return latents


def video_latents(video: Path, frames: int) -> np.ndarray:
    """dct8-q0's int8 latents of a video's first frames at its own size, as caed-eval computes them."""
    import numpy as np
    from caed.manifest import find
    from caed_models.evaluate import ModelCodec, family_finest
    from caed_models.video import int8_latents, read_frames

    spec = family_finest(find("dct8-q0"))
    model = ModelCodec(spec)
    pictures, _ = read_frames(video, frames, None)
    return np.stack([int8_latents(model, rgb, spec.latent_fix_point) for rgb in pictures])


def run_child(daemon: Path | None, latents_file: Path, rate: int, env: dict) -> dict:
    """One child's passes: `daemon` None for this checkout's caed."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(daemon or ""), str(latents_file), str(rate),
                           str(KEYFRAME_INTERVAL)],
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the encoder of {daemon} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def build_baseline(revision: str, folder: Path) -> Path:
    """A worktree of `revision` in `folder`, its C extensions built in place; its daemon/ folder."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision], check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=folder, check=True,
                   capture_output=True)
    return folder / "daemon"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="`cctv`, or a video file")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rates", type=comma_separated(int), default="0,1",
                   help="fix point steps below dct8-q0's, comma-separated")
    p.add_argument("--baseline", help="a git revision whose temporal encoder runs in turns with this one's")
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    if args.source != "cctv" and not Path(args.source).is_file():
        print(f"temporal_cpu: no video file {args.source}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        latents = camera_latents(args.frames) if args.source == "cctv" else video_latents(Path(args.source), args.frames)
        latents_file = tmp / "latents.npy"
        np.save(latents_file, latents)
        versions = {"current": None}
        try:
            if args.baseline:
                versions = {args.baseline: build_baseline(args.baseline, tmp / "baseline"), **versions}
            runs = {}
            for rate in args.rates:
                for mode, env in MODES.items():
                    for version, daemon in versions.items():
                        result = run_child(daemon, latents_file, rate, env)
                        runs.setdefault(f"rate {rate}", {}).setdefault(mode, {})[version] = result
                        print(f"rate {rate}  {mode:20s} {version:12s} "
                              f"{' '.join(f'{t:.2f}' for t in result['ms_per_frame'])} ms/frame  "
                              f"({result['bytes']:,} payload bytes)", flush=True)
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "baseline")],
                               check=False, capture_output=True)
    # the first pass warms the caches and the allocator: the summary is the median of the other two
    summary = {rate: {mode: {version: statistics.median(result["ms_per_frame"][1:]) for version, result in by_version.items()}
                      for mode, by_version in modes.items()} for rate, modes in runs.items()}
    args.json.write_text(json.dumps({
        "command": "python bench/temporal_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.date.today().isoformat(), "source": args.source, "frames": args.frames,
        "latents": list(latents.shape[1:]), "keyframe_interval": KEYFRAME_INTERVAL, "simd_128": SIMD_128,
        "summary_ms_per_frame": summary, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
