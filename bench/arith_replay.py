"""The floor of the arith encoder when every context is known in advance (issue 17's plan):

    python bench/arith_replay.py --images /work/shared/data/kodak [--rate 1] [--runs 5] \
        [--repeats 3] [--instructions]

It builds a copy of daemon/csrc/arith.c whose encoder also records each binary decision it codes
(the models mixed and updated, the bit), plus arith_replay(), which codes the recorded decisions
again from fresh models: a loop that only looks up, mixes, codes and updates, in the encoder's
order, with no context work at all. bench/arith_replay_driver.c times both (thread CPU time,
`cc -O2` as the board builds) and checks that the replay writes the encoder's bytes. With
--instructions callgrind counts the replay's instructions per frame too. A replay that costs
about what the target does says that precomputing contexts alone cannot reach it.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arith_kodak import callgrind_instructions, kodak_images, latent_folder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# The decisions as recorded: a single-model decision mixes its model with itself ((2p + 1) >> 1
# is p) and updates a scratch model past the real ones instead of a second one, so that the
# replay's loop has no branch the walk does not have.
RECORDER = """
typedef struct { uint32_t model, mixed_with, updated_too, bit; } recorded_decision;
static recorded_decision *recorded;
static size_t recorded_count, recorded_capacity;
static const bit_model *recorded_models, *recorded_scratch;

static void record(const bit_model *a, const bit_model *mixed_with, const bit_model *updated_too, unsigned bit)
{
    if (recorded_count == recorded_capacity) {
        recorded_capacity = recorded_capacity ? 2 * recorded_capacity : 1 << 20;
        recorded = realloc(recorded, recorded_capacity * sizeof *recorded);
        if (!recorded)
            abort();
    }
    recorded[recorded_count++] = (recorded_decision){(uint32_t)(a - recorded_models),
        (uint32_t)(mixed_with - recorded_models), (uint32_t)(updated_too - recorded_models), bit};
}

"""

REPLAY = """
size_t arith_recorded(void)
{
    return recorded_count;
}

size_t arith_replay(uint8_t *out, size_t capacity)
{
    static bit_model models[sizeof(model_set) / sizeof(bit_model) + 1];
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        models[i].p0 = PROB_ONE / 2;
        models[i].seen = 0;
    }
    range_encoder e;
    encoder_init(&e, out + ARITH_HEADER_BYTES, capacity - ARITH_HEADER_BYTES);
    for (const recorded_decision *d = recorded, *end = recorded + recorded_count; d < end; d++) {
        bit_model *a = models + d->model;
        encode_bit(&e, (a->p0 + models[d->mixed_with].p0 + 1u) >> 1, d->bit);
        model_update(a, d->bit);
        model_update(models + d->updated_too, d->bit);
    }
    encoder_flush(&e);
    return ARITH_HEADER_BYTES + e.size;
}
"""

# (what the core says, what the recording copy says instead)
EDITS = [
    ("/* ----- one walk for both directions ----- */", RECORDER + "/* ----- one walk for both directions ----- */"),
    ("""    if (encoding)
        encode_bit(&co->enc, m->p0, bit);
""", """    if (encoding) {
        encode_bit(&co->enc, m->p0, bit);
        record(m, m, recorded_scratch, bit);
    }
"""),
    ("""    if (encoding)
        encode_bit(&co->enc, p0, bit);
""", """    if (encoding) {
        encode_bit(&co->enc, p0, bit);
        record(a, b, b, bit);
    }
"""),
    ("""    coder co;
    size_t head = capacity""", """    recorded_models = t->models.all;
    recorded_scratch = t->models.all + sizeof t->models.all / sizeof t->models.all[0];
    recorded_count = 0;
    coder co;
    size_t head = capacity"""),
]


def recording_core(source: str) -> str:
    for old, new in EDITS:
        if source.count(old) != 1:
            raise SystemExit(f"arith.c has changed: cannot place the recorder at {old.strip().splitlines()[0]!r}")
        source = source.replace(old, new)
    return source + REPLAY


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--rate", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="passes over the frames per run")
    p.add_argument("--instructions", action="store_true", help="count the replay's instructions with valgrind")
    args = p.parse_args(argv)
    images = kodak_images(args.images)
    if not images:
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = latent_folder(images, [args.rate], tmp)
        source = tmp / "arith.c"
        source.write_text(recording_core((ROOT / "daemon" / "csrc" / "arith.c").read_text()))
        binary = tmp / "replay"
        subprocess.run(["cc", "-O2", "-std=c99", f"-I{ROOT / 'daemon' / 'csrc'}", "-o", str(binary), str(source),
                        str(ROOT / "bench" / "arith_replay_driver.c")], check=True)
        command = [str(binary), str(data), str(args.rate)]
        encode, replay = [], []
        for _ in range(args.runs):
            fields = subprocess.run(command + [str(args.repeats)], check=True, capture_output=True,
                                    text=True).stdout.split()
            values = dict(zip(fields[::2], fields[1::2]))
            encode.append(float(values["encode_p50_ms"]))
            replay.append(float(values["replay_p50_ms"]))
        print(f"q{args.rate}: {int(values['decisions_per_frame']):,} decisions a frame; replay writes the encoder's bytes")
        if args.instructions:
            per_frame = callgrind_instructions(command + ["1"], "arith_replay") / len(images)
            print(f"q{args.rate}: replay {per_frame / 1e6:.2f} M instructions/frame (callgrind)")
        print(f"q{args.rate}: recording encoder p50 {statistics.median(encode):.2f} ms ({min(encode):.2f}-{max(encode):.2f})  "
              f"replay p50 {statistics.median(replay):.2f} ms ({min(replay):.2f}-{max(replay):.2f})  "
              f"over {args.runs} runs, thread CPU time, cc -O2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
