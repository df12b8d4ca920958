"""bench/temporal_cpu.py times the temporal encoder in both SIMD modes. The libraries' vector width
must not change a decision, so both modes code the same payload bytes; the figures are per frame."""
from __future__ import annotations

import json

from bench_scripts import load_bench


def test_both_simd_modes_code_the_same_bytes(tmp_path):
    bench = load_bench("temporal_cpu")
    out = tmp_path / "temporal.json"
    assert bench.main(["--source", "cctv", "--frames", "4", "--rates", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = result["runs"]["rate 1"]
    assert set(runs) == set(bench.MODES) and result["latents"] == [64, 96, 192]
    (wide,), (narrow,) = (list(by_version.values()) for by_version in runs.values())
    assert wide["bytes"] == narrow["bytes"] > 0
    assert len(wide["ms_per_frame"]) == 3 and all(t > 0 for t in wide["ms_per_frame"] + narrow["ms_per_frame"])
