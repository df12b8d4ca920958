"""Real `caed` / `caed-view` / `prometheus` processes on loopback for the deployment tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from caed_host.demo import free_port  # noqa: F401  (the tests take it from here)

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running(argv: list[str], log: Path, env: dict | None = None):
    """Start argv with its output going to `log`; SIGTERM it (SIGKILL after a timeout) on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=log.parent)
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def daemon_argv(source: str, bind_port: int, metrics_port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "caed.cli", "--source", source, "--workers", "1",
            "--bind", f"tcp://127.0.0.1:{bind_port}", "--metrics-port", str(metrics_port),
            "--metrics-addr", "127.0.0.1", "--log-level", "warning", *extra]


def viewer_argv(bind_port: int, metrics_port: int) -> list[str]:
    return [sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{bind_port}", "--sink", "null",
            "--metrics-port", str(metrics_port), "--quiet", "--log-level", "warning"]


def scrape(port: int) -> dict:
    """The exporter's families by name, parsed with prometheus_client's own text parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(families: dict, sample_name: str) -> float:
    return sum(s.value for f in families.values() for s in f.samples if s.name == sample_name)


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
               period: float = 0.25):
    """Poll check() until it returns a truthy value; fail with the process log if it never does."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            value = check()
            if value:
                return value
        except OSError as e:
            last_error = e
        time.sleep(period)
    detail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    state = f"exited with {proc.returncode}" if proc is not None and proc.poll() is not None else "running"
    raise AssertionError(f"timed out waiting for {what} (process {state}, last error {last_error}):\n{detail}")


def prometheus_query(port: int, query: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # 400/422 carry the parse error as JSON
        return json.load(e)


def prometheus_api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}", timeout=5) as r:
        return json.load(r)
