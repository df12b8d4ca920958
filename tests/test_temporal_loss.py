"""Temporal coding over real sockets: the real daemon, a relay that drops 10 % of the frames at
random (what a high-water mark does to a slow link), the real viewer joining mid-stream.

The relay keeps every frame the daemon published; replayed without loss through the viewer's own
state (tests/test_temporal.py checks it equals the encoder's reconstruction bit for bit) they are
the daemon's reconstruction, which every picture the viewer writes must equal exactly.
"""
import json
import random
import subprocess
import sys
import threading

import cv2
import numpy as np
import zmq

from caed import manifest
from caed.temporal import TemporalState
from caed.wire import FrameDecoder
from caed_host.decoder import load_decoder
from deploy_processes import free_port, running

FPS = 5
KEYFRAME_FRAMES = 8  # --keyframe-interval 1.6 s at 5 fps
DROP = 0.1
FRAMES = 60  # frames the relay passes on (about 12 s)


def relay(daemon_port, viewer_port, log, stop, seed=14):
    """Forward the daemon's frames, dropping DROP of them; every frame is kept in `log` as
    (parts, dropped)."""
    ctx = zmq.Context.instance()
    sub, pub = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 10000)
    pub.setsockopt(zmq.SNDHWM, 10000)
    sub.connect(f"tcp://127.0.0.1:{daemon_port}")
    pub.bind(f"tcp://127.0.0.1:{viewer_port}")
    rng = random.Random(seed)
    try:
        while not stop.is_set():
            if not sub.poll(100):
                continue
            parts = sub.recv_multipart()
            dropped = rng.random() < DROP
            log.append((parts, dropped))
            if not dropped:
                pub.send_multipart(parts)
    finally:
        sub.close(0)
        pub.close(0)


def test_loss_and_late_join_never_show_a_wrong_picture(tmp_path):
    daemon_port, viewer_port = free_port(), free_port()
    log, stop = [], threading.Event()
    thread = threading.Thread(target=relay, args=(daemon_port, viewer_port, log, stop))
    thread.start()
    daemon = [sys.executable, "-m", "caed.cli", "--source", "cctv", "--fps", str(FPS), "--workers", "1",
              "--keyframe-interval", str(KEYFRAME_FRAMES / FPS), "--bind", f"tcp://127.0.0.1:{daemon_port}",
              "--metrics-port", "0", "--log-level", "warning"]
    viewer = [sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{viewer_port}",
              "--decoder-threads", "1", "--decoder-precision", "fp32", "--sink", f"png:{tmp_path / 'png'}", "--duration", str(FRAMES / FPS),
              "--metrics-port", "0", "--quiet", "--json", str(tmp_path / "viewer.json")]
    try:
        with running(daemon, tmp_path / "daemon.log"):
            while len(log) < 3:  # the viewer joins a stream that has started
                threading.Event().wait(0.1)
            out = subprocess.run(viewer, capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        thread.join()
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "viewer.json").read_text())

    spec = manifest.find(manifest.DEFAULT_MODEL)
    decoder = load_decoder(spec, 1, precision="fp32")  # the viewer's: the same float sums, the same pixels
    frames, state, reconstruction, keyframes = FrameDecoder(), TemporalState(), {}, []
    for parts, _ in log:
        f = frames.decode(parts)
        h = f.header
        if not keyframes and not h.keyframe:
            continue  # the relay joined after the daemon's first keyframe (PUB/SUB): nothing to hold yet
        reconstruction[h.seq] = state.apply(f)
        if h.keyframe:
            keyframes.append(h.seq)
    dropped = [frames.decode(parts).header.seq for parts, lost in log if lost]
    shown = {int(p.stem.split("_")[1]): p for p in (tmp_path / "png").glob("cam0_*.png")}
    assert dropped and len(shown) >= 10, (dropped, sorted(shown))
    for seq, path in shown.items():
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        expected = decoder.decode_values(reconstruction[seq])
        np.testing.assert_array_equal(rgb, expected, err_msg=f"frame {seq} is not the daemon's reconstruction")
    # Shown after a loss only from the next keyframe that arrived; and that one is always shown
    # unless a newer frame replaced it before decoding (the viewer decodes the newest it holds).
    delivered = {frames.decode(parts).header.seq for parts, lost in log if not lost}
    for d in dropped:
        later_keys = [k for k in keyframes if k > d and k in delivered]
        if not later_keys or later_keys[0] > max(shown):
            continue
        assert not [s for s in shown if d < s < later_keys[0]], f"a picture after lost frame {d} before keyframe"
        assert any(later_keys[0] <= s < later_keys[0] + KEYFRAME_FRAMES for s in shown), (d, later_keys[0])
    rejected = summary["messages_rejected"]
    assert set(rejected) <= {"no_keyframe", "broken_chain"} and rejected.get("broken_chain", 0) > 0
    assert rejected.get("no_keyframe", 0) < KEYFRAME_FRAMES  # the late joiner's first picture: within one interval
    assert summary["frames_lost"] > 0
