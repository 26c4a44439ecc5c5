"""`maskwatch serve --workers 2`: a scrape reaches one worker, yet its counters cover both."""

import re
import signal

import httpx
import pytest

from tests.test_serve import TIMED_LINE, send_not_http, serving, started


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tmp")  # the server's TMPDIR: where its metrics folder goes
    log = tmp_path_factory.mktemp("log")
    server, base = started(["--workers", "2"], log / "serve.log", {"TMPDIR": str(tmp)}, tries=240)
    try:
        yield base, tmp, log / "serve.log"
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert not list(tmp.glob("maskwatch-metrics-*")), "the metrics folder outlived the server"
    # Ended by SIGTERM after the clean stop (143 in a shell), as one process ends (docs/deployment.md): it exited 0.
    assert server.returncode == -signal.SIGTERM, (server.returncode, (log / "serve.log").read_text()[-2000:])


def requests_counted(text: str, path: str) -> float:
    pattern = rf'^maskwatch_requests_total\{{[^}}]*path="{re.escape(path)}"[^}}]*status="200"[^}}]*\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, flags=re.M))


def test_every_scrape_counts_the_requests_of_all_workers(two_workers):
    base, tmp, _ = two_workers
    # New connections each time, so the kernel spreads them over both workers' accept queues.
    for _ in range(40):
        response = httpx.get(f"{base}/v1/classes", timeout=10, headers={"connection": "close"})
        assert response.status_code == 200
    for _ in range(6):
        text = httpx.get(f"{base}/metrics", timeout=10, headers={"connection": "close"}).text
        assert requests_counted(text, "/v1/classes") == 40, text[:2000]
    # The counters live in per-worker files of one fresh folder, summed at every scrape.
    (metrics_dir,) = tmp.glob("maskwatch-metrics-*")
    assert list(metrics_dir.glob("counter_*.db"))


def test_a_workers_warnings_are_timed_lines(two_workers):
    """A worker process had no log handler of ours: uvicorn's lines came in its own untimed format
    and maskwatch's own warnings bare, with neither time nor level."""
    base, _, log = two_workers
    send_not_http(base)
    assert re.search(TIMED_LINE + "uvicorn.error: Invalid HTTP request received", log.read_text(), re.M)


def test_a_workers_request_head_without_end_is_refused(two_workers):
    from tests.test_http_limits import refuses_a_head_without_end  # the protocol class reaches the workers

    refuses_a_head_without_end(two_workers[0])


def test_workers_end_with_a_parent_killed_outright_and_its_metrics_folder_goes_at_the_next_start(tmp_path):
    """SIGKILL to the parent (the OOM killer) left both workers serving the port, and the next
    `serve` could not bind it; the metrics folder stayed for good."""
    import time

    from tests.test_cameras import wait_until

    def healthy(port):
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    parent, base = started(["--workers", "2"], tmp_path / "parent.log", {"TMPDIR": str(tmp_path)}, tries=240)
    port = base.rsplit(":", 1)[1]
    assert len(list(tmp_path.glob("maskwatch-metrics-*"))) == 1
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    assert wait_until(lambda: not healthy(port), 15)  # the workers went with it
    time.sleep(1)
    with serving(["--workers", "2"], tmp_path, env={"TMPDIR": str(tmp_path)}, tries=240, stop_timeout=20):
        assert str(parent.pid) not in [p.name.split("-")[2] for p in tmp_path.glob("maskwatch-metrics-*")]
    assert not list(tmp_path.glob("maskwatch-metrics-*"))


def test_a_stop_as_the_metrics_folder_is_made_removes_it(tmp_path, monkeypatch):
    """A stop signal (KeyboardInterrupt, `serve --ray-replicas` takes SIGTERM so as it starts)
    handled inside mkdtemp, once the folder is made and before it is returned: the folder stayed,
    as the clean-up had no name to remove."""
    import tempfile

    from maskwatch.cli.serve import _shared_metrics

    make = tempfile.mkdtemp

    def interrupted(**options):
        make(**options)
        raise KeyboardInterrupt

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkdtemp", interrupted)
    with pytest.raises(KeyboardInterrupt), _shared_metrics(True):
        pass
    assert not list(tmp_path.glob("maskwatch-metrics-*"))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_ended_from_a_watchdog_thread_ends_as_a_clean_stop_its_folder_removed(tmp_path, stop):
    """`serve --ray-replicas` bounds its stop with a timer thread that ends the process as its clean
    stop would (by SIGTERM after one, else 0), its metrics folder removed: _end_by_sigterm's
    signal.signal is the main thread's alone (ValueError elsewhere, and the process went on)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import threading, time\n"
            "from maskwatch.cli.serve import _end_now, _shared_metrics\n"
            "with _shared_metrics(True):\n"
            f"    threading.Thread(target=_end_now, args=([{int(stop)}],)).start()\n"
            "    time.sleep(20)\n")
    src = str(Path(__file__).resolve().parents[1] / "src")
    ended = subprocess.run([sys.executable, "-c", code], env=os.environ | {"TMPDIR": str(tmp_path), "PYTHONPATH": src},
                           capture_output=True, text=True, timeout=60)
    assert ended.returncode == (-signal.SIGTERM if stop == signal.SIGTERM else 0), ended.stderr
    assert not list(tmp_path.glob("maskwatch-metrics-*"))
