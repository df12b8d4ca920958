"""Metadata lives in setup.cfg; this file is for Yocto's setuptools3 class, which runs it, and for
what setup.cfg cannot say: the compiled payload coder, and the board's distribution.

The arith codec's C core and the temporal encoder's pass over every block (daemon/csrc) are plain
C99 with no flags of their own, so any target's compiler (the board's, through Yocto's cross
environment) builds them as they are. The host's sparse
synthesis kernel (host_tools/csrc, caed_host._synthesis) is plain C99 too, its x86-64 vector
clones chosen per function at load time (no flags); only the full distribution builds it: the
board never decodes.

With CAED_BOARD=1 in the environment (the PetaLinux recipe exports it) the build holds only what
a board runs: the `caed` package without the shipped ONNX weights (the board runs an .xmodel,
whose model.json the recipe installs beside it) and the console scripts `caed` and `caed-keys`.
Without it, the full distribution: board package, host tools and training code.
"""
import os

from setuptools import Extension, find_namespace_packages, setup

ARITH = Extension("caed._arith", sources=["daemon/csrc/arith.c", "daemon/csrc/arith_module.c"],
                  depends=["daemon/csrc/arith.h"])
TEMPORAL = Extension("caed._temporal", sources=["daemon/csrc/temporal.c", "daemon/csrc/temporal_module.c"],
                     depends=["daemon/csrc/temporal.h"])
SYNTHESIS = Extension("caed_host._synthesis",
                      sources=["host_tools/csrc/synthesis.c", "host_tools/csrc/synthesis_module.c"],
                      depends=["host_tools/csrc/synthesis.h"])

if os.environ.get("CAED_BOARD") == "1":
    setup(
        packages=["caed"] + [f"caed.{p}" for p in find_namespace_packages("daemon", exclude=["weights*", "csrc*"])],
        exclude_package_data={"caed": ["weights/*/*"]},
        entry_points={"console_scripts": ["caed = caed.cli:main", "caed-keys = caed.curve:main"]},
        ext_modules=[ARITH, TEMPORAL],
    )
else:
    setup(ext_modules=[ARITH, TEMPORAL, SYNTHESIS])
