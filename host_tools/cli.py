"""`caed-view`: the host client — subscribe, validate, decode, show or save, measure."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

from caed import config
from caed.config import setting
from caed.metrics import MetricsServerError, serve
from caed.sources import SPEC_HELP as SOURCE_HELP
from caed.tuning import keep_freed_memory
from caed.wire import MAX_PICTURE_DIM

from .decoder import PRECISIONS, PROVIDER_CHOICES, DecoderSet, ProviderError, providers_for
from .metrics import ViewerMetrics
from .recording import Recorder, RecordingError, RecordingReader, RecordingSubscriber, ReplaySubscriber
from .reference import ReferenceError, ReferenceFrames
from .report import format_report
from .sinks import SPEC_HELP as SINK_HELP
from .sinks import SinkError, open_sink
from .subscriber import Subscriber, SubscriberError
from .viewer import Viewer

LOG_LEVELS = ("debug", "info", "warning", "error")
log = logging.getLogger("caed-view")


@dataclass
class ViewerConfig:
    connect: list = setting(["tcp://127.0.0.1:5555"], "board endpoint to subscribe to (repeat for several boards)")
    stream: list = setting([], "only these stream ids (repeat; default: all)")
    sink: str = setting("window", "where decoded frames go: " + SINK_HELP)
    decoder: str = setting("", "decoder model name or model.json path (default: the model each frame names)")
    provider: str = setting("auto", "ONNX Runtime execution provider for the decoder: auto takes cuda, then "
                                    "openvino when installed, else cpu", choices=PROVIDER_CHOICES)
    decoder_precision: str = setting("auto", "decoder weights: int8 (the model's int8 decoder, or on the CPU its "
                                             "int8 decoder_post after the sparse synthesis, where it ships one), "
                                             "fp32, or auto = int8 on the CPU provider", choices=PRECISIONS)
    decode_workers: int = setting(0, "frames decoded at once, each by its own worker thread: of different "
                                     "streams, or consecutive frames of one, shown in order (0 = as many as "
                                     "cores)", min=0, max=256)
    decoder_threads: int = setting(0, "threads per decode (0 = the cores shared among the decodes under way)",
                                   min=0, max=256)
    max_picture: str = setting("4096x4096", "largest picture decoded, HxW: a larger stream is refused (reason "
                                            "shape), its memory never allocated")
    reference: str = setting("", "measure PSNR against the board's source replayed here: synthetic, "
                                 "file:PATH or images:DIR")
    rcvhwm: int = setting(8, "ZeroMQ receive high-water mark (messages)", min=1, max=10000)
    frames: int = setting(0, "stop after decoding this many frames (0 = until stopped)", min=0)
    duration: float = setting(0.0, "stop after this many seconds (0 = until stopped)", min=0.0)
    json: str = setting("", "write the final summary as JSON to this file")
    record: str = setting("", "store every received message, as it came off the wire, in this folder "
                              "(docs/recording.md)")
    record_segment_mb: int = setting(256, "start a new recording file past this size (MiB)", min=1, max=1 << 20)
    replay: str = setting("", "play a recording folder instead of subscribing (same validation and decoding)")
    speed: float = setting(1.0, "replay speed: 1 = as recorded, 2 = twice as fast, 0 = every frame as fast as "
                                "it decodes", min=0.0, max=1000.0)
    curve_secret_key: str = setting("", "CURVE: this viewer's NAME.key_secret (from caed-keys)")
    curve_server_key: str = setting("", "CURVE: the board's public key file (NAME.key)")
    metrics_port: int = setting(9633, "Prometheus exporter port (0 = off)", min=0, max=65535)
    metrics_addr: str = setting("127.0.0.1", "Prometheus exporter address")
    quiet: bool = setting(False, "no live status line")
    log_level: str = setting("warning", "log verbosity", choices=LOG_LEVELS)

    def max_picture_size(self) -> tuple[int, int]:
        h, w = (int(v) for v in self.max_picture.lower().split("x"))
        return h, w

    def validate(self) -> None:
        try:
            h, w = self.max_picture_size()
        except ValueError:
            raise config.ConfigError("max_picture", self.max_picture, "must be HxW, e.g. 2160x3840") from None
        if not (1 <= h <= MAX_PICTURE_DIM and 1 <= w <= MAX_PICTURE_DIM):
            raise config.ConfigError("max_picture", self.max_picture, f"sides must be 1-{MAX_PICTURE_DIM} pixels")
        if bool(self.curve_secret_key) != bool(self.curve_server_key):
            key = "curve_server_key" if self.curve_secret_key else "curve_secret_key"
            raise config.ConfigError(key, getattr(self, key), "curve_secret_key and curve_server_key go together")
        if self.record and self.replay:
            raise config.ConfigError("record", self.record, "record and replay do not go together")
        for endpoint in self.connect:
            if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
                raise config.ConfigError("connect", endpoint, "must be a ZeroMQ endpoint (tcp://HOST:PORT)")


EPILOG = f"""latency is measured from the capture timestamp the board puts in each frame (its CLOCK_REALTIME)
to the moment the frame is decoded here: across machines it is only as good as their clock sync
(NTP gives ~1 ms on a LAN, PTP better); on one machine it is exact.

the board's sources ({SOURCE_HELP}) can be replayed with --reference when they are deterministic.

examples:
  caed-view                                       show the local daemon's stream in a window
  caed-view --connect tcp://board:5555 --sink video:out.mp4 --duration 60 --json summary.json
  caed-view --sink null --reference synthetic --frames 200   measure FPS, latency, bpp and PSNR
  caed-view --record rec/                         show the stream and keep it at its wire size
  caed-view --replay rec/ --speed 0 --sink png:frames/   every recorded frame as a PNG
"""


def main(argv: list[str] | None = None) -> int:
    cfg, _ = config.load(ViewerConfig, argv, "caed-view",
                         "Subscribe to caed boards, decode the latents, show or save the frames, and report "
                         "FPS, latency, loss, bitrate and quality.", EPILOG)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keep_freed_memory()
    try:
        sink = open_sink(cfg.sink)
    except SinkError as e:
        config.fail("caed-view", f"sink = {cfg.sink!r}: {e}", config.EXIT_USAGE)
    try:
        reference = ReferenceFrames(cfg.reference) if cfg.reference else None
    except ReferenceError as e:
        config.fail("caed-view", f"reference = {cfg.reference!r}: {e}", config.EXIT_USAGE)
    metrics = ViewerMetrics()
    stop = threading.Event()
    reader = recorder = None
    try:
        if cfg.replay:
            reader = RecordingReader(cfg.replay, on_problem=lambda _: metrics.replay_damaged.inc())
            subscriber = replay = ReplaySubscriber(reader, cfg.speed, finished=stop)
        else:
            subscriber = Subscriber(cfg.connect, cfg.stream, cfg.rcvhwm, curve_secret_key=cfg.curve_secret_key,
                                    curve_server_key=cfg.curve_server_key)
        if cfg.record:
            recorder = Recorder(cfg.record, cfg.record_segment_mb << 20,
                                on_error=lambda _: metrics.record_errors.inc())
            subscriber = RecordingSubscriber(subscriber, recorder)
        if cfg.metrics_port:
            serve(metrics.registry, cfg.metrics_port, cfg.metrics_addr)
    except RecordingError as e:
        config.fail("caed-view", f"replay = {cfg.replay!r}: {e}", config.EXIT_USAGE)
    except (SubscriberError, MetricsServerError) as e:
        config.fail("caed-view", str(e))
    try:
        providers = providers_for(cfg.provider)
    except ProviderError as e:
        config.fail("caed-view", f"provider = {cfg.provider!r}: {e}", config.EXIT_USAGE)
    log.info("decoding with %s", providers[0])
    workers = cfg.decode_workers or os.cpu_count() or 1
    decoders = DecoderSet(cfg.decoder, cfg.decoder_threads, concurrent=workers > 1, providers=providers,
                          precision=cfg.decoder_precision, max_picture=cfg.max_picture_size())
    viewer = Viewer(subscriber, decoders, sink, metrics, reference, workers)
    if reader is not None:
        replay.has_room = viewer.has_room
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tty = sys.stderr.isatty()

    def status(line: str) -> None:
        sys.stderr.write(("\r\033[K" if tty else "") + line + ("" if tty else "\n"))
        sys.stderr.flush()

    try:
        summary = viewer.run(stop, cfg.frames, cfg.duration, None if cfg.quiet else status,
                             1.0 if tty else 5.0)
    except SinkError as e:
        config.fail("caed-view", str(e))
    finally:
        sink.close()
        subscriber.close()
    if tty and not cfg.quiet:
        sys.stderr.write("\n")
    if recorder is not None:
        summary["recording"] = recorder.stats.summary(recorder.folder)
    if reader is not None:
        summary["replay"] = reader.stats.summary(reader.folder)
    print(format_report(summary))
    if cfg.json:
        config.write_summary(cfg.json, cfg, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
