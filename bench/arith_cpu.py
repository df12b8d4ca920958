"""The arith core's bytes and CPU time on Kodak's dct8 latents, built as the board builds it: the
C core and bench/arith_cpu_driver.c with `cc -O2`, no -march, outside Python.

    python bench/arith_cpu.py --images /work/shared/data/kodak [--rates 0,1,2,3,4] \
        [--runs 5] [--repeats 5] [--baseline main]

With --instructions, valgrind's callgrind also counts the instructions of arith_encode and of
arith_decode per frame of the timed rate (deterministic: noise-free where times on a loaded VM
are not). Times are thread CPU time (this VM is shared), p50 over every frame and repeat of the timed rate,
one run per line; with --baseline the core of that git revision is built too and the two are run
alternately in the same session, so that both see the same machine. Bytes and payload hashes are
printed per rate: equal hashes mean the same bytes.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402
from arith_kodak import callgrind_instructions, kodak_images, latent_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build(source_dir: Path, out: Path) -> Path:
    subprocess.run(["cc", "-O2", "-std=c99", f"-I{source_dir}", "-o", str(out), str(source_dir / "arith.c"),
                    str(ROOT / "bench" / "arith_cpu_driver.c")], check=True)
    return out


def run(binary: Path, data: Path, rates: str, timed: int, repeats: int) -> dict:
    out = subprocess.run([str(binary), str(data), rates, str(timed), str(repeats)], check=True,
                         capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        fields = line.split()
        values = dict(zip(fields[1::2], fields[2::2]))
        result[fields[0]] = values
    return result


def add_timing_arguments(p: argparse.ArgumentParser, runs: int) -> None:
    """The options of the scripts that time the C core on Kodak's latents against another build."""
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--rates", type=comma_separated(int), default="0,1,2,3,4")
    p.add_argument("--timed-rate", type=int, default=1)
    p.add_argument("--runs", type=int, default=runs)
    p.add_argument("--repeats", type=int, default=5, help="passes over the frames per run")


def instructions(binary: Path, data: Path, timed: int, frames: int) -> tuple[float, float]:
    """Instructions per frame in arith_encode and arith_decode (callgrind, inclusive)."""
    command = [str(binary), str(data), str(timed), str(timed), "1"]
    encode, decode = (callgrind_instructions(command, f) / frames for f in ("arith_encode", "arith_decode"))
    return encode, decode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(p, runs=5)
    p.add_argument("--baseline", help="a git revision whose core is measured alongside")
    p.add_argument("--instructions", action="store_true", help="count instructions with valgrind too")
    args = p.parse_args(argv)
    images = kodak_images(args.images)
    if not images:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = latent_folder(images, args.rates, tmp)
        builds = {"current": build(ROOT / "daemon" / "csrc", tmp / "current")}
        if args.baseline:
            base_src = tmp / "baseline_src"
            base_src.mkdir()
            for name in ("arith.c", "arith.h"):
                text = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.baseline}:daemon/csrc/{name}"],
                                      check=True, capture_output=True, text=True).stdout
                (base_src / name).write_text(text)
            builds = {"baseline": build(base_src, tmp / "baseline"), **builds}
        digits = "".join(str(r) for r in args.rates)
        times = {name: ([], []) for name in builds}
        for n in range(args.runs):
            for name, binary in builds.items():
                result = run(binary, data, digits if n == 0 else str(args.timed_rate), args.timed_rate, args.repeats)
                if n == 0:
                    for rate in args.rates:
                        r = result[f"q{rate}"]
                        print(f"{name:8s} q{rate}: {int(r['bytes']):,} bytes  hash {r['hash']}")
                timed = result[f"q{args.timed_rate}"]
                times[name][0].append(float(timed["encode_p50_ms"]))
                times[name][1].append(float(timed["decode_p50_ms"]))
        if args.instructions:
            frames = len(images)
            for name, binary in builds.items():
                enc, dec = instructions(binary, data, args.timed_rate, frames)
                print(f"{name:8s} q{args.timed_rate}: encode {enc / 1e6:.2f} M instructions/frame  "
                      f"decode {dec / 1e6:.2f} M instructions/frame  (callgrind)")
        for name, (enc, dec) in times.items():
            print(f"{name:8s} q{args.timed_rate}: encode p50 {statistics.median(enc):.2f} ms "
                  f"({min(enc):.2f}-{max(enc):.2f})  decode p50 {statistics.median(dec):.2f} ms "
                  f"({min(dec):.2f}-{max(dec):.2f})  over {args.runs} runs, thread CPU time, cc -O2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
