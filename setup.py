"""Metadata lives in setup.cfg; this file is for Yocto's setuptools3 class, which runs it, and for
the one thing setup.cfg cannot say: the board's distribution.

With CAED_BOARD=1 in the environment (the PetaLinux recipe exports it) the build holds only what
a board runs: the `caed` package without the shipped ONNX weights (the board runs an .xmodel,
whose model.json the recipe installs beside it) and the console scripts `caed` and `caed-keys`.
Without it, the full distribution: board package, host tools and training code.
"""
import os

from setuptools import find_namespace_packages, setup

if os.environ.get("CAED_BOARD") == "1":
    setup(
        packages=["caed"] + [f"caed.{p}" for p in find_namespace_packages("daemon", exclude=["weights*"])],
        exclude_package_data={"caed": ["weights/*/*"]},
        entry_points={"console_scripts": ["caed = caed.cli:main", "caed-keys = caed.curve:main"]},
    )
else:
    setup()
