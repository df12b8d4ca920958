import json
import subprocess
import sys

import pytest

from caed import config, manifest
from caed.cli import DaemonConfig
from caed_host.cli import ViewerConfig


def load(tmp_path, argv, toml=None):
    if toml is not None:
        path = tmp_path / "c.toml"
        path.write_text(toml)
        argv = ["--config", str(path), *argv]
    return config.load(DaemonConfig, argv, "caed", "")[0]


def test_defaults_toml_then_flags(tmp_path):
    assert load(tmp_path, []).workers == 2
    cfg = load(tmp_path, ["--workers", "4", "--no-loop"], 'workers = 3\nsource = "images:/x"\nfps = 5\n')
    assert (cfg.workers, cfg.source, cfg.fps, cfg.loop) == (4, "images:/x", 5.0, False)


@pytest.mark.parametrize("toml, key", [
    ("workers = 0", "workers"),
    ('workers = "two"', "workers"),
    ('backend = "gpu"', "backend"),
    ("metrics_port = 70000", "metrics_port"),
    ('bind = "localhost:5555"', "bind"),
    ('stream = "a/b"', "stream"),
    ("loop = 1", "loop"),
    ("colour = true", "colour"),
    ("keyframe_interval = -1", "keyframe_interval"),
    ('reference = "last"', "reference"),
    ("bitrate = -5", "bitrate"),
    ("rate = 5", "rate"),
    ("rate = 1\nkeyframe_interval = 0", "rate"),
    ("rate = 1\nbitrate = 500", "rate"),
])
def test_bad_toml_value_exits_2_naming_the_key(tmp_path, capsys, toml, key):
    with pytest.raises(SystemExit) as e:
        load(tmp_path, [], toml)
    assert e.value.code == 2
    assert f"error: {key} = " in capsys.readouterr().err


def test_bad_flag_exits_2_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        load(tmp_path, ["--workers", "many"])
    assert e.value.code == 2 and "--workers" in capsys.readouterr().err


def test_unreadable_or_invalid_toml(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        load(tmp_path, ["--config", str(tmp_path / "missing.toml")])
    assert e.value.code == 2 and "missing.toml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        load(tmp_path, [], "workers = = 2")
    assert e.value.code == 2 and "not valid TOML" in capsys.readouterr().err


def test_viewer_lists_repeat_and_validate(capsys):
    cfg = config.load(ViewerConfig, ["--connect", "tcp://a:1", "--connect", "tcp://b:2"], "caed-view", "")[0]
    assert cfg.connect == ["tcp://a:1", "tcp://b:2"]
    with pytest.raises(SystemExit) as e:
        config.load(ViewerConfig, ["--connect", "a:1"], "caed-view", "")
    assert e.value.code == 2 and "connect = 'a:1'" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["caed.cli", "caed_host.cli"])
def test_help_runs(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--config" in out.stdout and "examples:" in out.stdout


def test_bad_source_and_model_exit_with_a_message_and_write_nothing(tmp_path):
    summary = tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-m", "caed.cli", "--source", "v4l3:/dev/x", "--metrics-port", "0",
                        "--json", str(summary)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "source = 'v4l3:/dev/x'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "caed.cli", "--model", str(tmp_path / "nope"), "--metrics-port", "0",
                        "--json", str(summary)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no model" in r.stderr and "Traceback" not in r.stderr
    assert not summary.exists()


def test_daemon_refuses_a_bitrate_its_headers_alone_exceed(tmp_path):
    out = subprocess.run([sys.executable, "-m", "caed.cli", "--bitrate", "5", "--fps", "30", "--frames", "1",
                          "--metrics-port", "0", "--bind", f"ipc://{tmp_path / 'caed.sock'}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "bitrate = 5: bitrate 5 kbit/s leaves nothing for the latents" in out.stderr
    assert "Traceback" not in out.stderr


def test_rate_stops_at_the_coarsest_fix_point_the_models_decoder_learnt(tmp_path):
    out = subprocess.run([sys.executable, "-m", "caed.cli", "--model", "dct8-q1", "--rate", "4", "--frames", "1",
                          "--metrics-port", "0", "--bind", f"ipc://{tmp_path / 'caed.sock'}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    model_id = manifest.find("dct8-q1").model_id
    assert f"rate = 4: model {model_id}'s latents are at fix point -1 and its decoder learnt none coarser than -4: " \
           "rate must be <= 3" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "caed.cli", "--model", "dct8-q1", "--bitrate", "400", "--check"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["frames_fix_points"] == [-1, -2, -3, -4]  # a bitrate's range: dct8-q1 to dct8-q4
