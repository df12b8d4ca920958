"""The daemon's A53 budget (docs/dpu.md §5) measured at the A53's SIMD width, beside this machine's:

    python bench/a53_budget.py --json bench/results/a53_budget_simd128.json [--runs 3] [--frames 300]

The A53 has 128-bit NEON. On x86-64, OpenCV and NumPy choose their widest kernels when they load
(AVX-512 on this VM), so the passes they run for the daemon (the quantization, the temporal
encoder's passes over every block) run up to four times wider here than on a board. docs/dpu.md's
factor of 10 comes from per-thread comparisons of general code, which says nothing about that
width. This script runs the real daemon (`caed --source cctv --fps 30 --frames N --json F`) both
ways, in turns: as it is, and with both libraries held to 128-bit SIMD by their own switches
(`SIMD_128`: OpenCV without AVX, AVX2 or AVX-512; NumPy at its x86-64-v2 baseline, SSE4.2). It runs
the default config and the board's (dct8-q0 at `rate = 1`). The C cores (arith) are built without
-march, so they stay at SSE2 either way.

For each run it reports CPU per frame by thread, and the A53 cores at 30 fps with the factor of
10. Like docs/dpu.md, it counts preprocess, compress, publish and other, and leaves out capture (here
the synthetic camera's rendering). Output is JSON (--json), plus a table of the p50 and range over
the runs.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FACTOR = 10  # x86 ms -> A53 ms (docs/dpu.md §5, "The factor")
FPS = 30
THREADS = ("preprocess", "compress", "publish", "other")
SIMD_128 = {"OPENCV_CPU_DISABLE": "AVX,FP16,AVX2,FMA3,AVX512F,AVX512-SKX,AVX512-COMMON",
            "NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR"}
CONFIGS = {"dct8-q1, rate 0 (default)": [], "dct8-q0, rate 1 (board)": ["--model", "dct8-q0", "--rate", "1"]}
MODES = {"this machine's SIMD": {}, "128-bit SIMD": SIMD_128}


def run_daemon(caed: str, flags: list[str], env: dict, frames: int) -> dict:
    """One daemon run's CPU per frame by thread (ms), A53 cores at 30 fps and bytes per frame."""
    with tempfile.TemporaryDirectory() as tmp:
        summary_path = Path(tmp) / "summary.json"
        command = [caed, "--source", "cctv", "--fps", str(FPS), "--frames", str(frames), "--json", str(summary_path)]
        done = subprocess.run(command + flags, check=False, env={**os.environ, **env}, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command + flags)} exited with {done.returncode}: {done.stderr[-2000:]}")
        summary = json.loads(summary_path.read_text())
    cpu = summary["cpu_ms_per_frame"]
    outside = sum(cpu[k] for k in THREADS)
    row = {k: round(cpu[k], 3) for k in ("capture",) + THREADS}
    row.update(outside_encoder_and_camera_ms=round(outside, 3),
               a53_cores_at_30fps=round(outside * FACTOR * FPS / 1e3, 3),
               bytes_per_frame=round(summary["bytes_published"] / max(summary["frames_published"], 1)))
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, required=True, help="where to write the runs")
    p.add_argument("--runs", type=int, default=3, help="runs of each config and mode, in turns")
    p.add_argument("--frames", type=int, default=300, help="frames per run (at 30 fps)")
    args = p.parse_args(argv)
    caed = shutil.which("caed", path=str(Path(sys.executable).parent)) or shutil.which("caed")
    if not caed:
        print("a53_budget: the `caed` command is not installed (make setup-dev)", file=sys.stderr)
        return 2
    runs = {config: {mode: [] for mode in MODES} for config in CONFIGS}
    for n in range(args.runs):
        for config, flags in CONFIGS.items():
            for mode, env in MODES.items():
                row = run_daemon(caed, flags, env, args.frames)
                runs[config][mode].append(row)
                print(f"run {n + 1}/{args.runs}  {config:28s} {mode:20s} compress {row['compress']:.2f} ms  "
                      f"outside encoder {row['outside_encoder_and_camera_ms']:.2f} ms  "
                      f"{row['a53_cores_at_30fps']:.2f} A53 cores", flush=True)
    summary = {}
    for config, modes in runs.items():
        summary[config] = {}
        for mode, rows in modes.items():
            cores = [r["a53_cores_at_30fps"] for r in rows]
            summary[config][mode] = {"a53_cores_p50": statistics.median(cores), "min": min(cores), "max": max(cores),
                                     "compress_ms_p50": statistics.median(r["compress"] for r in rows)}
            print(f"{config:28s} {mode:20s} A53 cores at 30 fps p50 {statistics.median(cores):.2f} "
                  f"({min(cores):.2f}-{max(cores):.2f}), compress p50 {summary[config][mode]['compress_ms_p50']:.2f} ms")
    args.json.write_text(json.dumps({
        "command": f"python bench/a53_budget.py --runs {args.runs} --frames {args.frames}",
        "date": datetime.date.today().isoformat(), "factor": FACTOR, "simd_128": SIMD_128,
        "summary": summary, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
