"""Property-based fuzzing of the wire decoder and the viewer's receive path: nothing but Rejected escapes."""
import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caed import wire
from caed.codecs import PayloadError
from caed.temporal import TemporalState
from caed.wire import FrameDecoder, FrameEncoder, Rejected
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.sinks import NullSink
from caed_host.viewer import Viewer

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1), st.floats(), st.text(max_size=40),
                    st.binary(max_size=40))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=12)


def valid(codec="zstd", shape=(3, 5, 2)):
    latents = np.arange(np.prod(shape), dtype=np.int64).astype(np.int8).reshape(shape)
    return FrameEncoder("cam0", "m", codec).encode(latents, picture=(24, 40), fix_point=2, seq=1, frame_index=1,
                                                   t_capture_ns=5)


def decode_or_reject(parts):
    try:
        frame = FrameDecoder().decode(parts)
    except Rejected as e:
        assert e.reason in wire.REJECT_REASONS
        return None
    if frame.header.keyframe:
        assert frame.latents.shape == frame.header.shape and frame.latents.dtype == np.int8
    else:  # decoded against its reference's state: caed.temporal.TemporalState.apply
        assert frame.planes is None and isinstance(frame.payload, bytes)
    return frame


@FUZZ
@given(st.lists(st.binary(max_size=2048), max_size=5))
def test_random_parts(parts):
    decode_or_reject(parts)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(wire._FIELDS) + ["x"]), values, max_size=12))
def test_random_headers(fields):
    good = valid()
    header = {**msgpack.unpackb(good[1]), **fields}
    decode_or_reject([good[0], msgpack.packb(header, use_bin_type=True), good[2]])


@FUZZ
@given(st.lists(st.integers(-5, 1 << 40), min_size=0, max_size=5), st.sampled_from(["raw", "zstd", "zstd-planes"]))
def test_declared_shapes_never_drive_allocation(shape, codec):
    good = valid(codec)
    header = {**msgpack.unpackb(good[1]), "shape": shape}
    frame = decode_or_reject([good[0], msgpack.packb(header), good[2]])
    assert frame is None or tuple(shape) == (3, 5, 2)


@FUZZ
@given(st.sampled_from(["raw", "zstd", "zstd-planes"]), st.integers(0, 2), st.data())
def test_truncated_and_flipped_parts(codec, which, data):
    parts = valid(codec)
    part = bytearray(parts[which])
    if data.draw(st.booleans()) and part:
        part = part[:data.draw(st.integers(0, len(part) - 1))]
    elif part:
        i = data.draw(st.integers(0, len(part) - 1))
        part[i] ^= data.draw(st.integers(1, 255))
    parts[which] = bytes(part)
    decode_or_reject(parts)


@FUZZ
@given(st.lists(st.one_of(st.lists(st.binary(max_size=300), max_size=4),
                          st.builds(lambda c: valid(c), st.sampled_from(["raw", "zstd", "zstd-planes"]))), max_size=20))
def test_viewer_receive_loop_counts_every_message(batch):
    viewer = Viewer(None, DecoderSet(), NullSink(), ViewerMetrics())
    newest = viewer.take(batch)
    accepted = len(batch) - sum(viewer.stats.rejected.values())
    assert viewer.stats.received == len(batch)
    assert accepted == (len(newest) + viewer.stats.skipped)
    total = sum(viewer.metrics.registry.get_sample_value("caed_view_messages_rejected_total", {"reason": r}) or 0
                for r in wire.REJECT_REASONS)
    assert total == sum(viewer.stats.rejected.values())


def valid_inter(codec):
    """A keyframe (seq 0) and an inter frame (ref_seq 0, seq 1) that replaces one of its blocks."""
    from caed.codecs import create_codec
    from caed.temporal import TemporalEncoder

    shape = (3, 5, 8)
    key = np.random.default_rng(0).integers(-20, 20, shape).astype(np.int8)
    moved = key.copy()
    moved[1, 2] += 40
    encoder = TemporalEncoder(create_codec(codec), shape, 0, keyframe_interval=10)
    wire = FrameEncoder("cam0", "m", codec)
    keyframe = encoder.encode(key)
    coded = encoder.encode(moved)
    assert not coded.keyframe and coded.blocks_sent == 1
    return (wire.message(shape, keyframe.payload, picture=(24, 40), fix_point=0, seq=0, frame_index=0, t_capture_ns=5),
            wire.message(shape, coded.payload, picture=(24, 40), fix_point=0, seq=1, ref_seq=0, frame_index=1,
                         t_capture_ns=5))


@FUZZ
@given(st.sampled_from(["arith", "raw", "zstd", "zstd-planes"]), st.data())
def test_truncated_and_flipped_inter_payloads(codec, data):
    """Only Rejected from the wire, then only PayloadError from decoding against the reference; the
    state keeps its reference either way."""
    key, parts = valid_inter(codec)
    payload = bytearray(parts[2])
    if data.draw(st.booleans()):
        payload = payload[:data.draw(st.integers(0, len(payload) - 1))]
    else:
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] ^= data.draw(st.integers(1, 255))
    frame = decode_or_reject(parts[:2] + [bytes(payload)])
    if frame is None:
        return
    state = TemporalState()
    state.apply(FrameDecoder().decode(key))
    try:
        values = state.apply(frame)
    except PayloadError:
        values = state.apply(FrameDecoder().decode(parts))  # the reference is still held
    assert values.shape == (8, 3, 5) and values.dtype == np.float32
