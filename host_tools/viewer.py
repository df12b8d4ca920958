"""The receive loop: validate everything, apply every frame to its stream's temporal state (cheap:
latents only), decode only the newest picture of each stream, different streams in parallel
(streams.StreamPool).

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
from collections import OrderedDict, deque

import numpy as np

from caed.codecs import PayloadError
from caed.fixed_point import psnr
from caed.temporal import ChainBroken, TemporalState
from caed.wire import KEYFRAME_REQUEST_GAP, FrameDecoder, LatentFrame, Rejected

from .decoder import DecoderSet, UnknownModel
from .metrics import ViewerMetrics
from .reference import ReferenceFrames
from .report import KEEP, MAX_STREAMS, OTHER, Stats, summarize
from .sinks import Sink
from .streams import StreamPool
from .subscriber import Subscriber

log = logging.getLogger(__name__)


class Viewer:
    def __init__(self, subscriber: Subscriber, decoders: DecoderSet, sink: Sink, metrics: ViewerMetrics,
                 reference: ReferenceFrames | None = None, workers: int = 1):
        self.subscriber, self.decoders, self.sink = subscriber, decoders, sink
        self.metrics, self.reference, self.workers = metrics, reference, workers
        self.stats = Stats()
        self.streams: dict[str, Stats] = {}  # per stream id (at most MAX_STREAMS, then OTHER)
        self._lock = threading.Lock()  # stats and sink, shared by the decode workers
        self._frames_limit = 0
        self._pool: StreamPool | None = None
        self.captures_ns: deque = deque(maxlen=KEEP)  # capture time of each decoded frame, in decode order
        self._frames = FrameDecoder()
        self._last_seq: dict[str, int] = {}
        # per stream id, the most recently used MAX_STREAMS: a sender inventing stream ids cannot
        # make this viewer hold more latents (a stream whose state was dropped resumes at its next keyframe)
        self._states: OrderedDict[str, TemporalState] = OrderedDict()
        self._keyframe_asked: dict[str, float] = {}  # per stream, when this viewer last asked for a keyframe

    def stream(self, stream: str) -> str:
        """The name a stream is reported under (its own id for the first MAX_STREAMS)."""
        name = stream if stream in self.streams or len(self.streams) < MAX_STREAMS else OTHER
        self.streams.setdefault(name, Stats())
        return name

    def _reject(self, reason: str, detail: str) -> None:
        """Counts a refused message; from the receive loop and the decode workers alike."""
        with self._lock:
            self.stats.rejected[reason] += 1
        self.metrics.rejected.labels(reason).inc()
        log.debug("rejected message (%s): %s", reason, detail)

    def _track(self, frame: LatentFrame) -> None:
        stream, seq = frame.header.stream, frame.header.seq
        last = self._last_seq.get(stream)
        if last is not None and seq > last + 1:
            self.stats.lost += seq - last - 1
            self.metrics.lost.inc(seq - last - 1)
            self._count_stream(stream, "lost", seq - last - 1)
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
            name = self.stream(h.stream)
            self.streams[name].received += 1
            try:
                values = self._state(h.stream).apply(frame)
            except ChainBroken as e:
                self._reject(e.reason, str(e))
                if e.reason == "broken_chain":
                    self._ask_keyframe(h.stream, name)
                continue
            except PayloadError as e:  # an inter payload that does not decode against its reference
                self._reject("payload", str(e))
                continue
            for stats in (self.stats, self.streams[name]):
                stats.frame_applied(frame.wire_bytes)
            if h.keyframe:
                self.stats.keyframes += 1
                self.metrics.keyframes.inc()
            if h.stream in newest:
                self._skipped(newest[h.stream])
            newest[h.stream] = dataclasses.replace(frame, values=values)
        return newest

    def _ask_keyframe(self, stream: str, name: str) -> None:
        """After a loss broke a stream's chain, ask its board for a keyframe (caed.wire.
        KEYFRAME_REQUEST_GAP) instead of waiting for the next scheduled one: at most once a
        KEYFRAME_REQUEST_GAP per stream, only for the streams reported under their own name (a
        sender inventing stream ids cannot make this viewer subscribe to more than MAX_STREAMS
        topics), and only of a live source (a replay has no board to ask)."""
        ask = getattr(self.subscriber, "ask_keyframe", None)
        now, last = time.monotonic(), self._keyframe_asked.get(stream, -KEYFRAME_REQUEST_GAP)
        if ask is None or name == OTHER or now - last < KEYFRAME_REQUEST_GAP:
            return
        self._keyframe_asked[stream] = now
        ask(stream)
        self.stats.keyframes_asked += 1
        self.metrics.keyframes_asked.inc()
        log.debug("stream %s lost a frame its next ones depend on: asked its board for a keyframe", stream)

    def _state(self, stream: str) -> TemporalState:
        state = self._states.pop(stream, None) or TemporalState()
        self._states[stream] = state
        if len(self._states) > MAX_STREAMS:
            self._states.popitem(last=False)
        return state

    def _count_stream(self, stream: str, what: str, n: int) -> None:
        name = self.stream(stream)
        setattr(self.streams[name], what, getattr(self.streams[name], what) + n)
        getattr(self.metrics, f"stream_{what}").labels(name).inc(n)

    def _skipped(self, frame: LatentFrame) -> None:
        self.stats.skipped += 1
        self.metrics.skipped.inc()
        self._count_stream(frame.header.stream, "skipped", 1)

    def decode(self, frame: LatentFrame) -> tuple[np.ndarray, float, float | None] | None:
        """The frame's picture, its decode time (s) and its PSNR against --reference, or None when
        it is refused (counted). Runs on the decode workers, several at once."""
        h = frame.header
        try:
            pool = self._pool
            decoder = self.decoders.get(h.model_id, h.shape, h.picture, pool.active() if pool is not None else 1)
        except UnknownModel as e:
            self._reject("unknown_model", str(e))
            return None
        except Rejected as e:
            self._reject(e.reason, str(e))
            return None
        t0 = time.perf_counter()
        decoded = decoder.decode_values(frame.values)
        decode_s = time.perf_counter() - t0
        if decoded.shape[0] < h.picture[0] or decoded.shape[1] < h.picture[1]:
            self._reject("shape", f"picture {h.picture[0]}x{h.picture[1]} is larger than the decoded "
                                  f"{decoded.shape[0]}x{decoded.shape[1]}")
            return None
        rgb = decoded[:h.picture[0], :h.picture[1]]  # the encoder's padding removed
        source = None if self.reference is None else self.reference.get(h.frame_index, rgb.shape[0], rgb.shape[1])
        return rgb, decode_s, None if source is None else psnr(source, rgb)

    def deliver(self, frame: LatentFrame, decoded: tuple[np.ndarray, float, float | None] | None) -> None:
        """Write a decoded frame to the sink and count it; a stream's frames come here in order."""
        if decoded is None or (self._frames_limit and self.stats.decoded >= self._frames_limit):
            return
        rgb, decode_s, quality = decoded
        h = frame.header
        with self._lock:
            self.sink.write(rgb, h.stream, h.seq)
        latency_s = (time.time_ns() - h.t_capture_ns) / 1e9
        bpp = 8 * frame.wire_bytes / (rgb.shape[0] * rgb.shape[1])
        with self._lock:
            name = self.stream(h.stream)
            self.metrics.decoded.inc()
            self.metrics.decode.observe(decode_s)
            self.metrics.latency.observe(max(latency_s, 0.0))
            self.metrics.bpp.set(bpp)
            self.metrics.stream_decoded.labels(name).inc()
            self.metrics.stream_latency.labels(name).observe(max(latency_s, 0.0))
            self.metrics.stream_bpp.labels(name).set(bpp)
            for stats in (self.stats, self.streams[name]):
                stats.frame_done(latency_s * 1e3, decode_s * 1e3, rgb.shape)
                if quality is not None:
                    stats.psnr_db.append(quality)
            self.captures_ns.append(h.t_capture_ns)

    def show(self, frame: LatentFrame) -> None:
        """Decode and deliver one frame here and now (a replay's or a test's)."""
        self.deliver(frame, self.decode(frame))

    def _decode_within_limit(self, frame: LatentFrame) -> tuple[np.ndarray, float, float | None] | None:
        if self._frames_limit and self.stats.decoded >= self._frames_limit:
            return None
        return self.decode(frame)

    def has_room(self) -> bool:
        """True when no received frame waits for a worker: a replay that must decode every frame
        hands over the next one only then (a waiting frame would be replaced by it)."""
        return self._pool is None or not self._pool.waiting()

    def summary(self) -> dict:
        with self._lock:
            return summarize(self.stats, self.streams)

    def status_line(self) -> str:
        with self._lock:
            return self.stats.status_line(self.streams)

    def run(self, stop: threading.Event, frames: int = 0, duration: float = 0.0, on_status=None,
            status_every: float = 1.0) -> dict:
        """Until `stop` is set (then the frames already received are decoded), or a limit or a
        closed sink ends it (then they are not)."""
        start = last_status = window_start = time.monotonic()
        window = {name: st.decoded for name, st in self.streams.items()}
        window_total = self.stats.decoded
        self._frames_limit = frames
        pool = self._pool = StreamPool(self.workers, self._decode_within_limit, self.deliver, self._skipped)
        try:
            while not stop.is_set():
                now = time.monotonic()
                if (frames and self.stats.decoded >= frames) or (duration and now - start >= duration):
                    break
                if getattr(self.sink, "closed", False) or pool.error is not None:
                    break
                for frame in self.take(self.subscriber.receive(0.1)).values():
                    pool.submit(frame)
                self.sink.poll()
                now = time.monotonic()
                if now - window_start >= 1.0:
                    span, window_start = now - window_start, now
                    self.metrics.fps.set((self.stats.decoded - window_total) / span)
                    window_total = self.stats.decoded
                    for name, st in list(self.streams.items()):
                        self.metrics.stream_fps.labels(name).set((st.decoded - window.get(name, 0)) / span)
                        window[name] = st.decoded
                if on_status and now - last_status >= status_every:
                    on_status(self.status_line())
                    last_status = now
            if stop.is_set():
                pool.drain(timeout_s=30.0)
        finally:
            pool.close()
            self._pool = None
        if pool.error is not None:
            raise pool.error
        return self.summary()
