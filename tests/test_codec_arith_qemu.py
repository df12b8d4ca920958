"""The board and the host write and read the same arith bytes: the C core built for aarch64
(Debian's gcc-aarch64-linux-gnu, static) and run under qemu-user must produce the x86-64
extension's payloads, byte for byte, and decode them to the same tensors. The same holds for the
temporal encoder's pass over every block: the board takes the decisions tested on the host."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from arith_latents import blocky, kodak, pinned
from temporal_passes import assert_driver_agrees, build_driver
from caed.codecs.arith import ArithCodec
from caed.codecs.base import Reference

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "daemon" / "csrc"
DRIVER = ROOT / "tests" / "cross" / "arith_driver.c"


def cross_tools() -> tuple[str, str]:
    """Debian's aarch64 gcc and qemu-user, or the test skips saying how to get them."""
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if gcc is None or qemu is None:
        pytest.skip("aarch64 cross tools missing (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross "
                    "qemu-user; tests/setup-system.sh does it as root)")
    return gcc, qemu


@pytest.fixture(scope="module")
def aarch64_driver(tmp_path_factory):
    gcc, qemu = cross_tools()
    binary = tmp_path_factory.mktemp("aarch64") / "arith_driver"
    subprocess.run([gcc, "-static", "-O2", "-std=c99", f"-I{CORE}", str(DRIVER), str(CORE / "arith.c"), "-o", str(binary)],
                   check=True)
    return [qemu, str(binary)]


def _latent_set():
    """Kodak's dct8 latents at the lowest and the default rate when available, and generated
    ones, among them shapes that are not 64-channel blocks and the extreme values."""
    real = kodak(2, rate=0) + kodak(2, rate=1)
    generated = [blocky(seed, shape) for seed, shape in enumerate([(64, 96, 192), (9, 13, 65), (7, 5, 32)])]
    generated += [pinned((16, 24, 192)), pinned((6, 5, 130))]  # -128, 127 and large DC steps
    return real + generated


def test_aarch64_payloads_and_decodes_are_identical_to_x86_64(aarch64_driver, tmp_path):
    codec = ArithCodec()
    for i, latents in enumerate(_latent_set()):
        source, payload_file, planes_file, inter_file = (tmp_path / f"{i}.{ext}" for ext in ("hwc", "arith", "planes",
                                                                                             "inter"))
        source.write_bytes(np.ascontiguousarray(latents).tobytes())
        h, w, c = latents.shape
        subprocess.run(aarch64_driver + [str(source), str(h), str(w), str(c), str(payload_file), str(planes_file),
                                         str(inter_file)], check=True, timeout=120)
        payload, state = codec.encode_keyframe(latents)
        assert payload_file.read_bytes() == payload, f"latents {i} {latents.shape}: payloads differ"
        # the same latents as an inter frame's residuals, from the models the keyframe left, reading
        # 3 * latents as the reference at shift 1, the positions sent those with a value and every 7th
        reference = Reference(3 * np.ascontiguousarray(latents).astype(np.int16), 1)
        h, w = latents.shape[:2]
        sent = latents.any(axis=2) | (np.arange(h * w).reshape(h, w) % 7 == 0)
        assert inter_file.read_bytes() == codec.encode_residuals(latents, state, reference, sent)[0], \
            f"latents {i}: inter payloads differ"
        planes = np.frombuffer(planes_file.read_bytes(), np.int8).reshape(c, h, w)
        np.testing.assert_array_equal(planes, codec.decode(payload, latents.shape))
        np.testing.assert_array_equal(planes, latents.transpose(2, 0, 1))


def test_aarch64_block_passes_are_identical_to_x86_64(tmp_path):
    """The temporal encoder's passes (daemon/csrc/temporal.c) give the board what they give the host:
    every block's values, errors and counts, and the sent blocks' bases, residuals and errors left.
    The decisions a board takes are the ones tested here."""
    gcc, qemu = cross_tools()
    binary = tmp_path / "temporal_driver"
    built = build_driver(gcc, ["-static", "-O2"], binary)
    assert built.returncode == 0, built.stderr
    rng = np.random.default_rng(17)
    for channels, frame_steps, last_steps in [(192, 0, 0), (192, 1, 1), (192, 2, 0), (69, 0, 3), (7, 4, 2)]:
        positions = 500
        latents = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
        reference = rng.integers(-32768, 32768, (positions, channels)).astype(np.int16)
        reference[::2] = latents[::2].astype(np.int16) << 2  # and near the latents, as an encoder's are
        target = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
        rows = np.flatnonzero(rng.random(positions) < 0.3)
        assert_driver_agrees([qemu, str(binary)], tmp_path, latents, reference, target, rows, frame_steps, last_steps)
