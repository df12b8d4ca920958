"""CURVE: only viewers whose public key the board lists receive frames."""
import json
import subprocess
import sys
import time

import numpy as np

from caed.curve import main as make_keys
from caed.publisher import ZmqPublisher, is_loopback
from caed.wire import FrameDecoder, FrameEncoder
from caed_host.subscriber import Subscriber
from deploy_processes import free_port, running


def keys(tmp_path):
    board, viewers, stranger = tmp_path / "board", tmp_path / "clients", tmp_path / "stranger"
    make_keys([str(board), "board"])
    make_keys([str(tmp_path / "viewer"), "viewer"])
    make_keys([str(stranger), "stranger"])
    viewers.mkdir()
    (viewers / "viewer.key").write_text((tmp_path / "viewer" / "viewer.key").read_text())
    return board, tmp_path / "viewer", stranger, viewers


def test_only_listed_clients_receive_frames(tmp_path):
    board, viewer, stranger, clients = keys(tmp_path)
    pub = ZmqPublisher("tcp://127.0.0.1:0", sndhwm=100, curve_secret_key=str(board / "board.key_secret"),
                       curve_clients=str(clients))
    subs = {
        "authorized": Subscriber([pub.endpoint], curve_secret_key=str(viewer / "viewer.key_secret"),
                                 curve_server_key=str(board / "board.key")),
        "unknown key": Subscriber([pub.endpoint], curve_secret_key=str(stranger / "stranger.key_secret"),
                                  curve_server_key=str(board / "board.key")),
        "plain": Subscriber([pub.endpoint]),
    }
    encoder = FrameEncoder("cam0", "m", "raw")
    got = {name: 0 for name in subs}
    deadline = time.monotonic() + 5
    seq = 0
    while time.monotonic() < deadline:
        pub.send(encoder.encode(np.zeros((2, 2, 1), np.int8), picture=(16, 16), fix_point=0, seq=seq, frame_index=seq,
                                t_capture_ns=0))
        seq += 1
        for name, sub in subs.items():
            for parts in sub.receive(0.01):
                FrameDecoder().decode(parts)
                got[name] += 1
    for sub in subs.values():
        sub.close()
    pub.close()
    assert got["authorized"] > 10
    assert got["unknown key"] == 0 and got["plain"] == 0


def test_loopback_detection():
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://[::1]:5555") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://*:5555") and not is_loopback("tcp://0.0.0.0:5555")
    assert not is_loopback("tcp://192.0.2.1:5555") and not is_loopback("tcp://eth0:5555")


def test_plain_bind_to_the_network_warns(caplog):
    pub = ZmqPublisher(f"tcp://0.0.0.0:{free_port()}")
    pub.close()
    assert "UNENCRYPTED" in caplog.text


def test_daemon_and_viewer_with_curve(tmp_path):
    board, viewer, _, clients = keys(tmp_path)
    port = free_port()
    daemon = [sys.executable, "-m", "caed.cli", "--fps", "5", "--workers", "1", "--bind", f"tcp://127.0.0.1:{port}",
              "--metrics-port", "0", "--curve-secret-key", str(board / "board.key_secret"), "--curve-clients",
              str(clients)]
    with running(daemon, tmp_path / "daemon.log"):
        out = subprocess.run([sys.executable, "-m", "caed_host.cli", "--connect", f"tcp://127.0.0.1:{port}",
                              "--sink", "null", "--frames", "2", "--duration", "120", "--metrics-port", "0",
                              "--quiet", "--json", str(tmp_path / "v.json"),
                              "--curve-secret-key", str(viewer / "viewer.key_secret"),
                              "--curve-server-key", str(board / "board.key")],
                             capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "v.json").read_text())["frames_decoded"] == 2


def test_curve_settings_are_validated(tmp_path):
    r = subprocess.run([sys.executable, "-m", "caed.cli", "--curve-secret-key", str(tmp_path / "none.key_secret"),
                        "--curve-clients", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "curve_secret_key = " in r.stderr
    r = subprocess.run([sys.executable, "-m", "caed.cli", "--curve-clients", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "curve_secret_key" in r.stderr and "go together" in r.stderr
