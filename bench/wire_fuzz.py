"""100k hostile and valid messages through the viewer's receive path; counts handled per reason.

    python bench/wire_fuzz.py --messages 100000 --json wire_fuzz.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import zstandard

from caed.wire import FrameEncoder
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.sinks import NullSink
from caed_host.viewer import Viewer


def hostile_messages(rng: random.Random, good: list[bytes]):
    header = msgpack.unpackb(good[1])
    mutations = [
        lambda: [rng.randbytes(rng.randint(0, 64)) for _ in range(rng.randint(0, 5))],
        lambda: good[:2] + [good[2][:rng.randint(0, len(good[2]) - 1)]],
        lambda: [good[0], msgpack.packb({**header, "shape": [4096, 4096, rng.randint(1, 4096)]}), good[2]],
        lambda: [good[0], msgpack.packb({**header, "version": rng.choice([1, *range(4, 10)])}), good[2]],
        lambda: [good[0], msgpack.packb({**header, "seq": str(rng.random())}), good[2]],
        lambda: [good[0], msgpack.packb({**header, "dtype": "float64"}), good[2]],
        lambda: [good[0], b"\x8f" + rng.randbytes(600), good[2]],
        lambda: [good[0], good[1], zstandard.ZstdCompressor().compress(bytes(rng.randint(1, 1 << 20)))],
        lambda: [b"other/", good[1], good[2]],
        lambda: good,
    ]
    while True:
        yield rng.choice(mutations)()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=Path("wire_fuzz.json"))
    args = p.parse_args(argv)
    good = FrameEncoder("cam0", "m", "zstd").encode(np.ones((62, 94, 32), np.int8), picture=(512, 768), fix_point=4,
                                                    seq=0, frame_index=0, t_capture_ns=0)
    viewer = Viewer(None, DecoderSet(), NullSink(), ViewerMetrics())
    messages = hostile_messages(random.Random(args.seed), good)
    t0 = time.perf_counter()
    for _ in range(args.messages // 100):
        viewer.take([next(messages) for _ in range(100)])
    elapsed = time.perf_counter() - t0
    s = viewer.stats
    report = {"messages": s.received, "accepted": s.received - sum(s.rejected.values()),
              "rejected_by_reason": dict(sorted(s.rejected.items())),
              "seconds": elapsed, "messages_per_second": s.received / elapsed}
    args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
