"""Today's dct8 decoder against the decoder of another git revision, on a clip's first frames at
every rate (the finest rate's latents requantized, as caed-eval --video does), fp32 both:

    python bench/decoder_versions.py --video ../shared/data/video/pedestrians_720p.avi --baseline 35e3121 \
        [--frames 6] [--json out.json]

It found that the half-resolution post-network (docs/decoder.md) loses 0.39 dB at fix point -3
on pedestrians_720p against the post-filter and refiner it replaced, where Kodak showed no loss.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from caed.fixed_point import dequantize, psnr, quantize_latents
from caed.manifest import find
from caed_models.evaluate import ModelCodec, family_finest
from caed_models.video import RATES, int8_latents, read_frames

ROOT = Path(__file__).resolve().parent.parent
DECODER = "daemon/weights/dct8/decoder.onnx"


def baseline_decoder(revision: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, DECODER], check=True,
                             capture_output=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(folder)
    return folder / DECODER


def picture(session: ort.InferenceSession, values: np.ndarray) -> np.ndarray:
    """uint8 RGB of the decoder's output for float32 (C, H, W) latent values."""
    image = session.run(None, {"latent": values[None].astype(np.float32)})[0][0]
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--baseline", required=True, help="a git revision whose dct8 decoder.onnx is compared")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not args.video.is_file():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    spec = family_finest(find("dct8-q0"))
    model = ModelCodec(spec, "fp32")
    frames, _ = read_frames(args.video, args.frames, None)
    latents = [int8_latents(model, rgb, spec.latent_fix_point) for rgb in frames]
    h, w = frames[0].shape[:2]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for name, path in
                    (("baseline", baseline_decoder(args.baseline, Path(tmp))), ("today", ROOT / DECODER))}
        for k in RATES:
            fix_point = spec.latent_fix_point - k
            scores = {name: [] for name in sessions}
            for rgb, q in zip(frames, latents):
                values = dequantize(quantize_latents(dequantize(q, spec.latent_fix_point), fix_point).transpose(2, 0, 1),
                                    fix_point)
                for name, session in sessions.items():
                    scores[name].append(psnr(rgb, picture(session, values)[:h, :w]))
            results[fix_point] = {name: round(float(np.mean(v)), 3) for name, v in scores.items()}
            r = results[fix_point]
            print(f"fix point {fix_point}: {args.baseline} {r['baseline']:.3f} dB, today {r['today']:.3f} dB "
                  f"({r['today'] - r['baseline']:+.3f})")
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": len(frames), "baseline": args.baseline,
                                         "psnr_db": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
