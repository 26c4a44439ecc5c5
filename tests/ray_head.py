"""One Ray cluster for the Ray tests whose point is not a cluster's own start: `ray start --head`
on loopback, joined by test_ray_batch's and then test_ray_site's ray.init(address=...). A local
cluster took 6-20 s to start on 2 busy cores, a join about 1 s. The tests of a command's own local
cluster (its start and its stop) start theirs as before."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.rtsp import free_port, start_on_free_port


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (the Ray processes of a cluster it started), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        above = todo.pop()
        children = [child for child, parent in parents.items() if parent == above]
        found += children
        todo += children
    return found


def alive(pids) -> set[int]:
    """Those of `pids` still running (a zombie, ended but not yet reaped, is not)."""
    running = set()
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                running.add(pid)
    return running


class RayHead:
    """A 2-CPU head node, started at the first `address()`, its processes ended by `stop()`."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.temp: Path | None = None

    def address(self) -> str:
        if self.process is None:
            # Its own temp dir: `ray start` records its address there (ray_current_cluster), where
            # a plain ray.init() (test_ray_serve's) would otherwise join this cluster. Short, as
            # Ray's socket paths below it are limited to 107 characters.
            self.temp = Path(tempfile.mkdtemp(prefix="mw-ray-"))
            start_on_free_port(self._started, "ray start --head", log=self.temp / "head.log")
        return f"127.0.0.1:{self.port}"

    def _started(self, port: int) -> bool:
        """Whether the head runs with its GCS on `port`; False where it did not start (the port
        taken meanwhile)."""
        self.port = port
        ray = Path(sys.executable).with_name("ray")
        with open(self.temp / "head.log", "w") as log:
            # Token authentication off: a driver joins with a token only where RAY_AUTH_MODE=token
            # (Ray 2.60), and the head turns it on by itself where ~/.ray/auth_token exists.
            self.process = subprocess.Popen(
                [str(ray), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                 f"--ray-client-server-port={free_port()}", "--num-cpus=2", "--include-dashboard=false",
                 "--disable-usage-stats", f"--temp-dir={self.temp}", "--block"],
                stdout=log, stderr=subprocess.STDOUT,
                # and no drain at the stop: it waited 30 s for the detached actors Ray Data leaves
                env=os.environ | {"RAY_AUTH_MODE": "disabled", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            if "will now block forever" in (self.temp / "head.log").read_text(errors="replace"):  # once up
                return True
            time.sleep(0.2)
        self._end()
        return False

    def stop(self) -> None:
        if self.process is not None:
            self._end()
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = None

    def _end(self) -> None:
        """SIGTERM to `ray start --block`, which ends the cluster's processes (never `ray stop`:
        that ends every Ray process of the machine); SIGKILL to the head after 10 s, and to
        those of its processes still there 20 s on."""
        below = descendants(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        deadline = time.monotonic() + 20
        while alive(below) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in alive(below):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.process = None
