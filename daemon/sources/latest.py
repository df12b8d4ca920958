"""A capture thread that keeps only the newest frame, so a slow pipeline never builds latency."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from .base import EndOfStream, FrameSource, SourceError, as_bgr

log = logging.getLogger(__name__)
BACKOFF_START, BACKOFF_MAX = 0.1, 1.0


@dataclass(frozen=True)
class CapturedFrame:
    image: np.ndarray
    index: int  # counts every frame the source delivered, so gaps show frames dropped here
    t_capture_ns: int


class LatestFrameSource:
    """Wraps a FrameSource in a thread; `get` hands out the newest frame not yet taken.

    A frame replaced before anyone took it is counted in `dropped`. Source failures are logged,
    counted and retried with backoff (at most BACKOFF_MAX between tries, so a camera that comes
    back is streaming again within about a second); a finite source that ends either stops the
    stream (`exit_at_eof`) or leaves it idle.
    """

    def __init__(self, source: FrameSource, exit_at_eof: bool = False, on_capture=None, on_drop=None,
                 on_error=None):
        self.source = source
        self.exit_at_eof = exit_at_eof
        self.captured = self.dropped = self.errors = 0
        self.cpu_seconds = 0.0  # CPU time of the capture thread (reading/decoding frames)
        self._on_capture, self._on_drop, self._on_error = on_capture, on_drop, on_error
        self._cond = threading.Condition()
        self._latest: CapturedFrame | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._cond:
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """True once a finite source ended and nothing is left to take."""
        with self._cond:
            return self._ended and self._latest is None

    def get(self, timeout: float) -> CapturedFrame | None:
        """The newest untaken frame, waiting up to `timeout` s; None on timeout or end."""
        with self._cond:
            if self._latest is None and not self._ended:
                self._cond.wait(timeout)
            frame, self._latest = self._latest, None
            return frame

    def _publish(self, frame: CapturedFrame) -> None:
        with self._cond:
            replaced = self._latest is not None
            self._latest = frame
            self._cond.notify()
        self.captured += 1
        if self._on_capture:
            self._on_capture()
        if replaced:
            self.dropped += 1
            if self._on_drop:
                self._on_drop()

    def _fail(self, error: Exception, backoff: float) -> float:
        self.errors += 1
        if self._on_error:
            self._on_error()
        log.warning("source %s: %s; retrying in %.1f s", self.source, error, backoff)
        self.source.close()
        self._stop.wait(backoff)
        return min(backoff * 2, BACKOFF_MAX)

    def _run(self) -> None:
        start = time.thread_time()
        try:
            self._capture_loop()
        finally:
            self.source.close()
            self.cpu_seconds = time.thread_time() - start

    def _capture_loop(self) -> None:
        backoff, opened, index = BACKOFF_START, False, 0
        while not self._stop.is_set():
            try:
                if not opened:
                    self.source.open()
                    opened = True
                    log.info("source open: %s", self.source)
                image = as_bgr(self.source.read())
            except SourceError as e:
                opened = False
                backoff = self._fail(e, backoff)
                continue
            except EndOfStream:
                if self.exit_at_eof:
                    log.info("source %s ended; stopping the stream", self.source)
                else:
                    log.warning("source %s ended; idle until restart (set loop = true to replay it)", self.source)
                with self._cond:
                    self._ended = self.exit_at_eof
                    self._cond.notify_all()
                self._stop.wait()
                return
            backoff = BACKOFF_START
            self._publish(CapturedFrame(image, index, time.time_ns()))
            index += 1
