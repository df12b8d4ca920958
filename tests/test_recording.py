"""caed-view --record / --replay: the wire bytes kept as received, played back bit for bit."""
import errno
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from caed import manifest
from caed.publisher import ZmqPublisher
from caed.wire import FrameEncoder
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.recording import (FILE_MAGIC, INDEX_NAME, Recorder, RecordingError, RecordingReader,
                                 RecordingSubscriber, ReplaySubscriber, pack_record)
from caed_host.sinks import Sink
from caed_host.subscriber import Subscriber
from caed_host.viewer import Viewer

SPEC = manifest.find(manifest.DEFAULT_MODEL)
LATENTS = (8, 12, SPEC.latent_shape[2])  # a 64x96 picture: the decoder is fully convolutional


class CaptureSink(Sink):
    def __init__(self):
        self.frames = {}

    def write(self, rgb, stream, seq):
        self.frames[(stream, seq)] = rgb.copy()


def message(seq, stream="cam0"):
    latents = np.random.default_rng(seq).integers(-12, 13, LATENTS, dtype=np.int8)
    picture = (LATENTS[0] * SPEC.size_multiple, LATENTS[1] * SPEC.size_multiple)
    return FrameEncoder(stream, SPEC.model_id, "zstd").encode(latents, picture=picture, fix_point=SPEC.latent_fix_point,
                                                              seq=seq, frame_index=seq, t_capture_ns=time.time_ns())


def pump(viewer, until):
    deadline = time.monotonic() + 20
    while not until() and time.monotonic() < deadline:
        for frame in viewer.take(viewer.subscriber.receive(0.05)).values():
            viewer.show(frame)


def test_replay_decodes_the_live_frames_bit_for_bit(tmp_path):
    publisher = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=100)
    recorder = Recorder(str(tmp_path / "rec"))
    live_sink = CaptureSink()
    live = Viewer(RecordingSubscriber(Subscriber([publisher.endpoint], rcvhwm=100), recorder), DecoderSet(),
                  live_sink, ViewerMetrics())
    time.sleep(0.3)  # the subscription reaches the publisher
    sent = [message(s, stream) for s in range(3) for stream in ("cam0", "cam1")] + [[b"cam0/", b"\xc1", b"x"]]
    for parts in sent:
        publisher.send(parts)
        pump(live, lambda: live.stats.received >= sent.index(parts) + 1)
    recorder.close()
    publisher.close()
    live.subscriber.subscriber.close()
    assert live.stats.received == len(sent) and len(live_sink.frames) >= 2

    replay_sink, finished = CaptureSink(), threading.Event()
    replay = ReplaySubscriber(RecordingReader(str(tmp_path / "rec")), 0, finished)
    replayed = Viewer(replay, DecoderSet(), replay_sink, ViewerMetrics(), workers=2)
    replay.has_room = replayed.has_room
    replayed.run(finished, duration=60)
    assert set(live_sink.frames) <= set(replay_sink.frames)
    assert len(replay_sink.frames) == 6  # at speed 0 every frame is decoded, none skipped for a newer one
    for key, rgb in live_sink.frames.items():
        assert np.array_equal(rgb, replay_sink.frames[key]), key
    assert replayed.stats.rejected == live.stats.rejected == {"header_decode": 1}


def test_segments_rotate_and_are_indexed(tmp_path):
    recorder = Recorder(str(tmp_path), segment_bytes=3000)
    batches = [[[b"cam0/", bytes([i]) * 1000, b"p" * i]] for i in range(7)]
    for i, batch in enumerate(batches):
        recorder.write(batch, 1000 + i)
    recorder.close()
    reader = RecordingReader(str(tmp_path))
    assert [parts for _, parts in reader] == [b[0] for b in batches]
    assert [t for t, _ in RecordingReader(str(tmp_path))] == list(range(1000, 1007))
    assert len(reader.segments) == recorder.stats.segments > 1
    assert sum(reader.indexed.values()) == 7 and reader.stats.damaged == 0 and reader.stats.problems == []


def test_messages_the_format_cannot_hold_are_counted_not_recorded(tmp_path):
    recorder = Recorder(str(tmp_path))
    recorder.write([[b""] * 70000, [b"cam0/", b"ok"]], 1)
    recorder.close()
    assert recorder.stats.not_recorded == 1 and recorder.stats.messages == 1
    assert [p for _, p in RecordingReader(str(tmp_path))] == [[b"cam0/", b"ok"]]


def test_damaged_and_truncated_files_are_reported_and_skipped(tmp_path):
    recorder = Recorder(str(tmp_path), segment_bytes=2500)
    for i in range(6):
        recorder.write([[b"cam0/", bytes([i]) * 1000, b""]], i)
    recorder.close()
    segments = sorted(tmp_path.glob("segment-*"))
    assert len(segments) == 3
    first = bytearray(segments[0].read_bytes())
    first[-5] ^= 0xFF  # a flipped bit in the second record: CRC mismatch
    segments[0].write_bytes(bytes(first))
    segments[1].write_bytes(segments[1].read_bytes()[:-10])  # cut short
    (tmp_path / "segment-000000.caedrec").write_bytes(b"not a recording")
    (tmp_path / INDEX_NAME).write_text((tmp_path / INDEX_NAME).read_text() + "{not json\n")
    problems = []
    reader = RecordingReader(str(tmp_path), on_problem=problems.append)
    times = [t for t, _ in reader]
    assert times == [0, 2, 4, 5]  # what lies before each damage, and the intact file
    assert reader.stats.damaged == 3
    text = "\n".join(problems)
    for what in ("segment-000000.caedrec: not a caed recording", "segment-000001.caedrec: CRC mismatch",
                 "segment-000002.caedrec: truncated record", "index.jsonl: line 4"):
        assert what in text, text


def test_unreadable_recording_folders_are_errors(tmp_path):
    with pytest.raises(RecordingError, match="no recording segments"):
        RecordingReader(str(tmp_path))
    with pytest.raises(RecordingError, match="not a folder"):
        RecordingReader(str(tmp_path / "missing"))


def test_an_unwritable_folder_is_a_counted_error_naming_the_path_and_the_view_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    errors = []
    recorder = Recorder(str(blocker / "rec"), on_error=errors.append)
    recorder.write([message(0)], 1)
    assert recorder.stats.errors == 1 and recorder.stats.not_recorded == 1
    assert str(blocker / "rec") in errors[0]
    recorder.write([message(1)], 2)  # within the retry pause: counted, not retried, not logged again
    assert recorder.stats.errors == 1 and recorder.stats.not_recorded == 2


def test_disk_full_stops_recording_not_the_caller_and_recording_resumes(tmp_path, monkeypatch):
    recorder = Recorder(str(tmp_path))
    recorder.write([[b"a"]], 1)

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            pass

    recorder._file = Full()
    recorder.write([[b"b"], [b"c"]], 2)
    assert recorder.stats.errors == 1 and recorder.stats.not_recorded == 2
    assert "No space left on device" in recorder.stats.last_error and "segment-000001" in recorder.stats.last_error
    monkeypatch.setattr("caed_host.recording.RETRY_AFTER_S", 0.0)
    recorder._retry_at = 0.0
    recorder.write([[b"d"]], 3)
    recorder.close()
    problems = []
    assert [p for _, p in RecordingReader(str(tmp_path), problems.append)] == [[b"a"], [b"d"]]


def test_paced_replay_keeps_recorded_batches_and_spacing(tmp_path):
    (tmp_path / "segment-000001.caedrec").write_bytes(
        FILE_MAGIC + pack_record(0, [b"1"]) + pack_record(0, [b"2"]) + pack_record(200_000_000, [b"3"]))
    finished = threading.Event()
    replay = ReplaySubscriber(RecordingReader(str(tmp_path)), speed=2.0, finished=finished)
    assert replay.receive(1.0) == [[b"1"], [b"2"]]
    t0 = time.monotonic()
    while not (batch := replay.receive(0.01)):
        pass
    assert batch == [[b"3"]] and time.monotonic() - t0 > 0.05  # 100 ms at twice the speed
    assert replay.receive(0.01) == [] and finished.is_set()


def test_caed_view_replays_a_damaged_recording_without_a_traceback(tmp_path):
    recorder = Recorder(str(tmp_path / "rec"), segment_bytes=1)
    for seq in range(2):
        recorder.write([message(seq)], seq)
    recorder.close()
    last = sorted((tmp_path / "rec").glob("segment-*"))[-1]
    last.write_bytes(last.read_bytes()[:-7])
    out = subprocess.run([sys.executable, "-m", "caed_host.cli", "--replay", str(tmp_path / "rec"), "--speed", "0",
                          "--sink", f"png:{tmp_path / 'png'}", "--metrics-port", "0", "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "truncated record" in out.stderr
    assert "frames decoded      1" in out.stdout and "damaged files: 1" in out.stdout
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["cam0_00000000.png"]
