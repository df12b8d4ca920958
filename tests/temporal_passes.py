"""The temporal encoder's C passes (caed._temporal) called as the encoder calls them, and
tests/cross/temporal_driver.c built and run on the same arrays, for the tests that check that every
build of the passes (another architecture, the sanitizers) gives the extension's numbers."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from caed import _temporal

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "daemon" / "csrc"


def block_errors(latents: np.ndarray, reference: np.ndarray, frame_steps: int, last_steps: int):
    """The frame's values (the latents themselves at frame_steps 0), every block's error and count."""
    positions, channels = latents.shape
    coarse = np.full((positions, channels), 99, np.int8)
    errors, nonzero = np.empty(positions), np.empty(positions, np.int32)
    _temporal.block_errors(latents, reference, frame_steps, last_steps, coarse if frame_steps else None, errors, nonzero)
    return (coarse if frame_steps else latents), errors, nonzero


def sent_blocks(latents: np.ndarray, reference: np.ndarray, target: np.ndarray, rows: np.ndarray, steps: int):
    """The sent blocks' bases, residuals and (steps > 0) errors left."""
    base, residual = np.empty((len(rows), latents.shape[1]), np.int16), np.empty((len(rows), latents.shape[1]), np.int8)
    left = np.empty(len(rows)) if steps else None
    _temporal.sent_blocks(latents, reference, target if steps else None, rows, steps, base, residual, left)
    return base, residual, left


def build_driver(compiler: str, flags: list[str], binary: Path) -> subprocess.CompletedProcess:
    """tests/cross/temporal_driver.c with the passes, built by `compiler` with `flags`; not checked."""
    return subprocess.run([compiler, *flags, "-std=c99", f"-I{CORE}", str(ROOT / "tests" / "cross" / "temporal_driver.c"),
                           str(CORE / "temporal.c"), "-o", str(binary)], check=False, capture_output=True, text=True)


def assert_driver_agrees(command: list[str], folder: Path, latents: np.ndarray, reference: np.ndarray,
                         target: np.ndarray, rows: np.ndarray, frame_steps: int, last_steps: int) -> None:
    """The driver (`command`: the binary, under qemu or not) gives the extension's bytes for both
    passes: every block at (frame_steps, last_steps), then the sent `rows` at frame_steps."""
    positions, channels = latents.shape
    case = f"{channels} channels, steps {frame_steps} and {last_steps}"
    files = {name: folder / name for name in ("latents", "reference", "target", "rows", "first", "second", "third")}
    for name, array in (("latents", latents), ("reference", reference), ("target", target), ("rows", rows)):
        files[name].write_bytes(np.ascontiguousarray(array).tobytes())
    outputs = [str(files[name]) for name in ("first", "second", "third")]
    runs = {"errors": [str(files["latents"]), str(files["reference"]), str(positions), str(channels), str(frame_steps),
                       str(last_steps)],
            "sent": [str(files["latents"]), str(files["reference"]), str(files["target"]), str(files["rows"]),
                     str(positions), str(channels), str(len(rows)), str(frame_steps)]}
    expected = {"errors": block_errors(latents, reference, frame_steps, last_steps),
                "sent": sent_blocks(latents, reference, target, rows, frame_steps)}
    for mode, arguments in runs.items():
        for path in outputs:  # nothing left from the last run can pass for this one's
            Path(path).unlink(missing_ok=True)
        done = subprocess.run(command + [mode] + arguments + outputs, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{mode}, {case}: the driver failed: {done.stderr[-3000:]}"
        for path, array in zip(outputs, expected[mode]):
            want = b"" if array is None else array.tobytes()
            assert Path(path).read_bytes() == want, f"{mode}, {case}: {Path(path).name} output differs"
