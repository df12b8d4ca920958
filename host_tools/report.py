"""What the viewer measured: the live status line, the final report and its JSON summary."""
from __future__ import annotations

import time
from collections import Counter as Tally
from collections import deque

import numpy as np


KEEP = 100_000  # per-frame samples kept for percentiles: a viewer may run for months
MAX_STREAMS = 64  # streams reported one by one; the ones beyond (a misconfigured or hostile sender
# inventing stream ids) are reported together as OTHER, so memory and metric series stay bounded
OTHER = "(other streams)"
STREAM_KEYS = ("frames_received", "frames_decoded", "fps", "latency_ms_p50", "latency_ms_p99", "decode_ms_p50",
               "frames_lost", "frames_skipped", "bits_per_pixel", "psnr_db", "resolution")


class Stats:
    def __init__(self):
        self.received = self.decoded = self.lost = self.skipped = self.keyframes = self.applied = 0
        self.keyframes_asked = 0  # of a board, after a loss broke a stream's chain (the viewer's totals only)
        self.rejected: Tally = Tally()
        self.latency_ms: deque = deque(maxlen=KEEP)
        self.decode_ms: deque = deque(maxlen=KEEP)
        self.psnr_db: deque = deque(maxlen=KEEP)
        self.bits = 0  # of every frame applied (an inter frame that is not shown still costs its bits)
        self.first = self.last = 0.0
        self.shape: tuple | None = None

    def frame_applied(self, wire_bytes: int) -> None:
        self.applied += 1
        self.bits += 8 * wire_bytes

    def frame_done(self, latency_ms: float, decode_ms: float, shape: tuple) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        self.decoded += 1
        self.latency_ms.append(latency_ms)
        self.decode_ms.append(decode_ms)
        self.shape = shape

    @property
    def fps(self) -> float:
        span = self.last - self.first
        return (self.decoded - 1) / span if self.decoded > 1 and span > 0 else 0.0

    def summary(self) -> dict:
        def pct(values, q):
            return float(np.percentile(values, q)) if values else None

        return {
            "frames_received": self.received - sum(self.rejected.values()),
            "frames_decoded": self.decoded,
            "fps": self.fps,
            "latency_ms_p50": pct(self.latency_ms, 50),
            "latency_ms_p99": pct(self.latency_ms, 99),
            "decode_ms_p50": pct(self.decode_ms, 50),
            "frames_lost": self.lost,
            "frames_skipped": self.skipped,
            "messages_rejected": dict(self.rejected),
            "keyframes": self.keyframes,
            "keyframes_asked": self.keyframes_asked,
            "bits_per_pixel": self.bits / (self.applied * self.shape[0] * self.shape[1]) if self.shape else None,
            "psnr_db": float(np.mean(self.psnr_db)) if self.psnr_db else None,
            "psnr_db_min": float(np.min(self.psnr_db)) if self.psnr_db else None,
            "resolution": list(self.shape[:2]) if self.shape else None,
        }

    def stream_summary(self) -> dict:
        """The figures that belong to one stream (rejections belong to no stream)."""
        s = self.summary()
        return {k: s[k] for k in STREAM_KEYS}

    def status_line(self, streams: dict[str, "Stats"] | None = None) -> str:
        s = self.summary()
        parts = [f"{s['frames_decoded']} frames", f"{s['fps']:.1f} fps"]
        if s["latency_ms_p50"] is not None:
            parts.append(f"latency p50 {s['latency_ms_p50']:.0f} ms")
        if s["bits_per_pixel"] is not None:
            parts.append(f"{s['bits_per_pixel']:.2f} bpp")
        if s["psnr_db"] is not None:
            parts.append(f"PSNR {s['psnr_db']:.2f} dB")
        parts.append(f"lost {s['frames_lost']}")
        parts.append(f"rejected {sum(self.rejected.values())}")
        line = "  ".join(parts)
        if streams and len(streams) > 1:
            line += "  |  " + "  ".join(f"{name} {st.fps:.1f} fps lost {st.lost} skipped {st.skipped}"
                                        for name, st in sorted(streams.items()))
        return line


def summarize(total: Stats, streams: dict[str, Stats]) -> dict:
    """The JSON summary: the totals, and the same figures per stream under `streams`."""
    return {**total.summary(), "streams": {name: st.stream_summary() for name, st in sorted(streams.items())}}


def format_report(s: dict) -> str:
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    size = "x".join(map(str, s["resolution"])) if s["resolution"] else "n/a"
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(s["messages_rejected"].items())) or "none"
    lines = [
        "caed-view report",
        f"  frames decoded      {s['frames_decoded']}  ({size})",
        f"  frames received     {s['frames_received']}  (skipped for newer: {s['frames_skipped']})",
        f"  throughput          {num(s['fps'], '.2f')} fps",
        f"  latency p50 / p99   {num(s['latency_ms_p50'], '.1f')} / {num(s['latency_ms_p99'], '.1f')} ms"
        "  (capture on the board → decoded here)",
        f"  frames lost         {s['frames_lost']}  (sequence gaps)",
        f"  keyframes           {s['keyframes']}  (asked for after a loss: {s['keyframes_asked']})",
        f"  bitrate             {num(s['bits_per_pixel'], '.3f')} bits per pixel",
        f"  quality             PSNR {num(s['psnr_db'], '.2f')} dB (min {num(s['psnr_db_min'], '.2f')})",
        f"  rejected messages   {rejected}",
    ]
    for name, st in s.get("streams", {}).items():
        lines.append(f"  stream {name:<12} {st['frames_decoded']} decoded, {num(st['fps'], '.2f')} fps, latency p50 "
                     f"{num(st['latency_ms_p50'], '.1f')} ms, lost {st['frames_lost']}, skipped "
                     f"{st['frames_skipped']}, {num(st['bits_per_pixel'], '.3f')} bpp, "
                     f"PSNR {num(st['psnr_db'], '.2f')}")
    if "recording" in s:
        r = s["recording"]
        lines.append(f"  recorded            {r['messages']} messages, {r['bytes']} bytes in {r['folder']}"
                     f"  (not recorded: {r['messages_not_recorded']}, errors: {r['errors']})")
        if r["last_error"]:
            lines.append(f"  last record error   {r['last_error']}")
    if "replay" in s:
        r = s["replay"]
        lines.append(f"  replayed            {r['messages']} messages from {r['segments']} files in {r['folder']}"
                     f"  (damaged files: {r['segments_damaged']}; latency counts from the recorded capture)")
        lines.extend(f"  replay problem      {p}" for p in r["problems"])
    return "\n".join(lines)
