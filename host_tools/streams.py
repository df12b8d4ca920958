"""Decode different streams in parallel, each stream in order and newest-only.

A fixed pool of worker threads (as many as cores by default: ONNX Runtime releases the GIL while
it runs, so two decodes really use two cores) takes streams, not frames: a stream is held by at
most one worker at a time, so its frames are decoded in the order they came, and it has at most
one frame waiting, which a newer one replaces (counted as skipped). A slow stream therefore never
delays another, and no stream builds a backlog.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from caed.wire import LatentFrame


class StreamPool:
    def __init__(self, workers: int, decode: Callable[[LatentFrame], None], on_skip: Callable[[LatentFrame], None]):
        self._decode, self._on_skip = decode, on_skip
        self._cond = threading.Condition()
        self._waiting: dict[str, LatentFrame] = {}  # the newest undecoded frame of each stream
        self._busy: set[str] = set()  # streams a worker is decoding
        self._ready: deque[str] = deque()  # streams with a waiting frame and no worker
        self._closing = False
        self.error: BaseException | None = None  # the first failure of a worker (a sink error...)
        self._threads = [threading.Thread(target=self._work, name=f"decode-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, frame: LatentFrame) -> None:
        stream = frame.header.stream
        with self._cond:
            older = self._waiting.get(stream)
            self._waiting[stream] = frame
            if older is not None:
                self._on_skip(older)
            elif stream not in self._busy:
                self._ready.append(stream)
                self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._closing:
                    self._cond.wait()
                if not self._ready:
                    return
                stream = self._ready.popleft()
                frame = self._waiting.pop(stream)
                self._busy.add(stream)
            try:
                self._decode(frame)
            except BaseException as e:  # handed to the receive loop, which stops on it
                with self._cond:
                    self.error = self.error or e
            with self._cond:
                self._busy.discard(stream)
                if stream in self._waiting:
                    self._ready.append(stream)
                self._cond.notify_all()

    def active(self) -> int:
        """Streams being decoded or ready for a worker: how many decodes share the cores now."""
        with self._cond:
            return len(self._busy) + len(self._ready)

    def waiting(self) -> int:
        """Frames received and not yet taken by a worker."""
        with self._cond:
            return len(self._waiting)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every waiting frame is decoded; False if that took longer than timeout_s."""
        with self._cond:
            return self._cond.wait_for(lambda: (not self._waiting and not self._busy) or self.error is not None,
                                       timeout_s)

    def close(self) -> None:
        """Stop after the decodes under way; frames still waiting are not decoded."""
        with self._cond:
            self._closing = True
            self._ready.clear()
            self._waiting.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join()
