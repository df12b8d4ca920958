"""Soak: the real daemon and viewer for a long run; reports RSS growth, FPS stability, losses, leaks.

    python bench/soak.py --seconds 600 --json soak.json      # the 10-minute soak (not in CI)

RSS growth is measured from the end of a warm-up (allocator and ONNX Runtime arenas settle) to
the end; threads and open file descriptors are sampled throughout and must not creep.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from caed_host.demo import free_port


def proc_sample(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "threads": int(status["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def published(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return next(float(line.split()[1]) for line in text.splitlines()
                if line.startswith("caed_frames_published_total"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--warmup", type=float, default=30)
    p.add_argument("--every", type=float, default=5, help="sampling period (s)")
    p.add_argument("--fps", type=float, default=0, help="camera rate (0 = synthetic default, 30)")
    p.add_argument("--json", type=Path, default=Path("soak.json"))
    args = p.parse_args(argv)
    zmq_port, metrics_port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="caed-soak-"))
    daemon = subprocess.Popen([sys.executable, "-m", "caed.cli", "--bind", f"tcp://127.0.0.1:{zmq_port}",
                               "--metrics-port", str(metrics_port), "--metrics-addr", "127.0.0.1",
                               "--fps", str(args.fps), "--log-level", "warning"])
    viewer = subprocess.Popen([sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{zmq_port}",
                               "--sink", "null", "--duration", str(args.seconds), "--metrics-port", "0", "--quiet",
                               "--json", str(tmp / "viewer.json")], stdout=subprocess.DEVNULL)
    samples, start = [], time.monotonic()
    try:
        while viewer.poll() is None and daemon.poll() is None:
            time.sleep(args.every)
            try:
                samples.append({"t": time.monotonic() - start, **proc_sample(daemon.pid),
                                "published": published(metrics_port)})
            except OSError:
                pass
            print(f"\r{samples[-1] if samples else ''}", end="", file=sys.stderr, flush=True)
    finally:
        viewer_rc = viewer.wait()
        daemon.send_signal(signal.SIGTERM)
        daemon_rc = daemon.wait(30)
    print(file=sys.stderr)
    settled = [s for s in samples if s["t"] >= args.warmup] or samples
    fps = [(b["published"] - a["published"]) / (b["t"] - a["t"]) for a, b in zip(settled, settled[1:])]
    view = json.loads((tmp / "viewer.json").read_text()) if (tmp / "viewer.json").exists() else {}
    report = {
        "seconds": args.seconds, "daemon_exit": daemon_rc, "viewer_exit": viewer_rc,
        "rss_mb_after_warmup": settled[0]["rss_mb"] if settled else None,
        "rss_mb_end": settled[-1]["rss_mb"] if settled else None,
        "rss_growth_mb": settled[-1]["rss_mb"] - settled[0]["rss_mb"] if settled else None,
        "threads_min_max": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)] if samples else None,
        "fds_min_max": [min(s["fds"] for s in samples), max(s["fds"] for s in samples)] if samples else None,
        "fps_mean": statistics.mean(fps) if fps else None,
        "fps_stdev": statistics.stdev(fps) if len(fps) > 1 else None,
        "viewer": {k: view.get(k) for k in ("frames_decoded", "frames_lost", "fps", "latency_ms_p50",
                                            "latency_ms_p99", "messages_rejected")},
        "samples": samples,
    }
    args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    return 0 if daemon_rc == 0 and viewer_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
