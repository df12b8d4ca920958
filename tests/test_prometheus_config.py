"""deploy/prometheus checked by promtool: config and rules syntax, and the alert rules' unit tests."""
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not installed: run tests/setup-system.sh (apt-get install prometheus)",
)


def promtool(*args, cwd=PROMETHEUS_DIR):
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_scrape_config_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid():
    result = promtool("check", "rules", "caed-rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_on_the_failures_they_describe():
    result = promtool("test", "rules", "caed-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_weakened_rule(tmp_path):
    for name in ("caed-rules.yml", "caed-rules.test.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    rules = tmp_path / "caed-rules.yml"
    target = "rate(caed_frames_published_total[1m]) < "
    rules.write_text(rules.read_text().replace(target + "25", target + "5"))
    result = promtool("test", "rules", "caed-rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "CaedFpsBelowTarget" in result.stdout + result.stderr
