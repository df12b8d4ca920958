"""`caed`: the board daemon's command line."""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from dataclasses import asdict, dataclass
from ipaddress import ip_address

from . import config
from .codecs import CODECS, create_codec
from .config import setting
from .curve import CurveError, check_clients, load_secret
from .encoders import BACKENDS, EncoderError, create_encoder
from .manifest import DEFAULT_MODEL
from .metrics import DaemonMetrics, MetricsServerError, serve
from .notify import SystemdNotifier
from .pipeline import Pipeline
from .publisher import PublisherError, ZmqPublisher
from .sources import (RESOLUTIONS_HELP, SPEC_HELP, FrameSource, LatestFrameSource, SourceError, open_source,
                      parse_resolution)
from .tuning import keep_freed_memory, single_threaded_opencv
from .temporal import KEYFRAME_INTERVAL_S, MAX_RATE, REFERENCES, TemporalEncoder
from .wire import MAX_NAME, FrameEncoder

log = logging.getLogger("caed")
LOG_LEVELS = ("debug", "info", "warning", "error")
SYNTHETIC_SIZE = (512, 768)  # (H, W) of the synthetic camera, unless resolution names a size
MAX_RESOLUTION = 8192
CHECK_DPU_WAIT_S = 10.0  # a running service holds the DPU: say so instead of waiting for it forever


@dataclass
class DaemonConfig:
    source: str = setting("synthetic", "where frames come from: " + SPEC_HELP)
    fps: float = setting(0.0, "pace synthetic, file and folder sources (0 = the file's own rate, else 30)",
                         min=0.0, max=1000.0)
    resolution: str = setting("native", "picture size streamed: " + RESOLUTIONS_HELP + " (what an xmodel was "
                                        "built for)")
    loop: bool = setting(True, "replay files and image folders when they end")
    exit_at_eof: bool = setting(False, "stop when a file or folder ends (with --no-loop); otherwise stay up, idle")
    backend: str = setting("onnx", "encoder backend: vart = DPU via VART, onnx = CPU via ONNX Runtime",
                           choices=BACKENDS)
    model: str = setting(DEFAULT_MODEL, "onnx: shipped model name or model.json path; vart: .xmodel path")
    onnx_int8: bool = setting(False, "onnx: run the int8 QDQ encoder that mimics the DPU's arithmetic")
    onnx_threads: int = setting(1, "onnx: intra-op threads per worker", min=1, max=64)
    workers: int = setting(2, "encoder worker threads, each with its own runner (vart: 2 x DPU cores)",
                           min=1, max=32)
    bind: str = setting("tcp://127.0.0.1:5555", "ZeroMQ PUB endpoint to bind (tcp://*:5555 for all interfaces)")
    stream: str = setting("cam0", "stream id sent with every frame (the ZeroMQ topic)")
    codec: str = setting("arith", "latent payload codec (docs/wire.md): arith codes the non-zero latents with "
                                  "context-adaptive arithmetic coding, 35-48 %% fewer bytes than zstd-planes",
                         choices=tuple(CODECS))
    zstd_level: int = setting(1, "zstd compression level", min=1, max=22)
    keyframe_interval: float = setting(KEYFRAME_INTERVAL_S, "seconds between keyframes; in between, inter frames send "
                                                            "only the latent blocks that changed (0 = every frame a "
                                                            "keyframe)", min=0.0, max=600.0)
    reference: str = setting("previous", "what inter frames are predicted from: the previous frame (fewer bits; "
                                         "a lost frame stops the picture until a keyframe, which the viewer asks "
                                         "for: about a second) or the keyframe (a lost inter frame costs nothing: "
                                         "behind a link that loses more than a percent or so)", choices=REFERENCES)
    bitrate: float = setting(0.0, "target bitrate in kbit/s, held by choosing each frame's rate and blocks "
                                  "(0 = every frame at the model's rate)", min=0.0, max=1e6)
    rate: int = setting(0, "temporal coding: code every frame this many fix points coarser than the model's "
                           "latents, which then tell the coder what the coarser grid rounds away (dct8-q0 with "
                           "rate 1 sends 5-29 %% fewer bits than dct8-q1 at equal PSNR on two fixed-camera clips, "
                           "docs/temporal.md)", min=0, max=MAX_RATE)
    sndhwm: int = setting(4, "ZeroMQ send high-water mark (messages): a slow subscriber loses frames, "
                             "never adds latency", min=1, max=10000)
    curve_secret_key: str = setting("", "CURVE: this board's NAME.key_secret (from caed-keys); encrypts the stream")
    curve_clients: str = setting("", "CURVE: folder of the viewers' public keys (*.key) allowed to subscribe")
    metrics_port: int = setting(9632, "Prometheus exporter port (0 = off)", min=0, max=65535)
    metrics_addr: str = setting("0.0.0.0", "Prometheus exporter address")
    frames: int = setting(0, "stop after this many frames (0 = run until stopped)", min=0)
    duration: float = setting(0.0, "stop after this many seconds (0 = run until stopped)", min=0.0)
    json: str = setting("", "write a JSON summary to this file at exit")
    log_level: str = setting("info", "log verbosity", choices=LOG_LEVELS)

    def picture(self) -> tuple[int, int] | None:
        """The HxW `resolution` names, or None for native and fit."""
        return parse_resolution(self.resolution)

    def validate(self) -> None:
        try:
            size = self.picture()
        except ValueError:
            raise config.ConfigError("resolution", self.resolution, "must be native, fit or HxW (e.g. 720x1280)") \
                from None
        if size is not None and not all(1 <= d <= MAX_RESOLUTION for d in size):
            raise config.ConfigError("resolution", self.resolution, f"sides must be 1-{MAX_RESOLUTION} pixels")
        if not (0 < len(self.stream) <= MAX_NAME and self.stream.isprintable() and "/" not in self.stream):
            raise config.ConfigError("stream", self.stream, f"must be 1-{MAX_NAME} printable characters without '/'")
        if not self.bind.startswith(("tcp://", "ipc://", "inproc://")):
            raise config.ConfigError("bind", self.bind, "must be a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH)")
        if bool(self.curve_secret_key) != bool(self.curve_clients):
            key = "curve_clients" if self.curve_secret_key else "curve_secret_key"
            raise config.ConfigError(key, getattr(self, key), "curve_secret_key and curve_clients go together")
        if self.curve_secret_key:
            try:
                load_secret(self.curve_secret_key)
            except CurveError as e:
                raise config.ConfigError("curve_secret_key", self.curve_secret_key, str(e)) from None
            try:
                check_clients(self.curve_clients)
            except CurveError as e:
                raise config.ConfigError("curve_clients", self.curve_clients, str(e)) from None
        if self.rate and not self.keyframe_interval:
            raise config.ConfigError("rate", self.rate, "needs temporal coding (keyframe_interval > 0): a keyframe "
                                                        "alone is coded better by the coarser model itself")
        if self.rate and self.bitrate:
            raise config.ConfigError("rate", self.rate, "and bitrate exclude each other: a bitrate picks each "
                                                        "frame's rate (set rate = 0)")
        try:
            ip_address(self.metrics_addr)
        except ValueError:
            raise config.ConfigError("metrics_addr", self.metrics_addr, "must be an IP address") from None


EPILOG = """examples:
  caed                                         synthetic camera, ONNX encoder, publish on 127.0.0.1:5555
  caed --source v4l2:/dev/video0 --backend vart --model /usr/share/caed/encoder.xmodel --bind 'tcp://*:5555'
  caed --config /etc/caed/caed.toml --check    load backend and model, print them, exit 0/1
"""


def open_camera(cfg: DaemonConfig) -> tuple[FrameSource, tuple[int, int] | None]:
    """The configured source and the picture size to stream: the source's own (native: the one
    case that opens the source to learn it), the configured one (HxW), or None: the model's input
    size (fit). ValueError for a source spec that names nothing, SourceError for a native source
    that gives no frame."""
    size = cfg.picture()
    h, w = size or SYNTHETIC_SIZE
    source = open_source(cfg.source, w, h, cfg.fps, cfg.loop)
    return source, source.picture_size() if cfg.resolution == "native" else size


def check(cfg: DaemonConfig) -> int:
    """Preflight: open the source and load backend and model, print what a user needs to know
    before `systemctl start`: among it the source's frame size, the encoder's input size and the
    fix points frames will be coded at (the model's less `rate`, or a bitrate's range)."""
    try:
        source, picture = open_camera(cfg)
        frames = picture if cfg.resolution == "native" else source.picture_size()
        encoder = create_encoder(cfg.backend, cfg.model, 1, cfg.onnx_int8, cfg.onnx_threads,
                                 dpu_wait_s=CHECK_DPU_WAIT_S, picture=picture)
    except (ValueError, SourceError, EncoderError) as e:
        print(f"caed --check: FAILED: {e}", file=sys.stderr)
        return 1
    problem = rate_problem(cfg, encoder)
    if problem:
        encoder.close()
        print(f"caed --check: FAILED: {problem}", file=sys.stderr)
        return config.EXIT_USAGE
    described = {**encoder.describe(), "source": {"spec": cfg.source, "frames": list(frames)},
                 "resolution": cfg.resolution, "frames_fix_points": coded_fix_points(cfg, encoder)}
    print(json.dumps(described, indent=2, default=str))
    encoder.close()
    return 0


def reload(cfg: DaemonConfig, args) -> None:
    """SIGHUP: re-read the config file; apply what can change while streaming, name what needs a restart."""
    if args.config is None:
        log.warning("SIGHUP: started without --config, nothing to reload")
        return
    try:
        new = config.from_sources(DaemonConfig, config.read_toml(args.config), vars(args))
    except (OSError, ValueError) as e:  # unreadable file, bad TOML, bad value: keep running as before
        log.error("SIGHUP: keeping the running configuration, %s is not usable: %s", args.config, e)
        return
    if new.log_level != cfg.log_level:
        logging.getLogger().setLevel(new.log_level.upper())
        log.warning("SIGHUP: log_level is now %s", new.log_level)
        cfg.log_level = new.log_level
    changed = [k for k, v in asdict(new).items() if v != getattr(cfg, k)]
    if changed:
        log.warning("SIGHUP: %s changed in %s; restart the service to apply (systemctl restart caed)",
                    ", ".join(changed), args.config)
    else:
        log.info("SIGHUP: %s reloaded", args.config)


def max_rate(encoder) -> int:
    """Fix points below the model's that frames may be coded at: down to the coarsest its decoder
    learnt where the manifest says (dct8-q1: 3, to dct8-q4's), else MAX_RATE."""
    if encoder.coarsest_fix_point is None:
        return MAX_RATE
    return min(MAX_RATE, encoder.latent.fix_point - encoder.coarsest_fix_point)


def rate_problem(cfg: DaemonConfig, encoder) -> str | None:
    """Why `rate` cannot be used with this model (a `rate = ...` error message), or None."""
    if cfg.rate <= max_rate(encoder):
        return None
    return (f"rate = {cfg.rate}: model {encoder.model_id}'s latents are at fix point {encoder.latent.fix_point} and "
            f"its decoder learnt none coarser than {encoder.coarsest_fix_point}: rate must be <= {max_rate(encoder)}")


def coded_fix_points(cfg: DaemonConfig, encoder) -> list[int]:
    """The fix points frames will be coded at, finest first: the model's less `rate`, or with a
    bitrate every one down to max_rate below the model's."""
    finest = encoder.latent.fix_point - cfg.rate
    coarsest = encoder.latent.fix_point - max_rate(encoder) if cfg.bitrate else finest
    return list(range(finest, coarsest - 1, -1))


def temporal_encoder(cfg: DaemonConfig, encoder, frame_encoder: FrameEncoder) -> TemporalEncoder | None:
    """The stream's temporal coder, or None when every frame is a keyframe at the model's rate
    (protocol 1's stream: the payload compression then runs on the encoder workers); ValueError
    for a bitrate too low for the messages' headers."""
    fps = cfg.fps or 30.0  # a camera's own rate is not known before it runs; 30 is what boards stream
    interval = max(1, round(cfg.keyframe_interval * fps))
    if interval == 1 and not cfg.bitrate and not cfg.rate:
        return None
    return TemporalEncoder(create_codec(cfg.codec, cfg.zstd_level), encoder.latent.shape, encoder.latent.fix_point,
                           interval, cfg.reference, rate=cfg.rate, bitrate_bps=1e3 * cfg.bitrate, fps=fps,
                           max_rate=max_rate(encoder),
                           overhead_bytes=frame_encoder.overhead_bytes(encoder.latent.shape, encoder.picture))


def main(argv: list[str] | None = None) -> int:
    cfg, args = config.load(DaemonConfig, argv, "caed",
                            "Camera → learned encoder (DPU or CPU) → ZeroMQ: the board daemon.", EPILOG,
                            extra=lambda p: p.add_argument("--check", action="store_true",
                                                           help="preflight the backend and model, then exit"))
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.check:
        return check(cfg)
    single_threaded_opencv()
    keep_freed_memory()
    try:
        source, picture = open_camera(cfg)
    except ValueError as e:
        config.fail("caed", f"source = {cfg.source!r}: {e}", config.EXIT_USAGE)
    except SourceError as e:  # systemd restarts the service: the camera may be back by then
        config.fail("caed", f"source = {cfg.source!r}: no first frame to learn the picture size from: {e}")
    try:
        encoder = create_encoder(cfg.backend, cfg.model, cfg.workers, cfg.onnx_int8, cfg.onnx_threads,
                                 picture=picture)
    except EncoderError as e:
        config.fail("caed", str(e))
    problem = rate_problem(cfg, encoder)
    if problem:
        encoder.close()
        config.fail("caed", problem, config.EXIT_USAGE)
    h, w = encoder.picture
    try:
        frame_encoder = FrameEncoder(cfg.stream, encoder.model_id, cfg.codec, cfg.zstd_level)
    except ValueError as e:
        encoder.close()
        config.fail("caed", f"codec = {cfg.codec!r}: {e}", config.EXIT_USAGE)
    metrics = DaemonMetrics()
    metrics.model.info({"model_id": encoder.model_id, "backend": encoder.name, "stream": cfg.stream})
    try:
        publisher = ZmqPublisher(cfg.bind, cfg.sndhwm, curve_secret_key=cfg.curve_secret_key,
                                 curve_clients=cfg.curve_clients)
        if cfg.metrics_port:
            serve(metrics.registry, cfg.metrics_port, cfg.metrics_addr)
    except (PublisherError, MetricsServerError) as e:
        encoder.close()
        config.fail("caed", str(e))
    log.info("%s encoder %s (%d workers), picture %dx%d (resolution %s), encoder input %dx%d, "
             "latents %s, publishing %s on %s", encoder.name, encoder.model_id, encoder.workers,
             w, h, cfg.resolution, encoder.input.shape[1], encoder.input.shape[0],
             "x".join(map(str, encoder.latent.shape)), cfg.stream, publisher.endpoint)
    if encoder.name == "onnx":
        log.info("no DPU in use: the encoder runs on the CPU through ONNX Runtime")
    latest = LatestFrameSource(source, cfg.exit_at_eof, on_capture=metrics.captured.inc,
                               on_drop=metrics.dropped.labels("stale").inc, on_error=metrics.source_errors.inc)
    try:
        temporal = temporal_encoder(cfg, encoder, frame_encoder)
    except ValueError as e:
        encoder.close()
        publisher.close()
        config.fail("caed", f"bitrate = {cfg.bitrate:g}: {e}", config.EXIT_USAGE)
    fix_points = coded_fix_points(cfg, encoder)
    if temporal is None:
        log.info("every frame a keyframe at the model's fix point %d", fix_points[0])
    elif cfg.bitrate:
        log.info("temporal coding, keyframes every %d frames, holding %g kbit/s with fix points %d to %d",
                 temporal.keyframe_interval, cfg.bitrate, fix_points[0], fix_points[-1])
    else:
        log.info("temporal coding, keyframes every %d frames, frames at fix point %d (the model's %d, rate %d)",
                 temporal.keyframe_interval, fix_points[0], encoder.latent.fix_point, cfg.rate)
    metrics.bitrate_target.set(1e3 * cfg.bitrate)
    pipeline = Pipeline(latest, encoder, publisher, frame_encoder, metrics, SystemdNotifier(), temporal=temporal)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload(cfg, args))
    try:
        summary = pipeline.run(stop, cfg.frames, cfg.duration)
    finally:
        encoder.close()
        publisher.close()
    log.info("published %d frames at %.1f fps (%d captured, %d stale, %d encoder errors, %d source errors)",
             summary["frames_published"], summary["fps"], summary["frames_captured"],
             summary["frames_dropped_stale"], summary["encoder_errors"], summary["source_errors"])
    if cfg.json:
        config.write_summary(cfg.json, cfg, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
