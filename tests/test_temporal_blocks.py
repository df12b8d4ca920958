"""caed._temporal (daemon/csrc/temporal.c), the temporal encoder's pass over every block, against
what its header says in NumPy: the frame's values are caed.temporal.requantize's. Each block's
error is the squared difference, on the model's scale, between the latents taken to the last frame's
grid and then to the coarser of the two grids, and the reference rounded half to even to that grid.
The non-zero counts are the frame's values'."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caed import _temporal
from caed.temporal import requantize
from temporal_passes import assert_driver_agrees, block_errors, build_driver, sent_blocks


def expected(latents: np.ndarray, reference: np.ndarray, frame_steps: int, last_steps: int):
    grid_steps = max(frame_steps, last_steps)
    coarse = requantize(latents, 0, -frame_steps)
    current = requantize(requantize(latents, 0, -last_steps), -last_steps, -grid_steps).astype(np.int64)
    base = np.round(reference / 2.0 ** grid_steps).astype(np.int64)  # numpy rounds half to even
    errors = ((current - base) ** 2).sum(axis=1) * 4.0 ** grid_steps
    return coarse, errors, np.count_nonzero(coarse, axis=1)


@pytest.mark.parametrize("frame_steps, last_steps", [(0, 0), (1, 1), (3, 3), (1, 0), (0, 2), (1, 3), (3, 1), (15, 15)])
@pytest.mark.parametrize("channels", [192, 64 + 5, 7])  # whole 16-value chunks, chunks and a rest, a rest alone
def test_every_block_pass_is_what_its_formulas_give(frame_steps, last_steps, channels):
    rng = np.random.default_rng(frame_steps * 31 + last_steps + channels)
    latents = rng.integers(-128, 128, (300, channels)).astype(np.int8)
    latents[::3] //= 16  # most latents are small, many zero
    reference = np.concatenate([(latents[:200].astype(np.int16) << 2) + rng.integers(-9, 10, (200, channels)),
                                rng.integers(-32768, 32768, (100, channels))]).astype(np.int16)  # every int16 too
    reference[0, 0], reference[1, 0] = -32768, 32767
    latents[2, :2] = (-128, 127)
    got, want = block_errors(latents, reference, frame_steps, last_steps), expected(latents, reference, frame_steps, last_steps)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])  # exact: integer sums, scaled by a power of two
    np.testing.assert_array_equal(got[2], want[2])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70), st.integers(0, 6), st.integers(0, 6), st.integers(0, 2 ** 32 - 1))
def test_any_shape_and_steps_agree_with_numpy(positions, channels, frame_steps, last_steps, seed):
    rng = np.random.default_rng(seed)
    latents = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
    reference = rng.integers(-5000, 5000, (positions, channels)).astype(np.int16)
    for got, want in zip(block_errors(latents, reference, frame_steps, last_steps),
                         expected(latents, reference, frame_steps, last_steps)):
        np.testing.assert_array_equal(got, want)


def test_a_tie_rounds_to_the_even_value():
    latents = np.array([[3, -3, 5, -5, 1, -1, 2, -2]], np.int8)  # halves at one step: 1.5, -1.5, 2.5, -2.5 ...
    reference = np.array([[6, -6, 10, -10, 2, -2, 4, -4]], np.int16)  # the same at two steps finer
    coarse, errors, nonzero = block_errors(latents, reference, 1, 1)
    np.testing.assert_array_equal(coarse, [[2, -2, 2, -2, 0, 0, 1, -1]])
    # the reference at one step: 3, -3, 5, -5, 1, -1, 2, -2 against the frame's 2, -2, 2, -2, 0, 0, 1, -1
    assert errors[0] == 4 * (1 + 1 + 9 + 9 + 1 + 1 + 1 + 1) and nonzero[0] == 6


def test_arguments_it_cannot_take_are_clear_errors():
    latents, reference = np.zeros((4, 8), np.int8), np.zeros((4, 8), np.int16)
    coarse, errors, nonzero = np.zeros((4, 8), np.int8), np.zeros(4), np.zeros(4, np.int32)
    _temporal.block_errors(latents, reference, 2, 1, coarse, errors, nonzero)
    with pytest.raises(ValueError, match="0..15"):
        _temporal.block_errors(latents, reference, 16, 1, coarse, errors, nonzero)
    with pytest.raises(ValueError, match="0..15"):
        _temporal.block_errors(latents, reference, 1, -1, coarse, errors, nonzero)
    with pytest.raises(TypeError, match="coarse is needed"):
        _temporal.block_errors(latents, reference, 1, 1, None, errors, nonzero)
    with pytest.raises(TypeError, match="reference must be"):
        _temporal.block_errors(latents, reference.astype(np.int32), 1, 1, coarse, errors, nonzero)
    with pytest.raises(ValueError, match="C-contiguous"):
        _temporal.block_errors(np.zeros((8, 4), np.int8).T, reference, 1, 1, coarse, errors, nonzero)
    with pytest.raises(TypeError, match="latents must be"):
        _temporal.block_errors(latents[None], reference, 1, 1, coarse, errors, nonzero)
    with pytest.raises(TypeError, match="errors must be"):
        _temporal.block_errors(latents, reference, 1, 1, coarse, errors.astype(np.float32), nonzero)
    with pytest.raises(ValueError, match="shapes differ"):
        _temporal.block_errors(latents, reference[:3], 1, 1, coarse, errors, nonzero)
    with pytest.raises(ValueError, match="shapes differ"):
        _temporal.block_errors(latents, reference, 1, 1, coarse, errors[:3], nonzero)
    with pytest.raises(ValueError, match="shares memory"):
        _temporal.block_errors(latents, reference, 1, 1, latents, errors, nonzero)
    with pytest.raises(ValueError, match="shares memory"):
        _temporal.block_errors(latents, reference, 1, 1, coarse, errors, errors[:4].view(np.int32)[:4])
    read_only = np.zeros(4)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _temporal.block_errors(latents, reference, 1, 1, coarse, read_only, nonzero)


def expected_sent(latents, reference, target, rows, steps):
    base = np.round(reference[rows] / 2.0 ** steps)
    r = latents[rows] / 2.0 ** steps - base
    residual = np.clip(np.sign(r) * np.floor(np.abs(r) + (1 / 3 if steps else 0.5)), -128, 127)
    left = ((target[rows] - base - residual) ** 2).sum(axis=1) * 4.0 ** steps if steps else None
    return base, residual, left


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70), st.integers(0, 15), st.integers(0, 2 ** 32 - 1))
def test_sent_blocks_agree_with_numpy(positions, channels, steps, seed):
    rng = np.random.default_rng(seed)
    latents = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
    reference = rng.integers(-32768, 32768, (positions, channels)).astype(np.int16)
    reference[::2] = rng.integers(-600, 600, reference[::2].shape)  # near the latents, as an encoder's are
    target = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
    rows = rng.choice(positions, rng.integers(0, positions + 1), replace=False)
    for got, want in zip(sent_blocks(latents, reference, target, rows, steps),
                         expected_sent(latents, reference, target, rows, steps)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, want)


def test_sent_blocks_refuse_what_they_cannot_take():
    latents, reference, target = np.zeros((4, 8), np.int8), np.zeros((4, 8), np.int16), np.zeros((4, 8), np.int8)
    base, residual, left = np.zeros((2, 8), np.int16), np.zeros((2, 8), np.int8), np.zeros(2)
    rows = np.array([0, 3])
    _temporal.sent_blocks(latents, reference, target, rows, 1, base, residual, left)
    _temporal.sent_blocks(latents, reference, None, rows, 0, base, residual, None)
    for bad in ([0, 4], [-1, 2]):
        with pytest.raises(ValueError, match="outside 0..3"):
            _temporal.sent_blocks(latents, reference, target, np.array(bad), 1, base, residual, left)
    with pytest.raises(TypeError, match="None at it"):
        _temporal.sent_blocks(latents, reference, None, rows, 1, base, residual, left)
    with pytest.raises(TypeError, match="None at it"):
        _temporal.sent_blocks(latents, reference, target, rows, 0, base, residual, left)
    with pytest.raises(ValueError, match="0..15"):
        _temporal.sent_blocks(latents, reference, target, rows, 16, base, residual, left)
    with pytest.raises(TypeError, match="rows must be"):
        _temporal.sent_blocks(latents, reference, target, rows.astype(np.int32), 1, base, residual, left)
    with pytest.raises(ValueError, match="shapes differ"):
        _temporal.sent_blocks(latents, reference, target, rows, 1, base[:1], residual, left)
    with pytest.raises(ValueError, match="shapes differ"):
        _temporal.sent_blocks(latents, reference[:3], target, rows, 1, base, residual, left)
    with pytest.raises(ValueError, match="shares memory"):
        _temporal.sent_blocks(latents, reference, target, rows, 1, base, latents[:2], left)


def test_the_passes_run_clean_under_asan_and_ubsan(tmp_path):
    """The C passes built with AddressSanitizer and UndefinedBehaviorSanitizer (tests/cross's driver,
    natively) over the extremes the encoder can hand them: every int8 latent, every int16 reference
    value, every step count up to MAX_STEPS, channels that are not whole 16-value chunks. No report,
    and the numbers of the extension."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    binary = tmp_path / "temporal_driver"
    built = build_driver(cc, ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"], binary)
    if built.returncode != 0:
        pytest.skip(f"no sanitizer runtime for {cc}: {built.stderr[-300:]}")
    rng = np.random.default_rng(3)
    positions, channels = 300, 37
    latents = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
    latents[0], latents[1] = -128, 127
    reference = rng.integers(-32768, 32768, (positions, channels)).astype(np.int16)
    reference[0], reference[1], reference[2], reference[3] = -32768, 32767, -32768, 32767
    target = rng.integers(-128, 128, (positions, channels)).astype(np.int8)
    target[2], target[3] = 127, -128
    rows = np.arange(positions)
    for frame_steps, last_steps in [(0, 0), (15, 15), (0, 15), (15, 0), (7, 3), (1, 1)]:  # sent at 0, 1, 7, 15
        assert_driver_agrees([str(binary)], tmp_path, latents, reference, target, rows, frame_steps, last_steps)
