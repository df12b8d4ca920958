"""SIGHUP reloads what it can; SIGTERM drains submitted frames and exits 0 within 2 s."""
import json
import signal
import sys
import time

from deploy_processes import free_port, running, sample_value, scrape, wait_until


def test_sighup_then_sigterm(tmp_path):
    conf = tmp_path / "caed.toml"
    conf.write_text('fps = 5\nworkers = 2\nlog_level = "info"\n')
    metrics, summary = free_port(), tmp_path / "summary.json"
    argv = [sys.executable, "-m", "caed.cli", "--config", str(conf), "--bind", f"tcp://127.0.0.1:{free_port()}",
            "--metrics-port", str(metrics), "--metrics-addr", "127.0.0.1", "--json", str(summary)]
    log = tmp_path / "daemon.log"
    with running(argv, log) as daemon:
        wait_until(lambda: sample_value(scrape(metrics), "caed_frames_published_total") >= 2, 120,
                   "frames to flow", daemon, log)
        conf.write_text('fps = 5\nworkers = 3\nlog_level = "debug"\n')
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: "workers changed" in log.read_text(), 10, "the reload report", daemon, log)
        conf.write_text("workers = = 3")
        daemon.send_signal(signal.SIGHUP)
        wait_until(lambda: "keeping the running configuration" in log.read_text(), 10, "the bad reload", daemon, log)
        assert daemon.poll() is None
        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(10)
        took = time.monotonic() - t0
    text = log.read_text()
    assert "log_level is now debug" in text and "restart the service" in text
    assert rc == 0 and took < 2.0, (rc, took, text[-2000:])
    s = json.loads(summary.read_text())
    assert s["frames_published"] == s["frames_submitted"] > 0 and s["encoder_errors"] == 0
