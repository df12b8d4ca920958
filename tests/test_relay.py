"""caed-relay: XSUB/XPUB forwarding over real ZeroMQ on loopback, plain and with CURVE on both sides."""
import subprocess
import sys
import threading
import time
from pathlib import Path

import zmq
import zmq.auth

from caed.publisher import ZmqPublisher
from caed_host.relay import Relay, RelayConfig, RelayMetrics
from caed_host.subscriber import Subscriber
from deploy_processes import daemon_argv, free_port, running, sample_value, scrape, wait_until


def value(metrics, name):
    return metrics.registry.get_sample_value(name) or 0


class Boards:
    """Two in-process boards publishing stream cam0 / cam1 until stopped."""

    def __init__(self, **curve):
        # A context each: a context has one ZAP authenticator, and every board serves CURVE itself.
        self.contexts = [zmq.Context() for _ in range(2)]
        self.pubs = [ZmqPublisher("tcp://127.0.0.1:0", sndhwm=100, context=c, **curve) for c in self.contexts]
        self.sent = [0, 0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.stop.is_set():
            for i, pub in enumerate(self.pubs):
                pub.send([f"cam{i}/".encode(), b"header", b"%d" % self.sent[i]])
                self.sent[i] += 1
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        for pub, context in zip(self.pubs, self.contexts):
            pub.close(0)
            context.term()


def run_relay(cfg):
    metrics = RelayMetrics()
    relay = Relay(cfg, metrics, zmq.Context())
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    return relay, metrics, stop, thread


def streams_seen(sub, seen, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(seen) < 2:
        seen.update(parts[0] for parts in sub.receive(0.05))
    return seen


def test_three_viewers_see_both_boards_through_the_relay_and_each_frame_passes_once():
    with Boards() as boards:
        cfg = RelayConfig(connect=[p.endpoint for p in boards.pubs], bind="tcp://127.0.0.1:0", metrics_port=0,
                          sndhwm=1000)
        relay, metrics, stop, thread = run_relay(cfg)
        try:
            viewers = [Subscriber([relay.endpoint], rcvhwm=1000) for _ in range(3)]
            for v in viewers:
                assert streams_seen(v, set()) == {b"cam0/", b"cam1/"}
            wait_until(lambda: value(metrics, "caed_relay_subscribers") == 3, 5, "three viewers counted")
            assert value(metrics, "caed_relay_boards") == 2
            boards.stop.set()
            boards.thread.join()
            time.sleep(0.3)
            for v in viewers:
                while v.receive(0.1):
                    pass
            # Now a known number of frames: each reaches the relay once and every viewer once.
            in_before = value(metrics, "caed_relay_messages_in_total")
            for n in range(20):
                for i, pub in enumerate(boards.pubs):
                    pub.send([f"cam{i}/".encode(), b"header", b"%d" % n])
            counts = []
            for v in viewers:
                got = []
                while len(got) < 40 and (batch := v.receive(2.0)):
                    got += batch
                counts.append(len(got))
            assert value(metrics, "caed_relay_messages_in_total") - in_before == 40
            assert counts == [40, 40, 40]
            assert value(metrics, "caed_relay_messages_out_total") == value(metrics, "caed_relay_messages_in_total")
            for v in viewers:
                v.close()
            wait_until(lambda: value(metrics, "caed_relay_subscribers") == 0, 5, "viewers gone")
        finally:
            stop.set()
            thread.join()
            relay.close()


def test_curve_on_both_sides_admits_only_known_viewers(tmp_path):
    for folder, name in (("board", "board"), ("relay", "relay"), ("viewers", "laptop"), ("other", "stranger")):
        (tmp_path / folder).mkdir()
        zmq.auth.create_certificates(str(tmp_path / folder), name)
    relay_clients = tmp_path / "relay_clients"
    relay_clients.mkdir()
    (relay_clients / "relay.key").write_bytes((tmp_path / "relay" / "relay.key").read_bytes())
    board_curve = {"curve_secret_key": str(tmp_path / "board" / "board.key_secret"),
                   "curve_clients": str(relay_clients)}
    with Boards(**board_curve) as boards:
        cfg = RelayConfig(connect=[p.endpoint for p in boards.pubs], bind="tcp://127.0.0.1:0", metrics_port=0,
                          curve_secret_key=str(tmp_path / "relay" / "relay.key_secret"),
                          curve_server_key=[str(tmp_path / "board" / "board.key")],
                          curve_clients=str(tmp_path / "viewers"))
        cfg.validate()
        relay, metrics, stop, thread = run_relay(cfg)
        try:
            known = Subscriber([relay.endpoint], curve_secret_key=str(tmp_path / "viewers" / "laptop.key_secret"),
                               curve_server_key=str(tmp_path / "relay" / "relay.key"))
            stranger = Subscriber([relay.endpoint], curve_secret_key=str(tmp_path / "other" / "stranger.key_secret"),
                                  curve_server_key=str(tmp_path / "relay" / "relay.key"))
            plain = Subscriber([relay.endpoint])
            assert streams_seen(known, set()) == {b"cam0/", b"cam1/"}
            assert streams_seen(stranger, set(), 1.0) == set() and streams_seen(plain, set(), 0.5) == set()
            # (a refused viewer is counted from its TCP accept until libzmq closes it after the handshake)
            wait_until(lambda: value(metrics, "caed_relay_subscribers") == 1, 5, "only the known viewer counted")
            for s in (known, stranger, plain):
                s.close()
        finally:
            stop.set()
            thread.join()
            relay.close()


def test_relay_config_errors_name_the_key(tmp_path):
    out = subprocess.run([sys.executable, "-m", "caed_host.relay", "--connect", "tcp://127.0.0.1:1",
                          "--curve-clients", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "curve_clients" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "caed_host.relay"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "connect" in out.stderr


def test_two_daemons_three_viewers_through_a_relay_process(tmp_path):
    boards = [free_port(), free_port()]
    relay_port, relay_metrics = free_port(), free_port()
    daemons = [daemon_argv("synthetic", port, 0, "--fps", "2", "--stream", f"cam{i}")
               for i, port in enumerate(boards)]
    relay = [sys.executable, "-m", "caed_host.relay", "--bind", f"tcp://127.0.0.1:{relay_port}", "--metrics-port",
             str(relay_metrics), "--log-level", "warning"] + [a for p in boards for a in ("--connect",
                                                                                        f"tcp://127.0.0.1:{p}")]
    with running(daemons[0], tmp_path / "d0.log"), running(daemons[1], tmp_path / "d1.log"), \
            running(relay, tmp_path / "relay.log") as r:
        viewers = [subprocess.Popen([sys.executable, "-m", "caed_host.cli", "--connect",
                                     f"tcp://127.0.0.1:{relay_port}", "--sink", f"png:{tmp_path / f'v{i}'}",
                                     "--duration", "90", "--metrics-port", "0", "--quiet"],
                                    stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"v{i}.log", "wb"))
                   for i in range(3)]
        try:
            def all_see_both():
                return all({p.name[:4] for p in Path(tmp_path / f"v{i}").glob("*.png")} == {"cam0", "cam1"}
                           for i in range(3))
            wait_until(all_see_both, 90, "every viewer decoding both streams", r, tmp_path / "relay.log")
            families = scrape(relay_metrics)
            assert sample_value(families, "caed_relay_subscribers") == 3
            assert sample_value(families, "caed_relay_boards") == 2
            assert sample_value(families, "caed_relay_messages_in_total") > 0
        finally:
            for v in viewers:
                v.terminate()
                v.wait(30)
    assert all(v.returncode == 0 for v in viewers), [(tmp_path / f"v{i}.log").read_text() for i in range(3)]
