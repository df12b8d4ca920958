"""The arith payload codec (caed.codecs.arith, C core daemon/csrc/arith.c): lossless on any int8
(H, W, C), the same bytes from either memory layout, smaller than the other codecs on real
latents, and every malformed payload raises PayloadError (never a crash, never a wrong shape)."""
import hashlib
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arith_latents import blocky, kodak, pinned
from caed import _arith
from caed.codecs.arith import ArithCodec
from caed.codecs import PayloadError, PlanarZstdCodec
from caed.codecs.base import Reference

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(latents):
    codec = ArithCodec()
    payload = codec.encode(latents)
    decoded = codec.decode(payload, latents.shape)
    assert decoded.dtype == np.int8 and decoded.shape == latents.transpose(2, 0, 1).shape
    np.testing.assert_array_equal(decoded, latents.transpose(2, 0, 1))
    return payload


def _decode_or_reject(payload, shape):
    """Only two outcomes are allowed: PayloadError, or a fresh int8 (C, H, W) array."""
    try:
        decoded = ArithCodec().decode(payload, shape)
    except PayloadError as e:
        assert str(e).startswith("arith payload ")
        return None
    assert decoded.dtype == np.int8 and decoded.shape == (shape[2], shape[0], shape[1])
    return decoded


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 64), (3, 5, 192), (7, 3, 100), (2, 9, 128), (5, 4, 32),
                                   (1, 17, 65), (16, 1, 64), (4, 4, 320)])
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_any_shape(shape, seed):
    _round_trip(blocky(seed, shape))


def test_round_trip_dct8_like_latents_and_beats_zstd_planes():
    latents = blocky(3, (32, 48, 192))
    payload = _round_trip(latents)
    assert len(payload) < 0.8 * len(PlanarZstdCodec().encode(latents))


def test_all_zero_latents_cost_almost_nothing():
    latents = np.zeros((64, 96, 192), np.int8)
    payload = _round_trip(latents)
    assert len(payload) < 64  # 18432 empty blocks: each a near-certain decision


@pytest.mark.parametrize("shape", [(6, 7, 192), (5, 3, 37)])
def test_extreme_and_random_values(shape):
    rng = np.random.default_rng(7)
    for latents in (np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                    rng.choice(np.array([-128, -127, 127, 0], np.int8), shape),
                    rng.integers(-128, 128, shape, dtype=np.int8)):
        _round_trip(latents)


def test_incompressible_latents_grow_the_output_buffer():
    """Uniform random bytes code larger than the binding's first guess at the payload size."""
    latents = np.random.default_rng(1).integers(-128, 128, (40, 40, 128), dtype=np.int8)
    assert len(_round_trip(latents)) > latents.size // 4 + 1024


def test_every_memory_layout_gives_the_same_payload():
    latents = blocky(4, (12, 20, 192))
    planes_view = np.ascontiguousarray(latents.transpose(2, 0, 1)).transpose(1, 2, 0)  # ONNX's planes
    strided = np.zeros((12, 40, 192), np.int8)[:, ::2]  # neither layout: the codec copies it
    strided[...] = latents
    reversed_channels = np.ascontiguousarray(latents[..., ::-1])[..., ::-1]  # negative channel stride
    codec = ArithCodec()
    expected = codec.encode(latents)
    for layout in (planes_view, strided, reversed_channels):
        np.testing.assert_array_equal(layout, latents)
        assert codec.encode(layout) == expected


def test_decode_returns_a_fresh_writable_array():
    latents = blocky(5, (4, 6, 64))
    codec = ArithCodec()
    payload = codec.encode(latents)
    first, second = codec.decode(payload, latents.shape), codec.decode(payload, latents.shape)
    assert first.flags.owndata and first.flags.writeable and first.flags.c_contiguous
    first[...] = 0
    np.testing.assert_array_equal(second, latents.transpose(2, 0, 1))


def test_encode_refuses_what_is_not_int8_hwc():
    with pytest.raises(ValueError):
        ArithCodec().encode(np.zeros((2, 3, 4), np.int16))
    with pytest.raises(ValueError):
        ArithCodec().encode(np.zeros((2, 3), np.int8))


def test_threads_code_concurrently_and_alike():
    """The binding releases the GIL; coders share no state, so threads agree with one thread."""
    frames = [blocky(seed, (16, 24, 192)) for seed in range(8)]
    codec = ArithCodec()
    expected = [codec.encode(f) for f in frames]
    results = {}

    def work(i):
        payload = codec.encode(frames[i])
        results[i] = (payload, codec.decode(payload, frames[i].shape))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, frame in enumerate(frames):
        assert results[i][0] == expected[i]
        np.testing.assert_array_equal(results[i][1], frame.transpose(2, 0, 1))


# ----- real latents -----

@pytest.fixture(scope="module")
def kodak_latents():
    latents = kodak(3)
    if not latents:
        pytest.skip("Kodak photos (/work/shared/data/kodak), the dct8 model or onnxruntime not available")
    return latents


def test_kodak_latents_round_trip_smaller_than_zstd_planes(kodak_latents):
    for latents in kodak_latents:
        size = len(_round_trip(latents))
        assert size < 0.7 * len(PlanarZstdCodec().encode(latents))


# ----- malformed payloads -----

@pytest.fixture(scope="module")
def small_payload():
    latents = blocky(6, (3, 4, 128))
    return latents.shape, ArithCodec().encode(latents)


def test_every_truncation_is_refused(small_payload):
    shape, payload = small_payload
    for length in range(len(payload)):
        with pytest.raises(PayloadError):
            ArithCodec().decode(payload[:length], shape)


def test_trailing_data_is_refused(small_payload):
    shape, payload = small_payload
    for tail in (b"\0", b"\xff", b"\0" * 9):
        with pytest.raises(PayloadError, match="trailing"):
            ArithCodec().decode(payload + tail, shape)


def test_channel_count_must_match_the_header(small_payload):
    shape, payload = small_payload
    with pytest.raises(PayloadError, match="channel"):
        ArithCodec().decode(payload, shape[:2] + (shape[2] + 1,))
    with pytest.raises(PayloadError, match="channel"):
        ArithCodec().decode(payload[:2] + (shape[2] + 256).to_bytes(2, "little") + payload[4:], shape)


def test_wrong_magic_is_refused(small_payload):
    shape, payload = small_payload
    for head in (b"L2", b"A2", b"\0\0"):
        with pytest.raises(PayloadError, match="not an arith payload"):
            ArithCodec().decode(head + payload[2:], shape)


def test_every_bit_flip_is_refused_or_decodes_to_the_declared_shape(small_payload):
    shape, payload = small_payload
    refused = 0
    for i in range(len(payload) * 8):
        damaged = bytearray(payload)
        damaged[i // 8] ^= 1 << (i % 8)
        refused += _decode_or_reject(bytes(damaged), shape) is None
    assert refused > 0


def test_a_payload_that_runs_out_is_refused_as_truncated():
    """Reading past the end yields zeros, which may decode as valid symbols for a while: the
    decoder checks at the end of every row and refuses the payload there."""
    payload = ArithCodec().encode(np.zeros((1, 256, 192), np.int8))
    for shape in ((1, 256, 192), (512, 256, 192)):
        with pytest.raises(PayloadError, match="truncated"):
            ArithCodec().decode(payload[:6], shape)


@given(st.binary(max_size=300), st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 32, 64, 65, 128, 192]))
@FUZZ
def test_arbitrary_bytes_decode_to_payload_error_or_the_declared_shape(data, h, w, c):
    _decode_or_reject(data, (h, w, c))
    _decode_or_reject(b"A1" + c.to_bytes(2, "little") + data, (h, w, c))


@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 2, 31, 64, 65, 128, 192]), st.integers(0, 2 ** 32 - 1),
       st.floats(0.0, 1.0))
@FUZZ
def test_arbitrary_latents_round_trip(h, w, c, seed, density):
    rng = np.random.default_rng(seed)
    values = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
    _round_trip(np.where(rng.random((h, w, c)) < density, values, 0).astype(np.int8))


@given(st.binary(max_size=300), st.integers(1, 5), st.integers(1, 5), st.sampled_from([3, 64, 65, 192]),
       st.integers(0, 15), st.integers(0, 2 ** 32 - 1), st.booleans())
@FUZZ
def test_arbitrary_inter_bytes_with_a_reference_decode_to_payload_error_or_the_declared_shape(data, h, w, c, shift,
                                                                                               seed, positions):
    """Protocol 4's inter frames read a reference, protocol 5's code their positions too: hostile
    bytes, any reference values and shift, still give only PayloadError or the declared shape; and a
    tensor round-trips against them, with protocol 5 only its sent positions' values, and the
    positions sent."""
    codec = ArithCodec()
    rng = np.random.default_rng(seed)
    reference = Reference(rng.integers(-2 ** 15, 2 ** 15, (h, w, c)).astype(np.int16), shift)
    _, start = codec.encode_keyframe(np.zeros((h, w, c), np.int8))
    try:
        planes, _, sent = codec.decode_residuals(b"A1" + c.to_bytes(2, "little") + data, (h, w, c), start, reference,
                                                 positions)
        assert planes.shape == (c, h, w) and planes.dtype == np.int8
        assert sent is None if not positions else (sent.shape == (h, w) and not planes[:, ~sent].any())
    except PayloadError as e:
        assert str(e).startswith("arith payload ")
    residuals = np.where(rng.random((h, w, c)) < 0.3, rng.integers(-128, 128, (h, w, c)), 0).astype(np.int8)
    sent = rng.random((h, w)) < 0.5 if positions else None
    payload, end = codec.encode_residuals(residuals, start, reference, sent)
    planes, decoded_end, decoded_sent = codec.decode_residuals(payload, (h, w, c), start, reference, positions)
    expected = np.where(sent[:, :, None], residuals, 0) if positions else residuals
    np.testing.assert_array_equal(planes, expected.transpose(2, 0, 1))
    if positions:
        np.testing.assert_array_equal(decoded_sent, sent)
    assert decoded_end == end


def test_binding_checks_its_arguments():
    out = np.empty((2, 3, 4), np.int8)
    with pytest.raises(ValueError):
        _arith.decode(b"A1\x02\x00", out, 3, 4, 3)  # buffer size is not H*W*C
    with pytest.raises(ValueError):
        _arith.decode(b"A1\x02\x00", out, 0, 4, 2)
    with pytest.raises(TypeError):
        _arith.decode(b"A1\x02\x00", bytes(24), 3, 4, 2)  # not writable
    latents = np.zeros((3, 4, 2), np.int8)
    for reference, shift, error in ((np.zeros((3, 4, 2), np.int32), 0, TypeError),  # not int16
                                    (np.zeros((3, 4, 1), np.int16), 0, ValueError),  # not one value per latent
                                    (np.zeros((3, 4, 2), np.int16), 16, ValueError),  # shift past 15
                                    (np.zeros((3, 4, 3), np.int16)[:, :, :2], 0, ValueError)):  # not contiguous
        with pytest.raises(error):
            _arith.encode_frame(latents, None, True, reference, shift)
        with pytest.raises(error):
            _arith.decode_frame(_arith.encode(latents), np.empty((2, 3, 4), np.int8), 3, 4, 2, None, True, reference,
                                shift)
    for sent, error in ((np.zeros((3, 4), np.int16), TypeError),  # not bytes
                        (np.zeros((3, 3), np.uint8), ValueError),  # not one flag per position
                        (np.zeros((3, 5), np.uint8)[:, :4], ValueError)):  # not contiguous
        with pytest.raises(error):
            _arith.encode_frame(latents, None, True, None, 0, sent)
        with pytest.raises(error):
            _arith.decode_frame(_arith.encode(latents), np.empty((2, 3, 4), np.int8), 3, 4, 2, None, True, None, 0, sent)
    payload, _ = _arith.encode_frame(latents, None, True, None, 0, np.zeros((3, 4), np.uint8))
    with pytest.raises(BufferError):  # decoding writes the flags
        _arith.decode_frame(payload, np.empty((2, 3, 4), np.int8), 3, 4, 2, None, True, None, 0, bytes(12))


# ----- the format is pinned -----

@pytest.mark.parametrize("shape, digest", [
    ((8, 12, 192), "464b60bb052c1cff758a073ec9aa341358bae390d8e111ab8b08da245055c5c4"),
    ((5, 7, 65), "a7ac98d02d3133a2233f90d3f30187b8a87e83f7b24b05b213bc399e60383d3d"),
])
def test_payload_bytes_are_pinned(shape, digest):
    """A change to the coder that changes its bytes must come with a new format version (the
    magic's second byte), docs/wire.md (`arith`) and these digests: old receivers must refuse it."""
    latents = pinned(shape)
    payload = _round_trip(latents)
    assert payload[:2] == b"A1"
    assert hashlib.sha256(payload).hexdigest() == digest
