"""The test servers started on a free_port() (RTSP, MQTT, PostgreSQL) start on another where that
port was taken before they bound it: under two xdist workers the other worker's server can take it.
A command that checks its port before it refuses is given a reserved_port(), which none can take."""

from __future__ import annotations

import socket

import pytest

import tests.mosquitto
import tests.postgres
import tests.rtsp
from tests.mosquitto import Broker, Subscriber, mosquitto_available
from tests.postgres import Postgres, postgres_bin, postgres_folder
from tests.rtsp import RtspServer, free_port, make_frames, refused_port, reserved_port, rtsp_server_available

pytestmark = pytest.mark.system


@pytest.fixture()
def taken(monkeypatch):
    """Makes free_port() in `module` give a port another process listens on first, as the other
    worker's server would; then free ones. Returns the taken port's listening socket."""
    held = socket.create_server(("127.0.0.1", 0))

    def take_in(module) -> int:
        first = iter([held.getsockname()[1]])
        monkeypatch.setattr(module, "free_port", lambda: next(first, None) or free_port())
        return held.getsockname()[1]

    yield take_in
    held.close()


def test_a_broker_starts_on_another_port_where_its_port_was_taken(taken, tmp_path):
    if not mosquitto_available():
        pytest.fail("mosquitto is missing: the Makefile's mqtt-broker target installs Debian's mosquitto")
    port = taken(tests.mosquitto)
    broker = Broker(tmp_path).start()
    try:
        assert broker.port != port and broker.process.poll() is None
        Subscriber(broker.port).close()  # it is the broker that answers there
    finally:
        broker.stop()


def test_an_rtsp_server_starts_on_another_port_where_its_port_was_taken(taken, tmp_path, sample_dir):
    if not rtsp_server_available():
        pytest.fail("GStreamer's RTSP server is missing: the Makefile's rtsp target installs it")
    port = taken(tests.rtsp)
    server = RtspServer(make_frames(tmp_path / "frames", sample_dir), tmp_path / "server.log").start()
    try:
        assert server.port != port and server.url == f"rtsp://127.0.0.1:{server.port}/clip"
    finally:
        server.stop()


def test_postgresql_starts_on_another_port_where_its_port_was_taken(taken, tmp_path_factory):
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is missing: the Makefile's postgres target installs Debian's postgresql")
    from sqlalchemy import create_engine, text

    port = taken(tests.postgres)
    server = Postgres(postgres_folder(tmp_path_factory) / "server").start()
    try:
        assert server.port != port
        engine = create_engine(server.url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
    finally:
        server.stop()


def test_maskwatch_serve_starts_on_another_port_where_its_port_was_taken(taken, tmp_path):
    import httpx

    import tests.test_serve

    port = taken(tests.rtsp)  # start_on_free_port's first free_port()
    with tests.test_serve.serving([], tmp_path) as base:
        assert base != f"http://127.0.0.1:{port}" and httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    assert f"cannot listen on 127.0.0.1:{port}" not in (tmp_path / "serve.log").read_text()  # the last start's log


def test_a_site_process_starts_on_another_port_where_its_port_was_taken(taken, tmp_path, sample_dir):
    import tests.test_site
    from tests.test_detection import make_video

    port = taken(tests.rtsp)  # start_on_free_port's first free_port()
    make_video(tmp_path / "door.mp4", sample_dir, frames=3)
    site = tests.test_site.SiteProcess(tmp_path, "  door: {source: door.mp4}\n")
    try:
        assert site.port != port and site.get("/healthz").json()["site"] is True
    finally:
        site.stop()


def test_a_refused_port_refuses_connections_and_no_server_can_take_it():
    """The "nobody listens here" addresses: on a free_port() let go, the other worker's server
    could listen and answer; a refused_port() stays bound, not listening, for the worker's life."""
    port = refused_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(OSError, match="in use"):
        socket.create_server(("127.0.0.1", port))  # with SO_REUSEADDR, as the servers bind


def test_a_reserved_port_passes_maskwatchs_port_check_and_is_refused_to_a_plain_bind():
    """For a command that checks its port before it refuses: `serve` and `run` bind theirs with
    SO_REUSEADDR (servers._listen, then uvicorn), as the reserved port is held, and get it; a
    socket bound without it, as free_port()'s is, does not (nor is the port given to a bind to
    port 0 while it is held: Linux gives that one only a port no socket holds)."""
    from maskwatch.cli.servers import _listen

    with reserved_port() as port:
        for host in ("127.0.0.1", "0.0.0.0"):
            _listen(host, port, "--port").close()
        with socket.socket() as plain, pytest.raises(OSError, match="in use"):
            plain.bind(("127.0.0.1", port))


def test_a_reserved_port_does_not_keep_off_a_server_given_it_before():
    """Why serve's and run's test starts keep their retry (start_on_free_port) on top of a port no
    free_port() is given: the other worker's server, given the same port by a free_port() before it
    was reserved here, binds it with SO_REUSEADDR as ours does, and the first to listen has it."""
    import typer

    from maskwatch.cli.servers import _listen

    with reserved_port() as port:
        other = socket.create_server(("127.0.0.1", port))  # with SO_REUSEADDR, as every server binds
        try:
            with pytest.raises(typer.Exit):  # "cannot listen on 127.0.0.1:PORT", exit code 1
                _listen("127.0.0.1", port, "--port")
        finally:
            other.close()
