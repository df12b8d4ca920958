"""The bench/ scripts as modules, for the tests that check they measure what the docs say."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).parents[1] / "bench"


def load_bench(name: str) -> ModuleType:
    """bench/NAME.py, imported."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale_patches(folder: Path, target: str) -> Path:
    """A folder of patches holding one, stale.patch, that cannot apply to `target` (a path in the
    repository): for the patch-variant benches, whose PATCHES it replaces."""
    folder.mkdir()
    (folder / "stale.patch").write_text(f"--- a/{target}\n+++ b/{target}\n@@ -1,1 +1,1 @@\n-no such line\n+another\n")
    return folder
