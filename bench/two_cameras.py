"""Two cameras into one viewer on this machine: issue 15's "two daemons at 10 fps each, both
streams decoded with no skipped frames over 60 s", with real processes over loopback.

    python bench/two_cameras.py --fps 10 --seconds 60 --json two_cameras.json

Each daemon streams its own camera (`--source`, default the fixed-camera `cctv`) with the daemon's
defaults (one encoder worker each, so that two daemons share two cores); the viewer runs with its
defaults (a decode worker per core, the default decoder). The JSON holds both daemons' summaries
(frames published, stale camera frames the daemon could not encode in time) and the viewer's
per-stream figures (decoded, skipped for a newer frame, lost, decode time) and what it refused;
`clean` is the issue's criterion: no frame skipped or lost on either stream, and nothing refused
but the frames before a stream's first keyframe (a viewer joining a stream cannot decode them:
`no_keyframe`, at most a keyframe interval each). Received but not decoded are those refused and
the few still being decoded when the viewer's time is up.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from caed_host.demo import free_port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fps", type=float, default=10.0, help="each camera's frame rate (default 10)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the viewer watches (default 60)")
    p.add_argument("--source", default="cctv", choices=("cctv", "synthetic"), help="the generated camera")
    p.add_argument("--json", type=Path, default=Path("two_cameras.json"))
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="caed-two-cameras-"))
    ports = [free_port(), free_port()]
    daemons = [subprocess.Popen([sys.executable, "-m", "caed.cli", "--source", args.source, "--fps", str(args.fps),
                                 "--workers", "1", "--bind", f"tcp://127.0.0.1:{port}", "--stream", f"cam{i}",
                                 "--metrics-port", "0", "--log-level", "warning",
                                 "--json", str(tmp / f"daemon{i}.json")])
               for i, port in enumerate(ports)]
    try:
        time.sleep(2.0)  # both daemons bound and encoding before the viewer starts counting
        viewer = subprocess.run([sys.executable, "-m", "caed_host.cli", "--sink", "null", "--duration",
                                 str(args.seconds), "--metrics-port", "0", "--quiet", "--json", str(tmp / "viewer.json")]
                                + [arg for port in ports for arg in ("--connect", f"tcp://127.0.0.1:{port}")])
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        codes = [daemon.wait(timeout=60) for daemon in daemons]
    if viewer.returncode or any(codes):
        print(f"two_cameras: viewer exit {viewer.returncode}, daemon exits {codes}; files in {tmp}", file=sys.stderr)
        return 1
    summaries = [json.loads((tmp / f"daemon{i}.json").read_text()) for i in range(2)]
    viewer_summary = json.loads((tmp / "viewer.json").read_text())
    streams = viewer_summary["streams"]
    result = {
        "camera_fps": args.fps, "seconds": args.seconds, "source": args.source,
        "daemons": {f"cam{i}": {k: d[k] for k in ("frames_published", "fps", "frames_dropped_stale")}
                    for i, d in enumerate(summaries)},
        "streams": {name: {k: st[k] for k in ("frames_received", "frames_decoded", "fps", "frames_skipped",
                                              "frames_lost", "decode_ms_p50", "latency_ms_p50")}
                    for name, st in streams.items()},
    }
    result["messages_rejected"] = rejected = viewer_summary["messages_rejected"]
    result["clean"] = (set(result["streams"]) == {"cam0", "cam1"} and set(rejected) <= {"no_keyframe"}
                       and all(st["frames_skipped"] == 0 and st["frames_lost"] == 0
                               for st in result["streams"].values()))
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    for name, st in sorted(result["streams"].items()):
        print(f"{name}: {st['frames_decoded']} of {st['frames_received']} received decoded at {st['fps']:.1f} fps, "
              f"skipped {st['frames_skipped']}, lost {st['frames_lost']}, decode p50 {st['decode_ms_p50']} ms")
    for name, d in result["daemons"].items():
        print(f"daemon {name}: {d['frames_published']} published at {d['fps']:.1f} fps, "
              f"{d['frames_dropped_stale']} stale camera frames")
    print(f"refused: {rejected or 'none'} (no_keyframe: frames before a stream's first keyframe)")
    print("clean" if result["clean"] else "NOT clean", f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
