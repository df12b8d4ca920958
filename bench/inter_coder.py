"""What protocols 3 to 5's coding of inter frames saves over protocol 2's, and each part: an
inter frame's arith payload starting from the models its reference's payload left, its residual
DCs predicted as 0 (protocol 3), contexts read from the reference's values (protocol 4), and the
positions sent coded, with only their blocks (protocol 5) (docs/temporal.md, "Coding the residuals").

    python bench/inter_coder.py --video ../shared/data/video/vtest.avi [--frames 60] [--rates 1,2,3] \
        [--json bench/results/inter_coder_vtest.json]

The clip's first frames at their own size go through caed-eval's model and the daemon's temporal
encoder (`reference = "previous"`, each rate its own run); the residual tensors it hands its
payload codec (and the reference values and positions it was given) are coded again by the arith
core six ways, every payload decoded back and checked.
Prints the inter frames' bytes per way and rate, and protocol 5's encode and decode time against
protocol 4's (thread CPU time, p50 over the inter frames).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from caed import _arith
from caed.codecs.base import Reference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402

# (name, models carried from the reference's payload, residual DCs predicted as 0, reference contexts,
# positions coded)
WAYS = (("protocol 2", False, False, False, False), ("models carried", True, False, False, False),
        ("DC predicted as 0", False, True, False, False), ("protocol 3", True, True, False, False),
        ("protocol 4", True, True, True, False), ("protocol 5", True, True, True, True))


def residual_streams(video: Path, frames: int, rates: list[int], interval: int) -> dict[int, list]:
    """Per rate, the tensors the temporal encoder coded, frame by frame: (keyframe?, int8 (H, W, C),
    the reference's values as the codec was given them or None, the positions sent or None)."""
    from caed.codecs import create_codec
    from caed.manifest import find
    from caed.temporal import TemporalEncoder
    from caed_models.evaluate import ModelCodec, family_finest
    from caed_models.video import int8_latents, read_frames

    spec = family_finest(find("dct8-q0"))
    model = ModelCodec(spec)
    pictures, _ = read_frames(video, frames, None)
    latents = [int8_latents(model, rgb, spec.latent_fix_point) for rgb in pictures]

    class Recording:
        """The arith codec, keeping what it was given to code."""

        def __init__(self):
            self.codec, self.coded = create_codec("arith"), []

        def encode_keyframe(self, q):
            self.coded.append((True, np.ascontiguousarray(q), None, None))
            return self.codec.encode_keyframe(q)

        def encode_residuals(self, q, start, reference=None, sent=None):
            kept = None if reference is None else Reference(reference.values.copy(), reference.shift)
            self.coded.append((False, np.array(q), kept, None if sent is None else sent.copy()))  # the encoder reuses q
            return self.codec.encode_residuals(q, start, reference, sent)

        def __getattr__(self, name):
            return getattr(self.codec, name)

    streams = {}
    for rate in rates:
        codec = Recording()
        encoder = TemporalEncoder(codec, latents[0].shape, spec.latent_fix_point, interval, "previous", rate=rate)
        for q in latents:
            before = len(codec.coded)
            encoder.encode(q)
            del codec.coded[before:-1]  # a keyframe coded again coarser: the last one is sent
        streams[rate] = codec.coded
    return streams


def inter_bytes(stream: list, carried: bool, dc_zero: bool, contexts: bool = False,
                positions: bool = False) -> tuple[int, list, list]:
    """The inter frames' payload bytes of `stream` coded one way, each checked by decoding it, and
    each inter frame's encode and decode time (thread CPU seconds)."""
    total, state, encode_s, decode_s = 0, None, [], []
    for keyframe, q, reference, sent in stream:
        start = None if keyframe or not carried else state
        given = (reference.values, reference.shift) if contexts and reference is not None else (None, 0)
        flags = sent.astype(np.uint8) if positions and not keyframe else None
        t0 = time.thread_time()
        payload, end = _arith.encode_frame(q, start, dc_zero and not keyframe, *given, flags)
        t1 = time.thread_time()
        h, w, c = q.shape
        planes = np.empty((c, h, w), np.int8)
        decoded = None if flags is None else np.zeros_like(flags)
        t2 = time.thread_time()
        decoded_end = _arith.decode_frame(payload, planes, h, w, c, start, dc_zero and not keyframe, *given, decoded)
        t3 = time.thread_time()
        if decoded_end != end or not np.array_equal(planes.transpose(1, 2, 0), q) or \
                (flags is not None and not np.array_equal(decoded, flags)):
            raise SystemExit("a payload did not decode back to its tensor")
        state = end
        if not keyframe:
            total += len(payload)
            encode_s.append(t1 - t0)
            decode_s.append(t3 - t2)
    return total, encode_s, decode_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rates", type=comma_separated(int), default="1,2,3")
    p.add_argument("--keyframe-interval", type=int, default=50)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not args.video.is_file():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    results = {}
    times = {}
    for rate, stream in residual_streams(args.video, args.frames, args.rates, args.keyframe_interval).items():
        coded = {name: inter_bytes(stream, *way) for name, *way in WAYS}
        sizes = {name: n for name, (n, _, _) in coded.items()}
        results[rate] = sizes
        times[rate] = {name: {"encode_ms_p50": 1e3 * float(np.median(coded[name][1])),
                              "decode_ms_p50": 1e3 * float(np.median(coded[name][2]))}
                       for name in ("protocol 4", "protocol 5")}
        base = sizes["protocol 2"]
        print(f"rate {rate}: inter frames {base:,} bytes with protocol 2; " + "; ".join(
            f"{name} {n:,} ({100 * (n / base - 1):+.1f} %)" for name, n in sizes.items() if name != "protocol 2"))
        print(f"rate {rate}: protocol 5 against 4: {100 * (sizes['protocol 5'] / sizes['protocol 4'] - 1):+.1f} % bytes; "
              + "; ".join(f"{name} encode {t['encode_ms_p50']:.2f} ms, decode {t['decode_ms_p50']:.2f} ms"
                          for name, t in times[rate].items()))
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": args.frames,
                                         "keyframe_interval": args.keyframe_interval, "inter_bytes": results,
                                         "inter_times": times}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
