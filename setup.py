# Metadata lives in setup.cfg; this shim is for Yocto's setuptools3 class, which runs setup.py.
from setuptools import setup

setup()
