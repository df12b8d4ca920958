"""ZeroMQ PUB transport: the daemon's only network-facing piece.

A small send high-water mark makes a slow or absent subscriber cost dropped frames, never memory
or latency. CONFLATE would keep only the newest message but does not work with multipart
messages, so freshness is kept by the HWM here and a latest-only receive loop in the viewer.
"""
from __future__ import annotations

import zmq


class PublisherError(RuntimeError):
    """The socket could not be set up (bad address, port in use)."""


class ZmqPublisher:
    def __init__(self, bind: str, sndhwm: int = 4, linger_ms: int = 1000, context: zmq.Context | None = None):
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        try:
            self._sock.bind(bind)
        except zmq.ZMQError as e:
            self._sock.close(0)
            raise PublisherError(f"cannot bind {bind}: {e}") from None
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def send(self, parts: list[bytes]) -> None:
        """Queue one multipart message; PUB drops it for subscribers whose queue is full."""
        self._sock.send_multipart(parts, copy=False)

    def close(self) -> None:
        self._sock.close()
