"""A subscription asks a temporally coded stream's board for a keyframe, over real ZeroMQ sockets on
loopback: the publisher reports each subscription to its stream, the pipeline answers it with a
keyframe (at most one a KEYFRAME_REQUEST_GAP), a relay passes every viewer's
subscription up to the board, and a viewer that loses a frame subscribes again."""
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from caed import pipeline as pipeline_module
from caed import wire
from caed.codecs import create_codec
from caed.encoders.base import EncoderBackend, TensorInfo
from caed.metrics import DaemonMetrics
from caed.pipeline import Pipeline
from caed.publisher import ZmqPublisher
from caed.sources import FrameSource, LatestFrameSource
from caed.temporal import TemporalEncoder
from caed.wire import FrameDecoder, FrameEncoder, topic_for
from caed_host.decoder import DecoderSet
from caed_host.demo import free_port
from caed_host.metrics import ViewerMetrics
from caed_host.relay import Relay, RelayConfig, RelayMetrics
from caed_host.sinks import NullSink
from caed_host.subscriber import Subscriber
from caed_host.viewer import Viewer

from bench_scripts import load_bench

H, W = 16, 24
LATENT = (4, 6, 64)


class StillEncoder(EncoderBackend):
    """The same latents for every frame: a still scene, whose inter frames send nothing."""

    name = "still"

    def __init__(self):
        super().__init__("test-model", TensorInfo("in", (H, W, 3), 7), TensorInfo("out", LATENT, 0), 1)
        self.latents = np.random.default_rng(5).integers(-3, 4, LATENT).astype(np.int8)

    def _make_runner(self):
        return object()

    def _run(self, runner, frame):
        return self.latents.copy()


class PacedSource(FrameSource):
    description = "paced"

    def read(self):
        time.sleep(0.02)
        return np.zeros((H, W, 3), np.uint8)


def subscriber(endpoint: str, topic: bytes = b"") -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def receive(sock: zmq.Socket, count: int, timeout: float = 10.0) -> list:
    """The headers of the next `count` frames on `sock`."""
    decoder, headers, deadline = FrameDecoder(), [], time.monotonic() + timeout
    while len(headers) < count and time.monotonic() < deadline:
        if sock.poll(100):
            headers.append(decoder.decode(sock.recv_multipart()).header)
    assert len(headers) == count, f"{len(headers)} of {count} frames in {timeout} s"
    return headers


def is_keyframe(header) -> bool:
    return header.ref_seq == header.seq


def first_keyframe(sock: zmq.Socket, timeout: float = 10.0):
    """The first keyframe a new subscriber receives. The stream schedules one every 1000 frames (20 s),
    so one within `timeout` answers its subscription. How many frames come first depends on the
    frames in flight as the subscription arrives: the one being coded, more on a loaded machine or
    through a relay (bench/loss_recovery.py measures what a viewer waits)."""
    decoder, deadline = FrameDecoder(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(100):
            header = decoder.decode(sock.recv_multipart()).header
            if is_keyframe(header):
                return header
    raise AssertionError(f"no keyframe in {timeout} s")


@pytest.fixture
def stream():
    """A temporally coded stream (keyframes every 1000 frames) running on a loopback publisher."""
    metrics = DaemonMetrics()
    encoder = StillEncoder()
    publisher = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=1000)
    temporal = TemporalEncoder(create_codec("arith"), LATENT, 0, keyframe_interval=1000)
    pipe = Pipeline(LatestFrameSource(PacedSource()), encoder, publisher, FrameEncoder("cam0", "test-model", "arith"),
                    metrics, temporal=temporal)
    stop = threading.Event()
    runner = threading.Thread(target=pipe.run, args=(stop,))
    first = subscriber(publisher.endpoint)
    time.sleep(0.3)  # the first viewer is there when the stream starts
    runner.start()
    try:
        yield publisher, metrics, first
    finally:
        stop.set()
        runner.join()
        first.close()
        publisher.close(0)
        encoder.close()


def sample(metrics, name):
    return metrics.registry.get_sample_value(name)


def test_publisher_reports_the_subscriptions_to_its_stream_only():
    publisher = ZmqPublisher("tcp://127.0.0.1:0")
    sockets = [subscriber(publisher.endpoint, t) for t in (b"", b"cam0/", b"cam0", b"cam1/")]
    try:
        count, deadline = 0, time.monotonic() + 5
        while count < 3 and time.monotonic() < deadline:
            count += publisher.subscriptions(topic_for("cam0"))
            time.sleep(0.05)
        sockets[1].setsockopt(zmq.UNSUBSCRIBE, b"cam0/")
        time.sleep(0.3)
        assert count + publisher.subscriptions(topic_for("cam0")) == 3  # not cam1/'s, not the unsubscription
    finally:
        for sock in sockets:
            sock.close()
        publisher.close(0)


def test_a_viewer_joining_mid_stream_gets_a_keyframe_long_before_the_schedule(stream):
    publisher, metrics, first = stream
    before = receive(first, 10)
    assert is_keyframe(before[0]) and not any(is_keyframe(h) for h in before[1:])
    time.sleep(wire.KEYFRAME_REQUEST_GAP)
    late = subscriber(publisher.endpoint)
    try:
        joined = first_keyframe(late)
        seen_by_first = receive(first, joined.seq - before[-1].seq)
        assert [h.seq for h in seen_by_first if is_keyframe(h)] == [joined.seq]  # one keyframe, the same for both
        assert sample(metrics, "caed_subscriptions_total") == 2
        assert sample(metrics, "caed_requested_keyframes_total") == 1
        assert sample(metrics, "caed_keyframes_total") == 2
    finally:
        late.close()


def test_joins_within_the_gap_of_a_keyframe_wait_for_it(stream, monkeypatch):
    monkeypatch.setattr(pipeline_module, "KEYFRAME_REQUEST_GAP", 3600.0)  # the stream's first keyframe is recent
    publisher, metrics, first = stream
    receive(first, 3)
    late = subscriber(publisher.endpoint)
    try:
        headers = receive(late, 10)
        assert not any(is_keyframe(h) for h in headers)
        assert sample(metrics, "caed_subscriptions_total") == 2
        assert sample(metrics, "caed_requested_keyframes_total") == 0
    finally:
        late.close()


def test_every_viewer_of_a_relay_reaches_the_board(stream):
    publisher, metrics, first = stream
    relay = Relay(RelayConfig(connect=[publisher.endpoint], bind="tcp://127.0.0.1:0", metrics_port=0), RelayMetrics())
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,))
    runner.start()
    viewers = []
    try:
        for _ in range(2):  # the second viewer's subscription is the same topic as the first's
            time.sleep(wire.KEYFRAME_REQUEST_GAP)
            viewers.append(subscriber(relay.endpoint))
            first_keyframe(viewers[-1])
        assert sample(metrics, "caed_subscriptions_total") == 3  # the first viewer's, and the two through the relay
        assert sample(metrics, "caed_requested_keyframes_total") == 2
    finally:
        for sock in viewers:
            sock.close()
        stop.set()
        runner.join()
        relay.close()


def test_a_viewer_that_loses_a_frame_asks_for_a_keyframe_and_gets_it(stream):
    publisher, board_metrics, first = stream
    # caed-relay's sockets (bench/loss_recovery.py's forwarder), dropping the first frame whose seq
    # reaches drop_from once that is set
    drops = {"from": None, "dropped": None}

    def drop(parts):
        seq = msgpack.unpackb(parts[1])["seq"]
        if drops["dropped"] is None and drops["from"] is not None and seq >= drops["from"]:
            drops["dropped"] = seq
            return True
        return False

    endpoint, stop = f"tcp://127.0.0.1:{free_port()}", threading.Event()
    forwarder = threading.Thread(target=load_bench("loss_recovery").forward,
                                 args=(publisher.endpoint, endpoint, drop, True, stop))
    forwarder.start()
    metrics = ViewerMetrics()
    viewer = Viewer(Subscriber([endpoint]), DecoderSet(), NullSink(), metrics)

    def take_until(done, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            viewer.take(viewer.subscriber.receive(0.05))
        assert done()

    try:
        take_until(lambda: viewer.stats.keyframes >= 1)
        settled = time.monotonic() + wire.KEYFRAME_REQUEST_GAP  # a loss now is answered at once
        take_until(lambda: time.monotonic() >= settled)
        keyframes, applied = viewer.stats.keyframes, viewer.stats.received
        drops["from"] = viewer._last_seq["cam0"] + 3
        take_until(lambda: viewer.stats.keyframes > keyframes)
        broken = viewer.stats.rejected["broken_chain"]
        assert drops["dropped"] is not None and 1 <= broken <= 3  # the frames in flight as the request went up
        assert metrics.registry.get_sample_value("caed_view_keyframes_asked_total") == 1  # once, not per broken frame
        assert viewer.summary()["keyframes_asked"] == 1
        assert board_metrics.registry.get_sample_value("caed_requested_keyframes_total") >= 1
        assert viewer.stats.received > applied
    finally:
        viewer.subscriber.close()
        stop.set()
        forwarder.join()
