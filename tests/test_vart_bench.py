"""bench/dpu_occupancy.py still runs against the daemon and reports what docs/dpu.md quotes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tiny_models import write_tiny_encoder

BENCH = Path(__file__).parents[1] / "bench" / "dpu_occupancy.py"


def test_occupancy_benchmark_reports_fps_bound_busy_and_cpu(tmp_path):
    write_tiny_encoder(tmp_path / "encoder_int8.onnx", 64, 96, 4)
    manifest = {"model_id": "tiny-bench", "input": {"shape": [64, 96, 3], "fix_point": 7},
                "latent": {"shape": [32, 48, 4], "fix_point": 4}, "encoder": "encoder_int8.onnx",
                "encoder_int8": "encoder_int8.onnx", "decoder": "decoder.onnx"}
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    out = tmp_path / "occupancy.json"
    done = subprocess.run([sys.executable, str(BENCH), "--model", str(tmp_path / "model.json"), "--seconds", "3",
                           "--cores", "2", "--workers", "2", "--latency-ms", "50", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    (config,) = doc["configs"]
    assert (config["cores"], config["workers"]) == (2, 2)
    assert config["accelerator_bound_fps"] == 2 * 1000 / 50
    assert config["frames"] > 0 and config["fps"] > 0
    assert config["fps_over_bound"] == config["fps"] / config["accelerator_bound_fps"]
    assert len(config["dpu_busy_fraction"]) == 2 and all(0 < b <= 1.0 + 1e-9 for b in config["dpu_busy_fraction"])
    assert sum(config["dpu_jobs_per_core"]) >= config["frames"]
    assert config["cpu_ms_per_frame_outside_encoder"] > 0
    assert set(config["a53_core_load_per_thread"]) == {"capture", "preprocess", "compress", "publish", "other"}
