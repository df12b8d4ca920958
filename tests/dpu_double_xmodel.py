"""Write the ".xmodel" files the xir/vart test double loads (JSON, not a real xmodel).

    python tests/dpu_double_xmodel.py --model kth2020 --out /tmp/enc.xmodel \
        --cores 2 --latency-ms 35.72

File layout: `name`, `attrs`, `tensors` {name: {dims, dtype, attrs{fix_point}}}, `subgraphs`
(children of the root in topological order: {name, device USER|DPU|CPU, attrs, inputs,
outputs, onnx{path, inputs{tensor: onnx name}, outputs{...}}}) and `dpu`, the simulated
board: cores, latency_ms (one value, or a list used per job in turn), batch (runner dims[0]),
outputs ("compute" = run the ONNX model for every job, "replay-first" = compute the first job
and return its outputs for every later one, for timing runs on a host too slow to compute at
DPU speed), api ("3.x", "1.3", "1.2"), fingerprint (of the loaded DPU), stats_file (JSON
written at exit with per-core busy time).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

B2304_FINGERPRINT = 0x0101000016010405  # DPUCZDX8G_ISA1_B2304 (reference §3.3)
STUDY_B2304_LATENCY_MS = 35.72          # KTH 2020, B2304 @ 150 MHz, 512x768 encoder


def write_xmodel(path: Path, *, encoder_onnx: Path, input_shape: tuple[int, int, int], input_fix_point: int,
                 latent_shape: tuple[int, int, int], latent_fix_point: int, onnx_input: str = "image",
                 onnx_output: str = "latent", devices: tuple[str, ...] = ("USER", "DPU"), cores: int = 1,
                 latency_ms: float | list[float] = STUDY_B2304_LATENCY_MS, batch: int = 1,
                 outputs: str = "compute", api: str = "3.x", fingerprint: int | None = None,
                 stats_file: Path | None = None, name: str = "caed_encoder") -> Path:
    """Write an xmodel whose DPU subgraph(s) run `encoder_onnx`; returns `path`."""
    path = Path(path)
    tensors = {
        "image": {"dims": [1, *input_shape], "dtype": "float32", "attrs": {}},
        "image_fix": {"dims": [1, *input_shape], "dtype": "xint8", "attrs": {"fix_point": input_fix_point}},
        "latent_fix": {"dims": [1, *latent_shape], "dtype": "xint8", "attrs": {"fix_point": latent_fix_point}},
    }
    onnx = {"path": os.path.relpath(Path(encoder_onnx).resolve(), path.resolve().parent),
            "inputs": {"image_fix": onnx_input}, "outputs": {"latent_fix": onnx_output}}
    subgraphs = []
    for i, device in enumerate(devices):
        sg = {"name": f"subgraph_{device.lower()}_{i}", "device": device}
        if device == "USER":
            sg["outputs"] = ["image"]
        elif device == "DPU":
            sg |= {"attrs": {"dpu_fingerprint": B2304_FINGERPRINT, "dpu_name": "DPUCZDX8G_ISA1_B2304"},
                   "inputs": ["image_fix"], "outputs": ["latent_fix"], "onnx": onnx}
        subgraphs.append(sg)
    dpu = {"cores": cores, "latency_ms": latency_ms if isinstance(latency_ms, list) else [latency_ms],
           "batch": batch, "outputs": outputs, "api": api}
    if fingerprint is not None:
        dpu["fingerprint"] = fingerprint
    if stats_file is not None:
        dpu["stats_file"] = str(stats_file)
    doc = {"format": "dpu-double-xmodel", "name": name, "attrs": {}, "tensors": tensors,
           "subgraphs": subgraphs, "dpu": dpu}
    path.write_text(json.dumps(doc, indent=1))
    return path


def write_for_model(spec, path: Path, input_hw: tuple[int, int] | None = None, **options) -> Path:
    """An xmodel for a shipped model (a manifest.ModelSpec with an int8 encoder), compiled for
    `input_hw` (default: the manifest's input size), and the model.json beside it, as
    caed_models.vitis_build writes them (the int8 encoder already puts its latents on the rate's
    grid, so no scale is folded: dpu_latent_scale_log2 = 0)."""
    if spec.encoder_int8 is None:
        raise ValueError(f"model {spec.name} has no int8 encoder")
    input_shape, latent_shape = spec.input_shape, spec.latent_shape
    if input_hw is not None and tuple(input_hw) != spec.input_shape[:2]:
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession(str(spec.encoder_int8), providers=["CPUExecutionProvider"])
        _, c, h, w = session.run(None, {"image": np.zeros((1, *input_hw, 3), np.float32)})[0].shape
        input_shape, latent_shape = (*input_hw, 3), (h, w, c)
    manifest = {**spec.manifest, "dpu_latent_scale_log2": 0, "input": {**spec.manifest["input"], "shape": input_shape},
                "latent": {**spec.manifest["latent"], "shape": latent_shape}}
    (Path(path).parent / "model.json").write_text(json.dumps(manifest, indent=2))
    return write_xmodel(path, encoder_onnx=spec.encoder_int8, input_shape=input_shape,
                        input_fix_point=spec.input_fix_point, latent_shape=latent_shape,
                        latent_fix_point=spec.latent_fix_point, name=spec.model_id, **options)


def main(argv: list[str] | None = None) -> None:
    from caed import manifest

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="shipped model name or model.json path")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--latency-ms", type=float, nargs="+", default=[STUDY_B2304_LATENCY_MS])
    p.add_argument("--outputs", choices=["compute", "replay-first"], default="compute")
    p.add_argument("--stats-file", type=Path)
    a = p.parse_args(argv)
    write_for_model(manifest.find(a.model), a.out, cores=a.cores, latency_ms=a.latency_ms,
                    outputs=a.outputs, stats_file=a.stats_file)
    print(a.out)


if __name__ == "__main__":
    main()
