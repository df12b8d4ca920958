"""The simulated DPU behind the double's runners: cores, per-job latency, the process lock.

Timing model (what DPUCZDX8G does, reference §2.4/§2.5 and dpu_session_base_imp.cpp):
each runner is bound to one core at creation, round-robin over the cores; a job holds its
core for the configured latency, so jobs on one core queue and jobs on different cores
overlap. `execute_async` blocks for the queueing plus the latency, with the GIL released.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


class SimulatedAbort(BaseException):
    """Where the real runtime aborts the process (glog CHECK) or corrupts memory.

    A BaseException, so that no `except Exception` in the code under test can swallow it.
    """


class ProcessLock:
    """The runtime's named inter-process lock DPU_0, held while any runner exists."""

    def __init__(self, name: str = "DPU_0"):
        self.name = name
        self._users = 0
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def _path(self) -> Path:
        directory = Path(os.environ.get("DPU_DOUBLE_LOCK_DIR", tempfile.gettempdir()))
        return directory / f"dpu-double-{self.name}.lock"

    def acquire(self) -> None:
        with self._mutex:
            if self._users == 0:
                fd = os.open(self._path(), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    sys.stderr.write(f"I vart double: waiting for process to release the resource: {self.name}\n")
                    sys.stderr.flush()
                    fcntl.flock(fd, fcntl.LOCK_EX)
                self._fd = fd
            self._users += 1

    def release(self) -> None:
        with self._mutex:
            self._users -= 1
            if self._users == 0 and self._fd is not None:
                os.close(self._fd)
                self._fd = None


PROCESS_LOCK = ProcessLock()


class Device:
    """One DPU IP with `cores` cores, as configured by an xmodel's "dpu" section.

    Each core runs its jobs back to back in arrival order (the XRT command queue starts the
    next one when the core finishes, without the host): a job's end time is fixed when it is
    submitted, as max(now, the core's previous end) + latency, and the calling thread sleeps
    until then. So the host's sleep overshoot never stretches the DPU's timeline; only a core
    with nothing queued is idle.
    """

    def __init__(self, cores: int, latency_ms: list[float], stats_file: str | None):
        if cores < 1 or not latency_ms or min(latency_ms) < 0:
            raise RuntimeError(f"dpu double: bad config cores={cores} latency_ms={latency_ms}")
        self.latency_s = [ms / 1000 for ms in latency_ms]
        self._free_at = [0.0] * cores
        self._sessions = 0
        self._jobs = 0
        self._mutex = threading.Lock()
        self.busy_s = [0.0] * cores
        self.jobs_per_core = [0] * cores
        self.overruns = 0
        self.started = time.monotonic()
        self._first_start: float | None = None
        self._last_end = 0.0
        self._running: set[int] = set()
        self.out_of_order = 0
        if stats_file:
            atexit.register(self._write_stats, Path(stats_file))

    @property
    def cores(self) -> int:
        return len(self._free_at)

    def next_core(self) -> int:
        """Round-robin core binding of a new runner (the static session_count in VART)."""
        with self._mutex:
            core = self._sessions % self.cores
            self._sessions += 1
            return core

    def run(self, core: int, compute) -> None:
        """Queue a job on `core`, let `compute()` produce its outputs, return when the job ends."""
        with self._mutex:
            number = self._jobs
            latency = self.latency_s[number % len(self.latency_s)]
            self._jobs += 1
            self._running.add(number)
            start = max(time.monotonic(), self._free_at[core])
            end = start + latency
            self._free_at[core] = end
            if self._first_start is None:
                self._first_start = start
        compute()
        remaining = end - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        with self._mutex:
            self.busy_s[core] += latency
            self.jobs_per_core[core] += 1
            self._last_end = max(self._last_end, end)
            self._running.discard(number)
            if any(n < number for n in self._running):
                self.out_of_order += 1
            if remaining < 0:
                self.overruns += 1

    def stats(self) -> dict:
        """Per-core busy time and job counts, and the span from the first job's start to the last one's
        end (busy / span = each core's occupancy while the stream ran); overruns = jobs whose host
        compute outlasted their DPU time (the timing is then not the DPU's); out_of_order = jobs that
        finished while an earlier-submitted job was still running."""
        with self._mutex:
            span = self._last_end - self._first_start if self._first_start is not None else 0.0
            return {"cores": self.cores, "wall_s": time.monotonic() - self.started, "active_span_s": span,
                    "busy_s": list(self.busy_s), "jobs_per_core": list(self.jobs_per_core),
                    "overruns": self.overruns, "out_of_order": self.out_of_order}

    def _write_stats(self, path: Path) -> None:
        path.write_text(json.dumps(self.stats(), indent=1))
