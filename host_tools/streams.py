"""Decode streams in parallel, each stream's pictures delivered in order and newest-only.

A fixed pool of worker threads (as many as cores by default: ONNX Runtime and the synthesis kernel
release the GIL, so two decodes really use two cores) takes frames. Different streams decode side
by side; so do consecutive frames of one stream, up to `per_stream` at once, each a whole decode on
its own worker: two dct8 frames at a time on one thread each decode 53 a second on this 2-core
machine, one frame at a time on two threads 37 (27 ms each; its small convolutions do not split
well; caed-bench, docs/decoder.md). Pictures are delivered (`deliver`) strictly in the order the frames came: a
worker whose frame is ready before the one before it waits for it. Each stream has at most one
frame waiting for a worker, which a newer one replaces (counted as skipped): a slow stream never
delays another, and no stream builds a backlog.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from caed.wire import LatentFrame


class StreamPool:
    def __init__(self, workers: int, decode: Callable[[LatentFrame], object],
                 deliver: Callable[[LatentFrame, object], None], on_skip: Callable[[LatentFrame], None],
                 per_stream: int = 0):
        """`decode(frame)` runs on the workers, several at once; `deliver(frame, decoded)` then gets
        its result, one stream's frames in order. `per_stream`: frames of one stream decoded at once
        (0: as many as workers)."""
        self._decode, self._deliver, self._on_skip = decode, deliver, on_skip
        self._per_stream = per_stream or workers
        self._cond = threading.Condition()
        self._waiting: dict[str, LatentFrame] = {}  # the newest undecoded frame of each stream
        self._busy: dict[str, int] = {}  # frames of each stream being decoded
        self._taken: dict[str, int] = {}  # frames of each stream taken by a worker so far
        self._delivered: dict[str, int] = {}  # ... and delivered (or failed)
        self._ready: deque[str] = deque()  # streams with a waiting frame and room for another decode
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
            elif self._busy.get(stream, 0) < self._per_stream:
                self._ready.append(stream)
                self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._closing:
                    self._cond.wait()
                if not self._ready:
                    return
                # the first ready stream of those with the fewest decodes under way: a stream
                # takes a second worker only when no other stream waits for one
                stream = min(self._ready, key=lambda name: self._busy.get(name, 0))
                self._ready.remove(stream)
                frame = self._waiting.pop(stream)
                self._busy[stream] = self._busy.get(stream, 0) + 1
                ticket = self._taken[stream] = self._taken.get(stream, 0) + 1
            decoded, failure = None, None
            try:
                decoded = self._decode(frame)
            except BaseException as e:  # handed to the receive loop, which stops on it
                failure = e
            with self._cond:  # the frame taken before this one is delivered first
                self._cond.wait_for(lambda: self._delivered.get(stream, 0) == ticket - 1 or self._closing)
            try:
                if failure is None and not self._closing:
                    self._deliver(frame, decoded)
            except BaseException as e:
                failure = e
            with self._cond:
                if failure is not None:
                    self.error = self.error or failure
                self._delivered[stream] = ticket
                self._busy[stream] -= 1
                if stream in self._waiting and stream not in self._ready:
                    self._ready.append(stream)
                self._cond.notify_all()

    def active(self) -> int:
        """Decodes under way or ready for a worker: how many share the cores now."""
        with self._cond:
            return sum(self._busy.values()) + len(self._ready)

    def waiting(self) -> int:
        """Frames received and not yet taken by a worker."""
        with self._cond:
            return len(self._waiting)

    def drain(self, timeout_s: float) -> bool:
        """Wait until every waiting frame is decoded; False if that took longer than timeout_s."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._waiting and not any(self._busy.values())) or self.error is not None, timeout_s)

    def close(self) -> None:
        """Stop after the decodes under way; frames still waiting are not decoded."""
        with self._cond:
            self._closing = True
            self._ready.clear()
            self._waiting.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join()
