"""`decoder_int8.onnx`: the host decoder in int8 where int8 costs no visible quality.

ONNX Runtime static quantization (QDQ: per-channel symmetric int8 weights, asymmetric uint8
activations calibrated by min/max, which ONNX Runtime runs as QLinearConv with VNNI on x86) of the
fp32 `decoder.onnx`, with two nodes left in fp32: dct8's 192->192 synthesis convolution and the
post-network's final Add. The synthesis weights are the inverse transform; rounded to int8 (even
per output channel, even with the centre tap split into an int8 part and its int8 remainder) they
cost 0.18-1.5 dB at the finest rate. The Add puts the post-network's residual on the picture
itself, which quantized to the output's calibrated range costs 0.07 dB at q0 on Kodak; the rest of
the post-network in int8, 0.03 dB (docs/decoder.md).
With the synthesis in fp32 the decoder's input is never quantized, so one file serves every rate.
It is calibrated on the finest rate's pictures, whose activations need the finest steps: the same
file calibrated on all five rates lost 0.19 dB at the finest; the shipped one (the finest rate of
the first 16 BSDS500 images).

    python -m caed_models.decoder_int8 --family dct8 --calibration /work/shared/data/train

writes daemon/weights/dct8/decoder_int8.onnx and names it as `decoder_int8` in every rate's
model.json; for a model that ships the split decoder (caed-export's synthesis.npz and
decoder_post.onnx), also decoder_post_int8.onnx: decoder_post.onnx quantized the same way,
calibrated on the same latents' synthesized pictures (the synthesis is not in it; its final Add
stays fp32). Calibration images must not be the evaluation set (Kodak).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from caed import manifest
from caed.fixed_point import dequantize, encoder_input_float, quantize_latents

from .data import image_paths, load_rgb

SYNTHESIS = "/inner/synthesis/Conv"
POST_RESIDUAL = "/post/Add"  # decoder_post.onnx's last node; "/inner" + this in decoder.onnx
FILE_NAME = "decoder_int8.onnx"
POST_FILE_NAME = "decoder_post_int8.onnx"  # the same for the split decoder's decoder_post.onnx


def decoder_inputs(spec: manifest.ModelSpec, images: list[np.ndarray], fix_point: int) -> list[np.ndarray]:
    """What the viewer feeds the decoder for these pictures at this rate (1, C, H, W float32)."""
    import onnxruntime

    encoder = onnxruntime.InferenceSession(str(spec.encoder), providers=["CPUExecutionProvider"])
    out = []
    for rgb in images:
        m = int(spec.manifest.get("size_multiple", 8))
        rgb = rgb[: rgb.shape[0] // m * m, : rgb.shape[1] // m * m]
        x = encoder_input_float(rgb, spec.input_fix_point, spec.input_colours)[None]
        latent = encoder.run(["latent"], {"image": x})[0][0]
        out.append(dequantize(quantize_latents(latent, fix_point), fix_point)[None])
    return out


def quantize_decoder(decoder: Path, out: Path, calibration: list[np.ndarray],
                     keep_float: tuple = (SYNTHESIS, "/inner" + POST_RESIDUAL),
                     input_fix_point: int | None = None, input_name: str = "latent") -> None:
    """QDQ int8 `decoder` → `out`, calibrated on `calibration` inputs (of the graph input
    `input_name`), the nodes `keep_float` in fp32. `input_fix_point` quantizes the input exactly
    (int8 at scale 2**-F: only right for the one rate whose latents have that fix point; needed
    when the first layer is int8)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._inputs = iter(calibration)

        def get_next(self):
            x = next(self._inputs, None)
            return None if x is None else {input_name: x}

    options = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if input_fix_point is not None:
        options["TensorQuantOverrides"] = {input_name: [{
            "scale": np.array(2.0 ** -input_fix_point, np.float32), "zero_point": np.array(0, np.int8),
            "quant_type": QuantType.QInt8}]}
    quantize_static(str(decoder), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(keep_float),
                    extra_options=options)


def family_specs(family: str) -> list[manifest.ModelSpec]:
    specs = [s for s in manifest.available().values() if s.manifest.get("family") == family]
    if not specs:
        raise SystemExit(f"no shipped models of family {family!r}")
    return sorted(specs, key=lambda s: -s.latent_fix_point)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m caed_models.decoder_int8", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="dct8", help="multi-rate model family sharing one decoder (default: dct8)")
    p.add_argument("--calibration", type=Path, required=True, help="folder of calibration images (not Kodak)")
    p.add_argument("--calibration-images", type=int, default=16, help="(default: 16)")
    args = p.parse_args(argv)
    specs = family_specs(args.family)
    images = [load_rgb(path) for path in image_paths(args.calibration)[: args.calibration_images]]
    finest = specs[0]
    calibration = decoder_inputs(finest, images, finest.latent_fix_point)
    written = {"decoder_int8": finest.decoder.resolve().with_name(FILE_NAME)}
    quantize_decoder(finest.decoder, written["decoder_int8"], calibration)
    if finest.decoder_post is not None:  # its input: the sparse synthesis's pictures of the same latents
        from caed_host.decoder import Synthesis

        synthesis = Synthesis(finest.synthesis)
        written["decoder_post_int8"] = finest.decoder_post.resolve().with_name(POST_FILE_NAME)
        quantize_decoder(finest.decoder_post, written["decoder_post_int8"], [synthesis(x[0]) for x in calibration],
                         keep_float=(POST_RESIDUAL,), input_name="synthesized")
    for spec in specs:
        path = spec.directory / "model.json"
        raw = json.loads(path.read_text())
        raw.update({key: str(Path("..") / out.parent.name / out.name) for key, out in written.items()})
        path.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"wrote {', '.join(str(out) for out in written.values())} (calibrated on {len(images)} images at "
          f"{finest.name}), named in " + ", ".join(s.name for s in specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
