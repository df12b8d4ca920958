"""Payload bytes and coding time of the arith codec against zstd-planes on Kodak's
dct8 latents, every rate: the measurements docs/wire.md (`arith`) quotes.

    python bench/arith_kodak.py --images /work/shared/data/kodak [--rates 0,1,2,3,4] [--repeats 5]

Latents are computed by caed-eval's own ModelCodec (int8 encoder, ONNX Runtime) and kept in
memory. Times are one thread, wall clock, p50 over every frame and repeat, for (C, H, W) planes
(what ONNX gives) and NHWC (what the DPU gives); the spread is that of the p50 over --runs runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from caed.codecs import CODECS, PayloadError
from caed.codecs.arith import ArithCodec
from caed.fixed_point import quantize_latents
from caed.manifest import find
from caed_models.data import load_rgb
from caed_models.evaluate import ModelCodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402


def latents(images: list[Path], rate: int) -> list[np.ndarray]:
    """(C, H, W) int8 dct8-q<rate> latents of each image, as caed-eval computes them."""
    spec = find(f"dct8-q{rate}")
    model = ModelCodec(spec)
    return [quantize_latents(model.latents(load_rgb(path), "int8")[0], spec.latent_fix_point) for path in images]


def kodak_images(folder: Path) -> list[Path]:
    """The PNG photos in `folder`, sorted; [] with a message on stderr when there are none."""
    images = sorted(folder.glob("*.png"))
    if not images:
        print(f"no PNG images in {folder}", file=sys.stderr)
    return images


def latent_folder(images: list[Path], rates: list[int], parent: Path) -> Path:
    """parent/latents holding the images' latents at every rate of `rates` (write_latents)."""
    folder = parent / "latents"
    folder.mkdir()
    for rate in rates:
        write_latents(images, rate, folder)
    return folder


def write_latents(images: list[Path], rate: int, folder: Path) -> None:
    """The images' dct8-q<rate> latents as the C drivers read them (bench/latent_files.h): int8 NHWC
    files named q<rate>_<index>_<H>x<W>x<C>.bin."""
    for i, planes in enumerate(latents(images, rate)):
        c, h, w = planes.shape
        np.ascontiguousarray(planes.transpose(1, 2, 0)).tofile(folder / f"q{rate}_{i:03d}_{h}x{w}x{c}.bin")


def callgrind_instructions(command: list[str], function: str) -> int:
    """Instructions executed inside `function` (inclusive) while `command` runs, counted by
    valgrind's callgrind: the same for the same binary and inputs, whatever the machine's load."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          f"--toggle-collect={function}"] + command, check=True, capture_output=True, text=True).stderr
    collected = [line for line in out.splitlines() if "Collected :" in line][0]
    return int(collected.split(":")[1].split()[0])


def codecs() -> dict:
    return {"arith": ArithCodec(), "zstd-planes": CODECS["zstd-planes"]()}


def measure(codec, planes: list[np.ndarray], layout: str, repeats: int) -> tuple[float, float]:
    """p50 encode and decode ms over all frames and repeats; checks every round trip."""
    frames = [p.transpose(1, 2, 0) if layout == "planes" else np.ascontiguousarray(p.transpose(1, 2, 0)) for p in planes]
    encode, decode = [], []
    for _ in range(repeats):
        for frame, expected in zip(frames, planes):
            t = time.perf_counter()
            payload = codec.encode(frame)
            encode.append(time.perf_counter() - t)
            t = time.perf_counter()
            decoded = codec.decode(payload, frame.shape)
            decode.append(time.perf_counter() - t)
            if not np.array_equal(decoded, expected):
                raise PayloadError(f"{type(codec).__name__} does not round-trip")
    return statistics.median(encode) * 1e3, statistics.median(decode) * 1e3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--rates", type=comma_separated(int), default="0,1,2,3,4")
    p.add_argument("--repeats", type=int, default=3, help="passes over the frames per run")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--timed-rate", type=int, default=1, help="the rate whose times are measured")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    images = kodak_images(args.images)
    if not images:
        return 2
    coders = codecs()
    result = {"images": len(images), "bytes": {}, "times_ms": {}}
    for rate in args.rates:
        planes = latents(images, rate)
        sizes = {name: sum(len(c.encode(f.transpose(1, 2, 0))) for f in planes) for name, c in coders.items()}
        result["bytes"][f"q{rate}"] = sizes
        versus = f"  ({100 * (sizes['arith'] / sizes['zstd-planes'] - 1):+.1f} % vs zstd-planes)"
        print(f"q{rate}: " + "  ".join(f"{n} {s:,}" for n, s in sizes.items()) + versus, flush=True)
        if rate != args.timed_rate:
            continue
        for name in ("arith", "zstd-planes"):
            for layout in ("planes", "nhwc"):
                runs = [measure(coders[name], planes, layout, args.repeats) for _ in range(args.runs)]
                enc, dec = [r[0] for r in runs], [r[1] for r in runs]
                result["times_ms"][f"{name} {layout}"] = {"encode_p50": statistics.median(enc), "encode_runs": enc,
                                                          "decode_p50": statistics.median(dec), "decode_runs": dec}
                print(f"  {name:11s} {layout:6s} encode {statistics.median(enc):.2f} ms ({min(enc):.2f}-{max(enc):.2f})"
                      f"  decode {statistics.median(dec):.2f} ms ({min(dec):.2f}-{max(dec):.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
