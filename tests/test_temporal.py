"""Temporal coding (caed.temporal) in process: the viewer's state equals the encoder's
reconstruction, loss and late joins are detected, noise does not fill the stream, the bitrate holds."""
import numpy as np
import pytest

from caed.codecs import PayloadError, create_codec
from caed.codecs.base import Reference
from caed.fixed_point import dequantize, quantize_latents
from caed.temporal import (KEYFRAME_COARSENING, KEYFRAME_REFINEMENT, KEYFRAME_REFINEMENT_BITRATE, STILL_SCENE_SHARE,
                           ChainBroken, TemporalEncoder, TemporalState, pack_inter, requantize, unpack_inter)
from caed.wire import FrameDecoder, FrameEncoder, Rejected

SHAPE = (12, 16, 64)  # latent blocks (H, W) of C values


def scene(rng):
    """Latents of a still picture: mostly small values, a few larger low frequencies."""
    x = rng.laplace(0, 3, SHAPE)
    x[..., :4] *= 8
    return x


def frames(n, seed=0, noise=0.6, mover=True):
    """A still scene with sensor-like noise and one 3x3-block object moving one block per frame, as
    int8 latents at fix point 0."""
    rng = np.random.default_rng(seed)
    background, thing = scene(rng), rng.laplace(0, 10, (3, 3, SHAPE[2]))
    for i in range(n):
        x = background + rng.normal(0, noise, SHAPE)
        if mover:
            col = i % (SHAPE[1] - 3)
            x[4:7, col:col + 3] = thing
        yield np.clip(np.rint(x), -128, 127).astype(np.int8)


def stream(encoder, latents, wire=None):
    """(coded frame, wire message) per frame, seq = coded index."""
    wire = wire or FrameEncoder("cam0", "m", encoder.codec.name)
    for q in latents:
        coded = encoder.encode(q)
        yield coded, wire.message(q.shape, coded.payload, picture=(8 * q.shape[0], 8 * q.shape[1]),
                                  fix_point=coded.fix_point, seq=coded.index,
                                  ref_seq=coded.ref_index, frame_index=coded.index, t_capture_ns=1)


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_requantize_is_the_wires_rounding_of_every_int8_value(steps):
    every = np.arange(-128, 128, dtype=np.int8).reshape(2, 2, 64)
    expected = quantize_latents(dequantize(every, 0), -steps)
    np.testing.assert_array_equal(requantize(every, 0, -steps), expected)
    np.testing.assert_array_equal(requantize(every[0].copy(), 3, 3 - steps), expected[0])  # (n, C) rows too


@pytest.mark.parametrize("reference", ["previous", "keyframe"])
@pytest.mark.parametrize("codec", ["zstd-planes", "arith"])
def test_viewer_holds_exactly_the_encoders_reconstruction(reference, codec):
    encoder = TemporalEncoder(create_codec(codec), SHAPE, 0, keyframe_interval=10, reference=reference, rate=1)
    decoder, state = FrameDecoder(), TemporalState()
    kinds = []
    for coded, parts in stream(encoder, frames(25)):
        frame = decoder.decode(parts)
        values = state.apply(frame)
        np.testing.assert_array_equal(values, encoder.values())
        kinds.append(coded.keyframe)
    assert kinds == [i % 10 == 0 for i in range(25)]


def test_noise_alone_sends_no_block_and_the_mover_is_sent():
    encoder = TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0, keyframe_interval=100, rate=1)
    still = [encoder.encode(q) for q in frames(10, mover=False)]
    assert all(c.blocks_sent == 0 for c in still[1:])
    encoder = TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0, keyframe_interval=100, rate=1)
    moving = [encoder.encode(q) for q in frames(10)]
    # the object's leading and trailing columns change: 2 x 3 blocks, never the still background
    assert all(3 <= c.blocks_sent <= 12 for c in moving[1:]), [c.blocks_sent for c in moving]
    assert sum(len(c.payload) for c in moving[1:]) < 0.2 * 9 * len(moving[0].payload)


def test_a_block_that_only_crossed_a_rounding_boundary_is_not_sent_and_residuals_round_towards_the_reference():
    """At rate 1 a step is two of the model's units. A block whose values moved from 2 to 3 units
    (1 to 1.5 steps) rounds to a new value on the grid, but sending it would leave the picture
    where skipping does: it is not sent. One moved from 2 to 7 (2.5 steps from its reference) is
    sent as a residual of 2, not the 3 plain rounding gives (the dead zone: |r| < 2/3 is 0)."""
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=10, rate=1)
    key = np.full(SHAPE, 2, np.int8)
    moved = key.copy()
    moved[0, 0], moved[5, 5] = 3, 7
    state, decoder = TemporalState(), FrameDecoder()
    for coded, parts in stream(encoder, [key, moved]):
        shown = state.apply(decoder.decode(parts))
    assert not coded.keyframe and coded.blocks_sent == 1
    values = encoder.values()
    assert (values[:, 0, 0] == 2).all() and (values[:, 5, 5] == 6).all()
    np.testing.assert_array_equal(shown, values)


@pytest.mark.parametrize("rate", [0, 1, 3])
def test_a_still_scenes_keyframes_are_coded_finer_as_far_as_the_model_goes(rate):
    """A keyframe after an interval whose inter frames sent few blocks (here the mover's ~3 %), or
    with no frame before it, is coded KEYFRAME_REFINEMENT fix points finer than the rate, at most
    the model's own."""
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=4, rate=rate)
    coded = [encoder.encode(q) for q in frames(9)]
    assert [c.keyframe for c in coded] == [i % 4 == 0 for i in range(9)]
    assert all(c.blocks_sent < STILL_SCENE_SHARE * c.blocks for c in coded if not c.keyframe)
    assert [c.fix_point for c in coded] == [min(0, KEYFRAME_REFINEMENT - rate) if c.keyframe else -rate for c in coded]


def test_a_busy_scenes_keyframes_are_coded_at_the_rate():
    """Where the inter frames replace many blocks (a third of them here) a finer keyframe's blocks
    would not last: the next keyframe is coded at the frame's rate (the first is finer: nothing
    before it to step from)."""
    rng = np.random.default_rng(1)
    latents = [np.clip(np.rint(scene(rng)), -128, 127).astype(np.int8)]
    for _ in range(5):
        q = latents[-1].copy()
        changed = rng.random(SHAPE[:2]) < 1 / 3
        q[changed] = np.clip(np.rint(scene(rng)[changed]), -128, 127)
        latents.append(q)
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=4, rate=1)
    coded = [encoder.encode(q) for q in latents]
    assert [c.keyframe for c in coded] == [True, False, False, False, True, False]
    assert all(c.blocks_sent > STILL_SCENE_SHARE * c.blocks for c in coded if not c.keyframe)
    assert [c.fix_point for c in coded] == [min(0, -1 + KEYFRAME_REFINEMENT)] + [-1] * 5


def test_lost_frame_breaks_the_previous_frame_chain_until_the_next_keyframe():
    encoder = TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0, keyframe_interval=5, reference="previous")
    decoder, state, shown = FrameDecoder(), TemporalState(), []
    for coded, parts in stream(encoder, frames(12)):
        if coded.index == 2:
            continue  # lost
        f = decoder.decode(parts)
        try:
            state.apply(f)
            shown.append(coded.index)
        except ChainBroken as e:
            assert e.reason == "broken_chain"
    assert shown == [0, 1, 5, 6, 7, 8, 9, 10, 11]


def test_keyframe_reference_survives_a_lost_inter_frame_and_a_late_joiner_waits_for_a_keyframe():
    encoder = TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0, keyframe_interval=5, reference="keyframe")
    decoder, lossy, late, shown, reasons = FrameDecoder(), TemporalState(), TemporalState(), [], []
    for coded, parts in stream(encoder, frames(12)):
        f = decoder.decode(parts)
        h = f.header
        if coded.index != 2:
            np.testing.assert_array_equal(lossy.apply(f),
                                          encoder.values())
        if coded.index >= 3:
            try:
                late.apply(f)
                shown.append(coded.index)
            except ChainBroken as e:
                reasons.append(e.reason)
    assert shown == list(range(5, 12)) and reasons == ["no_keyframe", "no_keyframe"]


def test_inter_payload_errors_are_payload_rejections():
    codec = create_codec("zstd-planes")
    values = np.zeros(SHAPE, np.int8)
    values[1, 2, 3] = 5
    sent = np.zeros(SHAPE[:2], bool)
    sent[1, 2] = sent[0, 0] = True  # (0, 0): a sent block that is all zero, carried by the map
    payload, _ = pack_inter(codec, values, sent, values[sent], None)
    planes, got, _ = unpack_inter(codec, payload, SHAPE, None)
    np.testing.assert_array_equal(got, sent)
    wire = FrameEncoder("cam0", "m", "zstd-planes")
    for bad in (payload[:3], b"\xff\xff\x00\x00" + payload[4:], payload[:4] + b"junk" + payload[8:]):
        with pytest.raises(Rejected) as e:
            FrameDecoder().decode(wire.message(SHAPE, bad, picture=(96, 128), fix_point=0, seq=3, ref_seq=2, frame_index=3,
                                               t_capture_ns=1))
        assert e.value.reason == "payload"
    with pytest.raises(Rejected) as e:
        FrameDecoder().decode(wire.message(SHAPE, payload, picture=(96, 128), fix_point=0, seq=3, ref_seq=4, frame_index=3,
                                           t_capture_ns=1))
    assert e.value.reason == "reference"


def test_arith_codes_the_positions_sent_itself_and_refuses_a_block_map():
    """Protocol 5: an arith inter payload carries no zeroed-block map, a sent block that is all zero
    comes back as sent from the codec's own flags, and a payload that carries a map is refused, by
    the viewer as soon as it arrives."""
    import zstandard

    codec = create_codec("arith")
    keyframe = next(iter(frames(1)))
    _, start = codec.encode_keyframe(keyframe)
    values = np.zeros(SHAPE, np.int8)
    values[1, 2, 3] = 5
    sent = np.zeros(SHAPE[:2], bool)
    sent[1, 2] = sent[0, 0] = True  # (0, 0): sent, all zero
    payload, _ = pack_inter(codec, values, sent, values[sent], start)
    assert payload[:4] == bytes(4)  # no map
    planes, got, _ = unpack_inter(codec, payload, SHAPE, start, positions=True)
    np.testing.assert_array_equal(got, sent)
    np.testing.assert_array_equal(planes, values.transpose(2, 0, 1))
    zmap = zstandard.ZstdCompressor().compress(np.packbits(sent & ~values.any(axis=2)).tobytes())
    mapped = len(zmap).to_bytes(4, "little") + zmap + payload[4:]
    with pytest.raises(PayloadError, match="block map"):
        unpack_inter(codec, mapped, SHAPE, start, positions=True)
    with pytest.raises(Rejected) as e:  # at once, as the framing is checked
        FrameDecoder().decode(FrameEncoder("cam0", "m", "arith").message(SHAPE, mapped, picture=(96, 128), fix_point=0,
                                                                        seq=3, ref_seq=2, frame_index=3, t_capture_ns=1))
    assert e.value.reason == "payload"


def test_an_inter_payload_is_decoded_against_its_reference_and_a_corrupt_one_is_a_payload_error():
    """An arith inter frame's payload starts from the models its reference's payload left and reads
    the reference's values: decoded from fresh models, or without those values, it is another
    tensor, or no tensor at all; its codec payload is only checked once its reference is known (a
    late joiner's frames stay `no_keyframe`)."""
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=10, rate=1)
    decoder, state = FrameDecoder(), TemporalState()
    messages = [parts for _, parts in stream(encoder, frames(3))]
    state.apply(decoder.decode(messages[0]))
    inter = decoder.decode(messages[1])
    assert inter.planes is None and not inter.header.keyframe
    codec = create_codec("arith")
    key = decoder.decode(messages[0])
    reference = Reference(np.ascontiguousarray(key.planes.reshape(SHAPE[2], -1).T, np.int16),
                          key.header.fix_point - inter.header.fix_point)
    wrong = []
    for start, values_given in ((None, reference), (key.coder_state, None)):
        try:
            wrong.append(unpack_inter(codec, inter.payload, SHAPE, start, reference=values_given, positions=True)[0])
        except PayloadError:
            wrong.append(None)
    values = state.apply(inter)
    planes, _, _ = unpack_inter(codec, inter.payload, SHAPE, key.coder_state, reference=reference, positions=True)
    assert all(other is None or not np.array_equal(other, planes) for other in wrong)
    assert np.count_nonzero(planes) > 0 and values.shape == (SHAPE[2], *SHAPE[:2])
    corrupt = messages[2][:2] + [messages[2][2] + b"\x00"]  # a byte after the coder's last one
    frame = decoder.decode(corrupt)  # the framing is whole: accepted here
    late = TemporalState()
    with pytest.raises(ChainBroken):
        late.apply(frame)
    with pytest.raises(PayloadError):
        state.apply(frame)


def test_bitrate_is_held_within_ten_percent_over_ten_second_windows():
    fps, target = 10.0, 60_000.0
    encoder = TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0, keyframe_interval=20, bitrate_bps=target,
                              fps=fps)
    bits = np.array([8 * len(encoder.encode(q).payload) for q in frames(400, noise=1.0)])
    window = int(10 * fps)
    rates = np.convolve(bits, np.ones(window), "valid")[int(5 * fps):] / 10  # after 5 s of settling
    assert np.all(np.abs(rates / target - 1) <= 0.1), (rates.min(), rates.max())


def test_the_bitrate_counts_the_wire_messages_headers():
    """At 60 kbit/s and 10 fps topic and header are a fifth of the stream: the target is the wire's."""
    fps, target = 10.0, 60_000.0
    wire = FrameEncoder("cam0", "m", "arith")
    overhead = wire.overhead_bytes(SHAPE, (8 * SHAPE[0], 8 * SHAPE[1]))
    assert 0.15 < 8 * overhead * fps / target < 0.3
    window = int(10 * fps)
    for counted, within in ((overhead, True), (0, False)):
        encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=20, bitrate_bps=target, fps=fps,
                                  overhead_bytes=counted)
        bits = [8 * sum(map(len, message)) for _, message in stream(encoder, frames(300, noise=1.0), wire)]
        rates = np.convolve(bits, np.ones(window), "valid")[int(5 * fps):] / 10
        assert np.all(np.abs(rates / target - 1) <= 0.1) == within, (counted, rates.min(), rates.max())


def test_a_bitrate_below_the_headers_own_is_refused():
    with pytest.raises(ValueError, match="leaves nothing for the latents"):
        TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=20, bitrate_bps=10_000.0, fps=10.0,
                        overhead_bytes=150)


def test_a_keyframe_that_would_overrun_the_window_is_coded_coarser_and_the_stream_follows_its_grid():
    fps, target = 10.0, 60_000.0
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=20, bitrate_bps=target, fps=fps)
    for q in frames(150, noise=1.0):  # a quiet stretch: the rate control settles at a fine rate, the window full
        quiet = encoder.encode(q)
    busy = np.clip(np.rint(scene(np.random.default_rng(5)) * 3), -128, 127).astype(np.int8)  # a crowd walks in
    assert not encoder.control.fits(8 * len(create_codec("arith").encode(requantize(busy, 0, quiet.fix_point))))
    keyframe = encoder.encode(busy, force_keyframe=True)
    assert keyframe.keyframe and keyframe.fix_point == quiet.fix_point - KEYFRAME_COARSENING
    after = encoder.encode(busy)  # on the keyframe's grid: nothing changed, nothing sent
    assert not after.keyframe and after.fix_point == keyframe.fix_point and after.blocks_sent == 0


@pytest.mark.parametrize("step", [1, -1])
def test_a_rate_step_in_a_still_scene_sends_no_block_and_makes_no_keyframe(step):
    """A rate step (the control moving theta across a fix point) compares on the coarser of the two
    grids: a still scene keeps its blocks, where comparing on the new grid made every block differ
    and the frame a keyframe, a jump of a whole fix point (pedestrians at 2000 kbit/s: 45 keyframes
    in 30 s stepping 3.6 dB on average, now 21 stepping 2.0 dB)."""
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=100, bitrate_bps=60_000.0, fps=10.0)
    still = list(frames(8, noise=0.0, mover=False))
    for q in still[:5]:
        encoder.encode(q)
    encoder.control.theta = 2.0
    key = encoder.encode(still[5], force_keyframe=True)
    before = encoder.encode(still[6])
    assert key.fix_point == -2 + KEYFRAME_REFINEMENT_BITRATE and before.fix_point == -2  # a step already
    assert not before.keyframe and before.blocks_sent == 0
    encoder.control.theta = 2.0 + step  # the control moves one step, coarser or finer
    after = encoder.encode(still[7])
    assert after.fix_point == -2 - step
    assert not after.keyframe and after.blocks_sent == 0


def replay_relabelled(codec, version: int, rates: list[int]) -> int:
    """Streams `codec`'s payloads labelled `version` through a viewer, each frame checked against the
    encoder's reconstruction (the rate stepping through `rates`); returns how many of them, labelled
    as today's protocol instead (from the first keyframe to the first inter frame), went wrong."""
    import msgpack

    encoder = TemporalEncoder(codec, SHAPE, 0, keyframe_interval=10, rate=rates[0])
    decoder, state, mislabelled = FrameDecoder(), TemporalState(), TemporalState()
    wrong = 0
    for i, (coded, parts) in enumerate(stream(encoder, frames(12), FrameEncoder("cam0", "m", "arith"))):
        encoder.rate = rates[(i + 1) % len(rates)]
        header = msgpack.unpackb(parts[1])
        recorded = [parts[0], msgpack.packb({**header, "version": version}), parts[2]]
        np.testing.assert_array_equal(state.apply(decoder.decode(recorded)), encoder.values())
        if mislabelled is None:
            continue
        if coded.keyframe:
            mislabelled.apply(decoder.decode(parts))
        else:
            try:
                wrong += not np.array_equal(mislabelled.apply(decoder.decode(parts)), encoder.values())
            except PayloadError:
                wrong += 1
            mislabelled = None  # its chain is off from here
    return wrong


def test_a_protocol_3_recording_still_decodes_to_its_encoders_reconstruction():
    """Protocol 3 coded an inter frame's residuals without reading its reference's values; a
    recording made then replays through today's viewer state, rate steps included (the viewer's
    rows change grid every frame), and the same payloads labelled protocol 5 would not."""
    from caed.codecs.arith import ArithCodec

    class Protocol3Arith(ArithCodec):
        codes_positions = False

        def encode_residuals(self, residuals, start, reference=None, sent=None):
            return super().encode_residuals(residuals, start)

    assert replay_relabelled(Protocol3Arith(), 3, [1, 2]) == 1


def test_a_protocol_4_recording_still_decodes_to_its_encoders_reconstruction():
    """Protocol 4 coded every block of an inter frame, its zeroed blocks in the inter payload's map,
    where protocol 5's arith codes which positions were sent; a recording made then replays through
    today's viewer state, and the same payloads labelled protocol 5 would not."""
    from caed.codecs.arith import ArithCodec

    class Protocol4Arith(ArithCodec):
        codes_positions = False

        def encode_residuals(self, residuals, start, reference=None, sent=None):
            return super().encode_residuals(residuals, start, reference)

    assert replay_relabelled(Protocol4Arith(), 4, [1, 2]) == 1


def test_a_protocol_2_recording_still_decodes_to_its_encoders_reconstruction():
    """Protocol 2 coded an inter frame's residual tensor like any tensor (fresh arith models, DCs
    predicted from their neighbours); a recording made then replays through today's viewer state,
    and the same payloads labelled protocol 5 would not."""
    from caed.codecs.arith import ArithCodec

    class Protocol2Arith(ArithCodec):
        codes_positions = False

        def encode_residuals(self, residuals, start, reference=None, sent=None):
            return self.encode(residuals), None

    assert replay_relabelled(Protocol2Arith(), 2, [1]) == 1


@pytest.mark.parametrize("reference", ["previous", "keyframe"])
def test_the_viewer_reads_the_reference_the_encoder_coded_against_across_rate_steps(reference):
    """Protocol 4's inter payloads read their reference's values on the frame's grid: the viewer's
    rows (at the finest fix point of the chain) give the encoder's (at the model's), through steps
    to coarser and finer rates, so every frame decodes to the encoder's reconstruction."""
    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=8, reference=reference, rate=2)
    decoder, state = FrameDecoder(), TemporalState()
    rates = [2, 3, 1, 4, 0, 2, 1, 3, 3, 0, 4, 2, 1]
    inter_frames = 0
    for i, (coded, parts) in enumerate(stream(encoder, frames(len(rates)))):
        encoder.rate = rates[(i + 1) % len(rates)]
        inter_frames += not coded.keyframe
        np.testing.assert_array_equal(state.apply(decoder.decode(parts)), encoder.values())
    assert inter_frames >= 8


@pytest.mark.parametrize("key_fix_point, inter_fix_point", [(0, -20), (-10, 6)])
def test_an_inter_frame_whose_grid_the_reference_cannot_reach_is_a_payload_error(key_fix_point, inter_fix_point):
    """A header may declare any fix point in range; one that puts an inter frame more than 15 steps
    from its chain's finest (arith's reference shift), or whose finer grid would overflow the
    viewer's int16 rows, is refused as `payload`, never another exception, and the reference stays."""
    import msgpack

    encoder = TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=10)
    decoder, state = FrameDecoder(), TemporalState()
    messages = [parts for _, parts in stream(encoder, frames(2))]
    key_header, inter_header = (msgpack.unpackb(parts[1]) for parts in messages)
    key = [messages[0][0], msgpack.packb({**key_header, "fix_point": key_fix_point}), messages[0][2]]
    inter = [messages[1][0], msgpack.packb({**inter_header, "fix_point": inter_fix_point}), messages[1][2]]
    state.apply(decoder.decode(key))
    with pytest.raises(PayloadError):
        state.apply(decoder.decode(inter))
    # the reference is still held: the frame on its chain's grid decodes to the encoder's integers
    good = [messages[1][0], msgpack.packb({**inter_header, "fix_point": key_fix_point}), messages[1][2]]
    values = state.apply(decoder.decode(good))
    np.testing.assert_array_equal(values * np.float32(2.0 ** key_fix_point), encoder.values())


def test_an_inter_frame_that_reads_a_reference_its_chain_did_not_keep_is_a_payload_error():
    """The viewer keeps the int16 rows an arith inter frame reads only for streams whose codec
    reads them. A chain whose keyframe came in another codec (a hostile or broken sender) gives
    an arith inter frame nothing to read: refused as `payload`, never another exception."""
    import msgpack

    arith = [parts for _, parts in stream(TemporalEncoder(create_codec("arith"), SHAPE, 0, keyframe_interval=10),
                                          frames(2))]
    planar = [parts for _, parts in stream(TemporalEncoder(create_codec("zstd-planes"), SHAPE, 0,
                                                           keyframe_interval=10), frames(2))]
    decoder, state = FrameDecoder(), TemporalState()
    for parts in planar:  # its own inter frame decodes
        state.apply(decoder.decode(parts))
    state.apply(decoder.decode(planar[0]))
    assert msgpack.unpackb(arith[1][1])["ref_seq"] == msgpack.unpackb(planar[0][1])["seq"]
    with pytest.raises(PayloadError, match="did not keep"):
        state.apply(decoder.decode(arith[1]))


@pytest.mark.parametrize("steps", [0, 1, 2, 4])
def test_sent_blocks_are_what_the_formulas_give(steps):
    """The sent blocks' reference on the frame's grid, residuals and left-over error are what the
    formulas give in NumPy: the reference rounded half to even, the residuals rounded towards it
    with the dead zone, sign(r) * floor(|r| + 1/3), saturated to int8, and the error exact."""
    from caed.temporal import DEAD_ZONE_OFFSET

    h, w, c = 3, 40, 64 + 5  # 16-value chunks and a rest
    rng = np.random.default_rng(steps)
    encoder = TemporalEncoder(create_codec("arith"), (h, w, c), 0, keyframe_interval=10)
    latents = rng.integers(-128, 128, (h * w, c)).astype(np.int8)
    reference = rng.integers(-200, 200, (h * w, c)).astype(np.int16)
    reference[:5] = rng.integers(-32768, 32768, (5, c))  # residuals that saturate, both ways
    target = rng.integers(-40, 40, (h * w, c)).astype(np.int8)
    rows = np.flatnonzero(rng.random(h * w) < 0.9)
    rows[:3] = (0, 1, 4)
    base, residual, left = encoder._sent_blocks(latents, reference, rows, target, -steps)
    expected_base = np.round(reference[rows] * 2.0 ** -steps)  # half to even
    np.testing.assert_array_equal(base, expected_base)
    r = latents[rows] * 2.0 ** -steps - expected_base
    expected = np.clip(np.sign(r) * np.floor(np.abs(r) + (DEAD_ZONE_OFFSET if steps else 0.5)), -128, 127)
    assert DEAD_ZONE_OFFSET == 1 / 3
    np.testing.assert_array_equal(residual, expected)
    assert (residual == -128).any() and (residual == 127).any()
    if steps:
        np.testing.assert_array_equal(left, (((target[rows] - expected_base - expected) * 2.0 ** steps) ** 2).sum(axis=1))
    else:
        assert left is None
