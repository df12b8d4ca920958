import msgpack
import numpy as np
import pytest
import zstandard

from caed import wire
from caed.wire import FrameDecoder, FrameEncoder, Rejected, encode_frame

SHAPE = (6, 8, 4)


def latents(seed=0):
    return np.random.default_rng(seed).integers(-128, 128, SHAPE, dtype=np.int8)


def message(codec="zstd"):
    return FrameEncoder("cam0", "model-a", codec).encode(latents(), picture=(45, 60), fix_point=4, seq=7,
                                                         frame_index=9, t_capture_ns=123)


def with_header(parts=None, **changes):
    parts = parts or message()
    header = msgpack.unpackb(parts[1])
    header.update(changes)
    return [parts[0], msgpack.packb(header), parts[2]]


CODECS = ["raw", "zstd", "zstd-planes"]


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip(codec):
    frame = FrameDecoder().decode(message(codec))
    np.testing.assert_array_equal(frame.latents, latents())
    # the decoder's input: contiguous channel planes, whatever order the codec packs in
    assert frame.planes.flags.c_contiguous and frame.planes.dtype == np.int8
    np.testing.assert_array_equal(frame.planes, latents().transpose(2, 0, 1))
    h = frame.header
    assert (h.version, h.stream, h.seq, h.frame_index, h.t_capture_ns) == (wire.PROTOCOL_VERSION, "cam0", 7, 9, 123)
    assert (h.shape, h.dtype, h.fix_point, h.codec, h.model_id) == (SHAPE, "int8", 4, codec, "model-a")
    assert h.picture == (45, 60)
    assert frame.wire_bytes == sum(len(p) for p in message(codec))


@pytest.mark.parametrize("codec", CODECS)
def test_the_payload_does_not_depend_on_the_latents_memory_order(codec):
    """The DPU writes NHWC latents and ONNX Runtime channel planes: the wire carries the same bytes."""
    nhwc = latents()
    planar = np.ascontiguousarray(nhwc.transpose(2, 0, 1)).transpose(1, 2, 0)
    strided = np.zeros((SHAPE[0], 2 * SHAPE[1], SHAPE[2]), np.int8)
    strided[:, ::2] = nhwc
    strided = strided[:, ::2]
    assert not planar.flags.c_contiguous and not strided.flags.c_contiguous
    sender = FrameEncoder("cam0", "model-a", codec)
    payloads = [sender.payload(x) for x in (nhwc, planar, strided)]
    assert payloads[0] == payloads[1] == payloads[2]
    assert payloads[0][0] == SHAPE


def test_zstd_is_smaller_than_raw_on_structured_latents():
    smooth = np.zeros((62, 94, 32), np.int8)
    smooth[::2] = 3
    raw = encode_frame(smooth, picture=(1, 1), fix_point=4, model_id="m", codec="raw")
    packed = encode_frame(smooth, picture=(1, 1), fix_point=4, model_id="m", codec="zstd")
    assert len(packed[2]) < len(raw[2]) / 10


def test_planes_beat_pixel_order_on_latents_whose_channels_differ():
    """Like a transform codec's latents: a few busy low-frequency channels, many nearly empty ones."""
    rng = np.random.default_rng(1)
    busy = np.round(rng.laplace(0, 6, (40, 60, 8)))
    sparse = np.where(rng.random((40, 60, 56)) < 0.03, rng.choice([-1, 1], (40, 60, 56)), 0)
    latents = np.clip(np.concatenate([busy, sparse], axis=-1), -128, 127).astype(np.int8)
    sizes = {c: len(encode_frame(latents, picture=(1, 1), fix_point=0, model_id="m", codec=c)[2])
             for c in ("zstd", "zstd-planes")}
    assert sizes["zstd-planes"] < 0.9 * sizes["zstd"]
    parts = encode_frame(latents, picture=(1, 1), fix_point=0, model_id="m", codec="zstd-planes")
    np.testing.assert_array_equal(FrameDecoder().decode(parts).latents, latents)


def test_one_receiver_decodes_a_run_of_frames_each_whole_and_apart():
    """One receiver, frame after frame: a plane present in one frame and absent from the next
    comes back zero, and a frame already returned does not change (no buffer is shared)."""
    rng = np.random.default_rng(2)
    frames = [np.zeros((6, 8, 16), np.int8) for _ in range(3)]
    frames[0][..., :12] = rng.integers(-9, 9, (6, 8, 12))
    frames[1][..., 3] = 5
    frames[2][..., 8:] = rng.integers(-9, 9, (6, 8, 8))
    receiver = FrameDecoder()
    decoded = [receiver.decode(encode_frame(f, picture=(1, 1), fix_point=0, model_id="m", codec="zstd-planes")).latents
               for f in frames]
    for got, sent in zip(decoded, frames):
        np.testing.assert_array_equal(got, sent)


def reject_reason(parts):
    with pytest.raises(Rejected) as e:
        FrameDecoder().decode(parts)
    return e.value.reason


def test_wrong_version():
    """A protocol 1 sender (no picture, no ref_seq: every frame intra at the model's size) and
    anything newer are refused as "version", whatever else their header holds."""
    assert reject_reason(with_header(version=wire.PROTOCOL_VERSION + 1)) == "version"
    v1 = msgpack.unpackb(message()[1])
    del v1["ref_seq"], v1["picture"]
    assert reject_reason([b"cam0/", msgpack.packb({**v1, "version": 1}), message()[2]]) == "version"


def test_shape_and_payload_mismatch():
    assert reject_reason(with_header(message("raw"), shape=[6, 8, 5])) == "payload"
    assert reject_reason(with_header(message("zstd"), shape=[6, 8, 5])) == "payload"
    assert reject_reason(with_header(message("zstd-planes"), shape=[6, 8, 5])) == "payload"


def test_truncated_payload():
    for codec in CODECS:
        parts = message(codec)
        parts[2] = parts[2][:-3]
        assert reject_reason(parts) == "payload"


def test_huge_declared_shape_is_refused_before_allocation():
    assert reject_reason(with_header(shape=[4096, 4096, 4096])) == "shape"
    assert reject_reason(with_header(shape=[0, 8, 4])) == "shape"
    assert reject_reason(with_header(shape=[6, 8])) == "shape"


@pytest.mark.parametrize("picture", [[0, 60], [45], [45, 60, 3], [45, 40000], [45.0, 60], "45x60", None])
def test_a_bad_picture_size_is_refused(picture):
    assert reject_reason(with_header(picture=picture)) == "shape"


def test_zstd_bomb_declaring_a_different_size_is_refused():
    parts = message("zstd")
    parts[2] = zstandard.ZstdCompressor().compress(bytes(10_000_000))
    assert reject_reason(parts) == "payload"


def test_zstd_frame_without_content_size_is_refused():
    parts = message("zstd")
    parts[2] = zstandard.ZstdCompressor(write_content_size=False).compress(latents().tobytes())
    assert reject_reason(parts) == "payload"


def test_wrong_dtype_and_codec():
    assert reject_reason(with_header(dtype="float32")) == "dtype"
    assert reject_reason(with_header(codec="lzma")) == "codec"


def test_oversized_header():
    parts = message()
    parts[1] = b"\x81" + msgpack.packb("x" * 600)[:-1] + b"\x00"
    parts[1] = parts[1] + b"\x00" * (wire.MAX_HEADER_BYTES + 1 - len(parts[1]))
    assert reject_reason(parts) == "header_size"


def test_garbage_bytes_and_wrong_types():
    assert reject_reason([b"cam0/", b"\xc1\xff\x00garbage", b""]) == "header_decode"
    assert reject_reason([b"cam0/", msgpack.packb([1, 2, 3]), b""]) == "header_decode"
    assert reject_reason(with_header(seq="7")) == "header_fields"
    assert reject_reason(with_header(seq=True)) == "header_fields"
    assert reject_reason(with_header(seq=-1)) == "header_fields"
    assert reject_reason(with_header(model_id="")) == "header_fields"
    assert reject_reason(with_header(fix_point=99)) == "header_fields"
    parts = message()
    header = msgpack.unpackb(parts[1])
    del header["model_id"]
    parts[1] = msgpack.packb(header)
    assert reject_reason(parts) == "header_fields"
    header["model_id"], header["extra"] = "m", 1
    parts[1] = msgpack.packb(header)
    assert reject_reason(parts) == "header_fields"


def test_wrong_part_count_and_topic():
    assert reject_reason(message()[:2]) == "parts"
    assert reject_reason(message() + [b"x"]) == "parts"
    parts = message()
    parts[0] = b"cam1/"
    assert reject_reason(parts) == "topic"
