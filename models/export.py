"""caed-export: turn a training checkpoint into the shipped files the daemon and viewer load.

Writes weights/<model>/ with encoder.onnx, encoder_int8.onnx (power-of-two QDQ, what the DPU
computes), decoder.onnx and model.json; for a decoder the host splits (dct8), also synthesis.npz
and decoder_post.onnx (onnx_io.export_decoder_split). `--decoder-only` writes just the decoder's
files (decoder.onnx and the split) for a model already exported from the same checkpoint, whose
decoder alone was retrained: the encoders, and so the latents and the model id, stay as they are.
The latent fix_point F of the wire is the int8 encoder's calibrated output fix point, so the
float and int8 encoders put latents on the same grid.
A multi-rate model (one with `rate_fix_points`, e.g. dct8) writes its ONNX files to
weights/<model>/ and one weights/<model>-q<k>/model.json per rate, each naming the shared files
and its own latent fix_point.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx

from caed.fixed_point import encoder_input_float

from caed.manifest import WEIGHTS_DIR
from .architectures import ARCHITECTURES, build
from .base import CodecModel
from .data import image_paths, load_rgb
from .onnx_io import export_decoder, export_decoder_split, export_encoder, has_split_decoder, swap_input_colours
from .qdq import calibrate, latent_tensor, quantize_encoder
from .quant import INPUT_FIX_POINT
from .train import CHECKPOINTS_DIR, DEFAULT_DATA, module_names, read_checkpoint
from .workload import conv_layers

INPUT_SHAPE = (512, 768, 3)
SPLIT_KEYS = ("synthesis", "decoder_post")  # model.json keys of export_decoder_split's files


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="caed-export", description=__doc__)
    p.add_argument("--model", default="kth2020", choices=sorted(ARCHITECTURES))
    p.add_argument("--checkpoint", type=Path, help="default: models/checkpoints/<model>/checkpoint.pt")
    p.add_argument("--out", type=Path, help="default: daemon/weights/<model>, the shipped models")
    p.add_argument("--calibration", type=Path, default=DEFAULT_DATA, help="folder of calibration images")
    p.add_argument("--calibration-images", type=int, default=16)
    p.add_argument("--decoder-only", action="store_true",
                   help="write only the decoder's files (decoder.onnx, synthesis.npz, decoder_post.onnx) for the model "
                        "already exported from this checkpoint, leaving its encoders as they are")
    args = p.parse_args(argv)
    if args.calibration_images <= 0:
        p.error("--calibration-images must be positive")
    return args


def calibration_images(folder: Path, count: int, multiple: int) -> list[np.ndarray]:
    """NHWC float images on the encoder's int8 input grid, cropped to a multiple of `multiple`."""
    out = []
    for path in image_paths(folder)[:count]:
        rgb = load_rgb(path)
        h, w = (rgb.shape[0] // multiple) * multiple, (rgb.shape[1] // multiple) * multiple
        out.append(encoder_input_float(rgb[:h, :w], INPUT_FIX_POINT)[None])
    return out


def load_checkpoint(model_name: str, path: Path) -> tuple[CodecModel, int]:
    if not path.is_file():
        raise SystemExit(f"no checkpoint at {path}; train first: caed-train --model {model_name} --minutes M")
    model = build(model_name)
    ck, missing = read_checkpoint(path, model_name, model)
    if missing:  # stages added since: residual stages start as identity, so this is the trained model
        print(f"caed-export: {path} predates {module_names(missing)}; exporting their initial values", file=sys.stderr)
    return model.eval(), int(ck["step"])


def export(model_name: str, checkpoint: Path, out: Path, calibration: Path, n_calibration: int) -> dict:
    model, step = load_checkpoint(model_name, checkpoint)
    model.prepare_export()
    h, w, _ = INPUT_SHAPE
    latent_hw = model.latent_size(h, w)
    latent_shape = (*latent_hw, model.latent_channels)
    out.mkdir(parents=True, exist_ok=True)
    export_encoder(model, out / "encoder.onnx", h, w)
    export_decoder(model, out / "decoder.onnx", latent_shape)
    split = dict(zip(SPLIT_KEYS, export_decoder_split(model, out, latent_shape))) if has_split_decoder(model) else {}

    float_encoder = onnx.load(out / "encoder.onnx")
    images = calibration_images(calibration, n_calibration, model.size_multiple)
    activations = calibrate(float_encoder, images)
    latent_name = latent_tensor(float_encoder)
    rates = getattr(model, "rate_fix_points", None)
    order = getattr(model, "nhwc_encoder_input_order", None)
    if rates is None:
        int8_encoder, fix_points = quantize_encoder(float_encoder, activations)
        onnx.save(swap_input_colours(int8_encoder, order), out / "encoder_int8.onnx")
        latent_fix_point = fix_points[latent_name]
    else:
        # one int8 encoder per rate, whose output is quantized straight to that rate's grid
        # (the DPU rounds once; requantizing a finer int8 output would round twice)
        for k, rate_fix_point in enumerate(rates):
            int8_encoder, fix_points = quantize_encoder(float_encoder, {**activations, latent_name: rate_fix_point})
            onnx.save(swap_input_colours(int8_encoder, order), out / f"encoder_int8_q{k}.onnx")
        latent_fix_point = activations[latent_name]
    onnx.save(swap_input_colours(float_encoder, order), out / "encoder.onnx")  # calibrated in RGB: the same activations

    enc_layers = conv_layers(model.encoder, (1, 3, h, w))
    dec_layers = conv_layers(model.decoder, (1, model.latent_channels, *latent_hw))
    manifest = {
        "model_id": f"{model_name}-s{step}",
        "input": {"shape": list(INPUT_SHAPE), "fix_point": INPUT_FIX_POINT, "colours": "bgr"},
        "latent": {"shape": list(latent_shape), "fix_point": latent_fix_point},
        "encoder": "encoder.onnx",
        "encoder_int8": "encoder_int8.onnx",
        "decoder": "decoder.onnx",
        **split,
        "architecture": model_name,
        "training_step": step,
        "size_multiple": model.size_multiple,
        "params": {"encoder": sum(p.numel() for p in model.encoder.parameters()),
                   "decoder": sum(p.numel() for p in model.decoder.parameters())},
        "macs": {"encoder": sum(l.macs for l in enc_layers), "decoder": sum(l.macs for l in dec_layers)},
        "int8_fix_points": fix_points,
    }
    if rates is None:
        (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest
    # one decoder serves every rate: each rate is a directory whose model.json points at the
    # shared ONNX files and its own int8 encoder, and sets its own (coarser) latent fix_point
    manifest["int8_fix_points"] = {"latent_calibrated": latent_fix_point, **fix_points}
    for k, fix_point in enumerate(rates):
        rate_dir = out.parent / f"{out.name}-q{k}"
        rate_dir.mkdir(exist_ok=True)
        rate = {**manifest, "latent": {"shape": list(latent_shape), "fix_point": fix_point},
                "family": out.name, "rate_index": k, "coarsest_fix_point": min(rates), "payload_codec": "arith",
                "encoder": f"../{out.name}/encoder.onnx", "decoder": f"../{out.name}/decoder.onnx",
                "encoder_int8": f"../{out.name}/encoder_int8_q{k}.onnx",
                **{key: f"../{out.name}/{name}" for key, name in split.items()}}
        rate["int8_fix_points"] = {**rate["int8_fix_points"], latent_name: fix_point}
        (rate_dir / "model.json").write_text(json.dumps(rate, indent=2) + "\n")
    return manifest


def export_decoder_only(model_name: str, checkpoint: Path, out: Path) -> list[Path]:
    """The decoder files of an exported model (and of each of its rates) from the checkpoint it was
    exported from (the model.json's training_step must be the checkpoint's: the encoder's step; a
    decoder retrained on that encoder's latents keeps it); the model.json files it updated."""
    model, step = load_checkpoint(model_name, checkpoint)
    manifests = [p for p in [out / "model.json", *sorted(out.parent.glob(f"{out.name}-q*/model.json"))] if p.is_file()]
    if not manifests:
        raise FileNotFoundError(f"no exported model at {out} (run caed-export without --decoder-only)")
    for path in manifests:
        exported = json.loads(path.read_text()).get("training_step")
        if exported != step:
            raise ValueError(f"{path} was exported at step {exported}, {checkpoint} is at step {step}")
    latent_hw = model.latent_size(*INPUT_SHAPE[:2])
    latent_shape = (*latent_hw, model.latent_channels)
    export_decoder(model, out / "decoder.onnx", latent_shape)
    split = dict(zip(SPLIT_KEYS, export_decoder_split(model, out, latent_shape))) if has_split_decoder(model) else {}
    params = sum(p.numel() for p in model.decoder.parameters())
    macs = sum(layer.macs for layer in conv_layers(model.decoder, (1, model.latent_channels, *latent_hw)))
    for path in manifests:
        prefix = "" if path.parent == out else f"../{out.name}/"
        raw = json.loads(path.read_text())
        raw.update({key: prefix + name for key, name in split.items()})
        raw["params"]["decoder"], raw["macs"]["decoder"] = params, macs
        path.write_text(json.dumps(raw, indent=2) + "\n")
    return manifests


def main(argv=None) -> int:
    args = parse_args(argv)
    out = args.out or WEIGHTS_DIR / args.model
    checkpoint = args.checkpoint or CHECKPOINTS_DIR / args.model / "checkpoint.pt"
    try:
        if args.decoder_only:
            manifests = export_decoder_only(args.model, checkpoint, out)
            print(f"wrote {out}: the decoder's files, named in " + ", ".join(str(m) for m in manifests))
            return 0
        manifest = export(args.model, checkpoint, out, args.calibration, args.calibration_images)
    except (FileNotFoundError, ValueError) as e:
        print(f"caed-export: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: model_id {manifest['model_id']}, latent fix_point {manifest['latent']['fix_point']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
