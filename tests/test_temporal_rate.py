"""The daemon's `rate`: a finer model's latents coded at a coarser fix point, over a real socket.

The real daemon runs dct8-q0 with rate 1 on the fixed-camera source; a subscriber reads what it
publishes. The stream's first keyframe is one fix point finer than the rate (a still scene's,
docs/temporal.md), here the model's own; every inter frame is at the rate; and every frame applies
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
FRAMES = 8


def test_rate_codes_inter_frames_one_fix_point_below_the_model(tmp_path):
    model = manifest.find("dct8-q0")
    port = free_port()
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.RCVHWM, 1000)
    sub.connect(f"tcp://127.0.0.1:{port}")  # before the daemon binds: it sees the stream from its first frame
    daemon = [sys.executable, "-m", "caed.cli", "--source", "cctv", "--fps", str(FPS), "--workers", "1",
              "--model", "dct8-q0", "--rate", "1", "--keyframe-interval", "60", "--frames", "100",
              "--bind", f"tcp://127.0.0.1:{port}", "--metrics-port", "0", "--log-level", "warning"]
    decoder, frames = FrameDecoder(), []
    try:
        with running(daemon, tmp_path / "daemon.log"):
            while len(frames) < FRAMES:
                assert sub.poll(60_000), "the daemon published nothing for 60 s"
                frames.append(decoder.decode(sub.recv_multipart()))
    finally:
        sub.close(0)
    headers = [f.header for f in frames]
    assert headers[0].seq == 0 and headers[0].keyframe, headers[0]
    assert headers[0].fix_point == model.latent_fix_point  # a stream's first keyframe: one finer, the model's own
    assert not any(h.keyframe for h in headers[1:])
    assert {h.fix_point for h in headers[1:]} == {model.latent_fix_point - 1}
    state = TemporalState()
    for f in frames:  # the chain holds: every frame applies to the one before it
        assert np.isfinite(state.apply(f)).all()
