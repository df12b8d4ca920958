"""The context-adaptive Laplace ANS payload codec: lossless on any int8 latent, smaller than zstd
and than any factorized model where activity varies across the image, and every malformed
payload raises PayloadError."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("constriction")

from caed.codecs import CODECS, LaplaceCodec, PayloadError, ZstdCodec  # noqa: E402


def _latents(seed=0, shape=(20, 30, 16)):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.3, 20, shape[-1])
    v = np.round(rng.laplace(0, scales, shape) + rng.integers(-3, 4, shape[-1]))
    v[..., 3] = -7  # a constant channel: nothing to code
    return np.clip(v, -128, 127).astype(np.int8)


def _blocky(seed=0, shape=(24, 32, 192)):
    """Transform-like latents: 8x8 frequency blocks whose spread falls with frequency and follows
    a texture map that varies across the image (flat sky, textured ground), smooth DC."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    texture = np.where(np.arange(h)[:, None] < h // 2, 0.1, 3.0) * rng.uniform(0.5, 1.5, (h, w))
    u, v = np.divmod(np.arange(c) % 64, 8)
    spread = texture[..., None] * np.where(np.arange(c) < 64, 1.0, 0.3) / (1 + u + v)
    x = rng.laplace(0, spread)
    x[..., ::64] = np.cumsum(rng.integers(-2, 3, (h, w, c // 64)), axis=1) - 20
    return np.clip(np.round(x), -128, 127).astype(np.int8)


def _factorized_bytes(latents):
    """What the best factorized model could reach: each channel's empirical entropy, no header."""
    flat = latents.reshape(-1, latents.shape[-1]).astype(int) + 128
    bits = 0.0
    for column in flat.T:
        p = np.bincount(column) / len(column)
        bits -= len(column) * (p[p > 0] * np.log2(p[p > 0])).sum()
    return bits / 8


def _round_trip(latents):
    codec = LaplaceCodec()
    payload = codec.encode(latents)
    np.testing.assert_array_equal(codec.decode(payload, latents.shape), latents.transpose(2, 0, 1))
    return payload


def test_registered_as_a_payload_codec():
    assert CODECS["laplace"] is LaplaceCodec


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_lossless(seed):
    _round_trip(_latents(seed))


@pytest.mark.parametrize("shape", [(24, 32, 192), (9, 13, 64), (1, 7, 128), (7, 1, 64)])
def test_blocky_latents_round_trip(shape):
    _round_trip(_blocky(shape=shape))


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 9, 1), (7, 5, 3), (5, 3, 64), (4, 6, 192)])
@pytest.mark.parametrize("kind", ["uniform", "extremes", "zeros", "constant"])
def test_any_int8_latent_round_trips(shape, kind):
    rng = np.random.default_rng(7)
    latents = {
        "uniform": lambda: rng.integers(-128, 128, shape),
        "extremes": lambda: rng.choice([-128, 127], shape),
        "zeros": lambda: np.zeros(shape),
        "constant": lambda: np.full(shape, -128),
    }[kind]().astype(np.int8)
    _round_trip(latents)


def test_extreme_values_round_trip():
    _round_trip(np.array([[[-128, 127, 0, 127]] * 5] * 3, np.int8))


def test_extreme_dc_steps_round_trip():
    """DC channels jumping across the whole int8 range next to saturated AC: the gradient
    prediction must not push residuals out of the coded range."""
    latents = np.zeros((6, 10, 64), np.int8)
    latents[:, ::2, 0], latents[:, 1::2, 0] = 127, -128
    latents[:, :, 1], latents[::2, :, 8] = -128, 127
    _round_trip(latents)


def test_smaller_than_zstd_on_laplacian_latents():
    latents = _latents()
    assert len(LaplaceCodec().encode(latents)) < len(ZstdCodec().encode(latents))


def test_context_beats_any_factorized_model_where_activity_varies():
    latents = _blocky(shape=(32, 48, 192))
    assert len(_round_trip(latents)) < 0.9 * _factorized_bytes(latents)


@pytest.mark.parametrize("axis", [0, 1])
def test_smooth_channels_are_coded_as_differences(axis):
    """Slowly varying channels (like block DC) along either image axis cost far less than their
    values would under any factorized model."""
    steps = np.random.default_rng(1).integers(-1, 2, (40, 50, 2))
    latents = (np.cumsum(steps, axis=axis).clip(-60, 60) + np.array([-60, 40])).astype(np.int8)
    payload = _round_trip(latents)
    assert len(payload) < 0.75 * _factorized_bytes(latents)
    assert len(payload) < len(ZstdCodec().encode(latents))


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-3],  # truncated word
    lambda p: p[:-4],  # a whole word missing
    lambda p: p + b"\x01\x00\x00\x00",  # trailing word
    lambda p: p + b"\x00",  # trailing byte
    lambda p: b"XX" + p[2:],  # wrong magic
    lambda p: b"L1" + p[2:],  # the former factorized format
    lambda p: p[:2] + np.uint16(7).tobytes() + p[4:],  # channel count other than the header's
    lambda p: p[:1],
    lambda p: b"",
])
def test_corrupt_payloads_are_rejected(mangle):
    latents = _latents()
    codec = LaplaceCodec()
    with pytest.raises(PayloadError):
        codec.decode(mangle(codec.encode(latents)), latents.shape)


def _payload(codec, parameters):
    """A payload of a 1x1xC latent whose parameter streams (reach, location, mode, alpha, first and
    other scale code deltas) hold the given values."""
    coder = codec._coder()
    for values, (model, offset) in reversed(list(zip(parameters, codec._parameter_models()))):
        if len(values):
            coder.encode_reverse(np.asarray(values, np.int32) - offset, model)
    return codec.MAGIC + np.uint16(len(parameters[0])).tobytes() + coder.get_compressed().astype("<u4").tobytes()


@pytest.mark.parametrize("parameters, complaint", [
    (([0], [128], [], [], [], []), "location"),  # reach 0: a constant channel, at 128
    (([3], [0], [0], [], [200], [0] * (LaplaceCodec.CLASSES - 1)), "scale code"),  # 64 + 200
    (([3], [0], [0], [], [-64], [0] * (LaplaceCodec.CLASSES - 1)), "scale code"),  # 0
    (([3], [0], [0], [], [0], [100] * (LaplaceCodec.CLASSES - 1)), "scale code"),  # 64 + 100k
])
def test_bad_parameters_are_rejected(parameters, complaint):
    codec = LaplaceCodec()
    with pytest.raises(PayloadError, match=complaint):
        codec.decode(_payload(codec, parameters), (1, 1, 1))


def test_wrong_declared_size_is_rejected():
    latents = _latents()
    codec = LaplaceCodec()
    with pytest.raises(PayloadError):
        codec.decode(codec.encode(latents), (latents.shape[0] - 1, *latents.shape[1:]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.binary(max_size=64), channels=st.sampled_from([1, 3, 64]))
def test_random_payloads_decode_to_the_declared_size_or_are_rejected(words, channels):
    shape = (3, 5, channels)
    payload = LaplaceCodec.MAGIC + np.uint16(channels).tobytes() + words
    try:
        out = LaplaceCodec().decode(payload, shape)
    except PayloadError:
        return
    assert out.shape == (channels, 3, 5) and out.dtype == np.int8
