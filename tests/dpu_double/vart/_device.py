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
    """One DPU IP with `cores` cores, as configured by an xmodel's "dpu" section."""

    def __init__(self, cores: int, latency_ms: list[float], stats_file: str | None):
        if cores < 1 or not latency_ms or min(latency_ms) < 0:
            raise RuntimeError(f"dpu double: bad config cores={cores} latency_ms={latency_ms}")
        self.cores = [threading.Lock() for _ in range(cores)]
        self.latency_s = [ms / 1000 for ms in latency_ms]
        self._sessions = 0
        self._jobs = 0
        self._mutex = threading.Lock()
        self.busy_s = [0.0] * cores
        self.jobs_per_core = [0] * cores
        self.overruns = 0
        self.started = time.monotonic()
        if stats_file:
            atexit.register(self._write_stats, Path(stats_file))

    def next_core(self) -> int:
        """Round-robin core binding of a new runner (the static session_count in VART)."""
        with self._mutex:
            core = self._sessions % len(self.cores)
            self._sessions += 1
            return core

    def run(self, core: int, compute) -> None:
        """Hold `core` for the job's latency while `compute()` produces the outputs."""
        with self._mutex:
            latency = self.latency_s[self._jobs % len(self.latency_s)]
            self._jobs += 1
        with self.cores[core]:
            start = time.monotonic()
            compute()
            remaining = latency - (time.monotonic() - start)
            if remaining > 0:
                time.sleep(remaining)
            busy = time.monotonic() - start
        with self._mutex:
            self.busy_s[core] += busy
            self.jobs_per_core[core] += 1
            if remaining < 0:
                self.overruns += 1

    def stats(self) -> dict:
        """Per-core busy time and job counts; overruns = jobs whose host compute exceeded the latency."""
        with self._mutex:
            return {"cores": len(self.cores), "wall_s": time.monotonic() - self.started,
                    "busy_s": list(self.busy_s), "jobs_per_core": list(self.jobs_per_core),
                    "overruns": self.overruns}

    def _write_stats(self, path: Path) -> None:
        path.write_text(json.dumps(self.stats(), indent=1))
