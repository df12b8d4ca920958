"""bench/inter_coder.py still patches today's arith.c, and its copy codes what the product codes."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from caed.codecs.arith import ArithCodec

BENCH = Path(__file__).parents[1] / "bench" / "inter_coder.py"

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to build the bench's coder")


def load_bench():
    spec = importlib.util.spec_from_file_location("inter_coder", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_patched_coder_codes_todays_bytes_and_its_variants_round_trip(tmp_path):
    bench = load_bench()
    binary = bench.patched_coder(tmp_path)
    rng = np.random.default_rng(3)
    shape = (6, 8, 192)
    data = tmp_path / "tensors"
    data.mkdir()
    frames = []
    for i in range(4):
        dense = i == 0  # a keyframe, then residual-like frames: a few blocks sent
        q = rng.integers(-6, 7, shape).astype(np.int8) * (rng.random(shape) < (0.2 if dense else 0.05))
        if not dense:
            q[rng.random(shape[:2]) < 0.6] = 0
        frames.append(q.astype(np.int8))
        (data / f"q1_{i:03d}_{shape[0]}x{shape[1]}x{shape[2]}.bin").write_bytes(frames[-1].tobytes())
    done = subprocess.run([str(binary), str(data), "1", "4"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr  # every variant's payloads decode back to their tensors
    sizes = dict((name, int(n)) for name, n in (line.split("\t") for line in done.stdout.splitlines()))
    assert list(sizes) == ["today", "models carried", "DC predicted as 0", "both"]
    assert sizes["today"] == sum(len(ArithCodec().encode(q)) for q in frames[1:])
    assert sizes["models carried"] != sizes["today"] and sizes["DC predicted as 0"] != sizes["today"]


def test_a_changed_coder_is_reported_not_silently_measured(tmp_path, monkeypatch):
    bench = load_bench()
    monkeypatch.setattr(bench, "PATCHES", [("no such line in arith.c", "")])
    with pytest.raises(SystemExit, match="arith.c changed"):
        bench.patched_coder(tmp_path)
