"""What a viewer behind a lossy link sees, with and without asking for keyframes:

    python bench/loss_recovery.py [--loss 0.05,0.1] [--seconds 20] [--reference previous|keyframe] [--json F]

The real daemon streams the `cctv` camera (dct8-q0 at `rate = 1` and 15 fps as `make demo` does,
keyframes every 2 s, the daemon's default, where the demo schedules one every 5 s; the previous
frame as reference unless `--reference keyframe`) through a
forwarder that drops each frame with probability `loss` (seeded), to the real viewer. Two forwarders, in turns:

- `requests`: caed-relay's sockets (XSUB/XPUB, XPUB_VERBOSE): the viewer's subscriptions reach the
  daemon, so it answers a join and each loss with a keyframe (caed.wire.KEYFRAME_REQUEST_GAP);
- `no-requests`: a plain SUB/PUB forwarder, which subscribes once for itself and passes nothing up:
  the viewer waits for the scheduled keyframes, as before keyframe requests.

Per run: the frames the viewer received, how many it could show (decoded, or skipped for a newer
one: every frame applied to its state), those it could not (`no_keyframe`, `broken_chain`), and the
bits on the wire per frame published (keyframes asked for cost bits).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

import zmq

from caed_host.demo import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arguments import comma_separated  # noqa: E402

FPS = 15.0
MODES = ("requests", "no-requests")


def forward(daemon: str, viewers: str, drop: Callable[[list[bytes]], bool], requests: bool,
            stop: threading.Event) -> dict:
    """Frames from `daemon` to `viewers`, but those `drop` says; with `requests` the viewers'
    subscriptions go up (caed-relay's sockets). Returns counts when `stop` is set."""
    ctx = zmq.Context.instance()
    up, down = (ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)) if requests else (ctx.socket(zmq.SUB), ctx.socket(zmq.PUB))
    if requests:
        down.setsockopt(zmq.XPUB_VERBOSE, 1)
    else:
        up.setsockopt(zmq.SUBSCRIBE, b"")
    for sock in (up, down):
        sock.setsockopt(zmq.LINGER, 0)
    up.setsockopt(zmq.RCVHWM, 10000)
    down.setsockopt(zmq.SNDHWM, 10000)
    up.connect(daemon)
    down.bind(viewers)
    poller = zmq.Poller()
    for sock in (up, down):
        poller.register(sock, zmq.POLLIN)
    counts = {"frames": 0, "dropped": 0, "bytes": 0}
    try:
        while not stop.is_set():
            ready = dict(poller.poll(50))
            if up in ready:
                parts = up.recv_multipart()
                counts["frames"] += 1
                counts["bytes"] += sum(len(p) for p in parts)
                if drop(parts):
                    counts["dropped"] += 1
                else:
                    down.send_multipart(parts)
            if down in ready:  # only an XPUB has subscriptions to read
                up.send(down.recv())
    finally:
        up.close()
        down.close()
    return counts


def run(loss: float, mode: str, seconds: float, folder: Path, reference: str = "previous") -> dict:
    daemon_ep, viewer_ep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    stop, counts = threading.Event(), {}

    rng = random.Random(14)

    def forwarding():
        counts.update(forward(daemon_ep, viewer_ep, lambda _: rng.random() < loss, mode == "requests", stop))

    thread = threading.Thread(target=forwarding)
    thread.start()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "caed.cli", "--source", "cctv", "--fps", str(FPS), "--workers", "1", "--bind", daemon_ep,
         "--metrics-port", "0", "--log-level", "warning", "--model", "dct8-q0", "--rate", "1", "--keyframe-interval", "2",
         "--reference", reference, "--duration", str(seconds + 60)], stdout=subprocess.DEVNULL)
    summary = folder / f"viewer_{mode}_{loss}.json"
    try:
        viewer = subprocess.run(
            [sys.executable, "-m", "caed_host.cli", "--connect", viewer_ep, "--decoder-threads", "1", "--sink", "null",
             "--duration", str(seconds), "--metrics-port", "0", "--quiet", "--json", str(summary)],
            capture_output=True, text=True, timeout=seconds + 120)
    finally:
        daemon.terminate()
        daemon.wait(30)
        stop.set()
        thread.join()
    if viewer.returncode != 0:
        raise RuntimeError(f"viewer failed: {viewer.stderr[-500:]}")
    s = json.loads(summary.read_text())
    rejected = s["messages_rejected"]
    no_keyframe, broken_chain = rejected.get("no_keyframe", 0), rejected.get("broken_chain", 0)
    usable = s["frames_decoded"] + s["frames_skipped"]
    return {"loss": loss, "mode": mode, "reference": reference, "frames_published": counts["frames"],
            "frames_dropped": counts["dropped"], "frames_usable": usable, "frames_unusable": no_keyframe + broken_chain,
            "no_keyframe": no_keyframe, "broken_chain": broken_chain,
            "usable_share": round(usable / max(usable + no_keyframe + broken_chain, 1), 4),
            "kbit_per_s": round(8e-3 * counts["bytes"] * FPS / max(counts["frames"], 1), 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loss", type=comma_separated(float), default="0.05,0.1", help="comma-separated drop probabilities")
    p.add_argument("--seconds", type=float, default=20.0, help="how long the viewer watches each run")
    p.add_argument("--reference", default="previous", choices=("previous", "keyframe"),
                   help="what the daemon predicts inter frames from")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for loss in args.loss:
            for mode in MODES:
                r = run(loss, mode, args.seconds, Path(tmp), args.reference)
                results.append(r)
                print(f"loss {loss:.0%} {mode:12s}: {r['frames_usable']} frames shown or skipped for newer, "
                      f"{r['frames_unusable']} not decodable (no_keyframe {r['no_keyframe']}, broken_chain "
                      f"{r['broken_chain']}): {r['usable_share']:.1%} usable; {r['kbit_per_s']} kbit/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"fps": FPS, "seconds": args.seconds, "reference": args.reference,
                                         "runs": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
