"""bench/inter_coder.py measures what it says: its 'protocol 2' is every tensor coded alone, its
'protocol 3' the arith codec's inter frames without their reference's values, its 'protocol 4'
with them, its 'protocol 5' what it sends today (the positions sent coded too)."""
from __future__ import annotations

import numpy as np

from caed.codecs.arith import ArithCodec
from caed.codecs.base import Reference

from bench_scripts import load_bench


def test_the_ways_are_protocols_2_to_5_and_each_part_alone():
    bench = load_bench("inter_coder")
    rng = np.random.default_rng(3)
    shape = (6, 8, 192)
    stream = []
    for i in range(4):
        q = (rng.integers(-6, 7, shape) * (rng.random(shape) < (0.2 if i == 0 else 0.05))).astype(np.int8)
        reference = sent = None
        if i:
            q[rng.random(shape[:2]) < 0.6] = 0  # residuals: a few blocks sent
            sent = q.any(axis=2) | (rng.random(shape[:2]) < 0.1)  # and a few sent all zero
            reference = Reference(rng.integers(-40, 41, (shape[0] * shape[1], shape[2])).astype(np.int16), 1)
        stream.append((i == 0, q, reference, sent))
    codec = ArithCodec()
    assert bench.inter_bytes(stream, False, False)[0] == sum(len(codec.encode(q)) for _, q, _, _ in stream[1:])
    sizes = {}
    for contexts, positions in ((False, False), (True, False), (True, True)):
        _, state = codec.encode_keyframe(stream[0][1])
        coded = 0
        for _, q, reference, sent in stream[1:]:
            payload, state = codec.encode_residuals(q, state, reference if contexts else None,
                                                    sent if positions else None)
            coded += len(payload)
        sizes[contexts, positions] = coded
        total, encode_s, decode_s = bench.inter_bytes(stream, True, True, contexts, positions)
        assert total == coded and len(encode_s) == len(decode_s) == 3
    assert len(set(sizes.values())) == 3
    ways = {bench.inter_bytes(stream, carried, dc_zero)[0] for carried in (False, True) for dc_zero in (False, True)}
    assert len(ways) == 4  # each part changes the bytes
