"""bench/a53_budget.py does what docs/dpu.md says: its 128-bit mode really holds OpenCV and NumPy to
128-bit SIMD (either library ignores a switch name it does not know, with at most a warning, and the run would
then measure AVX-512 twice), and each row's A53 cores are its threads' x86 time x 10 x 30."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
from bench_scripts import load_bench

PROBE = """
import cv2
from numpy._core._multiarray_umath import __cpu_dispatch__
from numpy.lib._utils_impl import _opt_info
wide = [n for n, i in (("AVX", 10), ("AVX2", 11), ("AVX512F", 13)) if cv2.checkHardwareSupport(i)]
print(",".join(wide) or "-", _opt_info())
"""


def probe(env: dict) -> tuple[str, str]:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], " ".join(out[1:])


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the switches name x86-64's SIMD levels")
def test_the_128_bit_mode_leaves_opencv_and_numpy_no_wider_kernels():
    bench = load_bench("a53_budget")
    opencv_wide, numpy_dispatch = probe(bench.SIMD_128)
    assert opencv_wide == "-"
    assert "*" not in numpy_dispatch  # NumPy marks each dispatch target it uses with "*", "?" where it does not
    assert numpy_dispatch.split()[0] == "X86_V2"  # its baseline, SSE4.2


def test_a_run_reports_its_threads_and_their_a53_cores(tmp_path, monkeypatch):
    bench = load_bench("a53_budget")
    monkeypatch.setattr(bench, "CONFIGS", {"default": []})
    out = tmp_path / "budget.json"
    assert bench.main(["--json", str(out), "--runs", "1", "--frames", "12"]) == 0
    result = json.loads(out.read_text())
    assert set(result["runs"]["default"]) == set(bench.MODES)
    for rows in result["runs"]["default"].values():
        (row,) = rows
        outside = sum(row[k] for k in bench.THREADS)
        assert row["compress"] > 0 and row["bytes_per_frame"] > 0
        assert abs(row["outside_encoder_and_camera_ms"] - outside) < 0.01
        assert abs(row["a53_cores_at_30fps"] - outside * 10 * 30 / 1000) < 0.01
