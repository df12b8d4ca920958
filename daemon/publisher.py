"""ZeroMQ PUB transport: the daemon's only network-facing piece.

A small send high-water mark makes a slow or absent subscriber cost dropped frames, never memory
or latency. CONFLATE would keep only the newest message but does not work with multipart
messages, so freshness is kept by the HWM here and a latest-only receive loop in the viewer.

The socket is an XPUB, which publishes exactly as PUB does and also hands the daemon each
subscription as it arrives (XPUB_VERBOSE: every one, not only a topic's first), so that with
temporal coding a viewer that joins, or that subscribes again after a loss, gets a keyframe at
once instead of waiting for the next one (caed.pipeline, docs/wire.md). A peer sends nothing else to a publisher, so anything larger than a subscription
is refused at the socket.
"""
from __future__ import annotations

import logging
from ipaddress import ip_address

import zmq

from .curve import CurveError, serve_curve

log = logging.getLogger(__name__)
MAX_SUBSCRIPTION_BYTES = 4096  # a subscription is a flag byte and a topic prefix
# What one call drains at most. libzmq queues the subscriptions it reports without a bound; a call
# takes ~0.55 us each (this x86), so 10,000 a frame keep up with 300,000 a second at 30 fps for at
# most 5.5 ms a frame. A peer that floods a socket it can reach grows a plain PUB's subscription
# trie too (each distinct topic); CURVE (curve_clients) keeps such peers out.
SUBSCRIPTIONS_PER_CALL = 10000


class PublisherError(RuntimeError):
    """The socket could not be set up (bad address, port in use)."""


def is_loopback(endpoint: str) -> bool:
    """True for endpoints only this machine can reach (ipc://, inproc://, tcp on 127.0.0.0/8 or ::1)."""
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: reachable from the network


class ZmqPublisher:
    def __init__(self, bind: str, sndhwm: int = 4, linger_ms: int = 1000, context: zmq.Context | None = None,
                 curve_secret_key: str = "", curve_clients: str = ""):
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION_BYTES)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        self._auth = None
        try:
            if curve_secret_key:
                self._auth = serve_curve(self._sock, curve_secret_key, curve_clients)
            self._sock.bind(bind)
        except (zmq.ZMQError, CurveError) as e:
            self.close(0)
            raise PublisherError(f"cannot bind {bind}: {e}") from None
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if not curve_secret_key and not is_loopback(bind):
            log.warning("publishing UNENCRYPTED to the network on %s: anyone who can reach it can watch the "
                        "stream; set curve_secret_key and curve_clients (see caed-keys) outside a lab bench", bind)

    def send(self, parts: list[bytes]) -> None:
        """Queue one multipart message; PUB drops it for subscribers whose queue is full."""
        self._sock.send_multipart(parts, copy=False)

    def subscriptions(self, topic: bytes) -> int:
        """How many subscriptions that receive `topic` arrived since the last call (a viewer, a
        recorder or a relay passing on a viewer's). Call it from the thread that sends: a ZeroMQ
        socket is not thread-safe. Unsubscriptions and other streams' subscriptions are dropped."""
        count = 0
        for _ in range(SUBSCRIPTIONS_PER_CALL):
            try:
                message = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == b"\x01" and topic.startswith(message[1:]):
                count += 1
        return count

    def close(self, linger_ms: int | None = None) -> None:
        self._sock.close(linger_ms)
        if self._auth is not None:
            self._auth.stop()
