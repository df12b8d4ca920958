"""The encoder backend interface the pipeline drives.

A backend owns N workers, each with its own runner (a VART runner is not thread-safe, and a DPU
core only stays busy if another job is queued behind the running one), so `submit` returns at
once and up to N jobs run concurrently. The pipeline keeps the futures in submission order,
which is what keeps publishing in frame order when jobs finish out of order.
"""
from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class EncoderError(RuntimeError):
    """The backend cannot be created or cannot run the model (message is for the user)."""


@dataclass(frozen=True)
class TensorInfo:
    """One encoder input or output as the pipeline sees it: NHWC int8, scale 2**-fix_point."""

    name: str
    shape: tuple[int, int, int]  # H, W, C (batch 1 is implied)
    fix_point: int


class EncoderBackend(ABC):
    """Base class: a pool of runners behind a thread pool of the same size."""

    name: str = ""

    def __init__(self, model_id: str, input: TensorInfo, latent: TensorInfo, workers: int,
                 input_colours: str = "rgb", picture: tuple[int, int] | None = None,
                 coarsest_fix_point: int | None = None):
        """`picture`: the (H, W) the daemon streams, at most the input's size (the input is that
        picture padded to the model's size multiple); by default the input's own size.
        `coarsest_fix_point`: the coarsest latent fix point the model's decoder learnt (a
        multi-rate family's last rate, model.json's `coarsest_fix_point`), where the manifest says."""
        if workers < 1:
            raise EncoderError(f"workers must be >= 1, got {workers}")
        if input.fix_point < 0:  # [0, 1] pixels at a step of 2 or more: two levels, a broken model
            raise EncoderError(f"model {model_id}: input {input.name} has fix point {input.fix_point}, below 0")
        self.model_id = model_id
        self.input = input
        self.latent = latent
        if coarsest_fix_point is not None and (type(coarsest_fix_point) is not int
                                               or coarsest_fix_point > latent.fix_point):
            raise EncoderError(f"model {model_id}: coarsest_fix_point = {coarsest_fix_point!r} is not an integer at "
                               f"or below the latents' fix point {latent.fix_point}")
        self.coarsest_fix_point = coarsest_fix_point
        self.input_colours = input_colours  # "rgb" or "bgr": the order the preprocessor must keep
        self.picture = tuple(picture or input.shape[:2])
        self.workers = workers
        self.on_busy = None  # called with each job's run time in seconds (for the utilization metric)
        self.run_cpu_seconds = 0.0  # CPU time of the runs themselves, to tell the daemon's own time apart
        self._cpu_lock = threading.Lock()
        self._runners: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(workers):
            self._runners.put(self._make_runner())
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{self.name}-worker")

    @abstractmethod
    def _make_runner(self) -> Any:
        """Create one runner; called `workers` times from the constructing thread."""

    @abstractmethod
    def _run(self, runner: Any, frame: np.ndarray) -> np.ndarray:
        """Encode one int8 HWC frame with `runner`; return int8 latents of HWC shape (a fresh
        array) in whatever memory order the runner writes them: NHWC from the DPU, a view of
        channel planes from ONNX Runtime. The payload codecs take either."""

    def describe(self) -> dict:
        """What `caed --check` prints about this backend."""
        return {
            "backend": self.name,
            "model_id": self.model_id,
            "workers": self.workers,
            "picture": list(self.picture),
            "input": {**vars(self.input), "colours": self.input_colours},
            "latent": vars(self.latent),
            "coarsest_fix_point": self.coarsest_fix_point,
        }

    def submit(self, frame: np.ndarray, then: Callable[[np.ndarray], Any] | None = None) -> Future:
        """Queue one preprocessed frame; the future yields its int8 latents, or then(latents):
        work that should run in parallel on the workers (payload compression) rather than in the
        single publisher thread. The runner is back in the pool before `then` runs."""
        if frame.dtype != np.int8 or frame.shape != self.input.shape or not frame.flags.c_contiguous:
            raise ValueError(
                f"encoder input must be C-contiguous int8 {self.input.shape}, "
                f"got {frame.dtype} {frame.shape} contiguous={frame.flags.c_contiguous}"
            )
        return self._pool.submit(self._job, frame, then)

    def _job(self, frame: np.ndarray, then) -> Any:
        runner = self._runners.get()
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            latents = self._run(runner, frame)
        finally:
            self._runners.put(runner)
            with self._cpu_lock:
                self.run_cpu_seconds += time.thread_time() - cpu_start
            if self.on_busy:
                self.on_busy(time.perf_counter() - start)
        return then(latents) if then else latents

    def close(self) -> None:
        """Finish queued jobs, then release the runners."""
        self._pool.shutdown(wait=True)
        while not self._runners.empty():
            self._release_runner(self._runners.get())

    def _release_runner(self, runner: Any) -> None:
        """Free a runner (VART runners hold the DPU; drop them explicitly)."""
        del runner
