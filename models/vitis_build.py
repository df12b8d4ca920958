"""Build a DPU .xmodel of a shipped codec's encoder with the Vitis AI tools (run inside the
Vitis AI docker, `conda activate vitis-ai-pytorch`, with this package installed: `pip install -e .`).

    python -m caed_models.vitis_build --model dct8-q1 \\
        --arch-json /opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU102/arch.json --out build/dpu/dct8-q1

The encoder is the shipped one: the weights of the model's float encoder.onnx go into its PyTorch
definition, so the DPU computes the encoder whose decoder the host has, in the colour order it
takes (BGR for the shipped models, as model.json says). A rate k of a multi-rate
family (dct8-q<k>) divides the encoder's last convolution by 2**k, exact in floating point and on
the DPU's power-of-two grid, so the DPU rounds straight to that rate's steps; the model.json
written beside the xmodel says so ("dpu_latent_scale_log2": k) and the daemon puts the xmodel's
output fix_point minus k on the wire.

Steps (UG1414 "vai_q_pytorch" and "Compiling the Model"):
 1. vai_q_pytorch calibration: torch_quantizer("calib", encoder, dummy NCHW input), forward the
    calibration images (the daemon's int8 input grid, 2**-input fix_point, in the encoder's
    colour order), export_quant_config();
 2. vai_q_pytorch test/export: torch_quantizer("test", ...), one forward at batch size 1,
    export_xmodel() -> <out>/quantized/<Encoder>_int.xmodel;
 3. vai_c_xir -x <Encoder>_int.xmodel -a <arch.json> -o <out> -n caed_<model>
    -> <out>/caed_<model>.xmodel, which the daemon's `vart` backend loads, and <out>/model.json.
Only the encoder goes to the DPU; the decoder runs on the host (ONNX). The script checks that
the compiled graph has one DPU subgraph and that its input fix_point is 7, and prints the latent
fix_point the daemon will put on the wire.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from caed.manifest import DEFAULT_MODEL, ModelNotFound, find

from .train import DEFAULT_DATA

NOT_IN_DOCKER = ("{tool} not found: run this inside the Vitis AI docker (xilinx/vitis-ai-pytorch-cpu or -gpu), "
                 "after `conda activate vitis-ai-pytorch`")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m caed_models.vitis_build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name or model.json path (default: {DEFAULT_MODEL})")
    p.add_argument("--arch-json", type=Path, required=True,
                   help="the board's arch.json, e.g. /opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU102/arch.json, "
                        "or the one generated with a custom DPU (B512...B4096) build")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--calibration", type=Path, default=DEFAULT_DATA)
    p.add_argument("--calibration-images", type=int, default=200)
    p.add_argument("--input", default="512x768",
                   help="HxW the DPU will see: the camera's size (native streaming) or the size the daemon "
                        "scales it to; an xmodel has one fixed input size (default 512x768)")
    args = p.parse_args(argv)
    try:
        args.height, args.width = (int(v) for v in args.input.lower().split("x"))
    except ValueError:
        p.error(f"--input must look like 720x1280 (height x width), got {args.input!r}")
    return args


def require_tools() -> None:
    try:
        import pytorch_nndct  # noqa: F401
    except ImportError:
        raise SystemExit(NOT_IN_DOCKER.format(tool="vai_q_pytorch (pytorch_nndct)")) from None
    if shutil.which("vai_c_xir") is None:
        raise SystemExit(NOT_IN_DOCKER.format(tool="vai_c_xir"))


def prepare_encoder(model: str):
    """(the shipped encoder as a PyTorch module for vai_q_pytorch, the manifest to ship beside
    the xmodel, the model's ModelSpec)."""
    import torch
    from torch import nn

    from .architectures import build

    try:
        spec = find(model)
    except ModelNotFound as e:
        raise SystemExit(str(e)) from None
    manifest = spec.manifest
    try:
        from .onnx_io import load_encoder_weights
    except ImportError:
        raise SystemExit("reading the shipped encoder.onnx needs the onnx package: pip install onnx") from None
    codec = build(manifest["architecture"])
    load_encoder_weights(codec, spec.encoder)
    encoder = codec.dpu_encoder()
    shift = int(manifest.get("rate_index", 0))
    if shift:  # a positive power of two commutes with ReLU and with the DPU's rounding grid
        last = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight /= 2 ** shift
            last.bias /= 2 ** shift
    return encoder.eval(), {**manifest, "dpu_latent_scale_log2": shift}, spec


def manifest_for_input(manifest: dict, height: int, width: int) -> dict:
    """The manifest to ship beside an xmodel compiled for height x width: its input and latent
    shapes are the xmodel's (the vart backend refuses a manifest that describes another size)."""
    from .architectures import build

    model = build(manifest["architecture"])
    if height <= 0 or width <= 0 or height % model.size_multiple or width % model.size_multiple:
        raise SystemExit(f"--input {height}x{width}: {manifest['architecture']} needs a height and width that are "
                         f"positive multiples of {model.size_multiple}")
    latent_h, latent_w = model.latent_size(height, width)
    return {**manifest, "input": {**manifest["input"], "shape": [height, width, 3]},
            "latent": {**manifest["latent"], "shape": [latent_h, latent_w, model.latent_channels]}}


def calibration_batches(folder: Path, count: int, height: int, width: int, colours: str, fix_point: int):
    """NCHW float tensors on the daemon's int8 input grid (scale 2**-fix_point), centre-cropped to
    the DPU input size, in the encoder's colour order."""
    import torch

    from caed.fixed_point import cover_and_crop, encoder_input_float

    from .data import image_paths, load_rgb

    for path in image_paths(folder)[:count]:
        q = encoder_input_float(cover_and_crop(load_rgb(path), width, height), fix_point, colours)
        yield torch.from_numpy(q).permute(2, 0, 1)[None].contiguous()


def main(argv=None) -> int:
    args = parse_args(argv)
    height, width = args.height, args.width
    if not args.arch_json.is_file():
        raise SystemExit(f"arch.json not found: {args.arch_json}")
    encoder, manifest, spec = prepare_encoder(args.model)
    manifest = manifest_for_input(manifest, height, width)
    require_tools()
    import torch
    from pytorch_nndct.apis import torch_quantizer

    dummy = torch.zeros(1, 3, height, width)
    quant_dir = args.out / "quantized"
    cpu = torch.device("cpu")

    quantizer = torch_quantizer("calib", encoder, (dummy,), output_dir=str(quant_dir), device=cpu)
    with torch.no_grad():
        for batch in calibration_batches(args.calibration, args.calibration_images, height, width, spec.input_colours,
                                         spec.input_fix_point):
            quantizer.quant_model(batch)
    quantizer.export_quant_config()

    quantizer = torch_quantizer("test", encoder, (dummy,), output_dir=str(quant_dir), device=cpu)
    with torch.no_grad():
        quantizer.quant_model(next(calibration_batches(args.calibration, 1, height, width, spec.input_colours,
                                                       spec.input_fix_point)))
    quantizer.export_xmodel(output_dir=str(quant_dir), deploy_check=False)
    int_xmodels = sorted(quant_dir.glob("*_int.xmodel"))
    if len(int_xmodels) != 1:
        raise SystemExit(f"expected one *_int.xmodel in {quant_dir}, found {[p.name for p in int_xmodels]}")

    net = "caed_" + spec.name.replace("-", "_")
    cmd = ["vai_c_xir", "-x", str(int_xmodels[0]), "-a", str(args.arch_json), "-o", str(args.out), "-n", net]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    (args.out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return check_xmodel(args.out / f"{net}.xmodel", manifest["dpu_latent_scale_log2"], spec.input_fix_point)


def check_xmodel(path: Path, latent_scale_log2: int, input_fix_point: int) -> int:
    """The whole encoder on the DPU: one DPU subgraph and no CPU one (an op the compiler left to
    the A53 would run there for every frame, between the image and the latents), whose input is
    on the grid it was calibrated on; report the wire's latent fix_point."""
    import xir

    children = xir.Graph.deserialize(str(path)).get_root_subgraph().toposort_child_subgraph()
    device = {s.get_name(): s.get_attr("device").upper() for s in children if s.has_attr("device")}
    dpu = [s for s in children if device.get(s.get_name()) == "DPU"]
    cpu = [name for name, kind in device.items() if kind == "CPU"]
    if len(dpu) != 1 or cpu:
        print(f"{path}: {len(dpu)} DPU subgraph(s) and CPU subgraph(s) {cpu}: the encoder must run on the DPU "
              "alone (see the compiler log for the ops it left to the CPU)", file=sys.stderr)
        return 1
    (inp,), (out,) = dpu[0].get_input_tensors(), dpu[0].get_output_tensors()
    in_fp, out_fp = inp.get_attr("fix_point"), out.get_attr("fix_point")
    print(f"{path}: input {inp.name} {inp.dims} fix_point {in_fp}; output {out.name} {out.dims} fix_point {out_fp} "
          f"(wire latent fix_point {out_fp - latent_scale_log2})")
    if in_fp != input_fix_point:
        print(f"input fix_point is not {input_fix_point}: the model was calibrated on images quantized to "
              f"2**-{input_fix_point}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
