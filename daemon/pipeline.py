"""Wires source → preprocess → encoder → publisher, keeping the encoder's runners busy.

Three kinds of threads overlap the work, as the study asked ("no room for processor overheads"):
the capture thread keeps the newest frame; this module's main loop preprocesses it and submits it
to the encoder, up to `window` frames in flight; a publisher thread waits for the encoder results
in submission order, packs and sends them. Waiting in submission order is what keeps frames in
order when the runners finish out of order.

With temporal coding (caed.temporal) a frame's payload depends on the frames before it, so the
publisher thread codes it, in order, instead of the encoder workers. A viewer can show
nothing of such a stream before a keyframe, when it joins or after it lost a frame, and then it
subscribes (caed.wire.KEYFRAME_REQUEST_GAP); each subscription the publisher reports makes the next
frame coded a keyframe, at most one a KEYFRAME_REQUEST_GAP after the last. The viewer may first
get the frame that was being coded when its subscription arrived, so its picture comes back with
its first or second frame instead of up to a keyframe interval later.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from .encoders import EncoderBackend
from .metrics import STAGES, DaemonMetrics
from .notify import SystemdNotifier
from .preprocess import Preprocessor
from .publisher import ZmqPublisher
from .sources import CapturedFrame, LatestFrameSource
from .temporal import TemporalEncoder
from .wire import KEYFRAME_REQUEST_GAP, FrameEncoder, topic_for

log = logging.getLogger(__name__)
STATUS_PERIOD = 5.0


@dataclass
class _Job:
    future: object
    frame: CapturedFrame
    submitted: float


class Pipeline:
    def __init__(self, source: LatestFrameSource, encoder: EncoderBackend, publisher: ZmqPublisher,
                 frame_encoder: FrameEncoder, metrics: DaemonMetrics, notifier: SystemdNotifier | None = None,
                 window: int = 0, temporal: TemporalEncoder | None = None):
        self.source, self.encoder, self.publisher = source, encoder, publisher
        self.temporal = temporal
        self.frame_encoder, self.metrics = frame_encoder, metrics
        self.notifier = notifier or SystemdNotifier({})
        self.window = window or encoder.workers + 1
        h, w = encoder.picture
        self.preprocess = Preprocessor(w, h, encoder.input.fix_point, encoder.input_colours,
                                       input_size=encoder.input.shape[:2])
        # Frames publish in submission order, so buffer k is free again when frame k + window is submitted.
        self._buffers = [np.empty(encoder.input.shape, np.int8) for _ in range(self.window)]
        self._slots = threading.Semaphore(self.window)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.submitted = self.published = self.encode_errors = self.window_drops = 0
        self.published_bytes = 0
        self.keyframes = self.blocks_sent = self.blocks_coded = 0
        self._topic = topic_for(frame_encoder.stream)
        self._keyframe_asked = False  # a subscription arrived since the last keyframe
        self._last_keyframe = -KEYFRAME_REQUEST_GAP  # monotonic time of the last keyframe
        self._cpu = {"capture": 0.0, "preprocess": 0.0, "compress": 0.0, "publish": 0.0}
        self._outside_encoder_cpu = 0.0  # the whole process's CPU time but the encoder's runs
        self._cpu_lock = threading.Lock()
        self._first_publish = self._last_publish = 0.0
        # per-frame observers looked up once: a labels() lookup takes a lock and hashes every time
        self._observe = {stage: metrics.stage.labels(stage).observe for stage in STAGES}
        encoder.on_busy = metrics.busy.inc
        metrics.workers.set(encoder.workers)

    def run(self, stop: threading.Event, frames: int = 0, duration: float = 0.0) -> dict:
        """Stream until `stop` is set, `frames` are submitted, `duration` passes or the source ends;
        frames already submitted are always published before returning."""
        process_start, encoder_start = time.process_time(), self.encoder.run_cpu_seconds  # before any thread starts
        publisher = threading.Thread(target=self._publish_loop, name="publisher")
        publisher.start()
        self.source.start()
        self.notifier.ready(f"streaming {self.encoder.model_id} via {self.encoder.name}")
        start = time.monotonic()
        cpu_start = time.thread_time()
        try:
            while not stop.is_set() and not (frames and self.submitted >= frames):
                if duration and time.monotonic() - start >= duration:
                    break
                captured = self.source.get(timeout=0.1)
                if captured is None:
                    if self.source.ended:
                        break
                    continue
                if not self._slots.acquire(timeout=1.0):  # the encoder is stuck: this frame is too old now
                    self.window_drops += 1
                    self.metrics.dropped.labels("stale").inc()
                    continue
                t0 = time.perf_counter()
                tensor = self.preprocess(captured.image, self._buffers[self.submitted % self.window])
                self._observe["preprocess"](time.perf_counter() - t0)
                future = self.encoder.submit(tensor, then=None if self.temporal else self._pack)
                self._jobs.put(_Job(future, captured, time.perf_counter()))
                self.submitted += 1
        finally:
            self._cpu["preprocess"] = time.thread_time() - cpu_start
            self.notifier.stopping()
            self._jobs.put(None)
            publisher.join()
            self.source.stop()
            self._cpu["capture"] = self.source.cpu_seconds
            self._outside_encoder_cpu = (time.process_time() - process_start
                                         - (self.encoder.run_cpu_seconds - encoder_start))
        return self.summary(time.monotonic() - start)

    def _pack(self, latents: np.ndarray) -> tuple[tuple, bytes]:
        """Payload compression, run on the encoder workers; its CPU time is the daemon's too."""
        start = time.thread_time()
        packed = self.frame_encoder.payload(latents)
        with self._cpu_lock:
            self._cpu["compress"] += time.thread_time() - start
        return packed

    def _code(self, latents: np.ndarray, seq: int) -> tuple[tuple, bytes, int, int]:
        """Temporal coding of the next published frame: (shape, payload, fix point, ref_seq); a
        keyframe if a subscriber asked for one and the last is KEYFRAME_REQUEST_GAP old."""
        start = time.thread_time()
        asked = (self._keyframe_asked and not self.temporal.keyframe_due
                 and time.monotonic() - self._last_keyframe >= KEYFRAME_REQUEST_GAP)
        coded = self.temporal.encode(latents, force_keyframe=asked)
        with self._cpu_lock:
            self._cpu["compress"] += time.thread_time() - start
        if coded.keyframe:
            if asked:
                self.metrics.requested_keyframes.inc()
            self._keyframe_asked, self._last_keyframe = False, time.monotonic()
            self.keyframes += 1
            self.metrics.keyframes.inc()
        else:
            self.metrics.inter_frames.inc()
        self.blocks_sent += coded.blocks_sent
        self.blocks_coded += coded.blocks
        self.metrics.blocks_sent.inc(coded.blocks_sent)
        self.metrics.blocks_coded.inc(coded.blocks)
        self.metrics.fix_point.set(coded.fix_point)
        return latents.shape, coded.payload, coded.fix_point, seq - (coded.index - coded.ref_index)

    def _publish_loop(self) -> None:
        cpu_start = time.thread_time()
        seq, last_ping, last_status, window_count, window_start = 0, 0.0, time.monotonic(), 0, time.monotonic()
        fps = 0.0
        interval = self.notifier.watchdog_interval
        while True:
            try:
                job = self._jobs.get(timeout=1.0)
            except queue.Empty:  # nothing to publish: the rate gauge must not freeze at its last value
                fps, window_count, window_start = 0.0, 0, time.monotonic()
                self.metrics.fps.set(fps)
                continue
            if job is None:
                break
            try:
                result = job.future.result()
            except Exception as e:  # a failed job must not stop the stream; it is counted and logged
                self._slots.release()
                self.encode_errors += 1
                self.metrics.dropped.labels("encoder_error").inc()
                log.error("encoder failed on frame %d: %s", job.frame.index, e)
                continue
            self._slots.release()
            t0 = time.perf_counter()
            self.metrics.encoded.inc()
            self._observe["encode"](t0 - job.submitted)
            subscribed = self.publisher.subscriptions(self._topic)
            if subscribed:
                self.metrics.subscriptions.inc(subscribed)
                # debug: a viewer behind a lossy link asks up to once a second (counted, and alerted on)
                log.debug("%d subscription(s) to stream %s (a viewer joining, or asking again after a loss)%s",
                         subscribed, self.frame_encoder.stream, ": a keyframe follows" if self.temporal else "")
                self._keyframe_asked = bool(self.temporal)
            if self.temporal:
                shape, payload, fix_point, ref_seq = self._code(result, seq)
            else:
                (shape, payload), fix_point, ref_seq = result, self.encoder.latent.fix_point, seq
            parts = self.frame_encoder.message(shape, payload, picture=self.encoder.picture, fix_point=fix_point,
                                               seq=seq, ref_seq=ref_seq,
                                               frame_index=job.frame.index, t_capture_ns=job.frame.t_capture_ns)
            self.publisher.send(parts)
            nbytes = sum(len(p) for p in parts)
            seq += 1
            self.published += 1
            self.published_bytes += nbytes
            self.metrics.published.inc()
            self.metrics.bytes.inc(nbytes)
            self._observe["publish"](time.perf_counter() - t0)
            self._observe["pipeline"]((time.time_ns() - job.frame.t_capture_ns) / 1e9)
            now = time.monotonic()
            self._last_publish = now
            self._first_publish = self._first_publish or now
            window_count += 1
            if now - window_start >= 1.0:
                fps = window_count / (now - window_start)
                self.metrics.fps.set(fps)
                window_count, window_start = 0, now
            if interval and now - last_ping >= interval:
                self.notifier.watchdog()
                last_ping = now
            if now - last_status >= STATUS_PERIOD:
                self.notifier.status(f"{self.published} frames published, {fps:.1f} fps")
                last_status = now
        self.metrics.fps.set(0)
        # temporal coding ran in this thread too, and counts as "compress"
        self._cpu["publish"] = time.thread_time() - cpu_start - (self._cpu["compress"] if self.temporal else 0.0)

    def summary(self, elapsed: float) -> dict:
        span = self._last_publish - self._first_publish
        # capture runs once per captured frame, the rest once per published frame; "other" is the
        # rest of the process outside the encoder's runs: OpenCV's, ZeroMQ's and the metrics' threads
        outside_encoder = self._outside_encoder_cpu
        seconds = {**self._cpu, "other": outside_encoder - sum(self._cpu.values())}
        counts = {"capture": self.source.captured, "preprocess": self.published, "compress": self.published,
                  "publish": self.published, "other": self.published}
        per_frame = {k: 1e3 * v / counts[k] if counts[k] else None for k, v in seconds.items()}
        return {
            "frames_captured": self.source.captured,
            "frames_dropped_stale": self.source.dropped + self.window_drops,
            "frames_submitted": self.submitted,
            "frames_published": self.published,
            "encoder_errors": self.encode_errors,
            "source_errors": self.source.errors,
            "bytes_published": self.published_bytes,
            "keyframes": self.keyframes,
            "blocks_sent_share": self.blocks_sent / self.blocks_coded if self.blocks_coded else None,
            "elapsed_s": elapsed,
            "fps": (self.published - 1) / span if self.published > 1 and span > 0 else 0.0,
            "cpu_ms_per_frame": per_frame,
            "cpu_ms_per_frame_outside_encoder": 1e3 * outside_encoder / self.published if self.published else None,
            "picture": list(self.encoder.picture),
            "backend": self.encoder.name,
            "model_id": self.encoder.model_id,
            "workers": self.encoder.workers,
            "window": self.window,
        }
