"""`maskwatch serve --workers 2`: a scrape reaches one worker, yet its counters cover both."""

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.test_serve import free_port


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tmp")  # the server's TMPDIR: where its metrics folder goes
    port = free_port()
    log = open(tmp_path_factory.mktemp("log") / "serve.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), "--workers", "2"],
                               stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)})
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        process.kill()
        log.seek(0)
        pytest.fail(f"server did not start:\n{log.read()}")
    yield base, tmp
    process.terminate()
    process.wait(timeout=20)
    assert not list(tmp.glob("maskwatch-metrics-*")), "the metrics folder outlived the server"


def requests_counted(text: str, path: str) -> float:
    pattern = rf'^maskwatch_requests_total\{{[^}}]*path="{re.escape(path)}"[^}}]*status="200"[^}}]*\}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, flags=re.M))


def test_every_scrape_counts_the_requests_of_all_workers(two_workers):
    base, tmp = two_workers
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
