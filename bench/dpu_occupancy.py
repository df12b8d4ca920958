"""Does the vart backend keep the DPU busy? FPS against the accelerator bound, on the timed test double.

    PYTHONPATH=tests/dpu_double .venv/bin/python bench/dpu_occupancy.py --out bench/results/dpu_occupancy.json

For each configuration (runner threads x DPU cores) the encoder runs on the vart/xir double
(tests/dpu_double) whose cores each hold a job for the study's B2304 @ 150 MHz latency
(35.72 ms); the double returns the first frame's real int8 latents for every later job
("replay-first"), so the host CPU does not have to run the encoder at DPU speed. Reported per
configuration: FPS, the accelerator bound (cores / latency), their ratio, per-core DPU busy
fraction, and the CPU time per frame spent outside the DPU. `--level daemon` (default) runs the
`caed` CLI on a synthetic source (CPU time from its JSON summary: the capture, preprocess,
compress and publish threads, and the rest of the process outside the encoder's runs);
`--level backend` drives `VartEncoder.submit()` alone with a bounded in-flight window (CPU time =
the whole process, i.e. the encoder's host side).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
A53_FACTOR = 10.0
DOUBLE = REPO / "tests" / "dpu_double"


def _double():
    """Import the test double and its xmodel writer (never shipped; only this benchmark and the
    tests use them)."""
    for folder in (DOUBLE, DOUBLE.parent):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    import dpu_double_xmodel
    import vart

    return dpu_double_xmodel, vart


def run_backend(xmodel: Path, workers: int, seconds: float) -> dict:
    """Feed VartEncoder.submit() for `seconds`, keeping `workers` jobs in flight, oldest first."""
    from caed.encoders.vart import VartEncoder

    _, vart = _double()
    encoder = VartEncoder(xmodel, workers=workers)
    rng = np.random.default_rng(0)
    frames = [rng.integers(-128, 128, size=encoder.input.shape, dtype=np.int8) for _ in range(8)]
    try:
        encoder.submit(frames[0]).result()  # the double computes its replayed output here
        slot = encoder._runners.get()
        encoder._runners.put(slot)
        device = vart.device_of(slot.runner)
        before = device.stats()
        in_flight: deque = deque()
        done = 0
        cpu0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            while len(in_flight) < workers:
                in_flight.append(encoder.submit(frames[(done + len(in_flight)) % len(frames)]))
            in_flight.popleft().result()
            done += 1
        while in_flight:
            in_flight.popleft().result()
            done += 1
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
        after = device.stats()
    finally:
        encoder.close()
    busy = [a - b for a, b in zip(after["busy_s"], before["busy_s"])]
    return {"frames": done, "seconds": wall, "fps": done / wall, "cpu_ms_per_frame": 1000 * cpu / done,
            "dpu_busy_fraction": [b / wall for b in busy], "overruns": after["overruns"] - before["overruns"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_daemon(xmodel: Path, workers: int, seconds: float, source_fps: float, workdir: Path,
               picture: str = "fit") -> dict:
    """Run `caed` on a synthetic source (of the xmodel's size, or `picture` HxW) with the double on
    its import path; read its JSON summary and the double's per-core statistics."""
    summary, stats_file = workdir / f"summary-{xmodel.stem}-{workers}.json", Path(f"{xmodel}.stats.json")
    stats_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "caed.cli", "--source", "synthetic", "--resolution", picture, "--fps", str(source_fps),
           "--backend", "vart", "--model", str(xmodel), "--workers", str(workers), "--duration", str(seconds),
           "--bind", f"tcp://127.0.0.1:{_free_port()}", "--metrics-port", "0", "--json", str(summary),
           "--log-level", "warning"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(DOUBLE), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise SystemExit(f"caed failed ({done.returncode}): {done.stderr.strip()}")
    s = json.loads(summary.read_text())
    dpu = json.loads(stats_file.read_text())
    span = dpu["active_span_s"]
    return {"frames": s["frames_published"], "seconds": s["elapsed_s"], "fps": s["fps"],
            "frames_captured": s["frames_captured"], "frames_dropped_stale": s["frames_dropped_stale"],
            "cpu_ms_per_frame": s["cpu_ms_per_frame"],
            "cpu_ms_per_frame_outside_encoder": s["cpu_ms_per_frame_outside_encoder"],
            "dpu_busy_fraction": [b / span if span else 0.0 for b in dpu["busy_s"]],
            "dpu_jobs_per_core": dpu["jobs_per_core"], "overruns": dpu["overruns"]}


def a53_load(r: dict, factor: float) -> dict:
    """Each daemon thread's share of one Cortex-A53 core at the measured rates:
    x86 CPU ms per frame x factor x frames per second (capture runs per captured frame; compress
    is shared by the encoder workers)."""
    rates = {"capture": r["frames_captured"] / r["seconds"], "preprocess": r["fps"], "compress": r["fps"],
             "publish": r["fps"], "other": r["fps"]}
    return {k: factor * ms * rates[k] / 1000 for k, ms in r["cpu_ms_per_frame"].items()}


def write_model(directory: Path, model: str, cores: int, latency_ms: float, stats: bool,
                input_hw: tuple[int, int] | None = None) -> Path:
    """The double's xmodel; with `stats`, the daemon process writes the double's statistics beside it."""
    from caed import manifest

    dpu_double_xmodel, _ = _double()
    spec = manifest.find(model)
    path = directory / f"{spec.name}-{cores}core.xmodel"
    return dpu_double_xmodel.write_for_model(spec, path, input_hw, cores=cores, latency_ms=latency_ms,
                                             outputs="replay-first",
                                             stats_file=Path(f"{path}.stats.json") if stats else None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="kth2020", help="shipped model name or model.json (needs an int8 encoder)")
    p.add_argument("--latency-ms", type=float, default=35.72, help="DPU latency per frame (study: B2304 @ 150 MHz)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per configuration")
    p.add_argument("--level", choices=["daemon", "backend"], default="daemon",
                   help="daemon: the caed CLI end to end; backend: VartEncoder.submit() alone")
    p.add_argument("--source-fps", type=float, default=100.0, help="synthetic source rate (daemon level)")
    p.add_argument("--a53-factor", type=float, default=A53_FACTOR,
                   help="x86 CPU time -> Cortex-A53 @ 1.2 GHz CPU time (derivation: docs/dpu.md)")
    p.add_argument("--picture", default="", help="HxW: a camera of that size, streamed natively through an xmodel "
                                                 "built for it (default: the model's input size)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    input_hw = tuple(int(v) for v in a.picture.split("x")) if a.picture else None

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for cores in a.cores:
            xmodel = write_model(Path(tmp), a.model, cores, a.latency_ms, stats=a.level == "daemon", input_hw=input_hw)
            for workers in a.workers:
                if a.level == "daemon":
                    r = run_daemon(xmodel, workers, a.seconds, a.source_fps, Path(tmp), a.picture or "fit")
                else:
                    r = run_backend(xmodel, workers, a.seconds)
                bound = cores * 1000 / a.latency_ms
                r |= {"workers": workers, "cores": cores, "accelerator_bound_fps": bound,
                      "fps_over_bound": r["fps"] / bound}
                if a.level == "daemon":
                    r["a53_core_load_per_thread"] = a53_load(r, a.a53_factor)
                results.append(r)
                cpu = r.get("cpu_ms_per_frame_outside_encoder", r["cpu_ms_per_frame"])
                print(f"cores={cores} workers={workers}: {r['fps']:.2f} fps = {r['fps_over_bound']:.3f} of "
                      f"{bound:.1f}, cpu {cpu:.2f} ms/frame, busy "
                      f"{[round(b, 3) for b in r['dpu_busy_fraction']]}", flush=True)
    fps = {(r["cores"], r["workers"]): r["fps"] for r in results}
    scaling = {str(w): fps[(2, w)] / fps[(1, w)] for w in a.workers if (1, w) in fps and (2, w) in fps}
    doc = {"level": a.level, "model": a.model, "latency_ms": a.latency_ms, "seconds_per_config": a.seconds,
           "source_fps": a.source_fps if a.level == "daemon" else None, "a53_factor": a.a53_factor,
           "host": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "loadavg": os.getloadavg()},
           "configs": results, "two_core_over_one_core_fps": scaling}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1))
    print(json.dumps({"two_core_over_one_core_fps": scaling}))


if __name__ == "__main__":
    main()
