"""The daemon's `rate`: a finer model's latents coded at a coarser fix point, over a real socket.

The real daemon runs dct8-q0 with rate 1 on the fixed-camera source; a subscriber reads what it
publishes, joining whenever PUB/SUB lets it. Every inter frame is at the rate; a keyframe is at the
rate or, in a still scene, one fix point finer, here the model's own (docs/temporal.md; which one
is tests/test_temporal.py's to check); and from the first keyframe received every frame applies
through the viewer's state.
"""
import sys

import numpy as np
import zmq

from caed import manifest
from caed.temporal import TemporalState
from caed.wire import FrameDecoder
from deploy_processes import free_port, running

FPS = 5
FRAMES = 14  # a keyframe a second (5 frames): at least two of them


def test_rate_codes_inter_frames_one_fix_point_below_the_model(tmp_path):
    finest = manifest.find("dct8-q0").latent_fix_point
    port = free_port()
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 1000)
    sub.connect(f"tcp://127.0.0.1:{port}")
    daemon = [sys.executable, "-m", "caed.cli", "--source", "cctv", "--fps", str(FPS), "--workers", "1",
              "--model", "dct8-q0", "--rate", "1", "--keyframe-interval", "1", "--frames", "100",
              "--bind", f"tcp://127.0.0.1:{port}", "--metrics-port", "0", "--log-level", "warning"]
    decoder, frames = FrameDecoder(), []
    try:
        with running(daemon, tmp_path / "daemon.log"):
            while len(frames) < FRAMES:
                assert sub.poll(60_000), "the daemon published nothing for 60 s"
                frames.append(decoder.decode(sub.recv_multipart()))
    finally:
        sub.close(0)
    keyframes = [f.header.fix_point for f in frames if f.header.keyframe]
    inter = [f.header.fix_point for f in frames if not f.header.keyframe]
    assert len(keyframes) >= 2 and set(keyframes) <= {finest, finest - 1}, keyframes
    assert inter and set(inter) == {finest - 1}, inter
    state = TemporalState()
    first_key = next(i for i, f in enumerate(frames) if f.header.keyframe)
    for f in frames[first_key:]:  # the chain holds: every frame applies to the one before it
        assert np.isfinite(state.apply(f)).all()
