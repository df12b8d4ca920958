"""Several streams at once: decoded in parallel, each in order and newest-only, reported per stream."""
import json
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np

from caed import manifest
from caed.wire import FrameEncoder
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.report import MAX_STREAMS, OTHER, format_report
from caed_host.sinks import NullSink
from caed_host.streams import StreamPool
from caed_host.viewer import Viewer
from deploy_processes import daemon_argv, free_port, running


def fake(stream, seq):
    return SimpleNamespace(header=SimpleNamespace(stream=stream, seq=seq))


def test_streams_decode_in_parallel_in_order_and_newest_only():
    both_running = threading.Barrier(2, timeout=10)  # only passes if two streams decode at the same time
    release = threading.Event()
    decoded, skipped = [], []

    def decode(frame):
        if frame.header.seq == 0:
            both_running.wait()
            release.wait(10)
        return frame.header.seq

    def deliver(frame, result):
        assert result == frame.header.seq
        decoded.append((frame.header.stream, frame.header.seq))

    pool = StreamPool(2, decode, deliver, lambda f: skipped.append((f.header.stream, f.header.seq)), per_stream=1)
    pool.submit(fake("a", 0))
    pool.submit(fake("b", 0))
    time.sleep(0.2)  # both workers are inside decode, held
    for seq in (1, 2, 3):  # while a stream is busy, only its newest frame waits
        pool.submit(fake("a", seq))
        pool.submit(fake("b", seq))
    assert pool.waiting() == 2
    release.set()
    assert pool.drain(10)
    pool.close()
    assert pool.error is None
    for s in "ab":
        assert [q for name, q in decoded if name == s] == [0, 3]
    assert sorted(skipped) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]


def test_one_streams_frames_decode_side_by_side_and_are_delivered_in_order():
    """Two workers on one stream: frame 1 finishes first, yet frame 0 is delivered before it."""
    both_running = threading.Barrier(2, timeout=10)  # only passes if two frames of one stream decode at once
    delivered = []

    def decode(frame):
        both_running.wait()
        if frame.header.seq == 0:
            time.sleep(0.3)
        return frame.header.seq

    pool = StreamPool(2, decode, lambda frame, result: delivered.append(result), lambda f: None)
    pool.submit(fake("a", 0))
    time.sleep(0.1)  # the first worker has taken frame 0
    pool.submit(fake("a", 1))
    assert pool.drain(10)
    pool.close()
    assert pool.error is None and delivered == [0, 1]


def test_a_worker_failure_reaches_the_receive_loop():
    def deliver(frame, result):
        raise RuntimeError("sink broke")

    pool = StreamPool(1, lambda frame: None, deliver, lambda f: None)
    pool.submit(fake("a", 0))
    assert pool.drain(5)
    pool.close()
    assert str(pool.error) == "sink broke"


def message(stream, seq, spec):
    latents = np.zeros((4, 6, spec.latent_shape[2]), np.int8)
    return FrameEncoder(stream, spec.model_id, "zstd").encode(latents, picture=(32, 48), fix_point=spec.latent_fix_point,
                                                              seq=seq, frame_index=seq, t_capture_ns=time.time_ns())


def test_summary_report_and_metrics_per_stream():
    spec = manifest.find(manifest.DEFAULT_MODEL)
    batches = [[message("cam0", 0, spec), message("cam1", 0, spec)], [message("cam0", 2, spec)],
               [message("cam1", 1, spec), message("cam1", 2, spec)]]

    class Feed:
        def receive(self, timeout):
            return batches.pop(0) if batches else []

    stop = threading.Event()
    viewer = Viewer(Feed(), DecoderSet(), NullSink(), ViewerMetrics(), workers=2)
    threading.Timer(1.5, stop.set).start()
    s = viewer.run(stop, duration=30)
    assert set(s["streams"]) == {"cam0", "cam1"}
    assert s["streams"]["cam0"]["frames_lost"] == 1 and s["streams"]["cam1"]["frames_lost"] == 0
    for name, received in (("cam0", 2), ("cam1", 3)):  # (how many were skipped depends on the timing)
        st = s["streams"][name]
        assert st["frames_received"] == received and st["frames_decoded"] >= 1
        assert st["frames_skipped"] + st["frames_decoded"] == received
    assert s["frames_decoded"] == s["streams"]["cam0"]["frames_decoded"] + s["streams"]["cam1"]["frames_decoded"]
    sample = viewer.metrics.registry.get_sample_value
    assert sample("caed_view_stream_frames_decoded_total", {"stream": "cam0"}) == s["streams"]["cam0"][
        "frames_decoded"]
    assert sample("caed_view_stream_frames_lost_total", {"stream": "cam0"}) == 1
    assert sample("caed_view_frames_decoded_total") == s["frames_decoded"]
    assert "cam0 " in viewer.status_line() and "cam1 " in viewer.status_line()
    report = format_report(s)
    assert "stream cam0" in report and "stream cam1" in report


def test_stream_ids_beyond_the_limit_are_reported_together():
    viewer = Viewer(None, DecoderSet(), NullSink(), ViewerMetrics())
    spec = manifest.find(manifest.DEFAULT_MODEL)
    viewer.take([message(f"s{i}", 0, spec) for i in range(MAX_STREAMS + 10)])
    assert len(viewer.streams) == MAX_STREAMS + 1 and viewer.streams[OTHER].received == 10


def test_two_daemons_into_one_viewer(tmp_path):
    ports = [free_port(), free_port()]
    summary = tmp_path / "viewer.json"
    with running(daemon_argv("synthetic", ports[0], 0, "--fps", "2", "--stream", "cam0"), tmp_path / "d0.log"), \
            running(daemon_argv("synthetic", ports[1], 0, "--fps", "2", "--stream", "cam1"), tmp_path / "d1.log"):
        out = subprocess.run([sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{ports[0]}",
                              "--connect", f"tcp://127.0.0.1:{ports[1]}", "--sink", "null", "--frames", "8",
                              "--duration", "120", "--metrics-port", "0", "--json", str(summary)],
                             capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    s = json.loads(summary.read_text())
    assert set(s["streams"]) == {"cam0", "cam1"}, s["streams"]
    assert all(st["frames_decoded"] > 0 and st["resolution"] == [512, 768] for st in s["streams"].values())
    assert "stream cam0" in out.stdout and "stream cam1" in out.stdout  # the report, per stream
