"""The split decoder (sparse synthesis in C + decoder_post in ONNX Runtime) against the whole
fp32 decoder.onnx: Kodak PSNR per rate, and the synthesis alone, C kernel against ONNX Runtime's
dense convolution, in thread CPU time.

For each rate q0-q4 of dct8 the Kodak photos are encoded as the daemon encodes them (the rate's
int8 encoder, through caed-eval's ModelCodec) and decoded by
- fp32: the whole decoder.onnx (the baseline; what the viewer ran before on the CPU in fp32);
- split-fp32: caed-view --decoder-precision fp32 on the CPU (synthesis.npz + decoder_post.onnx);
- split-int8: caed-view's default on the CPU (synthesis.npz + decoder_post_int8.onnx);
- int8: decoder_int8.onnx (the previous default: int8 with the synthesis in fp32).
The synthesis alone is timed on one thread, the C kernel and the synthesis + depth-to-space cut
out of decoder.onnx in turns, `--repeats` times per image, as thread CPU time (the machine is
shared: wall time would measure the other jobs).

    python bench/decoder_split.py --kodak /work/shared/data/kodak --json bench/results/decoder_split.json

Needs the `train` extra (onnx, to cut the dense synthesis out of decoder.onnx). Results: docs/decoder.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from caed import manifest
from caed.fixed_point import dequantize, psnr, quantize_latents
from caed_host.decoder import OnnxDecoder, SplitDecoder, Synthesis
from caed_models.data import image_paths, load_rgb
from caed_models.evaluate import ModelCodec

DEPTH_TO_SPACE = "/inner/to_pixels/DepthToSpace_output_0"


def dense_synthesis(decoder: Path) -> ort.InferenceSession:
    """decoder.onnx up to its depth-to-space, on one thread."""
    model = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(onnx.load(str(decoder)))).extract_model(
        ["latent"], [DEPTH_TO_SPACE])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def thread_ms(run) -> float:
    t0 = time.thread_time()
    run()
    return (time.thread_time() - t0) * 1e3


def spread(values: list[float]) -> dict:
    return {"p50": round(float(np.median(values)), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kodak", type=Path, required=True)
    p.add_argument("--max-images", type=int, default=24)
    p.add_argument("--repeats", type=int, default=3, help="synthesis timings per image and rate (default: 3)")
    p.add_argument("--threads", type=int, default=2, help="decoder threads for the PSNR runs (default: 2)")
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    images = [load_rgb(path) for path in image_paths(args.kodak)[: args.max_images]]
    specs = sorted((s for s in manifest.available().values() if s.manifest.get("family") == "dct8"),
                   key=lambda s: -s.latent_fix_point)
    dense = dense_synthesis(specs[0].decoder)
    sparse = Synthesis(specs[0].synthesis)
    rates = []
    for spec in specs:
        decoders = {"fp32": OnnxDecoder(spec, args.threads, precision="fp32"),
                    "split-fp32": SplitDecoder(spec, args.threads, precision="fp32"),
                    "split-int8": SplitDecoder(spec, args.threads, precision="int8"),
                    "int8": OnnxDecoder(spec, args.threads, precision="int8")}
        codec = ModelCodec(spec)
        psnrs: dict[str, list[float]] = {k: [] for k in decoders}
        c_ms, onnx_ms, density, max_diff = [], [], [], 0.0
        for rgb in images:
            h, w = rgb.shape[:2]
            values = dequantize(quantize_latents(codec.latents(rgb, "int8")[0], spec.latent_fix_point),
                                spec.latent_fix_point)
            density.append(np.count_nonzero(values) / values.size)
            for name, decoder in decoders.items():
                psnrs[name].append(psnr(rgb, decoder.decode_values(values)[:h, :w]))
            max_diff = max(max_diff, float(np.abs(sparse(values) - dense.run(None, {"latent": values[None]})[0]).max()))
            for _ in range(args.repeats):  # in turns
                c_ms.append(thread_ms(lambda: sparse(values)))
                onnx_ms.append(thread_ms(lambda: dense.run(None, {"latent": values[None]})))
        mean = {k: float(np.mean(v)) for k, v in psnrs.items()}
        rate = {"model": spec.name, "fix_point": spec.latent_fix_point,
                "nonzero_share": round(float(np.mean(density)), 4),
                "psnr": {k: round(v, 4) for k, v in mean.items()},
                "psnr_loss_vs_fp32": {k: round(mean["fp32"] - v, 4) for k, v in mean.items() if k != "fp32"},
                "synthesis_thread_ms": {"c": spread(c_ms), "onnx": spread(onnx_ms)},
                "synthesis_max_abs_diff": max_diff}
        print(json.dumps(rate), flush=True)
        rates.append(rate)
    args.json.write_text(json.dumps({"images": len(images), "threads": args.threads, "rates": rates}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
