"""The daemon's Prometheus metrics (names are what deploy/ dashboards and alert rules query)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector, start_http_server

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
STAGES = ("preprocess", "encode", "publish", "pipeline")
DROP_REASONS = ("stale", "encoder_error")


class MetricsServerError(RuntimeError):
    pass


def serve(registry: CollectorRegistry, port: int, addr: str) -> None:
    """Expose `registry` on http://addr:port/metrics from a background thread."""
    try:
        start_http_server(port, addr=addr, registry=registry)
    except OSError as e:
        raise MetricsServerError(f"cannot serve metrics on {addr}:{port}: {e.strerror}") from None


class DaemonMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.captured = Counter("caed_frames_captured", "Frames delivered by the source", registry=r)
        self.dropped = Counter("caed_frames_dropped", "Frames not published, by reason", ["reason"], registry=r)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
        self.encoded = Counter("caed_frames_encoded", "Frames the encoder finished", registry=r)
        self.published = Counter("caed_frames_published", "Frames sent on the PUB socket", registry=r)
        self.bytes = Counter("caed_bytes_published", "Message bytes sent (all parts)", registry=r)
        self.stage = Histogram("caed_stage_seconds", "Wall time per frame and stage (pipeline = capture to "
                               "published)", ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        for s in STAGES:
            self.stage.labels(s)
        self.fps = Gauge("caed_fps", "Frames published per second over the last second", registry=r)
        self.busy = Counter("caed_encoder_busy_seconds", "Time the encoder runners spent executing jobs",
                            registry=r)
        self.workers = Gauge("caed_encoder_workers", "Encoder worker threads (one runner each)", registry=r)
        self.source_errors = Counter("caed_source_errors", "Source failures (each followed by a retry)",
                                     registry=r)
        # temporal coding (caed.temporal): the share of blocks sent is rate(blocks_sent) / rate(blocks_coded)
        self.keyframes = Counter("caed_keyframes", "Keyframes published (every block coded alone)", registry=r)
        self.inter_frames = Counter("caed_inter_frames", "Inter frames published (changed blocks only)",
                                    registry=r)
        self.subscriptions = Counter("caed_subscriptions", "Subscriptions to this stream received: a viewer or "
                                     "recorder joining, or a viewer asking again after a loss (directly or "
                                     "through a relay)", registry=r)
        self.requested_keyframes = Counter("caed_requested_keyframes", "Keyframes sent early because a "
                                           "subscription asked for one", registry=r)
        self.blocks_sent = Counter("caed_blocks_sent", "Latent blocks (8x8 pixels) sent, keyframes included",
                                   registry=r)
        self.blocks_coded = Counter("caed_blocks_coded", "Latent blocks (8x8 pixels) of all published frames",
                                    registry=r)
        self.bitrate_target = Gauge("caed_bitrate_target_bits_per_second", "The bitrate setting (0 = none: "
                                    "every frame at the model's rate)", registry=r)
        self.fix_point = Gauge("caed_latent_fix_point", "Latent fix point of the last frame (the rate: lower "
                               "is coarser)", registry=r)
        self.model = Info("caed_model", "Model, backend and stream of this daemon", registry=r)
        # process_cpu_seconds_total, memory and file descriptors (from /proc): the board's CPU budget
        # is the whole daemon's (docs/dpu.md), and a busy 720p camera at 30 fps goes beyond it
        ProcessCollector(registry=r)
