"""A subscriber that stops reading costs the daemon nothing; a slow viewer still shows fresh frames."""
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from caed import manifest
from caed.publisher import ZmqPublisher
from caed.wire import FrameEncoder
from caed_host.decoder import DecoderSet
from caed_host.metrics import ViewerMetrics
from caed_host.sinks import NullSink
from caed_host.subscriber import Subscriber
from caed_host.viewer import Viewer
from deploy_processes import free_port, running, sample_value, scrape, wait_until
from tiny_models import write_tiny_encoder

H, W, C = 256, 384, 32  # latents 128x192x32: 768 KiB per raw frame


def fast_model(folder: Path) -> Path:
    """A one-layer encoder, so the daemon publishes hundreds of big frames per second."""
    folder.mkdir()
    write_tiny_encoder(folder / "encoder.onnx", H, W, C)
    (folder / "model.json").write_text(json.dumps({
        "model_id": "tiny", "input": {"shape": [H, W, 3], "fix_point": 7},
        "latent": {"shape": [H // 2, W // 2, C], "fix_point": 4}, "encoder": "encoder.onnx",
        "decoder": "decoder.onnx"}))
    return folder


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_stalled_subscriber_keeps_daemon_memory_flat(tmp_path):
    port, metrics = free_port(), free_port()
    argv = [sys.executable, "-m", "caed.cli", "--model", str(fast_model(tmp_path / "tiny")), "--resolution", "fit",
            "--fps", "200", "--codec", "raw", "--bind", f"tcp://127.0.0.1:{port}", "--metrics-port", str(metrics),
            "--metrics-addr", "127.0.0.1", "--log-level", "warning"]
    stalled = zmq.Context.instance().socket(zmq.SUB)
    stalled.setsockopt(zmq.RCVHWM, 2)
    stalled.setsockopt(zmq.RCVBUF, 65536)
    stalled.setsockopt(zmq.SUBSCRIBE, b"")
    stalled.connect(f"tcp://127.0.0.1:{port}")  # connected, never reads
    log = tmp_path / "daemon.log"
    try:
        with running(argv, log) as daemon:
            def published():
                return sample_value(scrape(metrics), "caed_frames_published_total")

            wait_until(lambda: published() >= 50, 60, "frames to flow", daemon, log)
            before, n0 = rss_mb(daemon.pid), published()
            wait_until(lambda: published() >= n0 + 300, 120, "300 more frames", daemon, log)
            after, n1 = rss_mb(daemon.pid), published()
    finally:
        stalled.close(0)
    sent_mb = (n1 - n0) * H // 2 * W // 2 * C / 2 ** 20
    assert sent_mb > 200  # had they queued, RSS would have grown by this much
    assert after - before < 20, f"RSS {before:.0f} → {after:.0f} MB while {sent_mb:.0f} MB were published"


def test_slow_viewer_decodes_only_recent_frames():
    pub = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=4)
    viewer = Viewer(Subscriber([pub.endpoint]), DecoderSet(), NullSink(), ViewerMetrics())
    fast_decode, shown, sent = viewer.decode, [], [0]

    def decode(frame):  # a decoder 5x slower than the stream
        time.sleep(0.1)
        shown.append((frame.header.seq, sent[0]))
        return fast_decode(frame)

    viewer.decode = decode
    stop = threading.Event()
    encoder = FrameEncoder("cam0", "kth2020", "zstd")
    spec = manifest.find("kth2020")

    def stream():
        seq = 0
        while not stop.is_set():
            sent[0] = seq
            pub.send(encoder.encode(np.zeros((4, 4, spec.latent_shape[2]), np.int8), picture=(32, 32),
                                    fix_point=spec.latent_fix_point, seq=seq, frame_index=seq,
                                    t_capture_ns=time.time_ns()))
            seq += 1
            time.sleep(0.02)

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        summary = viewer.run(threading.Event(), duration=4.0)
    finally:
        stop.set()
        sender.join()
        viewer.subscriber.close()
        pub.close()
    assert summary["frames_decoded"] >= 10 and summary["frames_skipped"] > 2 * summary["frames_decoded"]
    # The last decoded frame was among the newest sent; decoding a backlog in order would leave it
    # at about a fifth of the way.
    assert shown[-1][0] > 0.8 * shown[-1][1], shown[-5:]
