"""bench/arith_variants.py measures what it says: every variant's patch still applies to today's
arith.c, builds, round-trips (the driver checks each frame) and codes other bytes than today's
core, and the summary's figures are the changes of those bytes and times."""
from __future__ import annotations

import math

import numpy as np
import pytest

from arith_latents import blocky
from bench_scripts import load_bench, stale_patches


@pytest.fixture(scope="module")
def bench():
    return load_bench("arith_variants")


def test_every_variant_applies_builds_round_trips_and_changes_the_bytes(bench, tmp_path):
    data = tmp_path / "latents"
    data.mkdir()
    for i in range(2):
        q = blocky(i, (12, 16, 192))
        q.tofile(data / f"q1_{i:03d}_12x16x192.bin")
    names = bench.variant_names()
    assert {"bypass-signs", "row-updates", "symbol-classes", "symbol-levels"} <= set(names)
    builds = {"today": bench.build(bench.ROOT / "daemon" / "csrc", tmp_path / "today")}
    for name in names:
        builds[name] = bench.build(bench.patched_core(name, tmp_path / f"{name}_src"), tmp_path / name)
    measured = bench.measure(data, builds, [1], 1, 1, 1)  # the driver exits non-zero if a frame does not round-trip
    today = measured["today"]["bytes"]["q1"]
    for name in names:
        assert measured[name]["bytes"]["q1"] != today, name


def test_a_patch_that_no_longer_applies_names_itself(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "PATCHES", stale_patches(tmp_path / "patches", "daemon/csrc/arith.c"))
    with pytest.raises(RuntimeError, match="stale.patch no longer applies"):
        bench.patched_core("stale", tmp_path / "src")


def test_summary_is_the_byte_and_time_changes_against_today(bench):
    measured = {
        "today": {"bytes": {"q0": 1000, "q1": 400}, "encode_ms": [4.0, 3.0, 5.0], "decode_ms": [2.0, 2.0, 2.0]},
        "faster": {"bytes": {"q0": 1100, "q1": 440}, "encode_ms": [2.0, 3.0, 1.0], "decode_ms": [3.0, 3.0, 3.0]},
        "row-updates": {"bytes": {"q0": 1000, "q1": 500}, "encode_ms": [9.0], "decode_ms": [9.0]},
    }
    summary = bench.summarize(measured)
    faster = summary["variants"]["faster"]
    assert faster["bytes_change_pct"] == pytest.approx({"q0": 10.0, "q1": 10.0})
    assert faster["mean_bytes_change_pct"] == pytest.approx(10.0)
    assert faster["encode_change_pct"] == pytest.approx(-50.0)  # medians 2.0 against 4.0
    assert faster["decode_change_pct"] == pytest.approx(50.0)
    rows = summary["variants"]["row-updates"]
    assert not rows["timed"] and "encode_change_pct" not in rows
    assert rows["mean_bytes_change_pct"] == pytest.approx(100.0 * (math.sqrt(1.25) - 1.0))
    assert np.isclose(rows["bytes_change_pct"]["q1"], 25.0)
