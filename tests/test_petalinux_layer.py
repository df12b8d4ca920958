"""deploy/petalinux: oelint-adv on the recipes, and the caed recipe's fetch/unpack/compile/install
steps replayed on the staged files the way setuptools3 runs them."""
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYER = REPO / "deploy" / "petalinux"
RECIPES = sorted(LAYER.glob("recipes-*/*/*.bb"))
CAED_RECIPE = next(LAYER.glob("recipes-apps/caed/caed_*.bb"))
OELINT = Path(sys.executable).with_name("oelint-adv")
# Paths of the Yocto variables the recipe installs to (bitbake.conf defaults, usrmerge off).
YOCTO_DIRS = {"${sysconfdir}": "/etc", "${datadir}": "/usr/share", "${bindir}": "/usr/bin",
              "${systemd_system_unitdir}": "/lib/systemd/system"}

needs_oelint = pytest.mark.skipif(not OELINT.exists(), reason="oelint-adv not installed: pip install oelint-adv "
                                                               "(it is in the dev extra)")


def oelint(*files):
    # homepageping fetches every HOMEPAGE over the network, which tests do not have.
    return subprocess.run([str(OELINT), "--quiet", "--release", "langdale", "--mode", "all",
                           "--suppress", "oelint.vars.homepageping", *map(str, files)],
                          capture_output=True, text=True, timeout=300)


def recipe_value(text, name):
    """The value of NAME = "..." (continuation lines joined)."""
    m = re.search(rf'^{re.escape(name)} = "((?:[^"\\]|\\\n)*)"', text, re.M)
    assert m, f"{name} not set"
    return " ".join(m.group(1).replace("\\\n", " ").split())


@needs_oelint
def test_recipes_are_oelint_clean():
    result = oelint(*RECIPES)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@needs_oelint
def test_oelint_reports_a_recipe_without_license(tmp_path):
    broken = tmp_path / CAED_RECIPE.name
    broken.write_text(re.sub(r"^LICENSE = .*\n", "", CAED_RECIPE.read_text(), flags=re.M))
    result = oelint(broken)
    assert result.returncode != 0 and "LICENSE" in result.stderr


@pytest.fixture(scope="module")
def staged_layer(tmp_path_factory):
    """A copy of the layer whose files/ stage-files.sh filled from this checkout."""
    tmp = tmp_path_factory.mktemp("layer")
    layer = tmp / "meta-caed"
    shutil.copytree(LAYER, layer)
    stand_ins = [tmp / name for name in ("model.json", "encoder.xmodel", "dpu.xclbin")]
    for path in stand_ins:
        path.write_text(f"{path.name} stand-in")
    subprocess.run(["bash", str(layer / "stage-files.sh"), str(REPO), *map(str, stand_ins)],
                   check=True, capture_output=True, timeout=300,
                   env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    return layer


def test_stage_files_provides_everything_src_uri_names(staged_layer):
    text = CAED_RECIPE.read_text()
    pv = CAED_RECIPE.stem.split("_", 1)[1]
    names = [u[len("file://"):].replace("${PV}", pv) for u in recipe_value(text, "SRC_URI").split()]
    files = staged_layer / "recipes-apps" / "caed" / "files"
    assert sorted(names) == sorted(p.name for p in files.iterdir())
    for name in ("caed.service", "caed.toml"):
        assert (files / name).read_bytes() == (REPO / "systemd" / name).read_bytes()


def test_setuptools3_build_of_the_sdist_gives_the_caed_entry_point(staged_layer, tmp_path):
    text = CAED_RECIPE.read_text()
    pv = CAED_RECIPE.stem.split("_", 1)[1]
    with tarfile.open(staged_layer / "recipes-apps" / "caed" / "files" / f"caed-{pv}.tar.gz") as sdist:
        sdist.extractall(tmp_path, filter="data")
    source = tmp_path / recipe_value(text, "S").replace("${WORKDIR}/", "").replace("${PV}", pv)
    license_file, md5 = re.search(r"file://(\S+);md5=(\w+)", recipe_value(text, "LIC_FILES_CHKSUM")).groups()
    assert hashlib.md5((source / license_file).read_bytes()).hexdigest() == md5
    # setuptools3_do_compile: `python3 setup.py bdist_wheel --dist-dir ...` in ${S}, with the
    # recipe's exported variables in the environment
    exported = dict(re.findall(r'^export (\w+) = "([^"]*)"', text, re.M))
    assert exported == {"CAED_BOARD": "1"}
    subprocess.run([sys.executable, "setup.py", "-q", "bdist_wheel", "--dist-dir", str(tmp_path / "dist")],
                   cwd=source, check=True, capture_output=True, timeout=300,
                   env={"PATH": "/usr/bin:/bin", **exported})
    (wheel,) = (tmp_path / "dist").glob(f"caed-{pv}-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        entry_points = whl.read(f"caed-{pv}.dist-info/entry_points.txt").decode()
    scripts = re.findall(r"^(\S+) = (\S+)$", entry_points, re.M)
    assert scripts == [("caed", "caed.cli:main"), ("caed-keys", "caed.curve:main")]
    assert {"caed/cli.py", "caed/encoders/vart.py", "caed/codecs/zstd_planes.py", "caed/codecs/arith.py"} <= names
    # the arith coder's C core and the temporal encoder's block pass, compiled by the same setup.py
    # run (the recipe's cross compiler on a board)
    for module in ("_arith", "_temporal"):
        assert [n for n in names if n.startswith(f"caed/{module}.") and n.endswith(".so")], module
    installed = {n for n in names if ".dist-info/" not in n}
    assert {n.split("/")[0] for n in installed} == {"caed"}, "the board gets no host tools and no training code"
    assert not [n for n in installed if n.endswith(".onnx") or "/weights/" in n]


def test_paths_the_unit_and_config_use_are_installed_by_the_recipe():
    installed = {"/usr/bin/caed"}  # setuptools3 installs the console scripts to ${bindir}
    for src, dest in re.findall(r"install -m \d+ \$\{WORKDIR\}/(\S+) \$\{D\}(\S+)", CAED_RECIPE.read_text()):
        for var, path in YOCTO_DIRS.items():
            dest = dest.replace(var, path)
        installed.add(dest)
    unit = (REPO / "systemd" / "caed.service").read_text()
    config = (REPO / "systemd" / "caed.toml").read_text()
    referenced = {
        re.search(r"^ExecStart=(\S+)", unit, re.M).group(1),
        re.search(r"--config (\S+)", unit).group(1),
        re.search(r"XLNX_VART_FIRMWARE=(\S+)", unit).group(1),
        re.search(r'^model = "(\S+)"', config, re.M).group(1),
    }
    assert referenced <= installed, referenced - installed
    assert "/lib/systemd/system/caed.service" in installed


# Import name of each third-party runtime package the recipe can RDEPEND on.
MODULE_OF_PACKAGE = {"python3-numpy": "numpy", "python3-opencv": "cv2", "python3-pyzmq": "zmq",
                     "python3-msgpack": "msgpack", "python3-zstandard": "zstandard",
                     "python3-prometheus-client": "prometheus_client", "python3-tomli": "tomli",
                     "vart": "vart", "xir": "xir"}
BOARD_IMPORT = """
import importlib.abc, sys
allowed = set(sys.argv[1].split(","))

class BoardImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in allowed or top.startswith("_"):
            return None
        raise ImportError(f"{name} is not on the board image")

sys.meta_path.insert(0, BoardImage())
import caed.cli, caed.encoders.vart
"""


def test_daemon_imports_only_what_the_recipe_rdepends():
    rdepends = recipe_value(CAED_RECIPE.read_text(), "RDEPENDS:${PN}").split()
    allowed = {MODULE_OF_PACKAGE[p] for p in rdepends if p in MODULE_OF_PACKAGE} | {"caed"}
    result = subprocess.run([sys.executable, "-c", BOARD_IMPORT, ",".join(sorted(allowed))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_board_import_check_catches_a_missing_package():
    result = subprocess.run([sys.executable, "-c", BOARD_IMPORT, "caed"],
                            capture_output=True, text=True, timeout=120)
    assert "is not on the board image" in result.stderr
