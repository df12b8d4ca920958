# nooelint: oelint.var.mandatoryvar.HOMEPAGE,oelint.var.suggestedvar.BUGTRACKER,oelint.var.bbclassextend
# (caed has no public home page or bug tracker yet, and as a board service it
# has no native or SDK variant.)
SUMMARY = "Camera-to-network learned image compression daemon for the Zynq UltraScale+ DPU"
DESCRIPTION = "caed captures camera frames, encodes them with a convolutional \
               autoencoder on the DPU through VART and publishes the quantized \
               latents over ZeroMQ, with Prometheus metrics and systemd watchdog \
               supervision."
AUTHOR = "caed developers"
SECTION = "multimedia"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# files/ is filled by stage-files.sh in the layer's root: the sdist of the caed
# repository, the unit and default config from its systemd/ folder, the model's
# model.json (caed-export) with its compiled .xmodel (vai_c_xir), and the
# dpu.xclbin of the hardware the .xmodel was compiled for.
SRC_URI = "file://caed-${PV}.tar.gz \
           file://caed.service \
           file://caed.toml \
           file://model.json \
           file://encoder.xmodel \
           file://dpu.xclbin \
           "
S = "${WORKDIR}/caed-${PV}"

inherit setuptools3 systemd useradd

# The board's distribution only (setup.py): the caed package without the ONNX
# weights, and the console scripts caed and caed-keys; no host tools, no training.
export CAED_BOARD = "1"

USERADD_PACKAGES = "${PN}"
# render normally comes from udev (systemd); create it if the image lacks it.
GROUPADD_PARAM:${PN} = "--system render"
USERADD_PARAM:${PN} = "--system --user-group --home-dir ${localstatedir}/lib/caed --no-create-home \
                       --shell ${base_sbindir}/nologin --groups video,render caed"

SYSTEMD_SERVICE:${PN} = "caed.service"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${WORKDIR}/caed.service ${D}${systemd_system_unitdir}/caed.service
    install -d ${D}${sysconfdir}/caed
    install -m 0644 ${WORKDIR}/caed.toml ${D}${sysconfdir}/caed/caed.toml
    install -d ${D}${datadir}/caed
    install -m 0644 ${WORKDIR}/model.json ${D}${datadir}/caed/model.json
    install -m 0644 ${WORKDIR}/encoder.xmodel ${D}${datadir}/caed/encoder.xmodel
    install -m 0644 ${WORKDIR}/dpu.xclbin ${D}${datadir}/caed/dpu.xclbin
}

CONFFILES:${PN} = "${sysconfdir}/caed/caed.toml"

# The stdlib split follows python3-manifest.json (langdale): concurrent.futures is in
# python3-asyncio, dataclasses in python3-profile, ipaddress and socket in python3-io.
RDEPENDS:${PN} = "python3-asyncio \
                  python3-core \
                  python3-io \
                  python3-json \
                  python3-logging \
                  python3-msgpack \
                  python3-numpy \
                  python3-opencv \
                  python3-profile \
                  python3-prometheus-client \
                  python3-pyzmq \
                  python3-threading \
                  python3-tomli \
                  python3-zstandard \
                  vart \
                  xir \
                  "

CVE_PRODUCT = "caed"
