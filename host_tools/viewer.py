"""The receive loop: validate everything, apply every frame to its stream's temporal state (cheap:
latents only), decode only the newest picture of each stream.

An inter frame updates the reconstruction of the frame its header names (ref_seq). When this
viewer does not hold that frame (a frame was lost, or the viewer joined mid-stream) the frame is
counted (`no_keyframe` before the stream's first keyframe, `broken_chain` after a loss) and
nothing is shown for it: the sink keeps the last correct picture
until a frame arrives whose reference is held, at the latest the next keyframe."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque

from caed.fixed_point import psnr
from caed.temporal import ChainBroken, TemporalState
from caed.wire import FrameDecoder, LatentFrame, Rejected

from .decoder import DecoderSet, UnknownModel
from .metrics import ViewerMetrics
from .reference import ReferenceFrames
from .report import KEEP, Stats
from .sinks import Sink
from .subscriber import Subscriber

log = logging.getLogger(__name__)


class Viewer:
    def __init__(self, subscriber: Subscriber, decoders: DecoderSet, sink: Sink, metrics: ViewerMetrics,
                 reference: ReferenceFrames | None = None):
        self.subscriber, self.decoders, self.sink = subscriber, decoders, sink
        self.metrics, self.reference = metrics, reference
        self.stats = Stats()
        self.captures_ns: deque = deque(maxlen=KEEP)  # capture time of each decoded frame, in decode order
        self._frames = FrameDecoder()
        self._last_seq: dict[str, int] = {}
        self._states: dict[str, TemporalState] = {}

    def _reject(self, reason: str, detail: str) -> None:
        self.stats.rejected[reason] += 1
        self.metrics.rejected.labels(reason).inc()
        log.debug("rejected message (%s): %s", reason, detail)

    def _track(self, frame: LatentFrame) -> None:
        stream, seq = frame.header.stream, frame.header.seq
        last = self._last_seq.get(stream)
        if last is not None and seq > last + 1:
            self.stats.lost += seq - last - 1
            self.metrics.lost.inc(seq - last - 1)
        elif last is not None and seq <= last:
            log.info("stream %s restarted (sequence %d after %d)", stream, seq, last)
        self._last_seq[stream] = seq

    def take(self, batch: list[list[bytes]]) -> dict[str, LatentFrame]:
        """Validate a batch and apply it to the streams' states; per stream the newest decodable
        frame with its reconstruction's `values`, older ones counted as skipped."""
        newest: dict[str, LatentFrame] = {}
        for parts in batch:
            self.stats.received += 1
            self.metrics.received.inc()
            try:
                frame = self._frames.decode(parts)
            except Rejected as e:
                self._reject(e.reason, str(e))
                continue
            self._track(frame)
            h = frame.header
            state = self._states.setdefault(h.stream, TemporalState())
            try:
                values = state.apply(h.seq, h.ref_seq, h.fix_point, frame.planes, frame.sent)
            except ChainBroken as e:
                self._reject(e.reason, str(e))
                continue
            self.stats.frame_applied(frame.wire_bytes)
            if h.keyframe:
                self.stats.keyframes += 1
                self.metrics.keyframes.inc()
            if h.stream in newest:
                self.stats.skipped += 1
                self.metrics.skipped.inc()
            newest[h.stream] = dataclasses.replace(frame, values=values)
        return newest

    def show(self, frame: LatentFrame) -> None:
        h = frame.header
        try:
            decoder = self.decoders.get(h.model_id, h.shape)
        except UnknownModel as e:
            self._reject("unknown_model", str(e))
            return
        except Rejected as e:
            self._reject(e.reason, str(e))
            return
        t0 = time.perf_counter()
        rgb = decoder.decode_values(frame.values)
        decode_s = time.perf_counter() - t0
        self.sink.write(rgb, h.stream, h.seq)
        latency_s = (time.time_ns() - h.t_capture_ns) / 1e9
        self.metrics.decoded.inc()
        self.metrics.decode.observe(decode_s)
        self.metrics.latency.observe(max(latency_s, 0.0))
        self.metrics.bpp.set(8 * frame.wire_bytes / (rgb.shape[0] * rgb.shape[1]))
        self.stats.frame_done(latency_s * 1e3, decode_s * 1e3, rgb.shape)
        self.captures_ns.append(h.t_capture_ns)
        if self.reference is not None:
            source = self.reference.get(h.frame_index, rgb.shape[0], rgb.shape[1])
            if source is not None:
                self.stats.psnr_db.append(psnr(source, rgb))

    def run(self, stop: threading.Event, frames: int = 0, duration: float = 0.0, on_status=None,
            status_every: float = 1.0) -> dict:
        start = last_status = time.monotonic()
        window_start, window_count = start, 0
        while not stop.is_set():
            now = time.monotonic()
            if (frames and self.stats.decoded >= frames) or (duration and now - start >= duration):
                break
            if getattr(self.sink, "closed", False):
                break
            for frame in self.take(self.subscriber.receive(0.1)).values():
                self.show(frame)
                window_count += 1
            now = time.monotonic()
            if now - window_start >= 1.0:
                self.metrics.fps.set(window_count / (now - window_start))
                window_start, window_count = now, 0
            if on_status and now - last_status >= status_every:
                on_status(self.stats.status_line())
                last_status = now
        return self.stats.summary()
