SUMMARY = "Python bindings for interfacing with the Zstandard compression library"
DESCRIPTION = "Python bindings to Zstandard, as a C extension and a CFFI \
               interface. meta-python carries this recipe only from walnascar \
               on; langdale needs it here."
AUTHOR = "Gregory Szorc"
HOMEPAGE = "https://github.com/indygreg/python-zstandard"
BUGTRACKER = "https://github.com/indygreg/python-zstandard/issues"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3ae87c50fd64b6f0942823686871e758"

DEPENDS += "python3-cffi-native"

SRC_URI[sha256sum] = "b2d8c62d08e7255f68f7a740bae85b3c9b8e5466baa9cbf7f57f1cde0ac6bc09"

inherit pypi setuptools3

RDEPENDS:${PN} += "python3-cffi"

BBCLASSEXTEND = "native nativesdk"

CVE_PRODUCT = "python:zstandard"
