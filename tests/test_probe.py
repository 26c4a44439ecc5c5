"""`run --probe`: each part of a site tried for real against real parts (GStreamer's RTSP server
with a login, mosquitto with a password file, SQLite, PostgreSQL), one row a part, the exit code,
and nothing written anywhere: the database byte for byte as it was, no message on the broker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.database import DatabaseUnavailable
from maskwatch.site.events import MIGRATIONS, EventStore
from maskwatch.site.probe import Probe, probe_camera, probe_database, probe_mqtt
from tests.mosquitto import Broker, Subscriber, mosquitto_available
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import RtspServer, mute_server, make_frames, overlapped, refused_port, rtsp_server_available

USER, PASSWORD = "admin", "right-pass"


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The probe table's rows: part -> (result, detail)."""
    found = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 3 and cells[0] != "part":
            found[cells[0]] = (cells[1], cells[2])
    return found


def snapshot_of(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


@pytest.fixture()
def parts(tmp_path, sample_dir):
    """An RTSP camera that asks for a login and a broker with a password file."""
    if not rtsp_server_available() or not mosquitto_available():
        pytest.fail("GStreamer's RTSP server or mosquitto is missing: the Makefile's rtsp and mqtt-broker targets")
    server = RtspServer(make_frames(tmp_path / "frames", sample_dir), tmp_path / "rtsp.log",
                        auth=f"digest:{USER}:{PASSWORD}").start()
    (tmp_path / "mqtt").mkdir()
    broker = Broker(tmp_path / "mqtt", user=("site", PASSWORD)).start()
    try:
        yield server, broker
    finally:
        broker.stop()
        server.stop()


def stored_site(tmp_path: Path, cameras: str, mqtt: str) -> tuple[Path, Path]:
    """A site file and its SQLite database, made as a site makes it (its tables, closed)."""
    database = tmp_path / "db" / "site.db"
    EventStore(str(database), tmp_path / "snapshots").close()
    path = tmp_path / "site.yaml"
    path.write_text(f"cameras:\n{cameras}storage:\n  database: {database}\n  snapshots: {tmp_path / 'snapshots'}\n"
                    f"{mqtt}alerts:\n  webhooks:\n    - url: https://hooks.example.com/maskwatch\n"
                    "      secret: a-long-enough-secret-0123\n")
    return path, database


@pytest.mark.system
def test_each_part_is_said_in_a_row_and_a_failed_one_is_exit_code_1(tmp_path, parts):
    server, broker = parts
    url = server.url.replace("rtsp://", "")
    (tmp_path / "notes.mp4").write_text("not a video")
    stack = ExitStack()
    dialled = []  # the order the fake cameras were connected to and let go
    quiet_port = stack.enter_context(mute_server(dialled, "hall", answers_options=False))  # never answers
    hanging = stack.enter_context(mute_server(dialled, "lobby"))  # answers OPTIONS alone
    cameras = (f"  lobby:\n    source: rtsp://127.0.0.1:{hanging}/live\n    stall_timeout: 2\n"
               f"  door:\n    source: rtsp://{USER}:{PASSWORD}@{url}\n"
               f"  till:\n    source: rtsp://{USER}:wrong-pass@{url}\n"
               f"  yard:\n    source: rtsp://{USER}:{PASSWORD}@127.0.0.1:{refused_port()}/clip\n    stall_timeout: 3\n"
               f"  back:\n    source: {tmp_path / 'notes.mp4'}\n"
               f"  hall:\n    source: rtsp://127.0.0.1:{quiet_port}/live\n    stall_timeout: 1\n"
               f"  spare:\n    source: rtsp://{USER}:{PASSWORD}@{url}\n    enabled: false\n")
    config, database = stored_site(tmp_path, cameras, f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n"
                                                      "  username: site\n  password: not-the-password\n")
    before = snapshot_of(database.parent)
    with stack:
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])  # --check implied
    found = rows(result.output)
    assert result.exit_code == 1, result.output
    assert found["camera door"][0] == "OK" and "320x240, 5 fps reported, first frame in" in found["camera door"][1]
    assert found["camera till"] == ("FAILED", f"rtsp://{USER}:***@{url}: the camera refused the user name or "
                                              "password (401)")
    assert found["camera yard"][0] == "FAILED" and "Connection refused" in found["camera yard"][1]
    assert found["camera back"] == ("FAILED", f"{tmp_path / 'notes.mp4'}: not an image or a video that OpenCV can open")
    assert found["camera hall"] == ("FAILED", f"rtsp://127.0.0.1:{quiet_port}/live: "
                                              f"127.0.0.1:{quiet_port} does not answer")
    # Its reader's own answer, after OpenCV's open and the refusal's DESCRIBE timed out (2 s each); the
    # cameras whose open it held up were waited for, not said to send no frame.
    assert found["camera lobby"] == ("FAILED", f"rtsp://127.0.0.1:{hanging}/live: the stream did not open within "
                                               "stall_timeout (2 s), though its host answers: a slow link needs a "
                                               "longer stall_timeout (an RTSP open takes 4 round trips and a second "
                                               "of frames), or the camera hangs")
    assert found["camera spare"] == ("not probed", "enabled: false")
    assert found["database"][0] == "OK" and f"events schema {len(MIGRATIONS)}, this maskwatch's" in found["database"][1]
    assert found["mqtt"] == ("FAILED", f"127.0.0.1:{broker.port} refused the connection: Not authorized "
                                       "(check mqtt.username and mqtt.password)")
    assert found["webhooks, notify, reports"][0] == "not probed"
    assert "6 of 8 parts probed failed: camera lobby, camera till, camera yard, camera back, camera hall, mqtt" in result.output
    assert PASSWORD not in result.output and "wrong-pass" not in result.output and "not-the-password" not in result.output
    # Side by side: the hall's check came while the lobby's open hung (about 4 s), not after it
    # (one after another about 10 s). Shown by the order at the fake cameras, not by a clock that
    # a busy neighbour (the other xdist worker) could stretch past any bound.
    assert overlapped(dialled, "lobby", "hall"), f"the cameras were probed one after another: {dialled}"
    assert snapshot_of(database.parent) == before  # byte for byte, and no -wal or -shm file left


@pytest.mark.system
def test_a_site_whose_parts_all_work_is_exit_code_0_and_nothing_is_published(tmp_path, parts):
    server, broker = parts
    config, database = stored_site(tmp_path, f"  door:\n    source: rtsp://{USER}:{PASSWORD}@"
                                             f"{server.url.removeprefix('rtsp://')}\n    detect_source: "
                                             f"rtsp://{USER}:{PASSWORD}@{server.url.removeprefix('rtsp://')}\n",
                                   f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  username: site\n"
                                   f"  password: {PASSWORD}\n  discovery: true\n")
    listener = Subscriber(broker.port, "#", user=("site", PASSWORD), fence=True)
    try:
        assert listener.fenced.wait(10), "the listener was not subscribed"
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--check", "--probe"])
        assert listener.caught_up(), "the broker passed on no message after the probe's"
    finally:
        listener.close()
    found = rows(result.output)
    assert result.exit_code == 0, result.output
    assert [found[part][0] for part in ("camera door", "camera door (detect_source)", "database", "mqtt")] == ["OK"] * 4
    assert found["mqtt"][1] == f"connected to 127.0.0.1:{broker.port} as site"
    assert listener.messages == []  # no message, no retained config, no last will


def test_ctrl_c_stops_a_probe_at_once_in_one_line(tmp_path):
    """A camera that never answers held a Ctrl-C'd probe for its whole wait (23 s with stall_timeout
    20), and Typer ended it with no word."""
    def ctrl_c() -> None:  # a real SIGINT: _thread.interrupt_main wakes no thread waiting on a lock
        os.kill(os.getpid(), signal.SIGINT)

    camera = []  # its connections, "connected" and "closed", in order
    with mute_server(camera, on_open=ctrl_c) as port:  # Ctrl-C while OpenCV opens the camera
        config, _ = stored_site(tmp_path, f"  lobby:\n    source: rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/live\n"
                                          "    stall_timeout: 60\n", "")
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])
        held = [state for _, state in camera]
    assert result.exit_code == 130, result.output
    assert result.output.splitlines()[-1] == "error: probe stopped by Ctrl-C or SIGTERM; a probe writes and sends nothing"
    # Ended while OpenCV's open still held its connection (until its 60 s stall_timeout: with 20, a
    # busy make test once saw its open end and close before the command did), not after it.
    assert held.count("closed") < held.count("connected"), held


def test_the_senders_row_names_the_command_that_tests_them(tmp_path, sample_dir):
    """A site with webhooks was pointed to `report --send N` alone, which sends no alert."""
    photo = next((sample_dir / "images").glob("*.png"))
    config, _ = stored_site(tmp_path, f"  door:\n    source: {photo}\n", "")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])
    assert result.exit_code == 0, result.output
    assert rows(result.output)["webhooks, notify, reports"] == (
        "not probed", "1 receiver; a probe sends nothing (`maskwatch alerts test` sends a test alert)")


def test_a_port_that_closes_on_mqtt_is_said_at_once_not_waited_out():
    """A TLS broker's port (8883) or another service's closes the connection on MQTT's CONNECT: it
    read 'took the connection but gave no MQTT answer within 5 s', after the 5 s."""
    from maskwatch.site.config import MqttConfig

    server = socket.create_server(("127.0.0.1", 0))

    def close_on_connect() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(1024)

    threading.Thread(target=close_on_connect, daemon=True).start()
    port = server.getsockname()[1]
    with server:
        probe = probe_mqtt(MqttConfig(host="127.0.0.1", port=port, username="site", password=PASSWORD), timeout=5)
    # Said from the disconnect, which ends the wait: the 5 s waited out read "took the connection
    # but gave no MQTT answer within 5 s".
    assert (probe.ok, probe.detail) == (False, f"127.0.0.1:{port} closed the connection without an MQTT answer: not "
                                               "an MQTT broker's port, or one that wants TLS (mqtt.tls: true, usually "
                                               "port 8883)")


@contextmanager
def web_camera(status, server: str | None = None):
    """An HTTP camera on loopback answering each GET with `status(its headers)` and a Basic challenge;
    `server`: its Server header. Yields its host:port."""
    from http.server import BaseHTTPRequestHandler

    from tests.web_camera import loopback_http

    class Camera(BaseHTTPRequestHandler):
        if server is not None:
            server_version, sys_version = server, ""

        def do_GET(self) -> None:
            self.send_response(status(self.headers))
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    with loopback_http(Camera) as port:
        yield f"127.0.0.1:{port}"


def test_an_http_cameras_refusal_is_said_as_an_rtsp_cameras_is():
    """An MJPEG camera's wrong password or path read `cannot open`: only RTSP's refusal was asked for."""
    import base64

    login = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with web_camera(lambda headers: 401 if headers.get("Authorization") != login else 404) as where:
        wrong, anonymous, no_path = (probe_camera("camera door", url, 2.0).detail for url in (
            f"http://{USER}:wrong-pass@{where}/video.mjpg", f"http://{where}/video.mjpg",
            f"http://{USER}:{PASSWORD}@{where}/no-such.mjpg"))
    assert wrong == f"http://{USER}:***@{where}/video.mjpg: the camera refused the user name or password (401)"
    assert anonymous == (f"http://{where}/video.mjpg: the camera asks for a user name and password (401): "
                         "http://USER:PASSWORD@host/...")
    assert no_path == (f"http://{USER}:***@{where}/no-such.mjpg: the camera has no stream at this path (404); "
                       "see its manual for the stream's path")


def test_a_web_cameras_refusal_is_said_though_its_server_header_names_rtsp():
    """A web camera whose Server header names RTSP (its own RTSP server is on another port) had its
    wrong password said as `is an RTSP server, not a web one: did you mean rtsp://`."""
    from maskwatch.video.rtsp_probe import http_refusal

    with web_camera(lambda headers: 401, server="IPCam-RTSP/HTTP-Server/1.0") as where:
        said = http_refusal(f"http://{USER}:wrong-pass@{where}/video.mjpg", 2.0)
    assert said == "the camera refused the user name or password (401)"


@pytest.mark.system
def test_an_http_url_on_an_rtsp_port_asks_whether_rtsp_was_meant(tmp_path, sample_dir):
    """GStreamer's RTSP server answers an http:// URL's GET with 503, which was said as the camera's
    refusal (`the camera refused the stream: 503 Service Unavailable`); a server answering with an
    RTSP status line was `cannot open`."""
    from maskwatch.video.rtsp_probe import http_refusal

    if not rtsp_server_available():
        pytest.fail("GStreamer's RTSP server is missing: the Makefile's rtsp target installs it")
    server = RtspServer(make_frames(tmp_path / "frames", sample_dir), tmp_path / "rtsp.log").start()
    try:
        said = probe_camera("camera door", f"http://127.0.0.1:{server.port}/clip", 2.0).detail
    finally:
        server.stop()
    where = f"127.0.0.1:{server.port}"
    assert said == f"http://{where}/clip: {where} is an RTSP server, not a web one: did you mean rtsp:// (not http://)?"

    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_rtsp() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n")

    threading.Thread(target=answer_in_rtsp, daemon=True).start()
    where = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert http_refusal(f"http://{where}/video.mjpg", 2.0) == (
            f"{where} is an RTSP server, not a web one: did you mean rtsp:// (not http://)?")
    finally:
        listener.close()


def test_a_missing_video_file_is_said_by_name(tmp_path):
    """(The site's file refuses it first; a file gone since is said by the probe, not as `cannot open`.)"""
    probe = probe_camera("camera door", str(tmp_path / "gone.mp4"), 3.0)
    assert (probe.ok, probe.detail) == (False, f"no such video file: {tmp_path / 'gone.mp4'}")


def test_a_camera_whose_host_does_not_resolve_is_said_so():
    """It read `cannot open`, where the MQTT row of the same typo said the name does not resolve."""
    probe = probe_camera("camera door", f"rtsp://{USER}:{PASSWORD}@no-such-camera.invalid/stream1", 2.0)
    assert (probe.ok, probe.detail) == (False, f"rtsp://{USER}:***@no-such-camera.invalid/stream1: no such host "
                                               "(no-such-camera.invalid does not resolve)")


def test_an_sqlite_schema_is_read_not_upgraded_and_a_newer_one_fails(tmp_path):
    database = tmp_path / "site.db"
    EventStore(str(database)).close()
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": len(MIGRATIONS) + 1})
    engine.dispose()
    before = snapshot_of(tmp_path)
    probe = probe_database(str(database))
    assert (probe.ok, probe.detail) == (False, f"{database}: SQLite, writable; events schema version {len(MIGRATIONS) + 1} "
                                               f"is newer than this maskwatch ({len(MIGRATIONS)}); upgrade maskwatch, "
                                               "or restore the backup taken before the upgrade")
    assert snapshot_of(tmp_path) == before
    with pytest.raises(DatabaseUnavailable) as at_the_start:  # the same words as the site's start
        EventStore(str(database))
    assert str(at_the_start.value).endswith(probe.detail.removeprefix(f"{database}: SQLite, writable; "))
    assert probe_database(str(tmp_path / "new" / "site.db")).detail.endswith(f"made at the start ({tmp_path} writable)")
    assert not (tmp_path / "new").exists()
    older = tmp_path / "older.db"
    EventStore(str(older)).close()
    engine = create_engine(f"sqlite:///{older}")
    with engine.begin() as connection:  # as a database of the maskwatch before the last migration
        connection.execute(text("DELETE FROM schema_version WHERE version = :v"), {"v": len(MIGRATIONS)})
    engine.dispose()
    kept = older.read_bytes()
    probe = probe_database(str(older))
    assert probe.ok is True and f"events schema {len(MIGRATIONS) - 1}: upgraded to {len(MIGRATIONS)} at the start" in probe.detail
    assert older.read_bytes() == kept  # not upgraded by the probe
    (tmp_path / "notes.db").write_text("some notes")
    assert probe_database(str(tmp_path / "notes.db")).detail == f"{tmp_path / 'notes.db'}: not an SQLite database"


def test_a_site_beyond_loopback_with_no_user_fails_as_its_start_would(tmp_path):
    """`run` refuses 0.0.0.0 while the database holds no user, and the probe said the database OK:
    `--probe && systemctl restart maskwatch` restarted a site that would not start."""
    from maskwatch.security.store import AuthStore

    database, beyond = tmp_path / "site.db", ("0.0.0.0", "site.yaml")
    fix = "`run` refuses to serve on 0.0.0.0 without one: maskwatch users add NAME --role admin --config site.yaml"
    new = probe_database(str(database), beyond=beyond)
    assert new.ok is False and new.detail.endswith(f"made at the start ({tmp_path} writable); but no user, and {fix}")
    store = AuthStore(str(database))  # the tables made, as a refused start or `users list` leaves them
    empty = probe_database(str(database), beyond=beyond)
    assert empty.ok is False and empty.detail.endswith(fix)
    assert probe_database(str(database)).ok is True  # on loopback a site with no user is open
    store.add_user("ana", "a long password", "admin")
    store.close()
    assert probe_database(str(database), beyond=beyond) == Probe(
        "database", True, f"{database}: SQLite, writable; no events tables yet (made at the start)")


@contextmanager
def read_only(folder: Path):
    """`folder` unwritable, for root too (which chmod does not stop): chattr +i."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here, and root writes through chmod")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_sqlite_file_in_a_read_only_folder_fails(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    EventStore(str(folder / "site.db")).close()
    with read_only(folder):
        existing, new = probe_database(str(folder / "site.db")), probe_database(str(folder / "other.db"))
    assert (existing.ok, new.ok) == (False, False)
    reason = "Operation not permitted" if os.geteuid() == 0 else "Permission denied"  # chattr +i, or chmod
    assert f"its folder {folder} cannot be written ({reason};" in existing.detail
    assert new.detail == f"{folder / 'other.db'}: no database, and {folder} cannot be written to make it ({reason})"


def test_a_postgresql_server_down_is_said_in_words():
    probe = probe_database(f"postgresql+psycopg://maskwatch:secret-pw@127.0.0.1:{refused_port()}/site", timeout=3)
    assert probe.ok is False and "Connection refused" in probe.detail and "secret-pw" not in probe.detail
    assert probe.detail.startswith("postgresql+psycopg://maskwatch:***@127.0.0.1:")


def test_a_password_in_a_postgresql_urls_query_is_shown_nowhere():
    """libpq takes ?password=: SQLAlchemy's hide_password showed it as written, in the probe's row
    and in the site's own error at the start."""
    url = f"postgresql+psycopg://maskwatch@127.0.0.1:{refused_port()}/site?password=secret-pw&sslmode=disable"
    probe = probe_database(url, timeout=3)
    assert probe.ok is False and "secret-pw" not in probe.detail and "password=***" in probe.detail
    with pytest.raises(DatabaseUnavailable) as raised:
        EventStore(url)
    assert "secret-pw" not in str(raised.value) and "password=***&sslmode=disable" in str(raised.value)
    typo = probe_database("postgresql+psycopj://maskwatch:secret-pw@127.0.0.1/site")
    assert typo.ok is False and typo.detail.startswith("postgresql+psycopj://maskwatch:***@127.0.0.1/site: not a "
                                                       "database URL this install can open")


def test_postgresql_is_logged_in_to_and_no_table_is_made(postgres):  # noqa: F811
    probe = probe_database(postgres.url)
    assert probe.ok is True and "logged in as" in probe.detail and "no events tables yet" in probe.detail
    missing = probe_database(postgres.url.rsplit("/", 1)[0] + "/nosuch")
    assert missing.ok is False and 'database "nosuch" does not exist' in missing.detail
    engine = create_engine(postgres.url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).get_table_names() == []  # the probe made nothing
        EventStore(postgres.url).close()
        assert f"events schema {len(MIGRATIONS)}, this maskwatch's" in probe_database(postgres.url).detail
    finally:
        with engine.begin() as connection:  # the module's server, left empty for the next test
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}" CASCADE'))
        engine.dispose()


def test_a_postgresql_user_that_may_not_create_the_tables_fails(postgres):  # noqa: F811
    """PostgreSQL 15 and later let only public's owner create in it: a user made for the site logged
    in, the probe said OK, and the site's start failed on "permission denied for schema public"."""
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    url = postgres.url.replace(f"//{postgres.user}@", "//site_user@")
    try:
        with admin.connect() as connection:
            connection.execute(text("CREATE ROLE site_user LOGIN"))
        probe = probe_database(url)
        assert probe.ok is False and probe.detail.endswith(
            "logged in as site_user; no events tables yet (made at the start), but site_user may not create tables "
            "in schema public (PostgreSQL 15 and later let only its owner): GRANT CREATE ON SCHEMA public TO "
            "site_user, or make site_user the database's owner"), probe.detail
        with admin.connect() as connection:
            connection.execute(text("GRANT CREATE ON SCHEMA public TO site_user"))
        assert probe_database(url).ok is True  # as the advice says
    finally:
        with admin.connect() as connection:
            connection.execute(text("DROP OWNED BY site_user"))
            connection.execute(text("DROP ROLE site_user"))
        admin.dispose()


def test_a_postgresql_user_that_may_not_make_a_new_store_s_tables_fails_though_the_events_are_there(postgres):  # noqa: F811
    """The events' tables made by the database's owner, the site's own user reading and writing
    them: a site given MQTT or reports later makes their tables at its start, which that user may
    not (PostgreSQL 15). The probe asked for CREATE only where the events' tables were to be made,
    said OK, and the start failed on "permission denied for schema public"."""
    from types import SimpleNamespace

    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    url = postgres.url.replace(f"//{postgres.user}@", "//site_user@")
    try:
        EventStore(postgres.url).close()
        with admin.connect() as connection:
            connection.execute(text("CREATE ROLE site_user LOGIN"))
            connection.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO site_user"))
        probe = probe_database(url, site=SimpleNamespace(reports=[], mqtt=object()))
        assert probe.ok is False and probe.detail.endswith(
            f"logged in as site_user; events schema {len(MIGRATIONS)}, this maskwatch's; no mqtt tables yet (made at "
            "the start), but site_user may not create tables in schema public (PostgreSQL 15 and later let only its "
            "owner): GRANT CREATE ON SCHEMA public TO site_user, or make site_user the database's owner"), probe.detail
        # a site with neither makes no table: the start opens the events' alone
        assert probe_database(url, site=SimpleNamespace(reports=[], mqtt=None)).ok is True
    finally:
        with admin.connect() as connection:
            connection.execute(text("DROP OWNED BY site_user"))
            connection.execute(text("DROP ROLE site_user"))
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}" CASCADE'))
        admin.dispose()


def test_a_postgresql_user_that_does_not_own_the_tables_to_upgrade_fails(postgres):  # noqa: F811
    """An upgrade alters a store's tables (version 5's indexes on events and counts), which
    PostgreSQL lets only their owner: tables the database's owner made, the site's user granted
    their rows and CREATE in public, were OK to the probe ("events schema 4: upgraded to 5 at the
    start") and the start failed on "must be owner of table"."""
    from types import SimpleNamespace

    from maskwatch.site.database import DatabaseUnavailable

    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    url = postgres.url.replace(f"//{postgres.user}@", "//site_user@")
    older = 4  # version 5 remakes the indexes (an ALTER); 6 changes nothing on PostgreSQL, 7 adds tables, 8 columns
    try:
        EventStore(postgres.url).close()
        with admin.connect() as connection:
            connection.execute(text(f"UPDATE schema_version SET version = {older}"))  # as a site of last month:
            connection.execute(text("DROP INDEX events_by_last_seen_id"))  # its indexes not yet ending in id
            connection.execute(text("DROP TABLE alerts, alerts_kept_since"))  # nor its alerts (version 7)
            connection.execute(text("CREATE ROLE site_user LOGIN"))
            connection.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO site_user"))
            connection.execute(text("GRANT CREATE ON SCHEMA public TO site_user"))
        probe = probe_database(url, site=SimpleNamespace(reports=[], mqtt=None))
        assert probe.ok is False and probe.detail.endswith(
            f"logged in as site_user; events schema {older}: upgraded to {len(MIGRATIONS)} at the start (older "
            "maskwatch then no longer opens it; `maskwatch backup` first), but site_user does not own counts, "
            f"counts_by_quarter, events, schema_version (owned by {postgres.user}), which the events schema's upgrade "
            f"alters (PostgreSQL lets only a table's owner): start the site once as {postgres.user}, or ALTER TABLE "
            "... OWNER TO site_user for each"), probe.detail
        with pytest.raises(DatabaseUnavailable, match="must be owner of table"):  # as the start would
            EventStore(url).close()
        with admin.connect() as connection:
            for name in ("counts", "counts_by_quarter", "events", "schema_version"):
                connection.execute(text(f"ALTER TABLE {name} OWNER TO site_user"))
        assert probe_database(url, site=SimpleNamespace(reports=[], mqtt=None)).ok is True  # as the advice says
        EventStore(url).close()
    finally:
        with admin.connect() as connection:
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}" CASCADE'))
            connection.execute(text("DROP OWNED BY site_user"))
            connection.execute(text("DROP ROLE site_user"))
        admin.dispose()


def test_a_postgresql_user_that_does_not_own_the_counts_fails_to_upgrade_events_of_version_7(postgres):  # noqa: F811
    """Version 7 only adds tables (the alerts'), but version 8 adds the counts' infrared column, an
    ALTER that PostgreSQL lets their owner alone do: the site's user granted the rows and CREATE in
    public was OK to the probe on a database of version 7 ("upgraded to 8 at the start", the rule
    stopping at version 5) and its start failed on "must be owner of table counts"."""
    from types import SimpleNamespace

    from maskwatch.site.database import DatabaseUnavailable

    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    url = postgres.url.replace(f"//{postgres.user}@", "//site_user@")
    try:
        EventStore(postgres.url).close()
        with admin.connect() as connection:  # as version 7 left it, its tables the database owner's
            connection.execute(text("DELETE FROM schema_version WHERE version = 8"))
            for name in ("counts", "counts_by_quarter", "events"):
                connection.execute(text(f"ALTER TABLE {name} DROP COLUMN infrared"))
            connection.execute(text("ALTER TABLE alerts DROP COLUMN infrared, DROP COLUMN seen"))
            connection.execute(text("CREATE ROLE site_user LOGIN"))
            connection.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO site_user"))
            connection.execute(text("GRANT CREATE ON SCHEMA public TO site_user"))
        probe = probe_database(url, site=SimpleNamespace(reports=[], mqtt=None))
        assert probe.ok is False and probe.detail.endswith(
            f"events schema 7: upgraded to {len(MIGRATIONS)} at the start (older maskwatch then no longer opens it; "
            "`maskwatch backup` first), but site_user does not own alerts, counts, counts_by_quarter, events "
            f"(owned by {postgres.user}), which the events schema's upgrade alters (PostgreSQL lets only a table's "
            f"owner): start the site once as {postgres.user}, or ALTER TABLE ... OWNER TO site_user for each"), \
            probe.detail
        with pytest.raises(DatabaseUnavailable, match="must be owner of table counts"):  # as the start would
            EventStore(url).close()
        with admin.connect() as connection:
            for name in ("counts", "counts_by_quarter", "alerts", "events"):  # those version 8 alters, as the probe named
                connection.execute(text(f"ALTER TABLE {name} OWNER TO site_user"))
        # OK now, as the start will be: it said FAILED, naming schema_version, which no upgrade from
        # version 5 on alters (the advice's ALTER ... OWNER of it too was needless)
        assert probe_database(url, site=SimpleNamespace(reports=[], mqtt=None)).ok is True
        EventStore(url).close()  # as the start does: upgraded
        assert probe_database(url, site=SimpleNamespace(reports=[], mqtt=None)).detail.endswith(
            f"events schema {len(MIGRATIONS)}, this maskwatch's")
    finally:
        with admin.connect() as connection:
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}" CASCADE'))
            connection.execute(text("DROP OWNED BY site_user"))
            connection.execute(text("DROP ROLE site_user"))
        admin.dispose()


def test_the_sqlite_file_of_a_running_site_is_read_through_its_wal(tmp_path):
    store = EventStore(str(tmp_path / "site.db"))  # open, as a running site holds it: its -wal is there
    try:
        with store.engine.connect() as connection:  # a connection held, as the site's pool holds one
            names = sorted(path.name for path in tmp_path.iterdir())
            database = (tmp_path / "site.db").read_bytes()
            probe = probe_database(str(tmp_path / "site.db"))
            assert sorted(path.name for path in tmp_path.iterdir()) == names
            assert (tmp_path / "site.db").read_bytes() == database
            connection.rollback()
    finally:
        store.close()
    assert probe.ok is True and f"events schema {len(MIGRATIONS)}, this maskwatch's" in probe.detail
    assert "site.db-wal" in names


def test_a_postgresql_user_that_may_not_create_a_table_new_to_this_release_fails_though_the_version_is_current(
        postgres):  # noqa: F811
    """A table made at every open, no version listing it (the users' daily_notices, new this release):
    a site whose user was granted its tables' rows alone (no CREATE in public, PostgreSQL 15) ran on
    the last release; after the upgrade `run --probe` said "auth schema 7, this maskwatch's" OK, as
    the version had not changed, and the start failed on "permission denied for schema public"."""
    from types import SimpleNamespace

    from maskwatch.security.schema import MIGRATIONS as AUTH_MIGRATIONS, auth_schema_version, metadata
    from maskwatch.security.store import AuthStore
    from maskwatch.site.probe import StoreSchema

    # the users' store as `run --probe` reads it
    auth = StoreSchema("auth schema", auth_schema_version.name, len(AUTH_MIGRATIONS), tuple(metadata.tables))
    site = SimpleNamespace(reports=[], mqtt=None)  # a site of events and users alone

    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    url = postgres.url.replace(f"//{postgres.user}@", "//site_user@")
    try:
        EventStore(postgres.url).close()
        AuthStore(postgres.url).close()
        with admin.connect() as connection:
            connection.execute(text("DROP TABLE daily_notices"))  # as the last release left the database
            connection.execute(text("CREATE ROLE site_user LOGIN"))
            connection.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO site_user"))
            connection.execute(text("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO site_user"))
        probe = probe_database(url, schemas=(auth,), site=site)
        assert probe.ok is False and "the start makes daily_notices, and site_user may not create tables in schema " \
            "public (PostgreSQL 15 and later let only its owner): GRANT CREATE ON SCHEMA public TO site_user" \
            in probe.detail, probe.detail
        with pytest.raises(DatabaseUnavailable, match="permission denied for schema public"):  # as the start would
            AuthStore(url).close()
        with admin.connect() as connection:
            connection.execute(text("GRANT CREATE ON SCHEMA public TO site_user"))
        assert probe_database(url, schemas=(auth,), site=site).ok is True  # as the advice says
        AuthStore(url).close()
    finally:
        with admin.connect() as connection:
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}" CASCADE'))
            connection.execute(text("DROP OWNED BY site_user"))
            connection.execute(text("DROP ROLE site_user"))
        admin.dispose()
