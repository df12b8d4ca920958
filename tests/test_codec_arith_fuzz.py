"""Coverage-guided fuzzing of the arith decoder's C core under AddressSanitizer and
UndefinedBehaviorSanitizer: tests/fuzz/arith_fuzz.c, seeded with real payloads, mutated 100,000
times. Any sanitizer report, crash, leak or encode/decode disagreement fails the test."""
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from arith_latents import blocky
from caed.codecs.arith import ArithCodec
from caed.codecs.base import Reference

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "daemon" / "csrc"
HARNESS = ROOT / "tests" / "fuzz" / "arith_fuzz.c"
RUNS = 100_000
# The harness's selector: H = 1 + b0 % 8, W = 1 + b1 % 8, C = CHANNELS[(b2 & 0x7F) % 7], b2's top bit an
# inter frame's residuals (starting from the models an all-zero 8x8x192 keyframe leaves), b0's top bit
# with reference contexts (protocol 4) at shift (b0 >> 3) & 15 from reference_values(), b1's top bit coding the
# positions sent (protocol 5).
CHANNELS = [1, 3, 32, 64, 65, 128, 192]
SEED_SHAPES = [(3, 4, 64), (8, 8, 192), (2, 5, 65), (1, 1, 1), (4, 7, 128), (6, 3, 3), (5, 5, 32), (8, 1, 192)]


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang not installed (apt-get install clang; tests/setup-system.sh does it as root)")
    runtime = subprocess.run([clang, f"-print-file-name=libclang_rt.fuzzer-{platform.machine()}.a"],
                             capture_output=True, text=True).stdout.strip()
    if not Path(runtime).is_file():
        pytest.skip("clang's libFuzzer runtime not installed (apt-get install libclang-rt-dev; "
                    "tests/setup-system.sh does it as root)")
    binary = tmp_path_factory.mktemp("fuzz") / "arith_fuzz"
    subprocess.run([clang, "-g", "-O2", "-std=c99", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
                    f"-I{CORE}", str(HARNESS), str(CORE / "arith.c"), "-o", str(binary)], check=True)
    return binary


def reference_values(count: int) -> np.ndarray:
    """The harness's reference_values(): value i is ((i * 2654435761) mod 2^32 >> 20) mod 513 - 256."""
    i = np.arange(count, dtype=np.uint64)
    return ((((i * 2654435761) % 2**32) >> 20) % 513 - 256).astype(np.int16)


def _seed_corpus(folder: Path) -> None:
    """Real payloads of small dct8-like and generic latents, each behind its selector: as keyframes,
    and as inter frames' residuals from the harness's start state, without and with its reference, and
    with the positions sent."""
    codec = ArithCodec()
    _, start = codec.encode_keyframe(np.zeros((8, 8, 192), np.int8))
    for i, (h, w, c) in enumerate(SEED_SHAPES):
        latents = blocky(i, (h, w, c))
        (folder / f"seed{i}").write_bytes(bytes([h - 1, w - 1, CHANNELS.index(c)]) + codec.encode(latents))
        residuals, _ = codec.encode_residuals(latents // 3, start)
        (folder / f"inter{i}").write_bytes(bytes([h - 1, w - 1, 0x80 | CHANNELS.index(c)]) + residuals)
        shift = i % 4
        reference = Reference(reference_values(h * w * c).reshape(h, w, c), shift)
        residuals, _ = codec.encode_residuals(latents // 3, start, reference)
        (folder / f"reference{i}").write_bytes(bytes([0x80 | shift << 3 | (h - 1), w - 1, 0x80 | CHANNELS.index(c)])
                                               + residuals)
        sent = np.random.default_rng(i).random((h, w)) < 0.5
        residuals, _ = codec.encode_residuals(latents // 3, start, reference, sent)
        (folder / f"positions{i}").write_bytes(bytes([0x80 | shift << 3 | (h - 1), 0x80 | (w - 1),
                                                      0x80 | CHANNELS.index(c)]) + residuals)


def test_decoder_survives_100k_mutated_payloads_under_asan_and_ubsan(fuzzer, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _seed_corpus(corpus)
    run = subprocess.run([str(fuzzer), f"-runs={RUNS}", "-max_len=2048", "-seed=1", str(corpus)],
                         capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    for report in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "deadly signal"):
        assert report not in log, log[-4000:]
    assert f"Done {RUNS} runs" in log
