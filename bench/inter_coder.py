"""What two changes to the arith coder would save on inter frames (docs/temporal.md, "Coding the
residuals"): the models of a payload starting where the reference frame's payload left them, and
an inter frame's DC predicted as 0.

    python bench/inter_coder.py --video ../shared/data/video/vtest.avi [--frames 60] [--rates 1,2,3]

The clip's first frames at their own size go through caed-eval's model and the daemon's temporal
encoder (`reference = "previous"`, every rate's own run); the tensors it hands its payload codec
are coded again by a copy of daemon/csrc/arith.c patched here with both changes (bench only: the
product's coder is untouched), built with cc -O2 beside bench/inter_coder_driver.c. Prints the
inter frames' bytes per variant and rate, and with --json writes them.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (what the copy of arith.c holds, what it becomes): each must be found exactly once.
PATCHES = [
    ("static const uint8_t magic[2] = {'A', '1'};",
     "static const uint8_t magic[2] = {'A', '1'};\n"
     "int inter_variant;\n"
     "static model_set carried_encoder, carried_decoder;\n"
     "static int have_encoder, have_decoder;\n"
     "void inter_variant_reset(void) { have_encoder = have_decoder = 0; }"),
    ("        int predicted_dc = has_left ? left : up;",
     "        extern int inter_variant;\n"
     "        int predicted_dc = (inter_variant & 2) ? 0 : has_left ? left : up;"),
    ("            predicted_dc = median_predictor(left, up, up_left);",
     "            predicted_dc = (inter_variant & 2) ? 0 : median_predictor(left, up, up_left);"),
    ("    coder co;\n    size_t head = capacity",
     "    if ((inter_variant & 1) && have_encoder)\n        t->models = carried_encoder;\n"
     "    coder co;\n    size_t head = capacity"),
    ("    encoder_flush(&co.enc);\n    walk_free(t);",
     "    encoder_flush(&co.enc);\n    carried_encoder = t->models;\n    have_encoder = 1;\n    walk_free(t);"),
    ("    coder co;\n    decoder_init(",
     "    if ((inter_variant & 1) && have_decoder)\n        t->models = carried_decoder;\n"
     "    coder co;\n    decoder_init("),
    ("    status = decode_rows(t, &co, planes);\n    walk_free(t);",
     "    status = decode_rows(t, &co, planes);\n    carried_decoder = t->models;\n    have_decoder = 1;\n"
     "    walk_free(t);"),
]


def patched_coder(folder: Path) -> Path:
    text = (ROOT / "daemon" / "csrc" / "arith.c").read_text()
    for old, new in PATCHES:
        if text.count(old) != 1:
            raise SystemExit(f"arith.c changed: cannot patch {old.splitlines()[0]!r}; update bench/inter_coder.py")
        text = text.replace(old, new)
    (folder / "arith.c").write_text(text)
    (folder / "arith.h").write_text((ROOT / "daemon" / "csrc" / "arith.h").read_text())
    binary = folder / "inter_coder_driver"
    subprocess.run(["cc", "-O2", "-std=c99", f"-I{folder}", f"-I{ROOT / 'bench'}", "-o", str(binary),
                    str(folder / "arith.c"), str(ROOT / "bench" / "inter_coder_driver.c")], check=True)
    return binary


def write_tensors(video: Path, frames: int, rates: list[int], interval: int, folder: Path) -> None:
    """The tensors the temporal encoder hands its codec, per rate and frame, as latent files."""
    import numpy as np

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
        """The arith codec, keeping the last tensor it was given."""

        def __init__(self):
            self.codec, self.last = create_codec("arith"), None

        def encode(self, q):
            self.last = np.ascontiguousarray(q)
            return self.codec.encode(q)

        def __getattr__(self, name):
            return getattr(self.codec, name)

    for rate in rates:
        codec = Recording()
        encoder = TemporalEncoder(codec, latents[0].shape, spec.latent_fix_point, interval, "previous", rate=rate)
        for i, q in enumerate(latents):
            coded = encoder.encode(q)
            if coded.keyframe != (i % interval == 0):
                raise SystemExit(f"frame {i} of rate {rate}: a scene cut made it a keyframe; use fewer --frames")
            h, w, c = codec.last.shape
            (folder / f"q{rate}_{i:03d}_{h}x{w}x{c}.bin").write_bytes(codec.last.tobytes())


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
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        binary = patched_coder(tmp)
        data = tmp / "tensors"
        data.mkdir()
        write_tensors(args.video, args.frames, rates, args.keyframe_interval, data)
        for rate in rates:
            out = subprocess.run([str(binary), str(data), str(rate), str(args.keyframe_interval)], check=True,
                                 capture_output=True, text=True).stdout
            sizes = dict((name, int(n)) for name, n in (line.split("\t") for line in out.splitlines()))
            today = sizes["today"]
            results[rate] = sizes
            print(f"rate {rate}: inter frames {today:,} bytes today; " + "; ".join(
                f"{name} {n:,} ({100 * (n / today - 1):+.1f} %)" for name, n in sizes.items() if name != "today"))
    if args.json:
        args.json.write_text(json.dumps({"video": args.video.name, "frames": args.frames,
                                         "keyframe_interval": args.keyframe_interval,
                                         "inter_bytes": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
