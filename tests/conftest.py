"""Shared fixtures: the vart/xir test double, the tiny ONNX models, free loopback ports.

The double (tests/dpu_double/) shadows the real `vart` and `xir` modules, so it is importable
only inside a test that asks for it: a path put on sys.path at collection would make
`import vart` mean the double for every later test of the session.
"""
from __future__ import annotations

import gc
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from deploy_processes import free_port as _free_port

DOUBLE = Path(__file__).parent / "dpu_double"
DOUBLE_MODULES = ("vart", "xir")


@dataclass(frozen=True)
class DpuDouble:
    vart: ModuleType
    xir: ModuleType
    lock_dir: Path  # the double's cross-process DPU lock lives here, private to the test

    def env(self) -> dict:
        """Environment for a child process (a daemon) that must load the double too."""
        path = os.pathsep.join(filter(None, [str(DOUBLE), os.environ.get("PYTHONPATH")]))
        return dict(os.environ, PYTHONPATH=path, DPU_DOUBLE_LOCK_DIR=str(self.lock_dir))


def _forget_double() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in DOUBLE_MODULES]:
        del sys.modules[name]


@pytest.fixture
def dpu_double(monkeypatch, tmp_path) -> DpuDouble:
    """`import vart` / `import xir` give the double during this test only."""
    gc.collect()  # runners kept alive by earlier tests' tracebacks would still hold the DPU lock
    lock_dir = tmp_path / "dpu-lock"
    lock_dir.mkdir()
    monkeypatch.setenv("DPU_DOUBLE_LOCK_DIR", str(lock_dir))
    monkeypatch.syspath_prepend(str(DOUBLE))
    _forget_double()
    yield DpuDouble(importlib.import_module("vart"), importlib.import_module("xir"), lock_dir)
    _forget_double()


@pytest.fixture
def free_port():
    """A function that returns a free TCP port on 127.0.0.1."""
    return _free_port
