"""`caed-relay`: many viewers watch many boards while each board sends every frame once.

An XSUB socket connects to the boards (as the one subscriber each board's uplink serves), an
XPUB socket takes the viewers; frames go down, subscriptions go up, so a board still sends only
the streams someone watches, and each viewer's subscription reaches the boards (XPUB_VERBOSE), so
that one joining a watched stream, or asking again after a loss, gets its keyframe at once too.
CURVE can be on either side or both: to the boards the relay is a CURVE client with its own key
pair, to the viewers a CURVE server that admits the public keys in a folder, exactly as a board
does (caed.curve).

The forwarding loop is Python rather than zmq.proxy so that it can count what it forwards and
watch its peers come and go; libzmq's I/O threads still do the fan-out to every viewer, and the
receive and send are zero-copy. Measured on this 2-core machine under load: 9,500-11,500
messages/s of 20 kB through one relay to one viewer (two runs), 70 us of CPU per message for
sender, relay and receiver together: caed's tens of frames per second per camera cost it nothing.
zmq.proxy's capture socket could count too, but by copying every frame once more.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass

import zmq
from prometheus_client import CollectorRegistry, Counter, Gauge
from zmq.utils.monitor import recv_monitor_message

from caed import config
from caed.config import setting
from caed.curve import CurveError, check_clients, connect_curve, load_public, load_secret, serve_curve
from caed.metrics import MetricsServerError, serve
from caed.publisher import is_loopback

from .subscriber import MAX_PART_BYTES

log = logging.getLogger("caed-relay")
LOG_LEVELS = ("debug", "info", "warning", "error")
# Connections by file descriptor: libzmq gives the fd with these events (not with the handshake's),
# and closes a connection whose CURVE handshake or authentication fails.
PEER_UP = zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED
PEER_DOWN = zmq.EVENT_DISCONNECTED


class RelayError(RuntimeError):
    """A socket could not be set up (bad endpoint, port in use, unusable keys)."""


@dataclass
class RelayConfig:
    connect: list = setting([], "board endpoint to take frames from (repeat for several boards)")
    bind: str = setting("tcp://127.0.0.1:5556", "endpoint the viewers connect to (tcp://*:5556 for all interfaces)")
    curve_secret_key: str = setting("", "CURVE: the relay's NAME.key_secret (from caed-keys), used on both sides")
    curve_server_key: list = setting([], "CURVE to the boards: their public keys (NAME.key), one for all boards "
                                         "or one per --connect, in the same order")
    curve_clients: str = setting("", "CURVE to the viewers: folder of their public keys (*.key) admitted")
    rcvhwm: int = setting(64, "ZeroMQ receive high-water mark from the boards (messages)", min=1, max=100000)
    sndhwm: int = setting(8, "ZeroMQ send high-water mark per viewer (messages): a slow viewer loses frames, "
                             "never slows the others", min=1, max=100000)
    metrics_port: int = setting(9634, "Prometheus exporter port (0 = off)", min=0, max=65535)
    metrics_addr: str = setting("127.0.0.1", "Prometheus exporter address")
    duration: float = setting(0.0, "stop after this many seconds (0 = until stopped)", min=0.0)
    log_level: str = setting("info", "log verbosity", choices=LOG_LEVELS)

    def validate(self) -> None:
        if not self.connect:
            raise config.ConfigError("connect", self.connect, "give at least one board endpoint")
        for endpoint in self.connect + [self.bind]:
            if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
                key = "bind" if endpoint == self.bind else "connect"
                raise config.ConfigError(key, endpoint, "must be a ZeroMQ endpoint (tcp://HOST:PORT)")
        if (self.curve_server_key or self.curve_clients) and not self.curve_secret_key:
            key = "curve_server_key" if self.curve_server_key else "curve_clients"
            raise config.ConfigError(key, getattr(self, key), "needs curve_secret_key, the relay's own key pair")
        if self.curve_secret_key and not (self.curve_server_key or self.curve_clients):
            raise config.ConfigError("curve_secret_key", self.curve_secret_key,
                                     "give curve_server_key (boards' side) and/or curve_clients (viewers' side)")
        if len(self.curve_server_key) not in (0, 1, len(self.connect)):
            raise config.ConfigError("curve_server_key", self.curve_server_key,
                                     f"one key for all boards or one per --connect ({len(self.connect)})")
        checks = [("curve_secret_key", self.curve_secret_key, load_secret)] if self.curve_secret_key else []
        checks += [("curve_server_key", key, load_public) for key in self.curve_server_key]
        checks += [("curve_clients", self.curve_clients, check_clients)] if self.curve_clients else []
        for key, value, check in checks:
            try:
                check(value)
            except CurveError as e:
                raise config.ConfigError(key, value, str(e)) from None


class RelayMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.messages_in = Counter("caed_relay_messages_in", "Messages received from the boards", registry=r)
        self.bytes_in = Counter("caed_relay_bytes_in", "Message bytes received from the boards (all parts)",
                                registry=r)
        self.messages_out = Counter("caed_relay_messages_out", "Messages handed to the viewers' socket (ZeroMQ "
                                    "copies each to every viewer subscribed to its stream)", registry=r)
        self.subscriptions = Counter("caed_relay_subscriptions", "Subscribe and unsubscribe requests forwarded "
                                     "to the boards", registry=r)
        self.subscribers = Gauge("caed_relay_subscribers", "Viewers connected (with CURVE, a refused one counts "
                                 "until its failed handshake closes it)", registry=r)
        self.boards = Gauge("caed_relay_boards", "Boards connected", registry=r)


class _Peers:
    """Connected peers of one socket, from its monitor's connect/accept and disconnect events."""

    def __init__(self, sock: zmq.Socket, gauge: Gauge, side: str):
        self.monitor = sock.get_monitor_socket(PEER_UP | PEER_DOWN)
        self._gauge, self._side, self._fds = gauge, side, set()

    def handle(self) -> None:
        event = recv_monitor_message(self.monitor)
        fd, endpoint = event["value"], event["endpoint"].decode(errors="replace")
        if event["event"] & PEER_UP:
            self._fds.add(fd)
            log.info("%s connected: %s", self._side, endpoint)
        elif fd in self._fds:
            self._fds.discard(fd)
            log.info("%s disconnected: %s", self._side, endpoint)
        self._gauge.set(len(self._fds))


class Relay:
    def __init__(self, cfg: RelayConfig, metrics: RelayMetrics, context: zmq.Context | None = None):
        self.metrics = metrics
        self._ctx = context or zmq.Context.instance()
        self._auth = None
        self.boards = self._ctx.socket(zmq.XSUB)
        self.viewers = self._ctx.socket(zmq.XPUB)
        for sock in (self.boards, self.viewers):
            sock.setsockopt(zmq.LINGER, 0)
        self.boards.setsockopt(zmq.RCVHWM, cfg.rcvhwm)
        self.boards.setsockopt(zmq.MAXMSGSIZE, MAX_PART_BYTES)
        self.viewers.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        self.viewers.setsockopt(zmq.MAXMSGSIZE, 4096)  # viewers send only subscriptions
        # every viewer's subscription goes up, not only a topic's first: a board answers each with a
        # keyframe (caed.pipeline), which a viewer joining a watched stream, or one that lost a frame,
        # needs as much as the first
        self.viewers.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._board_peers = _Peers(self.boards, metrics.boards, "board")
        self._viewer_peers = _Peers(self.viewers, metrics.subscribers, "viewer")
        try:
            if cfg.curve_clients:
                self._auth = serve_curve(self.viewers, cfg.curve_secret_key, cfg.curve_clients)
            self.viewers.bind(cfg.bind)
            self.endpoint = self.viewers.getsockopt_string(zmq.LAST_ENDPOINT)
            keys = cfg.curve_server_key * len(cfg.connect) if len(cfg.curve_server_key) == 1 else cfg.curve_server_key
            for i, endpoint in enumerate(cfg.connect):
                if keys:  # socket options that apply to the connections made after they are set
                    connect_curve(self.boards, cfg.curve_secret_key, keys[i])
                self.boards.connect(endpoint)
        except (zmq.ZMQError, CurveError) as e:
            self.close()
            raise RelayError(str(e)) from None
        if not cfg.curve_clients and not is_loopback(cfg.bind):
            log.warning("relaying UNENCRYPTED to the network on %s: set curve_secret_key and curve_clients", cfg.bind)

    def run(self, stop: threading.Event, duration: float = 0.0) -> None:
        poller = zmq.Poller()
        for sock in (self.boards, self.viewers, self._board_peers.monitor, self._viewer_peers.monitor):
            poller.register(sock, zmq.POLLIN)
        end = time.monotonic() + duration if duration else None
        m = self.metrics
        while not stop.is_set() and (end is None or time.monotonic() < end):
            ready = dict(poller.poll(100))
            if self.boards in ready:
                for _ in range(1000):  # drain, but let subscriptions and events through now and then
                    try:
                        parts = self.boards.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    m.messages_in.inc()
                    m.bytes_in.inc(sum(len(p.buffer) for p in parts))
                    try:
                        self.viewers.send_multipart(parts, zmq.NOBLOCK, copy=False)
                    except zmq.Again:  # XPUB drops at each viewer's HWM instead; kept for safety
                        continue
                    m.messages_out.inc()
            if self.viewers in ready:
                while True:
                    try:
                        subscription = self.viewers.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    m.subscriptions.inc()
                    self.boards.send_multipart(subscription)
            if self._board_peers.monitor in ready:
                self._board_peers.handle()
            if self._viewer_peers.monitor in ready:
                self._viewer_peers.handle()

    def close(self) -> None:
        for sock in (self.boards, self.viewers):
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
        for peers in (self._board_peers, self._viewer_peers):
            peers.monitor.close(0)
        self.boards.close(0)
        self.viewers.close(0)
        if self._auth is not None:
            self._auth.stop()


EPILOG = """examples:
  caed-relay --connect tcp://board-a:5555 --connect tcp://board-b:5555 --bind 'tcp://*:5556'
  caed-view --connect tcp://relay:5556          (any number of viewers; each board serves only the relay)
  with CURVE on both sides:
  caed-relay --connect tcp://board-a:5555 --curve-secret-key relay.key_secret --curve-server-key board-a.key \\
             --curve-clients viewers/ --bind 'tcp://*:5556'
  caed-view --connect tcp://relay:5556 --curve-secret-key laptop.key_secret --curve-server-key relay.key
"""


def main(argv: list[str] | None = None) -> int:
    cfg, _ = config.load(RelayConfig, argv, "caed-relay",
                         "Forward caed boards' streams to many viewers: each board sends every frame once.", EPILOG)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics = RelayMetrics()
    try:
        relay = Relay(cfg, metrics)
        if cfg.metrics_port:
            serve(metrics.registry, cfg.metrics_port, cfg.metrics_addr)
    except (RelayError, MetricsServerError) as e:
        config.fail("caed-relay", str(e))
    log.info("relaying %s to viewers on %s", ", ".join(cfg.connect), relay.endpoint)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        relay.run(stop, cfg.duration)
    finally:
        relay.close()
    log.info("relayed %.0f messages from the boards",
             metrics.registry.get_sample_value("caed_relay_messages_in_total"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
