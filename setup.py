# Metadata lives in setup.cfg; this shim is for Yocto's setuptools3 class, which runs setup.py.
# The arith codec's C core is plain C99 with no flags of its own, so any target's compiler (the
# board's, through Yocto's cross environment) builds it as it is.
from setuptools import Extension, setup

setup(ext_modules=[Extension("caed._arith", sources=["daemon/csrc/arith.c", "daemon/csrc/arith_module.c"],
                             depends=["daemon/csrc/arith.h"])])
