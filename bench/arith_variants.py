"""Other designs of the arith coder, as patches of it: their bytes and time against it on Kodak.

What each would cost in bytes and buy in time (issue 17's speed targets against its bytes target),
measured on Kodak's dct8 latents:

    python bench/arith_variants.py --images /work/shared/data/kodak [--rates 0,1,2,3,4] \
        [--runs 3] [--repeats 5] [--variants bypass-signs,row-updates] [--json F]

Each variant is today's daemon/csrc/arith.c with a patch from bench/arith_variants/ applied (`git
apply`), built with bench/arith_cpu_driver.c the way the board builds the core (`cc -O2`, no
-march), and run alternately with today's core in the same session, so that both see the same
machine. A variant codes every tensor losslessly too (the driver checks every round trip), so its
byte change at a rate is its change in BD-rate there. Variants:

- bypass-signs: every sign at p = 1/2 without a model (a sign then costs a few instructions
  instead of a context, a mix and an update).
- row-updates: every model still adapts after each decision, but codes with the probability it
  had when the row began: what deferring the updates to the row's end (so that a row codes with
  fixed probabilities, and the per-decision update could become a count) costs in bytes. Its time
  is not that design's (the patch keeps the per-decision update and adds a copy per row): bytes
  only.
- symbol-classes: the class (bit length) of a non-zero count, a DC residual and a magnitude as one
  symbol of an adaptive multi-symbol model (AV1-style CDF, both models of a decision mixed and
  updated with 128-bit vector operations) instead of a unary string of binary decisions.
- symbol-levels: symbol-classes, and a coefficient's zero flag merged with its magnitude's class
  into one 9-symbol decision (0, or 1 + the class), with the zero flag's contexts.

Times are thread CPU time, p50 over every frame and repeat of the timed rate, one value per run.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arith_cpu import add_timing_arguments, build, run  # noqa: E402
from arith_kodak import kodak_images, latent_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "bench" / "arith_variants"
# Variants whose patch measures bytes only: their time is not the design's.
BYTES_ONLY = {"row-updates"}


def variant_names() -> list[str]:
    return sorted(p.stem for p in PATCHES.glob("*.patch"))


def patched_core(name: str, folder: Path) -> Path:
    """Today's arith.c and arith.h in folder/daemon/csrc with the variant's patch applied; the
    folder of the sources. Fails with the patch's name if it no longer applies."""
    csrc = folder / "daemon" / "csrc"
    csrc.mkdir(parents=True)
    for source in ("arith.c", "arith.h"):
        shutil.copy(ROOT / "daemon" / "csrc" / source, csrc / source)
    applied = subprocess.run(["git", "apply", str(PATCHES / f"{name}.patch")], cwd=folder, capture_output=True,
                             text=True)
    if applied.returncode != 0:
        raise RuntimeError(f"bench/arith_variants/{name}.patch no longer applies to daemon/csrc/arith.c: "
                           f"{applied.stderr.strip()}")
    return csrc


def measure(data: Path, builds: dict[str, Path], rates: list[int], timed_rate: int, runs: int,
            repeats: int) -> dict:
    """Bytes per rate (first run) and encode/decode p50 ms of the timed rate per run, per build."""
    digits = "".join(str(r) for r in rates)
    out = {name: {"bytes": {}, "encode_ms": [], "decode_ms": []} for name in builds}
    for n in range(runs):
        for name, binary in builds.items():
            result = run(binary, data, digits if n == 0 else str(timed_rate), timed_rate, repeats)
            if n == 0:
                out[name]["bytes"] = {f"q{r}": int(result[f"q{r}"]["bytes"]) for r in rates}
            out[name]["encode_ms"].append(float(result[f"q{timed_rate}"]["encode_p50_ms"]))
            out[name]["decode_ms"].append(float(result[f"q{timed_rate}"]["decode_p50_ms"]))
    return out


def summarize(measured: dict) -> dict:
    """Each variant against today's core: byte change per rate and its geometric mean over the
    rates (the BD-rate change of a lossless change), time change of the medians."""
    base = measured["today"]
    summary = {"today": base, "variants": {}}
    for name, m in measured.items():
        if name == "today":
            continue
        change = {q: 100.0 * (m["bytes"][q] / base["bytes"][q] - 1.0) for q in base["bytes"]}
        ratios = [m["bytes"][q] / base["bytes"][q] for q in base["bytes"]]
        entry = {**m, "bytes_change_pct": change,
                 "mean_bytes_change_pct": 100.0 * (math.exp(statistics.fmean(math.log(r) for r in ratios)) - 1.0)}
        if name in BYTES_ONLY:
            entry["timed"] = False
        else:
            entry["timed"] = True
            for what in ("encode_ms", "decode_ms"):
                entry[what.replace("_ms", "_change_pct")] = 100.0 * (
                    statistics.median(m[what]) / statistics.median(base[what]) - 1.0)
        summary["variants"][name] = entry
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(p, runs=3)
    p.add_argument("--variants", default=",".join(variant_names()),
                   help=f"comma-separated, of: {', '.join(variant_names())}")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    images = kodak_images(args.images)
    if not images:
        return 2
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(variant_names()))
    if unknown:
        print(f"unknown variants: {', '.join(unknown)} (known: {', '.join(variant_names())})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = latent_folder(images, args.rates, tmp)
        builds = {"today": build(ROOT / "daemon" / "csrc", tmp / "today")}
        for name in names:
            builds[name] = build(patched_core(name, tmp / f"{name}_src"), tmp / name)
        summary = summarize(measure(data, builds, args.rates, args.timed_rate, args.runs, args.repeats))
    base = summary["today"]
    print(f"today: {sum(base['bytes'].values()):,} bytes over q{args.rates[0]}..q{args.rates[-1]}; q{args.timed_rate} encode "
          f"p50 {statistics.median(base['encode_ms']):.2f} ms ({min(base['encode_ms']):.2f}-"
          f"{max(base['encode_ms']):.2f}), decode {statistics.median(base['decode_ms']):.2f} ms "
          f"({min(base['decode_ms']):.2f}-{max(base['decode_ms']):.2f}) over {args.runs} runs")
    for name, v in summary["variants"].items():
        per_rate = ", ".join(f"{q} {c:+.2f} %" for q, c in v["bytes_change_pct"].items())
        line = f"{name:15s} bytes {v['mean_bytes_change_pct']:+.2f} % ({per_rate})"
        if v["timed"]:
            line += (f"; encode {v['encode_change_pct']:+.1f} % ({min(v['encode_ms']):.2f}-{max(v['encode_ms']):.2f} ms), "
                     f"decode {v['decode_change_pct']:+.1f} % ({min(v['decode_ms']):.2f}-{max(v['decode_ms']):.2f} ms)")
        else:
            line += "; time not measured (bytes only)"
        print(line)
    if args.json:
        summary["command"] = " ".join(["python", "bench/arith_variants.py"] + (argv or sys.argv[1:]))
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
