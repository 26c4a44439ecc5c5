"""`maskwatch serve --ray-replicas`: the same FastAPI app on Ray Serve, two replicas on a 2-CPU
local cluster, answering exactly as the app does in one process, under the same access rules
(users and sessions in a database both replicas read), their counters summed at every scrape."""

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from maskwatch.cli import LOG_CONFIG, app
from maskwatch.detection.detector import Detector
from maskwatch.scale.serving import APP_NAME, ProxyPortError, proxy_environment, serve_running, start_api, stop_api
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.request_checks import SECURE_COOKIE
from maskwatch.serving.app import ServeSettings, create_app
from tests.conftest import ADMIN, Credentials, usage_error
from tests.rtsp import lost_its_port, reserved_port, start_on_free_port

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return Credentials(tmp_path_factory.mktemp("users") / "users.db")


@pytest.fixture(scope="module")
def settings(credentials):
    served = ServeSettings(max_upload_bytes=1024 * 1024,
                           auth=AuthSettings(database=credentials.database, open_without_users=False))
    # Serve's proxy on the shared cluster (tests/conftest.py's `cluster`) was set up for the shipped settings'.
    assert proxy_environment(served) == proxy_environment(ServeSettings())
    return served


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory) -> Path:
    """The replicas' shared counters, as `serve --ray-replicas` gives a local cluster's."""
    return tmp_path_factory.mktemp("metrics")


@pytest.fixture(scope="module")
def served(cluster, settings, metrics_dir):
    """The API on Serve with 2 replicas, login required; its base URL."""
    try:
        yield _started(settings, metrics_dir)
    finally:
        stop_api()


def _started(settings: ServeSettings, metrics_dir: Path) -> str:
    """The API on Serve on a free port, its base URL; on a new port where the other xdist worker
    took it before Serve's proxy bound it (start_api then raises ProxyPortError, Serve shut down)."""
    def on(port: int) -> str | None:
        try:
            start_api(settings, replicas=2, port=port, log_config=LOG_CONFIG, metrics_dir=str(metrics_dir))
            return f"http://127.0.0.1:{port}"
        except ProxyPortError:
            return None

    return start_on_free_port(on, "Serve's proxy")


def serve_joined(tmp_path: Path):
    """`maskwatch serve` joined (--ray) to the module's cluster, in this process, on a reserved port;
    its CliRunner result. A start that goes on serving is stopped after 120 s as by SIGTERM."""
    import os
    import signal
    import threading

    stop = threading.Timer(120, os.kill, (os.getpid(), signal.SIGTERM))
    stop.start()
    try:
        with reserved_port() as port:
            return CliRunner().invoke(app, ["serve", "--ray", ray.get_runtime_context().gcs_address, "--port", str(port),
                                            "--database", str(tmp_path / "users.db")])
    finally:
        stop.cancel()


def test_a_serve_start_that_fails_leaves_no_controller(cluster, settings):
    """Serve's proxy could not bind its port: Serve's controller, a detached actor, stayed on a
    joined cluster after the command ended, and the next start took it over, old port and all.
    Before `served`: one Serve per cluster."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(ProxyPortError):
        start_api(settings, replicas=1, port=taken.getsockname()[1])
    assert not serve_running()


def test_a_proxy_not_ready_in_time_ends_the_command_in_one_line(cluster, tmp_path, monkeypatch):
    """Serve's proxy not ready in time (60 s, a busy head node): serve.start's TimeoutError went
    past `serve --ray-replicas` as a traceback. Forced with Serve's own wait, its module's constant,
    at 0 s: no proxy is ready at once. On the module's cluster, joined with --ray, before `served`."""
    import ray.serve._private.api as serve_api

    monkeypatch.setattr(serve_api, "HTTP_PROXY_TIMEOUT", 0)
    result = serve_joined(tmp_path)
    assert result.exit_code == 3, result.output  # a start that failed inside the server (docs/cli.md)
    assert "error: Ray Serve could not start the API: its HTTP proxy was not ready in time (HTTP proxies not " \
           "available after 0s.): check the load of the head node and the proxy's log there" in result.output
    assert "Traceback" not in result.output and "serving on" not in result.output
    assert not serve_running()  # Serve shut down, as after the other failures


def applications() -> dict[str, str]:
    """Serve's applications on the cluster, each with its status."""
    from ray import serve

    return {name: a.status for name, a in serve.status().applications.items()}


def test_on_a_serve_that_ran_before_only_our_application_goes(cluster, settings, tmp_path):
    """On a joined cluster whose Serve ran before `serve --ray-replicas`, its stop and a failed start
    shut Serve down: every other application there ended with ours. Ours alone goes now. Before
    `served`: Serve started by someone else, with no proxy (no port), and an application that
    scales to zero (no replica to start).
    There, another application on route "/" made the command end in a traceback (Serve's refusal,
    not a RuntimeError), and a second `serve` took the first one's application over (redeployed
    with its own settings; its stop deleted it): both are refused in a line, the others left running."""
    from ray import serve

    @serve.deployment(ray_actor_options={"num_cpus": 0},
                      autoscaling_config={"min_replicas": 0, "initial_replicas": 0, "max_replicas": 1})
    def other(request) -> str:
        return "other"

    serve.start(proxy_location="Disabled")
    try:
        serve.run(other.bind(), name="other", route_prefix="/")
        result = serve_joined(tmp_path)
        assert result.exit_code == 3, result.output  # a start that failed inside the server (docs/cli.md)
        assert result.output.strip() == 'error: Ray Serve could not start the API: Prefix / is being used by ' \
                                        'application "other". Failed to deploy application "maskwatch".'
        assert applications() == {"other": "RUNNING"}
        serve.run(other.bind(), name="other", route_prefix="/other")  # "/" for ours
        with pytest.raises(ValueError):  # a start that fails
            start_api(settings, replicas=0)
        assert applications() == {"other": "RUNNING"}
        assert start_api(settings, replicas=1) is False  # its HTTP options are the running Serve's
        ours = serve.status().applications[APP_NAME]
        assert ours.status == "RUNNING"
        second = serve_joined(tmp_path)
        assert second.exit_code == 1, second.output  # refused before serving (docs/cli.md)
        assert second.output.strip() == "error: the API is already served on this Ray cluster by another " \
            "`maskwatch serve` (Serve's application 'maskwatch'): stop that one first (if it was killed " \
            "outright, remove what it left with ray.serve.delete('maskwatch'))"
        still = serve.status().applications[APP_NAME]
        assert (still.status, still.last_deployed_time_s) == ("RUNNING", ours.last_deployed_time_s)  # not redeployed
        stop_api(shutdown=False)
        assert applications() == {"other": "RUNNING"}
    finally:
        serve.shutdown()


def test_replicas_answer_as_the_app_does_in_one_process(served, credentials, sample_dir):
    from ray import serve

    deployment = serve.status().applications["maskwatch"].deployments["maskwatch"]
    assert deployment.replica_states == {"RUNNING": 2}
    local = TestClient(create_app(Detector.load(), ServeSettings(max_upload_bytes=1024 * 1024)))
    for photo in sorted(sample_dir.glob("images/*.png"))[:3]:
        files = {"image": (photo.name, photo.read_bytes(), "image/png")}
        answer = httpx.post(f"{served}/v1/detect", files=files, headers=credentials.headers, timeout=60)
        assert answer.status_code == 200
        assert answer.json() == local.post("/v1/detect", files=files).json()
    annotated = httpx.post(f"{served}/v1/detect?annotate=1", content=photo.read_bytes(), headers=credentials.headers,
                           timeout=60)
    assert annotated.headers["content-type"] == "image/jpeg" and "X-Maskwatch-Counts" in annotated.headers


def test_refusals_pass_through_serve(served, credentials):
    auth = credentials.headers
    too_big = httpx.post(f"{served}/v1/detect", content=b"x" * (2 * 1024 * 1024), headers=auth, timeout=60)
    assert too_big.status_code == 413 and "exceeds the limit" in too_big.json()["error"]
    not_an_image = httpx.post(f"{served}/v1/detect", content=b"not an image", headers=auth, timeout=60)
    assert not_an_image.status_code == 415 and "error" in not_an_image.json()
    assert httpx.get(f"{served}/healthz", timeout=10).json()["status"] == "ok"
    assert "maskwatch_requests" in httpx.get(f"{served}/metrics", headers=auth, timeout=10).text


def test_every_scrape_counts_the_requests_of_all_replicas(served, credentials, metrics_dir):
    """A scrape was answered by the replica Serve's proxy picked, with its own counts alone: the
    counters jumped between scrapes, read by Prometheus as resets. The replicas of a local cluster
    keep theirs in one folder, as `serve --workers` do, summed at every scrape."""
    from tests.test_serve_workers import requests_counted

    auth = credentials.headers | {"Connection": "close"}
    for _ in range(12):
        assert httpx.get(f"{served}/v1/classes", headers=auth, timeout=30).status_code == 200
    for _ in range(6):
        text = httpx.get(f"{served}/metrics", headers=auth, timeout=30).text
        assert requests_counted(text, "/v1/classes") == 12, text[:2000]
    # prometheus_client's files, one per replica process that counted a request
    assert len({path.stem.split("_")[1] for path in metrics_dir.glob("counter_*.db")}) == 2


def test_replicas_share_sessions_and_refuse_without_credentials(served):
    assert httpx.get(f"{served}/v1/classes", timeout=10).status_code == 401
    login = httpx.post(f"{served}/login", json={"username": ADMIN[0], "password": ADMIN[1]},
                       headers={"X-Maskwatch-CSRF": "1"}, timeout=60)
    assert login.status_code == 200, login.text
    session = {"Cookie": f"{SECURE_COOKIE}={login.cookies[SECURE_COOKIE]}", "Connection": "close"}
    assert [httpx.get(f"{served}/v1/me", headers=session, timeout=30).status_code for _ in range(8)] == [200] * 8
    assert httpx.post(f"{served}/logout", headers=session | {"X-Maskwatch-CSRF": "1"}, timeout=30).status_code == 200
    assert [httpx.get(f"{served}/v1/me", headers=session, timeout=30).status_code for _ in range(8)] == [401] * 8


def test_replicas_warnings_reach_the_operators_log(served, capfd):
    """A failed login, a database away: warnings logged in a replica went to Serve's files in its
    session folder alone, never to the log of the process the operator started."""
    import time

    httpx.post(f"{served}/login", json={"username": "someone", "password": "a guess"},
               headers={"X-Maskwatch-CSRF": "1"}, timeout=60)
    seen = ""
    deadline = time.monotonic() + 30
    while "login failed for user (unknown name)" not in seen and time.monotonic() < deadline:
        time.sleep(0.5)
        seen += capfd.readouterr().err
    (line,) = [line for line in seen.splitlines() if "login failed for user (unknown name)" in line]
    assert " WARNING maskwatch.security.access: login failed for user (unknown name) from 127.0.0.1" in line
    assert "INFO" not in seen  # Serve's own lines stay at its warnings


def test_of_the_clusters_output_only_warnings_reach_the_operators_log(served, capfd):
    """A replica that could not start came as 340 lines of the controller's tracebacks; Serve's stop
    as a raylet's notice of a retried task."""
    from ray._private.worker import global_worker_stdstream_dispatcher

    lines = ["ERROR 2026-12-05 17:50:42,778 controller 13413 -- Exception in Replica(id='x'), the replica will be stopped.",
             "Traceback (most recent call last):", '  File "replica.py", line 1867, in initialize',
             "2026-12-05 17:50:42,774 ERROR maskwatch.scale.serving: this replica cannot start: bad.onnx: not a model",
             "ValueError: bad.onnx: not a model", "Task ServeController.graceful_shutdown failed. There are infinite retries"]
    global_worker_stdstream_dispatcher.emit({"ip": "127.0.0.1", "pid": 4242, "job": "", "is_err": True, "lines": lines,
                                             "actor_name": "ServeController", "task_name": "", "localhost": "127.0.0.1"})
    shown = capfd.readouterr().err.splitlines()
    assert len(shown) == 2 and lines[0] in shown[0] and lines[3] in shown[1]


def test_the_proxy_believes_no_forwarded_header_from_an_untrusted_client(served, credentials):
    """Serve's proxy believed X-Forwarded-For from loopback: guessed logins from invented addresses
    went past the per-client limit and into the access log."""
    from maskwatch.security.store import AuthStore

    forged = {"X-Forwarded-For": "198.51.100.7", "X-Maskwatch-CSRF": "1"}
    httpx.post(f"{served}/login", json={"username": "nobody", "password": "forged guess"}, headers=forged, timeout=60)
    store = AuthStore(str(credentials.database))
    try:
        (failed, *_) = [e for e in store.access_log() if e["action"] == "login_failed"]
    finally:
        store.close()
    assert failed["client"] == "127.0.0.1"


@pytest.mark.parametrize("args, message", [
    (["--ray-replicas", "2", "--source", "clip.mp4"], "--source runs a one-camera site in one process"),
    (["--ray-replicas", "2", "--workers", "2"], "--ray-replicas replaces --workers: give one of them; got 2 and 2"),
    (["--ray-replicas", "2", "--ray", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
])
def test_bad_serve_options_are_refused(args, message):
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 1 and message in result.output


def test_ray_replicas_out_of_range_is_a_usage_error():
    """It was exit 1, which docs/cli.md gives to bad input: as click's own, exit 2 naming the option."""
    result = CliRunner().invoke(app, ["serve", "--ray-replicas", "0"])
    assert result.exit_code == 2, result.output
    assert usage_error(result.output) == "Invalid value for '--ray-replicas': must be at least 1, got 0"


def serve_command_env() -> dict[str, str]:
    """A `maskwatch serve --ray-replicas` process's environment: this checkout's src, and Serve's
    HTTP proxy given 60 s to say it is ready (its 5 s are too short on 2 busy cores)."""
    import os

    return os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
                         "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60"}


def watching_ray_shutdown(shutdowns: Path) -> dict[str, str]:
    """serve_command_env, with each process's call of ray.shutdown written to `shutdowns`
    (tests/ray_shutdown_watch): what a stop did, where how long it took depends on the machine."""
    env = serve_command_env()
    return env | {"PYTHONPATH": f"{Path(__file__).parent / 'ray_shutdown_watch'}:{env['PYTHONPATH']}",
                  "MASKWATCH_RAY_SHUTDOWNS": str(shutdowns)}


def called_ray_shutdown(shutdowns: Path, pid: int) -> bool:
    return shutdowns.exists() and str(pid) in shutdowns.read_text().split()


@pytest.mark.parametrize(("ending", "called"), [("", True), ("ray.shutdown()\nos._exit(0)", True),
                                                 ("os._exit(0)", False)])
def test_the_ray_shutdown_watch_tells_every_call_and_shadows_no_sitecustomize(tmp_path, ending, called):
    """The stop tests' watch saw ray.shutdown called by name alone: a stop ending in Python's exit
    (sys.exit where os._exit was), whose atexit runs Ray's shutdown on the dead GCS, passed them.
    And a sitecustomize further on the path (a distribution's) did not run beside it."""
    import subprocess
    import sys

    shadowed = tmp_path / "shadowed"
    shadowed.mkdir()
    (shadowed / "sitecustomize.py").write_text(f"open({str(tmp_path / 'shadowed-ran')!r}, 'w').close()\n")
    shutdowns = tmp_path / "ray-shutdowns"
    env = watching_ray_shutdown(shutdowns)
    env["PYTHONPATH"] += f":{shadowed}"
    command = subprocess.Popen([sys.executable, "-c", f"import os\nimport ray\n{ending}"], env=env)
    assert command.wait(timeout=120) == 0
    assert called_ray_shutdown(shutdowns, command.pid) == called
    assert (tmp_path / "shadowed-ran").exists()


def test_a_port_taken_before_serves_proxy_binds_it_is_named(tmp_path):
    """Serve's proxy binds the port seconds after `serve` checked it, the local cluster started in
    between: a server started there meanwhile (the other xdist worker's, or any on a busy machine)
    made the command say "Ray Serve could not start the API: ray::ProxyActor.ready() (pid=...)"
    with exit code 3, neither the port nor why. The port is taken at that moment: once the cluster's
    first process runs (the check came before it); reserved before, so that no one takes it earlier."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    from contextlib import suppress

    from tests.test_cameras import wait_until

    with reserved_port() as port:
        server = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--ray-replicas", "1", "--port", str(port),
                                   "--database", str(tmp_path / "users.db")], env=serve_command_env(), cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        try:
            assert wait_until(lambda: server.poll() is not None or children.read_text().strip(), 120), "no cluster"
            assert server.poll() is None, server.communicate()[1]  # its check passed: the cluster starts
            with socket.create_server(("127.0.0.1", port)):  # another server, started now
                said, errors = server.communicate(timeout=300)
        finally:
            with suppress(ProcessLookupError):  # what is left of its local cluster too
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert server.returncode == 1, errors
    assert f"error: cannot listen on 127.0.0.1:{port}: Ray Serve's proxy could not bind it (another server there? " \
           "stop it, or choose another --port)" in errors, errors
    assert "serving on" not in said


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Serve's controller in /proc")
def test_a_stop_signal_while_serve_starts_stops_it_cleanly(tmp_path):
    """SIGTERM once Ray had started and before "serving on" (Serve's controller up, the replicas
    on their way: seconds) killed the command outright, exit -15: its metrics folder was left, and
    so it was by the test below where its signal came before the handlers were set. Now it stops the
    start as Ctrl-C does, sent to the process group as a service manager does, Serve's wait for its
    dead controller (30 s) cut short."""
    import os
    import signal
    import subprocess
    import sys
    from contextlib import suppress

    from ray._common.utils import get_default_system_temp_dir

    from tests.test_cameras import wait_until
    from tests.test_ray_batch import descendants

    def controller_up() -> bool:
        for pid in descendants(server.pid):
            with suppress(OSError):
                if "ServeController" in Path(f"/proc/{pid}/cmdline").read_text():
                    return True
        return False

    shutdowns = tmp_path / "ray-shutdowns"
    env = watching_ray_shutdown(shutdowns) | {"TMPDIR": str(tmp_path), "RAY_TMPDIR": get_default_system_temp_dir()}
    with reserved_port() as port:
        server = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--ray-replicas", "1", "--port", str(port),
                                   "--database", str(tmp_path / "users.db")], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert wait_until(lambda: server.poll() is not None or controller_up(), 120), "no Serve controller"
            assert server.poll() is None, server.communicate()[1]
            assert len(list(tmp_path.glob("maskwatch-metrics-*"))) == 1
            os.killpg(server.pid, signal.SIGTERM)
            said, errors = server.communicate(timeout=60)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert "serving on" not in said, "it served before the signal: the start was too quick to catch"
    assert server.returncode == 130, errors
    assert "error: stopped by Ctrl-C or SIGTERM before serving" in errors
    assert not list(tmp_path.glob("maskwatch-metrics-*"))
    # Ended without ray.shutdown beside Serve's unfinished stop, which retried the dead GCS (about a
    # second against 11 s; timed, the bound failed on a busy machine).
    assert not called_ray_shutdown(shutdowns, server.pid), errors[-2000:]


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_to_the_process_group_stops_serve_promptly(tmp_path, stop):
    """`timeout`, a service manager's stop, kill -- -PGID, a closed terminal (SIGHUP): the local
    cluster's processes share the command's process group and die with it; serve.shutdown then
    waited 30 s for the dead controller, other Ray calls 60 s for the dead GCS (40 s and more, past
    docker stop's 10). The replicas' metrics folder, in the command's TMPDIR, goes with it: SIGHUP
    killed the command outright and left it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ray._common.utils import get_default_system_temp_dir

    # TMPDIR for the metrics folder; Ray's session folder stays where it was (its sockets' paths
    # have a length limit).
    shutdowns = tmp_path / "ray-shutdowns"
    env = watching_ray_shutdown(shutdowns) | {"TMPDIR": str(tmp_path), "RAY_TMPDIR": get_default_system_temp_dir()}
    server = None

    def serving(port: int) -> bool:
        """Whether `serve` says it serves on `port`; False where it lost that port (lost_its_port)."""
        nonlocal server
        command = [sys.executable, "-m", "maskwatch", "serve", "--ray-replicas", "1", "--port", str(port),
                   "--database", str(tmp_path / "users.db")]
        server = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=open(tmp_path / "serve.log", "w"), text=True, start_new_session=True)
        if "serving on" in server.stdout.readline():
            return True
        server.wait(timeout=60)  # its output ended: so does it
        if not lost_its_port(server, (tmp_path / "serve.log").read_text()):
            pytest.fail(f"serve did not start:\n{(tmp_path / 'serve.log').read_text()}")
        return False

    try:
        # a new port where the other xdist worker took ours (free_port)
        start_on_free_port(serving, "serve --ray-replicas", log=tmp_path / "serve.log")
        assert [p.name.split("-")[2] for p in tmp_path.glob("maskwatch-metrics-*")] == [str(server.pid)]
        time.sleep(1)
        os.killpg(server.pid, getattr(signal, stop))
        server.wait(timeout=60)
        # Ended without ray.shutdown, which ran beside Serve's unfinished stop, retrying the dead GCS
        # for 8 s (about a second without it), and now and then crashed (SIGSEGV) or hung.
        assert not called_ray_shutdown(shutdowns, server.pid), (tmp_path / "serve.log").read_text()[-2000:]
        # Ended by SIGTERM after its clean stop (143 in a shell), as plain `serve` and `run` end
        # (docs/deployment.md; what systemd counts as a clean stop): it exited 0.
        assert server.returncode == -signal.SIGTERM, (server.returncode, (tmp_path / "serve.log").read_text()[-2000:])
        assert not list(tmp_path.glob("maskwatch-metrics-*"))
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
