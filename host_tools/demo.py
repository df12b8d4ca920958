"""`make demo`: the board daemon and the host viewer on this machine, over loopback ZeroMQ.

The daemon streams a fixed camera (the bundled `cctv` source: a still scene, a few moving
objects, sensor noise) with temporal coding, the way docs/temporal.md recommends for one: the
finest model (dct8-q0) coded at dct8-q1's step (`rate = 1`), keyframes every 5 s, so a new user
sees what a CCTV stream costs; `--source synthetic` pans over photographs instead (everything
moves). The viewer decodes it, writes the video, compares every frame with the source replayed
locally, and prints its report (FPS, latency, loss, keyframes, bits per pixel, PSNR).
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m caed_host.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300, help="frames to decode (default: 300)")
    p.add_argument("--seconds", type=float, default=150, help="give up after this long (default: 150)")
    p.add_argument("--fps", type=float, default=15.0,
                   help="camera frame rate (default: 15; the daemon encodes it on one core, the viewer decodes on "
                        "the other)")
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the video and JSON summaries")
    p.add_argument("--model", default="dct8-q0", help="model for the daemon (default: dct8-q0)")
    p.add_argument("--rate", type=int, default=1,
                   help="fix points below the model's the daemon codes at (default: 1; 0 for a model that is "
                        "not a multi-rate family's finest)")
    p.add_argument("--keyframe-interval", type=float, default=5.0,
                   help="seconds between scheduled keyframes (default: 5, as the board's config for a fixed camera "
                        "at a fixed rate; the viewer asks for one when it joins)")
    p.add_argument("--source", default="cctv", choices=("cctv", "synthetic"),
                   help="the generated camera to stream (default: cctv, a fixed view)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    # Daemon and viewer share this machine: one encoder worker for the daemon, one thread per
    # decode for the viewer (whose workers take consecutive frames side by side), so that neither
    # process spreads over the other's core of a 2-core machine.
    daemon_cmd = [sys.executable, "-m", "caed.cli", "--source", args.source, "--fps", str(args.fps),
                  "--workers", "1", "--bind", endpoint,
                  "--metrics-port", "0", "--duration", str(args.seconds + 30), "--log-level", "warning",
                  "--model", args.model, "--rate", str(args.rate), "--keyframe-interval", str(args.keyframe_interval),
                  "--json", str(args.out / "daemon-summary.json")]
    viewer_cmd = [sys.executable, "-m", "caed_host.cli", "--connect", endpoint, "--decoder-threads", "1", "--sink",
                  f"video:{args.out / 'demo.mp4'}", "--reference", args.source, "--frames", str(args.frames),
                  "--duration", str(args.seconds), "--metrics-port", "0", "--json",
                  str(args.out / "viewer-summary.json")]
    print(f"caed demo: daemon publishing the {args.source} camera on {endpoint}; viewer decoding {args.frames} frames")
    print("  daemon: " + " ".join(daemon_cmd[1:]))
    print("  viewer: " + " ".join(viewer_cmd[1:]), flush=True)
    daemon = subprocess.Popen(daemon_cmd)
    try:
        time.sleep(1.0)
        if daemon.poll() is not None:
            print("caed demo: the daemon exited at start-up; see its message above", file=sys.stderr)
            return 1
        viewer_rc = subprocess.call(viewer_cmd)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon_rc = daemon.wait(timeout=30)
    if viewer_rc or daemon_rc:
        print(f"caed demo: viewer exit {viewer_rc}, daemon exit {daemon_rc}", file=sys.stderr)
        return 1
    d = json.loads((args.out / "daemon-summary.json").read_text())
    print(f"daemon: {d['frames_published']} frames published at {d['fps']:.1f} fps by the {d['backend']} backend "
          f"({d['model_id']}, {d['workers']} workers); {d['frames_dropped_stale']} stale camera frames skipped; "
          f"CPU outside the encoder {d['cpu_ms_per_frame_outside_encoder']:.2f} ms/frame; {d['keyframes']} keyframes, "
          f"{100 * (d['blocks_sent_share'] or 1):.1f} % of blocks sent")
    print(f"video: {args.out / 'demo.mp4'}   summaries: {args.out}/viewer-summary.json, {args.out}/daemon-summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
