"""caed-dpu-estimate: per-layer workload and latency of an encoder on a DPUCZDX8G configuration.

The DPU computes PP output pixels (along a row) x ICP input channels x OCP output channels per
cycle, 2 ops (multiply, add) each: peak = 2*PP*ICP*OCP ops/cycle. A layer occupies whole tiles,
so its efficiency is the product of how full the last tile is along each of the three axes:
    eff = C_in/(ceil(C_in/ICP)*ICP) * C_out/(ceil(C_out/OCP)*OCP) * W_out/(ceil(W_out/PP)*PP)
and its time is MOP / (peak * clock * eff). Nothing is fitted per layer: a 3-channel input layer
gets 3/ICP from the first factor, the study's 32/64-channel layers get 32/36 on ICP/OCP 12.
Throughput scales with the number of DPU cores; latency does not.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

from .workload import ConvLayer


@dataclass(frozen=True)
class DpuArch:
    name: str
    pp: int
    icp: int
    ocp: int

    @property
    def ops_per_cycle(self) -> int:
        return 2 * self.pp * self.icp * self.ocp


ARCHS = {a.name: a for a in (
    DpuArch("B512", 4, 8, 8), DpuArch("B800", 4, 10, 10), DpuArch("B1024", 8, 8, 8),
    DpuArch("B1152", 4, 12, 12), DpuArch("B1600", 8, 10, 10), DpuArch("B2304", 8, 12, 12),
    DpuArch("B3136", 8, 14, 14), DpuArch("B4096", 8, 16, 16),
)}


def _fill(n: int, lanes: int) -> float:
    return n / (math.ceil(n / lanes) * lanes)


def efficiency(layer: ConvLayer, arch: DpuArch) -> float:
    return _fill(layer.in_channels, arch.icp) * _fill(layer.out_channels, arch.ocp) * _fill(layer.out_hw[1], arch.pp)


def layer_ms(layer: ConvLayer, arch: DpuArch, clock_mhz: float) -> float:
    return 2 * layer.macs / (arch.ops_per_cycle * clock_mhz * 1e6 * efficiency(layer, arch)) * 1e3


def estimate(layers: list[ConvLayer], arch: DpuArch, clock_mhz: float, cores: int = 1) -> dict:
    rows = [{"name": l.name, "in_channels": l.in_channels, "out_channels": l.out_channels,
             "kernel": list(l.kernel), "stride": list(l.stride), "out_hw": list(l.out_hw),
             "mop": round(l.mop, 2), "efficiency": round(efficiency(l, arch), 4),
             "ms": round(layer_ms(l, arch, clock_mhz), 3)} for l in layers]
    total_ms = sum(layer_ms(l, arch, clock_mhz) for l in layers)
    return {
        "arch": arch.name, "pp_icp_ocp": [arch.pp, arch.icp, arch.ocp], "clock_mhz": clock_mhz, "cores": cores,
        "peak_gops": arch.ops_per_cycle * clock_mhz / 1e3, "layers": rows,
        "total_mop": round(sum(l.mop for l in layers), 2), "total_ms": round(total_ms, 3),
        "fps": round(cores * 1e3 / total_ms, 2),
    }


def encoder_layers(model_name: str, height: int, width: int) -> list[ConvLayer]:
    from .architectures import build
    from .workload import conv_layers

    return conv_layers(build(model_name).dpu_encoder(), (1, 3, height, width))


def parse_args(argv=None) -> argparse.Namespace:
    from .architectures import ARCHITECTURES

    p = argparse.ArgumentParser(prog="caed-dpu-estimate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="kth2020", choices=sorted(ARCHITECTURES))
    p.add_argument("--arch", default="B2304", choices=list(ARCHS))
    p.add_argument("--clock-mhz", type=float, default=150.0)
    p.add_argument("--cores", type=int, default=1, help="DPU cores (throughput only)")
    p.add_argument("--input", default="512x768", help="HxW of the encoder input")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.clock_mhz <= 0 or not 1 <= args.cores <= 4:
        p.error("--clock-mhz must be positive and --cores between 1 and 4 (DPUCZDX8G limit)")
    try:
        args.height, args.width = (int(v) for v in args.input.lower().split("x"))
    except ValueError:
        p.error(f"--input must look like 512x768, got {args.input!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        layers = encoder_layers(args.model, args.height, args.width)
    except RuntimeError as e:
        print(f"caed-dpu-estimate: {args.model} cannot encode {args.input}: {e}", file=sys.stderr)
        return 2
    result = {"model": args.model, "input_hw": [args.height, args.width],
              **estimate(layers, ARCHS[args.arch], args.clock_mhz, args.cores)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} on {args.arch} ({'/'.join(map(str, result['pp_icp_ocp']))} PP/ICP/OCP) "
          f"at {args.clock_mhz:g} MHz, {args.cores} core(s)")
    print(f"{'layer':<16}{'in':>5}{'out':>5}{'out HxW':>12}{'MOP':>10}{'eff':>7}{'ms':>9}")
    for r in result["layers"]:
        print(f"{r['name']:<16}{r['in_channels']:>5}{r['out_channels']:>5}{'x'.join(map(str, r['out_hw'])):>12}"
              f"{r['mop']:>10.2f}{r['efficiency']:>7.3f}{r['ms']:>9.3f}")
    print(f"total {result['total_mop']:.2f} MOP, {result['total_ms']:.3f} ms, {result['fps']:.1f} FPS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
