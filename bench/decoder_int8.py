"""Can dct8's decoder run in int8 (QDQ, ONNX Runtime static quantization, VNNI) within 0.15 dB?

Builds int8 variants of the shipped fp32 decoder for each rate (calibrated on that rate's
pictures of a folder that is not Kodak; where the first layer is int8, its input quantizer is
exact: int8 at the rate's scale 2**-fix_point), and reports for each rate the Kodak PSNR loss
against the fp32 decoder and the decode time, timed in turns with it (same process, same
threads), of each variant and of the shipped decoder_int8.onnx:

- int8: every layer int8;
- int8-synthesis-fp32: the 192->192 synthesis conv kept fp32, the rest int8 (what
  caed_models.decoder_int8 ships, there as one file calibrated on the finest rate);
- int8-split-centre: all int8, the synthesis conv's centre tap split into an int8 part and its
  int8 remainder (~15-bit weights where they matter), off-centre taps on their own int8 scale.

    python bench/decoder_int8.py --kodak /work/shared/data/kodak --calibration /work/shared/data/train \
        --json bench/results/decoder_int8.json

Needs the `train` extra (onnx). Results and the conclusion: docs/decoder.md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from caed import manifest
from caed.fixed_point import decoded_pixels, psnr
from caed_models.data import image_paths, load_rgb
from caed_models.decoder_int8 import SYNTHESIS, decoder_inputs, quantize_decoder


def split_centre(src: Path, dst: Path) -> None:
    """Rewrite the synthesis conv as centre-tap int8-grid part + its remainder (1x1 convs) + the
    off-centre taps (3x3 conv, centre zero): the same function in float, three int8 scales."""
    m = onnx.load(str(src))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    idx, conv = next((i, n) for i, n in enumerate(g.node) if n.name == SYNTHESIS)
    w, b = numpy_helper.to_array(inits[conv.input[1]]), numpy_helper.to_array(inits[conv.input[2]])
    centre = w[:, :, 1:2, 1:2].astype(np.float64)
    step = np.abs(centre).reshape(len(w), -1).max(1)[:, None, None, None] / 127
    coarse = (np.round(centre / step) * step).astype(np.float32)
    off = w.copy()
    off[:, :, 1, 1] = 0
    g.initializer.extend([numpy_helper.from_array(coarse, "centre_coarse"),
                          numpy_helper.from_array((centre - coarse).astype(np.float32), "centre_fine"),
                          numpy_helper.from_array(off, "off_centre"), numpy_helper.from_array(b, "synthesis_bias")])
    x, y = conv.input[0], conv.output[0]
    nodes = [
        helper.make_node("Conv", [x, "centre_coarse", "synthesis_bias"], ["c0"], name=SYNTHESIS + "_coarse",
                         kernel_shape=[1, 1]),
        helper.make_node("Conv", [x, "centre_fine"], ["c1"], name=SYNTHESIS + "_fine", kernel_shape=[1, 1]),
        helper.make_node("Conv", [x, "off_centre"], ["c2"], name=SYNTHESIS + "_off", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c1", "c2"], ["c12"], name=SYNTHESIS + "_add_fine"),
        helper.make_node("Add", ["c0", "c12"], [y], name=SYNTHESIS + "_add"),
    ]
    del g.node[idx]
    for k, n in enumerate(nodes):
        g.node.insert(idx + k, n)
    g.initializer.remove(inits[conv.input[1]])
    g.initializer.remove(inits[conv.input[2]])
    onnx.save(m, str(dst))


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kodak", type=Path, required=True)
    p.add_argument("--calibration", type=Path, required=True, help="folder of calibration images (not Kodak)")
    p.add_argument("--calibration-images", type=int, default=16)
    p.add_argument("--max-images", type=int, default=24, help="Kodak images to evaluate")
    p.add_argument("--models", nargs="*", default=[f"dct8-q{i}" for i in range(5)])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timing-runs", type=int, default=8)
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    kodak = [load_rgb(f) for f in image_paths(args.kodak)[: args.max_images]]
    calibration = [load_rgb(f) for f in image_paths(args.calibration)[: args.calibration_images]]
    result = {"kodak_images": len(kodak), "calibration_images": len(calibration), "threads": args.threads,
              "rates": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            spec = manifest.find(name)
            split = Path(tmp) / "split.onnx"
            split_centre(spec.decoder, split)
            fix_point = spec.latent_fix_point
            calib = decoder_inputs(spec, calibration, fix_point)
            built = {}
            for variant, src, keep_float, exact_input in (("int8", spec.decoder, (), fix_point),
                                                          ("int8-synthesis-fp32", spec.decoder, (SYNTHESIS,), None),
                                                          ("int8-split-centre", split, (), fix_point)):
                built[variant] = Path(tmp) / f"{variant}-{name}.onnx"
                quantize_decoder(src, built[variant], calib, keep_float, exact_input)
            if spec.decoder_int8 is not None:
                built["shipped decoder_int8"] = spec.decoder_int8
            sessions = {"fp32": session(spec.decoder, args.threads)}
            sessions.update({v: session(path, args.threads) for v, path in built.items()})
            inputs = decoder_inputs(spec, kodak, fix_point)
            scores = {k: [psnr(rgb, decoded_pixels(s.run(["image"], {"latent": x})[0][0]))
                          for rgb, x in zip(kodak, inputs)] for k, s in sessions.items()}
            frame = next(x for x in inputs if x.shape[2:] == (64, 96))  # a 512x768 picture
            times = {k: [] for k in sessions}
            for s in sessions.values():
                s.run(None, {"latent": frame})
            for _ in range(args.timing_runs):  # in turns: a slow spell of a shared machine hits all alike
                for k, s in sessions.items():
                    t0 = time.perf_counter()
                    s.run(None, {"latent": frame})
                    times[k].append(time.perf_counter() - t0)
            base_psnr, base_ms = float(np.mean(scores["fp32"])), 1e3 * float(np.median(times["fp32"]))
            rate = {"fix_point": fix_point, "fp32_psnr_db": base_psnr, "fp32_ms_p50": base_ms}
            for k in built:
                ms = 1e3 * float(np.median(times[k]))
                rate[k] = {"psnr_loss_db": base_psnr - float(np.mean(scores[k])), "ms_p50": ms,
                           "speedup_vs_fp32": base_ms / ms}
            result["rates"][name] = rate
            print(name, json.dumps(rate), flush=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
