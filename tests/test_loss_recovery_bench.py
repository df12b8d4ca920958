"""bench/loss_recovery.py's forwarder is what its two modes say: with `requests` the viewer's own
subscriptions reach the daemon's publisher, without them only the forwarder's one does, and it
drops the share of frames it is given."""
from __future__ import annotations

import random
import threading
import time

import zmq

from bench_scripts import load_bench
from caed.publisher import ZmqPublisher
from caed.wire import topic_for


def test_requests_go_up_only_through_the_requests_forwarder_and_loss_drops_frames():
    bench = load_bench("loss_recovery")
    for mode, loss, expected_subscriptions in (("requests", 0.0, 2), ("no-requests", 1.0, 1)):
        publisher = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=1000)
        viewers = f"tcp://127.0.0.1:{bench.free_port()}"
        stop, counts = threading.Event(), {}
        thread = threading.Thread(target=lambda: counts.update(
            bench.forward(publisher.endpoint, viewers, lambda _: random.random() < loss, mode == "requests", stop)))
        thread.start()
        viewer = zmq.Context.instance().socket(zmq.SUB)
        viewer.setsockopt(zmq.LINGER, 0)
        viewer.setsockopt(zmq.SUBSCRIBE, b"")
        viewer.connect(viewers)
        try:
            time.sleep(0.5)
            viewer.setsockopt(zmq.SUBSCRIBE, topic_for("cam0"))  # a viewer asking for a keyframe
            time.sleep(0.5)
            subscriptions = publisher.subscriptions(topic_for("cam0"))
            for i in range(20):
                publisher.send([topic_for("cam0"), b"header", bytes([i])])
            time.sleep(0.5)
            received = 0
            while viewer.poll(100):
                viewer.recv_multipart()
                received += 1
        finally:
            stop.set()
            thread.join()
            viewer.close()
            publisher.close(0)
        # requests: the viewer's first subscription and the one it asked again with (the first
        # arrives as the forwarder's own, b"" matches every topic); no-requests: the forwarder's only
        assert subscriptions == expected_subscriptions, mode
        assert counts["frames"] == 20
        assert (received, counts["dropped"]) == ((20, 0) if loss == 0.0 else (0, 20)), mode
