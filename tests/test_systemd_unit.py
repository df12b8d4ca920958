"""The shipped systemd unit and sysusers entry, checked by systemd's own tools."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "caed.service"
SYSUSERS = REPO / "systemd" / "caed.sysusers"
CONFIG = REPO / "systemd" / "caed.toml"
HOST_UNITS = Path("/usr/lib/systemd/system")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir(),
    reason="systemd-analyze not installed: run tests/setup-system.sh (apt-get install systemd)",
)


def unit_settings(path):
    """(section, key) -> list of values, keeping repeated keys (configparser cannot)."""
    settings, section = {}, None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key), []).append(value)
    return settings


def caed_executable():
    exe = Path(sys.executable).with_name("caed")
    assert exe.is_file(), f"the caed console script is not installed next to {sys.executable}"
    return exe


def verify(unit_text, tmp_path):
    """Run `systemd-analyze verify` on unit_text inside a root that has the host's units
    (sysinit.target & co.), the real caed entry point at /usr/bin/caed, and the host's copy of
    any other program an Exec line runs."""
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for program in set(re.findall(r"^Exec\w+=[-@:+!]*(/\S+)", unit_text, re.M)):
        target = root / program.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(caed_executable() if Path(program).name == "caed" else program, target)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/caed.service").write_text(unit_text)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "caed.service"],
        capture_output=True, text=True, timeout=60,
    )


def test_unit_passes_systemd_analyze_verify(tmp_path):
    result = verify(UNIT.read_text(), tmp_path)
    # verify exits 0 even for unknown keys or unparsable values; it only warns.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_harness_reports_a_broken_unit(tmp_path):
    broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs=")
    result = verify(broken, tmp_path)
    assert "Unknown key 'WatchdogSecs'" in result.stderr


def test_unit_exposure_stays_in_the_ok_band():
    # --threshold is on systemd's 0..100 scale; 25 is the top of the "OK" band (2.5).
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=25", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_unit_is_a_watchdogged_notify_service_with_device_access():
    s = unit_settings(UNIT)
    service = lambda key: s.get(("Service", key), [])
    assert service("Type") == ["notify"]
    assert int(service("WatchdogSec")[0]) > 0
    assert service("Restart") == ["on-failure"]
    assert service("ExecStart")[0].split()[1:] == ["--config", "/etc/caed/caed.toml"]
    assert service("User") == ["caed"]
    assert set(service("SupplementaryGroups")[0].split()) >= {"video", "render"}
    allowed = {entry.split()[0] for entry in service("DeviceAllow")}
    assert {"char-drm", "char-video4linux"} <= allowed
    # The Vitis AI runtime's cross-process DPU lock lives in /tmp; keep it shared and writable.
    assert service("PrivateTmp") == ["no"] and "/tmp" in service("ReadWritePaths")[0].split()


def test_sysusers_entry_creates_the_units_system_user(tmp_path):
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers not installed: run tests/setup-system.sh")
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
                   check=True, capture_output=True, timeout=60)
    users = {f[0]: f for f in (line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines())}
    user = unit_settings(UNIT)[("Service", "User")][0]
    name, _, uid, _, _, _, shell = users[user]
    assert int(uid) < 1000 and shell.endswith("nologin")


def run_check(config):
    return subprocess.run([sys.executable, "-m", "caed.cli", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=120)


def test_default_config_passes_the_daemons_validation():
    result = run_check(CONFIG)
    # Exit 2 would be a configuration error; here only the DPU model cannot load (no board, no vart).
    assert result.returncode == 1, result.stderr
    assert "caed --check: FAILED" in result.stderr


def test_config_errors_exit_with_the_status_the_unit_does_not_restart_on(tmp_path):
    bad = tmp_path / "caed.toml"
    bad.write_text(CONFIG.read_text().replace("workers = 2", "workers = 0"))
    result = run_check(bad)
    no_restart = {int(s) for s in unit_settings(UNIT)[("Service", "RestartPreventExitStatus")][0].split()}
    assert result.returncode in no_restart and "workers" in result.stderr, result.stderr
