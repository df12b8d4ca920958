"""bench/inter_coder.py measures what it says: its 'protocol 2' is every tensor coded alone, its
'protocol 3' what the arith codec sends for inter frames today."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from caed.codecs.arith import ArithCodec

BENCH = Path(__file__).parents[1] / "bench" / "inter_coder.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("inter_coder", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ways_are_protocol_2_and_3_and_each_part_alone():
    bench = load_bench()
    rng = np.random.default_rng(3)
    shape = (6, 8, 192)
    stream = []
    for i in range(4):
        q = (rng.integers(-6, 7, shape) * (rng.random(shape) < (0.2 if i == 0 else 0.05))).astype(np.int8)
        if i:
            q[rng.random(shape[:2]) < 0.6] = 0  # residuals: a few blocks sent
        stream.append((i == 0, q))
    codec = ArithCodec()
    assert bench.inter_bytes(stream, False, False) == sum(len(codec.encode(q)) for _, q in stream[1:])
    _, state = codec.encode_keyframe(stream[0][1])
    sent = 0
    for _, q in stream[1:]:
        payload, state = codec.encode_residuals(q, state)
        sent += len(payload)
    assert bench.inter_bytes(stream, True, True) == sent
    sizes = {bench.inter_bytes(stream, carried, dc_zero) for carried in (False, True) for dc_zero in (False, True)}
    assert len(sizes) == 4  # each part changes the bytes
