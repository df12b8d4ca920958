"""The viewer's Prometheus metrics (names are what deploy/ dashboards and alert rules query)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from caed.metrics import LATENCY_BUCKETS
from caed.wire import REJECT_REASONS

# an inter frame this viewer cannot decode: no_keyframe before its stream's first keyframe
# (joined mid-stream), broken_chain when a frame it depends on was lost (caed.temporal.ChainBroken)
VIEWER_REJECT_REASONS = REJECT_REASONS + ("unknown_model", "no_keyframe", "broken_chain")


class ViewerMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.received = Counter("caed_view_messages_received", "Messages taken off the socket", registry=r)
        self.rejected = Counter("caed_view_messages_rejected", "Messages refused, by reason", ["reason"],
                                registry=r)
        for reason in VIEWER_REJECT_REASONS:
            self.rejected.labels(reason)
        self.keyframes = Counter("caed_view_keyframes", "Keyframes received and applied", registry=r)
        self.keyframes_asked = Counter("caed_view_keyframes_asked", "Keyframes asked of a board after a loss "
                                       "broke a stream's chain (at most one a second per stream)", registry=r)
        self.decoded = Counter("caed_view_frames_decoded", "Frames decoded and handed to the sink", registry=r)
        self.lost = Counter("caed_view_frames_lost", "Frames missing from the sequence (never received)",
                            registry=r)
        self.skipped = Counter("caed_view_frames_skipped", "Frames received but not decoded because a newer "
                               "one was already waiting", registry=r)
        self.latency = Histogram("caed_view_latency_seconds", "Capture on the board to decoded on this host",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.decode = Histogram("caed_view_decode_seconds", "Decoder run time per frame", buckets=LATENCY_BUCKETS,
                                registry=r)
        self.fps = Gauge("caed_view_fps", "Frames decoded per second over the last second", registry=r)
        self.bpp = Gauge("caed_view_bits_per_pixel", "Bits on the wire per decoded pixel (last frame)", registry=r)
        self.record_errors = Counter("caed_view_record_errors", "Recording failures (disk full, unwritable "
                                     "folder); the live view goes on", registry=r)
        self.replay_damaged = Counter("caed_view_replay_problems", "Damaged or truncated recording files and "
                                      "index lines met during a replay", registry=r)
        # Per stream (label `stream`; at most report.MAX_STREAMS of them): new families beside the
        # totals above, so the deployed rules and dashboards that divide the totals keep matching.
        self.stream_decoded = Counter("caed_view_stream_frames_decoded", "Frames decoded, per stream", ["stream"],
                                      registry=r)
        self.stream_lost = Counter("caed_view_stream_frames_lost", "Sequence gaps, per stream", ["stream"],
                                   registry=r)
        self.stream_skipped = Counter("caed_view_stream_frames_skipped", "Frames skipped for a newer one, per "
                                      "stream", ["stream"], registry=r)
        self.stream_latency = Histogram("caed_view_stream_latency_seconds", "Capture on the board to decoded on "
                                        "this host, per stream", ["stream"], buckets=LATENCY_BUCKETS, registry=r)
        self.stream_fps = Gauge("caed_view_stream_fps", "Frames decoded per second over the last second, per "
                                "stream", ["stream"], registry=r)
        self.stream_bpp = Gauge("caed_view_stream_bits_per_pixel", "Bits on the wire per decoded pixel (last "
                                "frame), per stream", ["stream"], registry=r)
