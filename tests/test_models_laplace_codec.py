"""The factorized-Laplace ANS payload codec: lossless, smaller than zstd on codec-like latents,
and corrupt payloads raise PayloadError."""
import numpy as np
import pytest

pytest.importorskip("constriction")

from caed.codecs import CODECS, LaplaceCodec, PayloadError, ZstdCodec  # noqa: E402


def _latents(seed=0, shape=(20, 30, 16)):
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.3, 20, shape[-1])
    v = np.round(rng.laplace(0, scales, shape) + rng.integers(-3, 4, shape[-1]))
    v[..., 3] = -7  # a constant channel: nothing to code
    return np.clip(v, -128, 127).astype(np.int8)


def test_registered_as_a_payload_codec():
    assert CODECS["laplace"] is LaplaceCodec


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_lossless(seed):
    latents = _latents(seed)
    codec = LaplaceCodec()
    assert codec.decode(codec.encode(latents), latents.shape) == latents.tobytes()


def test_extreme_values_round_trip():
    latents = np.array([[[-128, 127, 0, 127]] * 5] * 3, np.int8)
    codec = LaplaceCodec()
    assert codec.decode(codec.encode(latents), latents.shape) == latents.tobytes()


def test_smaller_than_zstd_on_laplacian_latents():
    latents = _latents()
    assert len(LaplaceCodec().encode(latents)) < len(ZstdCodec().encode(latents))


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-3],  # truncated words
    lambda p: b"XX" + p[2:],  # wrong magic
    lambda p: p[:2] + np.uint16(7).tobytes() + p[4:],  # channel count that does not divide the size
    lambda p: p[:6] + b"\x05" + p[7:],  # unknown channel mode
    lambda p: p[:1],
])
def test_corrupt_payloads_are_rejected(mangle):
    latents = _latents()
    codec = LaplaceCodec()
    with pytest.raises(PayloadError):
        codec.decode(mangle(codec.encode(latents)), latents.shape)


def test_wrong_declared_size_is_rejected():
    latents = _latents()
    codec = LaplaceCodec()
    with pytest.raises(PayloadError):
        codec.decode(codec.encode(latents), (latents.shape[0] - 1, *latents.shape[1:]))


def test_smooth_channels_are_coded_as_differences():
    ramp = np.cumsum(np.random.default_rng(1).integers(-1, 2, (40, 50, 2)), axis=1).clip(-128, 127)
    latents = (ramp + np.array([-60, 40])).astype(np.int8)  # slowly varying, like block DC
    codec = LaplaceCodec()
    payload = codec.encode(latents)
    assert list(np.frombuffer(payload, np.uint8, 6, 4).reshape(2, 3)[:, 2]) == [1, 1]  # mode: differences
    assert codec.decode(payload, latents.shape) == latents.tobytes()
    assert len(payload) < len(ZstdCodec().encode(latents))
