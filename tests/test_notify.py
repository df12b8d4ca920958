"""The daemon speaks systemd's notify protocol to a socket the test owns: READY=1 once running,
WATCHDOG=1 only while frames are published, none when the source stalls, STOPPING=1 on SIGTERM."""
import signal
import socket
import time
import uuid

import cv2
import numpy as np

from deploy_processes import daemon_argv, free_port, running, sample_value, scrape

WATCHDOG_USEC = 1_000_000  # the daemon pings every 0.5 s


def write_video(path, frames: int, fps: float):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        cv2.putText(frame, str(i), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        writer.write(frame)
    writer.release()
    return path


def notify_socket(address):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    return sock


def receive(sock, seconds: float) -> list[str]:
    """Every datagram that arrives within `seconds`."""
    out, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return out


def receive_until(sock, field: str, timeout: float, daemon, log) -> list[str]:
    """Datagrams up to and including the first that carries `field` (e.g. READY=1)."""
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and daemon.poll() is None:
        out += receive(sock, 0.5)
        if any(field in m.splitlines() for m in out):
            return out
    raise AssertionError(f"no {field} within {timeout} s (daemon {'exited' if daemon.poll() is not None else 'running'}):"
                         f" got {out}\n{log.read_text()[-3000:]}")


def count(messages, field: str) -> int:
    return sum(field in m.splitlines() for m in messages)


def test_watchdog_pings_only_while_frames_flow(tmp_path):
    video = write_video(tmp_path / "clip.avi", frames=80, fps=20)  # 4 s of frames, then EOF
    sock = notify_socket(str(tmp_path / "notify.sock"))
    metrics_port, log = free_port(), tmp_path / "caed.log"
    argv = daemon_argv(f"file:{video}", free_port(), metrics_port, "--no-loop", "--no-exit-at-eof")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    with sock, running(argv, log, env) as daemon:
        ready = receive_until(sock, "READY=1", 90, daemon, log)
        assert any(line.startswith("STATUS=") for m in ready for line in m.splitlines())

        # Frames flow: pings arrive until the file ends and a 2 s gap shows the stream stopped.
        flowing = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            batch = receive(sock, 2.0)
            flowing += batch
            if count(flowing, "WATCHDOG=1") >= 2 and count(batch, "WATCHDOG=1") == 0:
                break
        assert count(flowing, "WATCHDOG=1") >= 2, (flowing, log.read_text()[-3000:])

        # Stalled at EOF: the daemon keeps running, publishes nothing and pings nobody.
        published = sample_value(scrape(metrics_port), "caed_frames_published_total")
        stalled = receive(sock, 3.0)
        assert daemon.poll() is None, log.read_text()[-3000:]
        assert count(stalled, "WATCHDOG=1") == 0, stalled
        assert published > 0
        assert sample_value(scrape(metrics_port), "caed_frames_published_total") == published

        daemon.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", 15, daemon, log)
        assert daemon.wait(15) == 0, log.read_text()[-3000:]


def test_abstract_notify_socket(tmp_path):
    name = f"caed-test-{uuid.uuid4().hex}"
    sock = notify_socket("\0" + name)
    log = tmp_path / "caed.log"
    argv = daemon_argv("synthetic", free_port(), 0, "--fps", "10")
    with sock, running(argv, log, {"NOTIFY_SOCKET": "@" + name}) as daemon:
        receive_until(sock, "READY=1", 90, daemon, log)
        daemon.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", 15, daemon, log)
        assert daemon.wait(15) == 0, log.read_text()[-3000:]
