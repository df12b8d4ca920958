"""ZeroMQ SUB side: connect to one or more boards and take whatever is waiting, oldest first."""
from __future__ import annotations

import zmq

from caed.curve import CurveError, connect_curve
from caed.wire import MAX_ELEMENTS, MAX_HEADER_BYTES, topic_for

MAX_BATCH = 256
# ZeroMQ refuses (and disconnects) a peer whose message part exceeds this, before allocating it.
MAX_PART_BYTES = MAX_ELEMENTS + MAX_HEADER_BYTES + 65536


class SubscriberError(RuntimeError):
    pass


class Subscriber:
    def __init__(self, endpoints: list[str], streams: list[str] | None = None, rcvhwm: int = 8,
                 context: zmq.Context | None = None, curve_secret_key: str = "", curve_server_key: str = ""):
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_PART_BYTES)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve_secret_key:
            try:
                connect_curve(self._sock, curve_secret_key, curve_server_key)
            except CurveError as e:
                self._sock.close()
                raise SubscriberError(str(e)) from None
        for topic in [topic_for(s) for s in streams] if streams else [b""]:
            self._sock.setsockopt(zmq.SUBSCRIBE, topic)
        for endpoint in endpoints:
            try:
                self._sock.connect(endpoint)
            except zmq.ZMQError as e:
                self._sock.close()
                raise SubscriberError(f"cannot connect to {endpoint}: {e}") from None

    def ask_keyframe(self, stream: str) -> None:
        """Subscribe to `stream` once more: the board (caed.pipeline) answers a subscription with a
        keyframe, which a viewer that lost a frame of an inter-coded stream needs. The socket keeps
        a count per topic, so asking again adds nothing to hold."""
        self._sock.setsockopt(zmq.SUBSCRIBE, topic_for(stream))

    def receive(self, timeout_s: float) -> list[list[bytes]]:
        """Every message waiting (up to MAX_BATCH), waiting up to `timeout_s` for the first."""
        if not self._sock.poll(int(timeout_s * 1000)):
            return []
        batch = []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._sock.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        return batch

    def close(self) -> None:
        self._sock.close()
