"""What protocols 3 and 4's coding of inter frames saves over protocol 2's, and each part: an
inter frame's arith payload starting from the models its reference's payload left, its residual
DCs predicted as 0 (protocol 3), and contexts read from the reference's values (protocol 4)
(docs/temporal.md, "Coding the residuals").

    python bench/inter_coder.py --video ../shared/data/video/vtest.avi [--frames 60] [--rates 1,2,3] \
        [--json bench/results/inter_coder_vtest.json]

The clip's first frames at their own size go through caed-eval's model and the daemon's temporal
encoder (`reference = "previous"`, each rate its own run); the residual tensors it hands its
payload codec (and the reference values it was given) are coded again by the arith core five ways,
every payload decoded back and checked.
Prints the inter frames' bytes per way and rate.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from caed import _arith
from caed.codecs.base import Reference

# (name, models carried from the reference's payload, residual DCs predicted as 0, reference contexts)
WAYS = (("protocol 2", False, False, False), ("models carried", True, False, False),
        ("DC predicted as 0", False, True, False), ("protocol 3", True, True, False), ("protocol 4", True, True, True))


def residual_streams(video: Path, frames: int, rates: list[int], interval: int) -> dict[int, list]:
    """Per rate, the tensors the temporal encoder coded, frame by frame: (keyframe?, int8 (H, W, C),
    the reference's values as the codec was given them or None)."""
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
            self.coded.append((True, np.ascontiguousarray(q), None))
            return self.codec.encode_keyframe(q)

        def encode_residuals(self, q, start, reference=None):
            kept = None if reference is None else Reference(reference.values.copy(), reference.shift)
            self.coded.append((False, np.ascontiguousarray(q), kept))
            return self.codec.encode_residuals(q, start, reference)

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


def inter_bytes(stream: list, carried: bool, dc_zero: bool, contexts: bool = False) -> int:
    """The inter frames' payload bytes of `stream` coded one way, each checked by decoding it."""
    total, state = 0, None
    for keyframe, q, reference in stream:
        start = None if keyframe or not carried else state
        given = (reference.values, reference.shift) if contexts and reference is not None else (None, 0)
        payload, end = _arith.encode_frame(q, start, dc_zero and not keyframe, *given)
        h, w, c = q.shape
        planes = np.empty((c, h, w), np.int8)
        if _arith.decode_frame(payload, planes, h, w, c, start, dc_zero and not keyframe, *given) != end or \
                not np.array_equal(planes.transpose(1, 2, 0), q):
            raise SystemExit("a payload did not decode back to its tensor")
        state = end
        total += 0 if keyframe else len(payload)
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rates", default="1,2,3")
    p.add_argument("--keyframe-interval", type=int, default=50)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not args.video.is_file():
        print(f"no such video: {args.video}", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    results = {}
    for rate, stream in residual_streams(args.video, args.frames, rates, args.keyframe_interval).items():
        sizes = {name: inter_bytes(stream, *way) for name, *way in WAYS}
        results[rate] = sizes
        base = sizes["protocol 2"]
        print(f"rate {rate}: inter frames {base:,} bytes with protocol 2; " + "; ".join(
            f"{name} {n:,} ({100 * (n / base - 1):+.1f} %)" for name, n in sizes.items() if name != "protocol 2"))
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": args.frames,
                                         "keyframe_interval": args.keyframe_interval, "inter_bytes": results},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
