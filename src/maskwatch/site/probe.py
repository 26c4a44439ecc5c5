"""`run --check --probe`: each part of a site tried for real, once, and said in one line each.

A site manager who set up many cameras (or changed a password) learnt what was wrong only by
starting the site and reading its log. A probe opens each enabled camera with the reader and
timeouts the site uses (its `detect_source` too), reads one frame, logs in to the database and the
MQTT broker, and says per part what it found or what is wrong. It changes nothing anywhere: the
database is only read (no table made, no schema upgraded, no -wal file left beside an SQLite file),
MQTT gets no message (no last will either), webhooks and notify services are sent nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from maskwatch.atomic import cannot_write_in
from maskwatch.video.sources import host_port, missing_video_file, redact_source

PARALLEL_CAMERAS = 16  # cameras probed at once: 16 dead ones take one timeout, not 16
NETWORK_TIMEOUT = 5.0  # seconds for the database's and the broker's connection and answer


class StoreSchema(NamedTuple):
    """A store whose schema the probe reads: its name in words ("events schema"), its version
    table, this maskwatch's version, its tables (the ones an upgrade may alter), and the newest
    version whose upgrade alters tables already there (None: any may): an upgrade from it on
    only makes tables, which PostgreSQL allows a user who does not own the others; and where
    the later upgrades alter fewer, from which version which tables alone."""

    what: str
    version_table: str
    known: int
    tables: tuple[str, ...]
    alters_until: int | None = None
    later_alters: tuple[int, tuple[str, ...]] | None = None  # (from version, the only tables altered from it on)

    def altered(self, version: int) -> tuple[str, ...]:
        """The tables an upgrade from `version` alters."""
        if self.later_alters is not None and version >= self.later_alters[0]:
            return self.later_alters[1]
        return self.tables


@dataclass(frozen=True)
class Probe:
    """One part's result: ok True (it works), False (it does not), None (not probed)."""

    part: str
    ok: bool | None
    detail: str


def probe_site(site, timeout: float = NETWORK_TIMEOUT, needs_user: tuple[str, str] | None = None,
               schemas: tuple[StoreSchema, ...] = ()) -> list[Probe]:
    """Every part of a loaded SiteConfig, probed side by side: its cameras (and substreams) in the
    config's order, the disabled ones as not probed, the database (with a user in it where
    `needs_user`, (host, config file), says the server listens beyond loopback, as `run`
    requires; `schemas` the stores above this layer, as site_schemas gives its own), MQTT,
    then the senders as not probed (a probe sends nothing). Each part is tried on a daemon thread: a Ctrl-C (the
    KeyboardInterrupt raised here) stops the probe at once, where a pool's threads held it until a
    camera that never answers had used up its wait (a minute for one with stall_timeout 20)."""
    jobs = []
    for camera_id, camera in site.cameras.items():
        jobs.append((camera_id, camera.source, camera))
        if camera.detect_source:
            jobs.append((f"{camera_id} (detect_source)", camera.detect_source, camera))
    quiet = _Quiet()  # the readers' "retrying" warnings: the table says each camera's problem once
    camera_log = logging.getLogger("maskwatch.video.cameras")
    camera_log.addFilter(quiet)
    stopping = threading.Event()
    try:
        # The database and the broker on their own threads: not queued behind a 17th camera.
        database = _in_background(probe_database, site.storage.database, timeout, needs_user, schemas, site)
        mqtt = _in_background(probe_mqtt, site.mqtt, timeout) if site.mqtt is not None else None
        # OpenCV opens one stream at a time: a camera that takes the connection and then never
        # answers holds every other camera's open for its stall_timeout (video/cameras.py's
        # _unreachable), so each waits for its reader's own answer up to all of them.
        held = sum(camera.stall_timeout for _, _, camera in jobs)
        at_once = threading.BoundedSemaphore(PARALLEL_CAMERAS)

        def one_camera(part: str, source: str, camera) -> Probe:
            with at_once:
                return probe_camera(f"camera {part}", source, camera.stall_timeout,
                                    wait=held + 2 * camera.stall_timeout + 10, stopping=stopping)

        cameras = [_in_background(one_camera, *job) for job in jobs]
        probes = [future.result() for future in cameras]
        probes += [Probe(f"camera {camera_id}", None, "enabled: false") for camera_id in site.disabled_cameras]
        probes.append(database.result())
        if mqtt is not None:
            probes.append(mqtt.result())
    finally:
        stopping.set()  # after a Ctrl-C: the cameras still waiting stop their readers and end
        camera_log.removeFilter(quiet)
    alerts = len(site.alerts.webhooks) + sum(len(target.urls) for target in site.alerts.notify)
    senders = alerts + sum(len(report.urls) for report in site.reports)
    if senders:  # the commands that do send, once, for a test: where alerts were set, the report's alone misled
        tests = ["`maskwatch alerts test` sends a test alert"] * bool(alerts) + \
                ["`maskwatch report --send N` sends a report once"] * bool(site.reports)
        probes.append(Probe("webhooks, notify, reports", None,
                            f"{senders} receiver{'s' * (senders != 1)}; a probe sends nothing ({', '.join(tests)})"))
    return probes


def _in_background(function, *args) -> Future:
    """function(*args) on a daemon thread, its result (or exception) in the Future: nothing joins
    it at the exit, so a stopped probe does not wait for a part that is still trying."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as err:  # noqa: BLE001  handed to the caller, which raises it
            future.set_exception(err)

    threading.Thread(target=run, name=f"maskwatch-probe-{function.__name__}", daemon=True).start()
    return future


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def probe_camera(part: str, source: str, stall_timeout: float, wait: float | None = None,
                 stopping: threading.Event | None = None) -> Probe:
    """One frame of `source` by the site's CameraReader with its `stall_timeout`: its size, the
    frame rate the stream reports and the seconds to it; or the reader's first error (the camera's
    own refusal, a host that takes no connection, a stream that sent nothing) at once, without its
    retries: each try with a wrong password is a failed login, and cameras lock a user out after a
    few. The reader's first try ends by its own timeouts (the host's check and the refusal's 5 s at
    most, OpenCV's open and reads stall_timeout); `wait` (default: their sum and a second) only
    guards against one that would not, and covers other cameras' opens holding this one's up;
    `stopping` set (a Ctrl-C) ends the wait at once."""
    from maskwatch.video.cameras import CameraReader

    if gone := missing_video_file(source):
        return Probe(part, False, gone)
    wait = 2 * stall_timeout + min(5.0, stall_timeout) * 2 + 1 if wait is None else wait
    stopping = stopping or threading.Event()
    reader = CameraReader(source, stall_timeout=stall_timeout, name=part, decode_on_request=True)
    started = time.monotonic()
    reader.request()
    reader.start()
    try:
        while True:
            sequence, image = reader.latest()
            if sequence > 0:
                break
            state = reader.state()
            if state.reconnects > 0:  # its first try failed; the reader would wait, then retry
                why = (state.last_error or "cannot open").split("; retrying")[0]
                return Probe(part, False, f"{redact_source(source)}: {why}")
            if time.monotonic() - started >= wait:
                return Probe(part, False, f"{redact_source(source)}: no frame or error from the reader "
                                          f"in {wait:g} s")
            if stopping.wait(0.02):
                return Probe(part, None, "stopped before an answer")
        seconds = time.monotonic() - started
        if source.lower().startswith(("http://", "https://")):
            # A snapshot URL or an MJPEG stream: its second frame, or its end, tells (a snapshot URL's
            # picture was said as a stream of FFmpeg's default 25 fps).
            deadline = time.monotonic() + stall_timeout
            while not (reader.snapshot or reader.state().frames > 1 or reader.state().reconnects
                       or time.monotonic() >= deadline or stopping.wait(0.02)):
                pass
        fps = ("a snapshot URL, one picture per request: asked at the camera's fps" if reader.snapshot
               else f"{reader.stream_fps:g} fps reported" if reader.stream_fps else "no frame rate reported")
        return Probe(part, True, f"{redact_source(source)}: {image.shape[1]}x{image.shape[0]}, {fps}, "
                                 f"first frame in {seconds:.1f} s")
    finally:
        reader.stop(timeout=1.0)  # one still in OpenCV's open ends with it (a daemon thread)


def probe_database(database: str, timeout: float = NETWORK_TIMEOUT, beyond: tuple[str, str] | None = None,
                   schemas: tuple[StoreSchema, ...] = (), site=None) -> Probe:
    """The site's database, read only: an SQLite file readable and writable (or a folder it can
    be made in), a server reached and logged in to; each store's schema version (site_schemas,
    then `schemas`) against this maskwatch's (a newer one is refused at the start, an older one
    upgraded). `beyond`: (host, config) of a server listening beyond loopback, which `run` refuses
    to start while the database holds no user: the probe said OK, and `--probe && systemctl
    restart` restarted a site that then would not start. `site`: the SiteConfig, whose reports
    and MQTT say which of their stores the start opens (None: all)."""
    from maskwatch.site.database import database_url

    url = database_url(database)
    stores = [*site_schemas(site), *schemas]
    if url.startswith("sqlite:///"):
        probe, users = _probe_sqlite(Path(url.removeprefix("sqlite:///")), stores)
    elif url.startswith("sqlite"):
        return Probe("database", True, f"{url}: in memory, nothing to reach")
    else:
        probe, users = _probe_server(url, timeout, stores)
    if beyond is None or not probe.ok or users:
        return probe
    host, config = beyond
    return Probe("database", False, f"{probe.detail}; but no user, and `run` refuses to serve on {host} without one: "
                                    f"maskwatch users add NAME --role admin --config {config}")


def site_schemas(site=None) -> list[StoreSchema]:
    """The site layer's stores the start of `site` (a SiteConfig; None: any) opens, events first,
    as (what, its version table, this maskwatch's version): the reports' and MQTT's only where it
    has them, as the start makes them (the start neither upgrades nor refuses them otherwise). The
    layers above add theirs (the users' `auth schema`) through probe_site."""
    from maskwatch.site import events, mqtt_record, reports

    return [StoreSchema("events schema", events.schema_version.name, len(events.MIGRATIONS),
                        tuple(events.metadata.tables), events.ALTERS_TABLES_UNTIL, events.LATER_ALTERS)] + [
        store for store, opened in (
            (StoreSchema("reports schema", reports.reports_schema_version.name, len(reports.MIGRATIONS),
                         tuple(reports.metadata.tables)), site is None or bool(site.reports)),
            (StoreSchema("mqtt schema", mqtt_record.mqtt_schema_version.name, len(mqtt_record.MIGRATIONS),
                         tuple(mqtt_record.metadata.tables)), site is None or site.mqtt is not None)) if opened]


def _schema(found: list[tuple[StoreSchema, int | None]]) -> tuple[bool, str]:
    """Whether the site can start on the stores' schemas, `found` as (store, its version or None:
    no tables yet), events first, and its words: the start upgrades each older one (the events'
    alone was said: a database whose users' schema the start upgraded, or refused as newer, was
    OK and said nothing of it)."""
    from maskwatch.site.database import newer_schema_words

    for store, version in found:
        if version is not None and version > store.known:  # what the start would refuse it with
            return False, newer_schema_words(store.what, version, store.known)
    events_store, events = found[0]
    said = []
    if events is None:
        said.append("no events tables yet (made at the start)")
    elif events == events_store.known:
        said.append(f"events schema {events}, this maskwatch's")
    if events is not None and (new := [store.what.removesuffix(" schema") for store, version in found
                                       if version is None]):
        said.append(f"no {', '.join(new)} tables yet (made at the start)")
    upgraded = [f"{store.what} {version}: upgraded to {store.known} at the start" for store, version in found
                if version is not None and version < store.known]
    if upgraded:
        said.append(f"{', '.join(upgraded)} (older maskwatch then no longer opens it; `maskwatch backup` first)")
    return True, "; ".join(said)


def _probe_sqlite(path: Path, schemas: list[StoreSchema]) -> tuple[Probe, int]:
    """The probe of an SQLite file, and the users it holds."""
    if not path.exists():
        folder = next((parent for parent in path.parents if parent.exists()), Path("/"))
        reason = cannot_write_in(folder) if folder.is_dir() else "not a folder"
        if reason:
            return Probe("database", False, f"{path}: no database, and {folder} cannot be written to make it "
                                            f"({reason})"), 0
        return Probe("database", True, f"{path}: no database yet, made at the start ({folder} writable)"), 0
    if reason := cannot_write_in(path.parent):
        return Probe("database", False, f"{path}: its folder {path.parent} cannot be written ({reason}; SQLite keeps "
                                        "its -wal and -shm files beside the database)"), 0
    if not os.access(path, os.R_OK | os.W_OK):
        return Probe("database", False, f"{path}: not readable and writable by this user"), 0
    try:
        with open(path, "rb") as file:
            header = file.read(16)
    except OSError as err:
        return Probe("database", False, f"{path}: {err.strerror or err}"), 0
    if header and header != b"SQLite format 3\x00":
        return Probe("database", False, f"{path}: not an SQLite database"), 0
    from sqlalchemy.exc import SQLAlchemyError

    from maskwatch.site.database import driver_reason, read_only_engine

    engine = read_only_engine(path, NETWORK_TIMEOUT)  # read only, leaving no file behind
    try:
        found, _, _, users = _read_schema(engine, schemas)
    except SQLAlchemyError as err:
        return Probe("database", False, f"{path}: cannot read it: {driver_reason(err)}"), 0
    finally:
        engine.dispose()
    ok, said = _schema(found)
    return Probe("database", ok, f"{path}: SQLite, writable; {said}"), users


def _probe_server(url: str, timeout: float, schemas: list[StoreSchema]) -> tuple[Probe, int]:
    """The probe of a database server, and the users it holds."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from maskwatch.site.database import driver_reason, shown_database_url

    shown = shown_database_url(url)
    postgres = make_url(url).get_backend_name() == "postgresql"
    try:
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True,
                               connect_args={"connect_timeout": max(1, round(timeout))} if postgres else {})
    except (ArgumentError, ImportError) as err:
        return Probe("database", False, f"{shown}: not a database URL this install can open: {err}"), 0
    try:
        found, server, refused, users = _read_schema(engine, schemas)
    except SQLAlchemyError as err:
        return Probe("database", False, f"{shown}: {driver_reason(err)}"), 0
    finally:
        engine.dispose()
    ok, said = _schema(found)
    user = make_url(url).username
    name = f"{engine.dialect.name} {server}".strip()
    if refused:
        return Probe("database", False, f"{shown}: {name}, logged in{f' as {user}' if user else ''}; {said}, but {refused}"), 0
    return Probe("database", ok, f"{shown}: {name}, logged in{f' as {user}' if user else ''}; {said}"), users


def _read_schema(engine, schemas: list[StoreSchema]) -> tuple[list, str, str | None, int]:
    """Each of `schemas` with its version in the database (None: no tables yet), the server's
    version, on PostgreSQL why its user could not make or upgrade a store's tables (None: it can),
    and the users; read in one transaction, rolled back, that writes nothing."""
    from sqlalchemy import column, func, inspect, select, table

    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if postgres:  # nothing this transaction does can write, whatever the code below becomes
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        found = []
        for store in schemas:
            version = None
            if inspect(connection).has_table(store.version_table):
                version = connection.execute(select(func.max(column("version")))
                                             .select_from(table(store.version_table))).scalar() or 0
            found.append((store, version))
        server = ".".join(str(part) for part in (connection.dialect.server_version_info or ())[:2])
        # Any store's tables to make or upgrade, not the events' alone: a site given MQTT or reports
        # later, its events' tables there, was OK and its start failed on "permission denied".
        to_make = any(version is None or version < store.known for store, version in found)
        # A store at its version may still miss a table its start makes at every open, no version
        # listing it (the users' daily_notices, new in a release that kept auth schema 7): the
        # probe said OK and the start failed on "permission denied for schema public".
        there = set(inspect(connection).get_table_names())
        missing = sorted({table for store, version in found if version is not None for table in store.tables} - there)
        # Those whose upgrade alters their tables: up to the store's alters_until (the events' 8, the
        # infrared columns of its counts and alerts; its 7 alone only added tables, which CREATE and
        # the rows allow).
        altered = [(store, store.altered(version)) for store, version in found
                   if version is not None and version < (store.alters_until or store.known)]
        refused = None
        if postgres:
            refused = _cannot_create(connection) if to_make or missing else None
            if refused is not None and missing and not to_make:
                refused = f"the start makes {', '.join(missing)}, and {refused}"
            refused = refused or _not_owned(connection, altered)
        users = 0
        if inspect(connection).has_table("users"):  # by name: the security layer sits above this one
            users = connection.execute(select(func.count()).select_from(table("users"))).scalar() or 0
        connection.rollback()
    return found, server, refused, users


def _cannot_create(connection) -> str | None:
    """Why the PostgreSQL user cannot make (or upgrade) the site's tables, or None: PostgreSQL 15
    and later let only a schema's owner create in `public`, so a user made for the site logged in
    (the probe said OK) and the site's start then failed on "permission denied for schema public"."""
    schema, allowed, who = connection.exec_driver_sql(
        "SELECT current_schema(), has_schema_privilege(current_schema(), 'CREATE'), current_user").one()
    if schema is None:
        return "no schema of its search_path exists to make the tables in"
    if allowed:
        return None
    return (f"{who} may not create tables in schema {schema} (PostgreSQL 15 and later let only its owner): "
            f"GRANT CREATE ON SCHEMA {schema} TO {who}, or make {who} the database's owner")


def _not_owned(connection, upgraded: list[tuple[StoreSchema, tuple[str, ...]]]) -> str | None:
    """Why the PostgreSQL user cannot upgrade the stores `upgraded`, or None: an upgrade alters
    their tables (a column, an index), which PostgreSQL lets only a table's owner (or a member of
    its role) do. Tables the database's owner made, the site's user granted their rows alone,
    were OK to the probe and the start failed on "must be owner of table"."""
    for store, tables in upgraded:
        rows = connection.exec_driver_sql(
            "SELECT c.relname, pg_get_userbyid(c.relowner), current_user FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind IN ('r', 'p') AND c.relname = ANY(%(names)s) "
            "AND NOT pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY c.relname",
            {"names": list(tables)}).all()
        if rows:
            names, owners, who = [row[0] for row in rows], sorted({row[1] for row in rows}), rows[0][2]
            return (f"{who} does not own {', '.join(names)} (owned by {', '.join(owners)}), which the {store.what}'s "
                    f"upgrade alters (PostgreSQL lets only a table's owner): start the site once as "
                    f"{owners[0]}, or ALTER TABLE ... OWNER TO {who} for each")
    return None


def probe_mqtt(config, timeout: float = NETWORK_TIMEOUT) -> Probe:
    """A connection to the broker with the site's credentials, under a client id of its own (the
    site's, shared, would knock a running site off the broker), then a clean disconnect: no
    message, and no last will (the site's says its `available` is offline)."""
    from maskwatch.site.mqtt_client import new_client

    host = config.host.strip("[]")
    where = host_port((host, config.port))
    client = new_client(config, f"maskwatch-probe-{socket.gethostname()}-{os.getpid()}")
    client.connect_timeout = timeout
    answered, answer = threading.Event(), []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        answer.append(reason_code)
        answered.set()

    def on_disconnect(client, userdata, flags, reason_code, properties) -> None:
        answer.append(None)  # closed before any CONNACK: not waited out as a silence
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, config.port, keepalive=60)
    except socket.gaierror:
        return Probe("mqtt", False, f"{where}: no such host (its name does not resolve)")
    except OSError as err:
        return Probe("mqtt", False, f"cannot reach {where} ({err.strerror or err})")
    client.loop_start()
    try:
        if not answered.wait(timeout):
            return Probe("mqtt", False, f"{where} took the connection but gave no MQTT answer within {timeout:g} s")
        reason = answer[0]
        if reason is None:
            return Probe("mqtt", False, f"{where} closed the connection without an MQTT answer: not an MQTT broker's "
                                        "port, or one that wants TLS (mqtt.tls: true, usually port 8883)")
        if reason.is_failure:
            hint = ""
            if reason.value in (134, 135):  # bad user name or password; not authorised
                hint = (" (check mqtt.username and mqtt.password)" if config.username
                        else " (the broker wants mqtt.username and mqtt.password)")
            return Probe("mqtt", False, f"{where} refused the connection: {reason}{hint}")
        return Probe("mqtt", True, f"connected to {where}" + (f" as {config.username}" if config.username
                                                              else " without a user name"))
    finally:
        client.disconnect()
        client.loop_stop()
