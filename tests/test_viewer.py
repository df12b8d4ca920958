import numpy as np
import pytest

from caed import manifest
from caed.wire import FrameEncoder
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.sinks import NullSink, PngSink, SinkError, VideoSink, open_sink
from caed_host.viewer import Viewer


def frame(seq, stream="cam0", model="m", shape=(4, 4, 2), picture=(32, 32)):
    return FrameEncoder(stream, model, "zstd").encode(np.zeros(shape, np.int8), picture=picture, fix_point=3,
                                                      seq=seq, frame_index=seq, t_capture_ns=1)


def make_viewer(**decoder_options):
    return Viewer(subscriber=None, decoders=DecoderSet(**decoder_options), sink=NullSink(), metrics=ViewerMetrics())


def test_malformed_messages_are_counted_by_reason_and_good_ones_still_taken():
    v = make_viewer()
    good = frame(0)
    batch = [[b"garbage"], [b"cam0/", b"\xc1", b""], good[:2] + [good[2][:-1]], frame(1), [b"x/", good[1], good[2]]]
    newest = v.take(batch)
    assert newest["cam0"].header.seq == 1
    assert dict(v.stats.rejected) == {"parts": 1, "header_decode": 1, "payload": 1, "topic": 1}
    assert v.metrics.registry.get_sample_value("caed_view_messages_rejected_total", {"reason": "payload"}) == 1
    assert v.stats.received == 5


def test_sequence_gaps_are_lost_frames_and_older_ones_in_a_batch_are_skipped():
    v = make_viewer()
    newest = v.take([frame(0), frame(1), frame(4), frame(0, stream="cam1"), frame(2, stream="cam1")])
    assert {s: f.header.seq for s, f in newest.items()} == {"cam0": 4, "cam1": 2}
    assert v.stats.lost == 2 + 1
    assert v.stats.skipped == 2 + 1
    v.take([frame(0)])  # the board restarted: not a loss
    assert v.stats.lost == 3


def test_unknown_model_is_rejected_not_fatal():
    v = make_viewer()
    for f in v.take([frame(0, model="no-such-model")]).values():
        v.show(f)
    assert v.stats.rejected["unknown_model"] == 1 and v.stats.decoded == 0


def test_streams_beyond_the_maximum_picture_are_refused_before_decoding():
    """A stream larger than the viewer's maximum picture, latents larger than that picture needs
    whatever size the header claims, or the wrong channel count: counted as `shape`, nothing
    decoded, and the viewer goes on."""
    spec = manifest.find(manifest.DEFAULT_MODEL)
    c = spec.latent_shape[2]
    v = make_viewer(max_picture=(720, 1280))
    too_large = frame(0, "cam0", spec.model_id, (135, 240, c), picture=(1080, 1920))
    lying = frame(0, "cam1", spec.model_id, (135, 240, c), picture=(64, 64))  # latents for 1080x1920
    wrong_channels = frame(0, "cam2", spec.model_id, (4, 4, c + 1))
    for f in v.take([too_large, lying, wrong_channels]).values():
        v.show(f)
    assert v.stats.rejected["shape"] == 3 and v.stats.decoded == 0
    for f in v.take([frame(1, "cam0", spec.model_id, (90, 160, c), picture=(720, 1280))]).values():
        v.show(f)
    assert v.stats.decoded == 1 and v.stats.summary()["resolution"] == [720, 1280]


@pytest.mark.parametrize("picture, latents", [((512, 768), (64, 96)), ((357, 638), (45, 80))])
def test_the_viewer_shows_the_picture_without_the_encoders_padding(picture, latents):
    spec = manifest.find(manifest.DEFAULT_MODEL)
    v = make_viewer()
    parts = FrameEncoder("cam0", spec.model_id, "zstd").encode(
        np.zeros((*latents, spec.latent_shape[2]), np.int8), picture=picture, fix_point=spec.latent_fix_point, seq=0,
        frame_index=0, t_capture_ns=0)
    for f in v.take([parts]).values():
        v.show(f)
    s = v.stats.summary()
    assert s["frames_decoded"] == 1 and s["resolution"] == list(picture)
    assert s["bits_per_pixel"] == pytest.approx(8 * sum(map(len, parts)) / (picture[0] * picture[1]))


def test_a_picture_larger_than_its_latents_decode_to_is_refused():
    spec = manifest.find(manifest.DEFAULT_MODEL)
    v = make_viewer()
    for f in v.take([frame(0, "cam0", spec.model_id, (4, 4, spec.latent_shape[2]), picture=(33, 32))]).values():
        v.show(f)
    assert v.stats.rejected["shape"] == 1 and v.stats.decoded == 0


def test_sinks(tmp_path):
    rgb = np.zeros((16, 24, 3), np.uint8)
    png = PngSink(str(tmp_path / "png"))
    png.write(rgb, "cam0", 3)
    assert (tmp_path / "png" / "cam0_00000003.png").is_file()
    video = VideoSink(str(tmp_path / "v.avi"))
    for i in range(3):
        video.write(rgb, "cam0", i)
    video.close()
    assert (tmp_path / "v.avi").stat().st_size > 0
    with pytest.raises(SinkError):
        open_sink("video:/nonexistent-dir/x.mp4")
    with pytest.raises(SinkError):
        open_sink("video:out.gif")
    with pytest.raises(SinkError):
        open_sink("screen")


def test_decoder_providers_other_than_the_cpu_are_used_when_installed_never_required():
    import onnxruntime

    from caed_host.decoder import ProviderError, providers_for

    available = onnxruntime.get_available_providers()
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers_for("auto")[0] in available
    if "CUDAExecutionProvider" not in available:
        with pytest.raises(ProviderError, match="--provider cpu"):
            providers_for("cuda")


def test_inter_frames_without_their_reference_are_counted_and_not_shown():
    from caed.codecs import create_codec
    from caed.temporal import TemporalEncoder

    shape = (4, 4, 8)
    encoder = TemporalEncoder(create_codec("zstd"), shape, 0, keyframe_interval=4)
    wire, rng, messages = FrameEncoder("cam0", "m", "zstd"), np.random.default_rng(1), []
    base = rng.integers(-30, 30, shape).astype(np.int8)
    for i in range(8):
        latents = base.copy()
        latents[i % 4, 1] += 50  # one block changes a frame
        coded = encoder.encode(latents)
        messages.append(wire.message(shape, coded.payload, picture=(32, 32), fix_point=0, seq=i,
                                     ref_seq=coded.ref_index, frame_index=i, t_capture_ns=1))
    v = make_viewer()
    assert v.take(messages[1:3]) == {}  # joined after the keyframe: nothing to show
    assert v.take([messages[4]])["cam0"].header.seq == 4  # the next keyframe
    newest = v.take([messages[6], messages[7]])  # 5 lost: 6 and 7 wait for the next keyframe
    assert newest == {}
    assert dict(v.stats.rejected) == {"no_keyframe": 2, "broken_chain": 2} and v.stats.keyframes == 1
    assert v.metrics.registry.get_sample_value("caed_view_messages_rejected_total", {"reason": "broken_chain"}) == 2


@pytest.mark.parametrize("kind", ["cctv", "file"])
def test_reference_frames_asked_for_by_several_workers_at_once_are_the_source_frames(kind, tmp_path):
    """The decode workers ask for reference frames concurrently, out of order: each answer is
    the frame a single caller gets (a file is read in order, the cctv camera builds its scene on
    first use)."""
    import threading

    import cv2

    from caed.sources import CctvSource
    from caed_host.reference import ReferenceFrames

    spec = "cctv"
    if kind == "file":
        path, camera = tmp_path / "clip.avi", CctvSource(64, 48)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
        for i in range(12):
            writer.write(camera.frame(i))
        writer.release()
        spec = f"file:{path}"
    expected = [ReferenceFrames(spec).get(i, 48, 64) for i in range(12)]
    shared, start, wrong = ReferenceFrames(spec), threading.Barrier(4), []

    def ask(indices):
        start.wait()
        wrong.extend(i for i in indices if not np.array_equal(shared.get(i, 48, 64), expected[i]))

    workers = [threading.Thread(target=ask, args=(list(range(k, 12, 4)) * 3,)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert wrong == []
