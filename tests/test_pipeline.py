"""The pipeline against a real ZeroMQ socket over loopback, with a backend whose jobs finish out of order."""
import random
import threading
import time

import numpy as np
import zmq

from caed.encoders.base import EncoderBackend, TensorInfo
from caed.metrics import DaemonMetrics
from caed.pipeline import Pipeline
from caed.publisher import ZmqPublisher
from caed.sources import FrameSource, LatestFrameSource
from caed.wire import FrameDecoder, FrameEncoder

H, W = 16, 24


class JitteryEncoder(EncoderBackend):
    """Latents carry the frame's first pixel, so the test can match them; run times vary 0–40 ms."""

    name = "jittery"

    def __init__(self, workers, fail_every=0):
        self.fail_every, self.calls = fail_every, 0
        self.lock = threading.Lock()
        super().__init__("test-model", TensorInfo("in", (H, W, 3), 7), TensorInfo("out", (2, 3, 1), 0), workers)

    def _make_runner(self):
        return object()

    def _run(self, runner, frame):
        with self.lock:
            self.calls += 1
            fail = self.fail_every and self.calls % self.fail_every == 0
        time.sleep(random.uniform(0, 0.04))
        if fail:
            raise RuntimeError("injected failure")
        return np.full((2, 3, 1), frame[0, 0, 0], np.int8)


class CountingSource(FrameSource):
    """Frame n is filled with the value n % 100 (BGR), paced at 200 fps."""

    description = "counting"

    def __init__(self):
        self.n = 0

    def read(self):
        time.sleep(0.005)
        frame = np.full((H, W, 3), self.n % 100, np.uint8)
        self.n += 1
        return frame


def run_pipeline(encoder, frames, stop=None):
    ctx = zmq.Context.instance()
    pub = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=1000)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 1000)
    sub.connect(pub.endpoint)
    time.sleep(0.3)  # let the subscription reach the publisher
    metrics = DaemonMetrics()
    latest = LatestFrameSource(CountingSource(), on_capture=metrics.captured.inc)
    pipeline = Pipeline(latest, encoder, pub, FrameEncoder("s", encoder.model_id, "raw"), metrics)
    summary = pipeline.run(stop or threading.Event(), frames=frames)
    received = []
    decoder = FrameDecoder()
    while sub.poll(500):
        received.append(decoder.decode(sub.recv_multipart()))
    sub.close()
    pub.close()
    encoder.close()
    return summary, received, metrics


def test_frames_publish_in_order_and_match_their_source_frame():
    random.seed(3)
    summary, received, _ = run_pipeline(JitteryEncoder(workers=4), frames=40)
    assert summary["frames_published"] == 40 == len(received)
    assert [f.header.seq for f in received] == list(range(40))
    indices = [f.header.frame_index for f in received]
    assert indices == sorted(indices) and len(set(indices)) == 40
    for f in received:  # each latent came from the frame its header names
        quantized = round(f.header.frame_index % 100 / 255 * 128)
        assert int(f.latents[0, 0, 0]) == quantized


def test_failed_jobs_are_counted_and_the_stream_goes_on():
    summary, received, metrics = run_pipeline(JitteryEncoder(workers=2, fail_every=5), frames=20)
    assert summary["encoder_errors"] == 4
    assert summary["frames_published"] == 16 == len(received)
    assert [f.header.seq for f in received] == list(range(16))
    assert metrics.registry.get_sample_value("caed_frames_dropped_total", {"reason": "encoder_error"}) == 4


def test_stop_drains_every_submitted_frame():
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    summary, received, _ = run_pipeline(JitteryEncoder(workers=3), frames=0, stop=stop)
    assert summary["frames_submitted"] > 5
    assert summary["frames_published"] == summary["frames_submitted"] == len(received)


class StallingSource(CountingSource):
    """Ten frames, then a camera that delivers nothing (but has not failed); some of the ten are
    dropped as stale since the encoder is slower than the source."""

    def read(self):
        while self.n >= 10:
            time.sleep(0.05)
        return super().read()


def test_fps_gauge_falls_to_zero_when_frames_stop():
    metrics = DaemonMetrics()
    encoder = JitteryEncoder(workers=1)
    pub = ZmqPublisher("tcp://127.0.0.1:0")
    latest = LatestFrameSource(StallingSource())
    pipeline = Pipeline(latest, encoder, pub, FrameEncoder("s", "m", "raw"), metrics)
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop,))
    runner.start()

    def fps():
        return metrics.registry.get_sample_value("caed_fps")

    try:
        deadline = time.monotonic() + 10
        while latest.source.n < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        assert latest.source.n == 10 and pipeline.published > 0
        deadline = time.monotonic() + 5
        while fps() != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fps() == 0
    finally:
        stop.set()
        runner.join()
        pub.close()
        encoder.close()
