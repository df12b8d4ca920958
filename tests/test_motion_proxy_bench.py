"""bench/motion_proxy.py's pieces do what docs/temporal.md says they measure: the motion search finds
a known displacement, the compensation reproduces it, overlapped compensation is the same
prediction where the vectors agree, and on a still scene the closed loop with motion is the loop
without it."""
from __future__ import annotations

import numpy as np
import pytest

from bench_scripts import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("motion_proxy")


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture in [0, 1]: unique enough for a search, without aliasing."""
    import cv2

    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 4 - 1.5, 0, 1)


def test_the_search_finds_a_displacement_and_compensation_reproduces_it(bench):
    reference = texture(96, 128)
    current = np.roll(reference, (2, -3), axis=(0, 1))  # current[y, x] = reference[y - 2, x + 3]
    vectors = bench.block_motion(bench.luma(current), bench.luma(reference), block=16, search=8, penalty=0.01)
    inner = vectors[1:-1, 1:-1].reshape(-1, 2)
    assert (inner == (-2, 3)).all()
    predicted = bench.compensate(reference, vectors, 16)
    assert np.array_equal(predicted[16:-16, 16:-16], current[16:-16, 16:-16])


def test_the_penalty_keeps_still_blocks_still(bench):
    reference = texture(64, 64, seed=1)
    noisy = reference + np.random.default_rng(2).normal(0, 1 / 255, reference.shape).astype(np.float32)
    vectors = bench.block_motion(bench.luma(noisy), bench.luma(reference))
    assert not vectors.any()


def test_overlapped_compensation_equals_plain_where_vectors_agree(bench):
    reference = texture(64, 96, seed=3)
    vectors = np.zeros((4, 6, 2), np.int64)
    vectors[...] = (1, -2)
    assert np.allclose(bench.compensate_overlapped(reference, vectors, 16), bench.compensate(reference, vectors, 16),
                       atol=1e-6)
    vectors[:, 3:] = (0, 0)  # two fields meet: overlapped blends them, plain cuts
    blended = bench.compensate_overlapped(reference, vectors, 16)
    plain = bench.compensate(reference, vectors, 16)
    assert np.allclose(blended[:, :8], plain[:, :8], atol=1e-6) and np.allclose(blended[:, -8:], plain[:, -8:], atol=1e-6)
    assert not np.allclose(blended[:, 40:56], plain[:, 40:56])


def test_vector_bytes_follow_the_field(bench):
    still = np.zeros((4, 6, 2), np.int64)
    assert bench.vector_bytes(still) == 8  # one difference, no information: its table entry
    moving = still.copy()
    moving[1:3, 2:4] = (1, 1)
    assert bench.vector_bytes(moving) > bench.vector_bytes(still)


@pytest.mark.parametrize("domain, overlapped", [("pixel", False), ("pixel", True), ("latent", True)])
def test_a_still_scene_codes_alike_with_and_without_motion(bench, domain, overlapped):
    from caed.manifest import find
    from caed_models.evaluate import ModelCodec, family_finest

    spec = family_finest(find("dct8-q0"))
    loop = bench.Loop(ModelCodec(spec))
    run = bench.closed_loop if domain == "pixel" else bench.latent_loop
    picture = (texture(64, 96, seed=4) * 255).astype(np.uint8)
    frames = [picture] * 3
    still = run(loop, frames, spec.latent_fix_point - 2, False, 40, overlapped=overlapped)
    moved = run(loop, frames, spec.latent_fix_point - 2, True, 40, overlapped=overlapped)
    assert moved["moving_blocks"] == 0
    assert moved["psnr"] == still["psnr"]
    # with motion each inter frame also carries its (empty) vector table: 8 bytes
    assert moved["bpp"] == pytest.approx(still["bpp"] + 2 * 8 * 8 / (64 * 96) / 3, abs=1e-5)


def test_the_latent_loop_sends_where_the_picture_changed(bench):
    """A second frame that differs only on its left half: the loop sends positions there and none on
    the right, whose picture stays the keyframe's."""
    from caed.manifest import find
    from caed_models.evaluate import ModelCodec, family_finest

    spec = family_finest(find("dct8-q0"))
    loop = bench.Loop(ModelCodec(spec))
    first = (texture(64, 128, seed=5) * 255).astype(np.uint8)
    second = first.copy()
    second[:, :48] = (texture(64, 48, seed=6) * 255).astype(np.uint8)
    both = bench.latent_loop(loop, [first, second], spec.latent_fix_point - 1, False, 40)
    alone = bench.latent_loop(loop, [first], spec.latent_fix_point - 1, False, 40)
    assert 0.2 < both["blocks_sent"] < 0.6
    assert both["bpp"] * 2 > alone["bpp"] * 1.1  # the second frame costs something
