"""`maskwatch copy-database`: a site's SQLite database moved whole to a real PostgreSQL server on
loopback, and back; the site then run on the copy (its app in this process, no camera started)
keeps every event and id, logins with two-step codes, recovery codes, sessions, tokens, the access
log and when its reports went. Refusals: a target not empty, a source a process has open (in
another PID namespace too; on PostgreSQL of another role too), a copy the target refuses halfway
(nothing kept), text longer than PostgreSQL takes (named first), a URL a site could not run on;
Ctrl-C said; a big table's progress."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, select, text

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import AuthStore
from maskwatch.security.two_step import new_recovery_codes, recovery_hashes
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.security.stores import STORES, copy_site_database
from maskwatch.site import copy_database as copy_database_module
from maskwatch.site.copy_database import CopyError
from maskwatch.site.database import MIGRATION_LOCK, database_engine
from maskwatch.site.events import EventStore
from maskwatch.site.mqtt_record import PublishedPrefix
from maskwatch.site.reports import SentReports
from maskwatch.site.runner import Site
from tests.conftest import ADMIN
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import refused_port
from tests.test_events import person
from tests.test_security import run_app
from tests.test_two_step import SECRET, code_at

CSRF = {"X-Maskwatch-CSRF": "1"}
HOUR_AGO = time.time() - 3600
DUE = HOUR_AGO - 600  # when the daily report last went
TABLES = sorted(table.name for store in STORES for table in store.metadata.tables.values())


def site_file(folder: Path, database: str) -> Path:
    (folder / "site.yaml").write_text(f"""
cameras:
  door: {{name: Front door, source: "rtsp://127.0.0.1:{refused_port()}/none", zones: {{queue: [[0, 0], [1, 0], [1, 1]]}}}}
storage: {{database: "{database}", snapshots: snaps, retention_days: 3650}}
""")
    return folder / "site.yaml"


def rows_of(url: str) -> dict[str, list[tuple]]:
    """Every maskwatch table's rows, in order, and the ids each gives next."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            there = set(inspect(connection).get_table_names())
            return {name: sorted(map(tuple, connection.execute(text(f'SELECT * FROM "{name}"'))), key=repr)
                    for name in TABLES if name in there}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def old_site(tmp_path_factory):
    """A site's SQLite database as months on it leave it: events (one with its snapshot; the newest
    deleted, so its id is past the largest kept), an admin with two-step login and recovery codes,
    a session, a failed login, a token, the access log, a report sent and the MQTT prefix."""
    folder = tmp_path_factory.mktemp("old-site")
    config = load_site_config(site_file(folder, "site.db"), environ={})
    database = config.storage.database
    store = EventStore(database, config.storage.snapshots, retention_days=3650)
    for i in range(6):
        store.record("door", "queue" if i % 2 else None,
                     person(i, (0.9, 0.05, 0.05) if i % 3 else (0.1, 0.85, 0.05), first=HOUR_AGO + i, last=HOUR_AGO + 5),
                     np.zeros((8, 8, 3), np.uint8) if i == 0 else None)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id = 6"))
        connection.execute(text("INSERT INTO alerts_kept_since VALUES (:at)"), {"at": HOUR_AGO})  # an upgraded site's
    alert = {"rule": 0, "camera": "door", "zone": None, "compliance": 50.0, "compliance_low": 40.0, "compliance_high": 60.0,
             "observed": 50.0, "below": 80.0, "people": 20, "with_mask": 10, "unassessable": 2, "infrared": 3, "seen": 22, "minutes": 5,
             "min_people": 5}
    store.record_alert(alert | {"at": HOUR_AGO + 60}, alert | {"at": HOUR_AGO + 90, "zone": "queue"})
    store.close()
    auth = AuthStore(database)
    auth.add_user(*ADMIN, "admin")
    codes = new_recovery_codes()
    assert auth.turn_on(ADMIN[0], SECRET, step=0, recovery=recovery_hashes(SECRET, codes)) == ""
    token = auth.add_token("prom", "read")
    auth.close()
    engine = database_engine(f"sqlite:///{database}")
    assert SentReports(engine, f"sqlite:///{database}").mark("daily", DUE)
    PublishedPrefix(engine, f"sqlite:///{database}").write(["shop"])
    engine.dispose()
    with TestClient(create_app(None, ServeSettings(auth=AuthSettings(database=database,
                                                                     open_without_users=False)))) as client:
        wrong = {"username": ADMIN[0], "password": "not it", "code": code_at(SECRET)}
        assert client.post("/login", json=wrong, headers=CSRF).status_code == 401
        body = {"username": ADMIN[0], "password": ADMIN[1], "code": code_at(SECRET)}
        assert client.post("/login", json=body, headers=CSRF).status_code == 200
        session = dict(client.cookies)
    return {"folder": folder, "database": database, "codes": codes, "token": token, "session": session}


def site_on(folder: Path, database: str) -> TestClient:
    """The site's app on `database` (the copy), its cameras never started."""
    config = load_site_config(site_file(folder, database), environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    site = Site(config, detector)
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=database, open_without_users=False)),
                     site=site)
    return TestClient(app)


def test_a_site_moved_to_postgresql_and_back_keeps_every_row_id_login_token_and_report(old_site, postgres, tmp_path):  # noqa: F811
    source = f"sqlite:///{old_site['database']}"
    before = rows_of(source)
    url = postgres.new_database("moved")
    said = run_app("copy-database", "--config", str(old_site["folder"] / "site.yaml"), url)
    assert said.returncode == 0, said.stderr
    assert "events: 5 rows (next id 7)" in said.stdout and "access_log: " in said.stdout
    assert "alerts: 2 rows (next id 3)" in said.stdout and "alerts_kept_since: 1 row" in said.stdout  # the day's alerts
    assert rows_of(url) == before  # every table, row for row: password hashes, two-step secrets, sessions too
    (tmp_path / "snaps").symlink_to(old_site["folder"] / "snaps")  # the snapshots, copied apart
    client = site_on(tmp_path, url)  # no lifespan: no camera started
    try:
        client.cookies.update(old_site["session"])  # the session from before the move goes on
        assert client.get("/v1/me").json()["user"] == ADMIN[0]
        client.cookies.clear()
        body = {"username": ADMIN[0], "password": ADMIN[1]}
        assert client.post("/login", json=body, headers=CSRF).status_code == 401  # two-step login still asked
        assert client.post("/login", json=body | {"code": old_site["codes"][0]}, headers=CSRF).status_code == 200
        assert client.post("/login", json=body | {"code": old_site["codes"][0]}, headers=CSRF).status_code == 401
        assert client.post("/login", json=body | {"code": code_at(SECRET, 1)}, headers=CSRF).status_code == 200
        ids, page = [], "/v1/events?limit=2"
        while page:  # a client syncing by cursor reads the same ids, in the same order
            answer = client.get(page).json()
            ids += [event["id"] for event in answer["events"]]
            page = answer["next"]
        assert ids == [5, 4, 3, 2, 1]
        snapshot = client.get("/v1/events?limit=5").json()["events"][-1]["snapshot"]
        assert snapshot == "/v1/snapshots/door-1.jpg" and client.get(snapshot).status_code == 200
        moved = {row[0]: row[4] for row in before["access_log"]}  # id: action
        assert sorted(moved.values()) == ["login", "login_failed"]
        log = client.get("/v1/access-log?limit=1000").json()["entries"]
        assert {row["id"]: row["action"] for row in log if row["id"] in moved} == moved
        bearer = {"Authorization": f"Bearer {old_site['token']}"}
        assert client.get("/v1/events?limit=1", headers=bearer).status_code == 200
    finally:  # the site stopped: its connections closed, as the copy back asks
        client.close()
        client.app.state.site.store.close()
        client.app.state.access.close()
    engine = database_engine(url)
    assert not SentReports(engine, url).mark("daily", DUE)  # not sent again
    assert PublishedPrefix(engine, url).read() == ["shop"]
    engine.dispose()
    store = EventStore(url, retention_days=3650)
    assert store.record("door", None, person(9, (0.9, 0.05, 0.05), first=time.time() - 5, last=time.time()))["id"] == 7
    store.close()
    auth = AuthStore(url)
    auth.add_user("vic", "vic's own long password", "viewer")
    auth.close()
    # And back: the same command, PostgreSQL to a new SQLite file, ids given on as there.
    back = tmp_path / "back.db"
    said = run_app("copy-database", "--database", url, str(back))
    assert said.returncode == 0, said.stderr
    assert rows_of(f"sqlite:///{back}") == rows_of(url)
    store = EventStore(str(back), retention_days=3650)
    assert store.record("door", None, person(10, (0.9, 0.05, 0.05), first=time.time() - 5, last=time.time()))["id"] == 8
    store.close()
    assert (back.stat().st_mode & 0o777) == 0o600  # the users' hashes and secrets: its owner's only


def test_a_target_not_empty_is_refused_and_left_as_it_was(old_site, postgres):  # noqa: F811
    url = postgres.new_database("taken")
    EventStore(url).close()  # a site started on it already
    before = rows_of(url)
    with pytest.raises(CopyError, match=r"not empty \(6 tables: alerts, alerts_kept_since, counts, counts_by_quarter, events, \.\.\.\)"):
        copy_site_database(old_site["database"], url)
    assert rows_of(url) == before


@contextmanager
def held_open(database: str):
    """Another process with the SQLite `database` open, as a running site has it, until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                               "c.execute('SELECT count(*) FROM events').fetchall(); print('open', flush=True); "
                               "sys.stdin.read()", database],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "open\n"
        yield holder
    finally:
        holder.communicate("")


def test_a_source_a_process_has_open_is_refused(old_site, postgres, tmp_path):  # noqa: F811
    with held_open(old_site["database"]) as holder:
        with pytest.raises(CopyError, match=f"process {holder.pid} has it open"):
            copy_site_database(old_site["database"], str(tmp_path / "copy.db"))
    assert not (tmp_path / "copy.db").exists()
    url = postgres.new_database("running")
    EventStore(url).close()
    engine = create_engine(url)  # a site running on it: a session of its own
    with engine.connect() as connection:
        connection.execute(select(func.count()).select_from(text("events"))).scalar()
        with pytest.raises(CopyError, match="1 other session"):
            copy_site_database(url, str(tmp_path / "copy.db"))
    engine.dispose()
    # A psql of another role (the server's superuser) on a database its owner copies: PostgreSQL
    # hides that session's kind from the owner, and the copy had counted no one.
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("CREATE ROLE site_owner LOGIN"))
        connection.execute(text("CREATE DATABASE owned OWNER site_owner"))
    admin.dispose()
    owned = postgres.url.rsplit("/", 1)[0].replace(f"//{postgres.user}@", "//site_owner@") + "/owned"
    EventStore(owned).close()
    psql = create_engine(postgres.url.rsplit("/", 1)[0] + "/owned")
    with psql.connect() as connection:
        connection.execute(text("SELECT 1"))
        with pytest.raises(CopyError, match="1 other session"):
            copy_site_database(owned, str(tmp_path / "copy.db"))
    psql.dispose()
    assert not (tmp_path / "copy.db").exists()


def test_a_source_open_in_another_pid_namespace_is_refused(old_site, tmp_path):
    """The copy in a PID namespace of its own, as in a container beside the site's on one volume:
    Linux numbers the holder 0 there, which was read as nobody, and the copy went on."""
    inside = ["unshare", "--user", "--map-root-user", "--pid", "--fork"]
    if subprocess.run([*inside, "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine lets no process make a PID namespace (unshare)")
    with held_open(old_site["database"]):
        copy = subprocess.run([*inside, sys.executable, "-m", "maskwatch", "copy-database", "--database",
                               old_site["database"], str(tmp_path / "copy.db")], capture_output=True, text=True)
    assert copy.returncode == 1 and copy.stderr == (f"error: {old_site['database']}: a process in another container "
                                                    "(PID namespace) has it open (the site, or another maskwatch "
                                                    "command): stop every maskwatch on it first, or the events it "
                                                    "stores after the copy are not in the target\n")
    assert not (tmp_path / "copy.db").exists()


def test_a_copy_the_target_refuses_halfway_keeps_nothing_there(tmp_path, postgres):  # noqa: F811
    database = str(tmp_path / "site.db")
    store = EventStore(database)
    for i in range(2):
        store.record("door", None, person(i, (0.9, 0.05, 0.05), first=time.time() - 5, last=time.time()))
    store.close()
    with create_engine(f"sqlite:///{database}").begin() as connection:  # SQLite keeps a NUL, PostgreSQL none
        connection.execute(text("UPDATE events SET zone = :zone WHERE id = 2"), {"zone": "a\x00b"})
    url = postgres.new_database("halfway")
    with pytest.raises(CopyError, match="failed, nothing was kept in the target: .*NUL"):
        copy_site_database(database, url)
    assert rows_of(url) == {}


def test_values_longer_than_postgresql_takes_are_named_before_the_copy(tmp_path, postgres):  # noqa: F811
    """SQLite keeps a VARCHAR's value past its length (an older maskwatch's access log held a
    64-character token name as "token:NAME"): PostgreSQL's refusal named no table, column or row."""
    database = str(tmp_path / "site.db")
    store = EventStore(database)
    for i in range(5):
        store.record("door", None, person(i, (0.9, 0.05, 0.05), first=time.time() - 5, last=time.time()))
    store.close()
    auth = AuthStore(database)
    auth.log("snapshot", "token:" + "t" * 64, "127.0.0.1", "/v1/snapshots/door-1.jpg")
    auth.close()
    with create_engine(f"sqlite:///{database}").begin() as connection:
        connection.execute(text("UPDATE events SET camera = :name WHERE id > 1"), {"name": "x" * 80})
    url = postgres.new_database("too_long")
    with pytest.raises(CopyError) as refused:
        copy_site_database(database, url)
    assert str(refused.value) == (
        f"sqlite:///{database}: events.camera holds 4 values longer than its 64 characters, which PostgreSQL refuses "
        "(SQLite kept them), in the rows of id 2, 3, 4, ...; access_log.user holds 1 value longer than its 64 "
        "characters, which PostgreSQL refuses (SQLite kept them), in the row of id 1: shorten them in the source "
        "first; nothing was copied")
    assert rows_of(url) == {}


def test_a_text_written_by_hand_into_a_number_column_is_named_before_the_copy(tmp_path):
    """SQLite keeps a text in a Float or Integer column (a row changed by hand or a tool): the copy
    stopped on "the database failed: could not convert string to float: 'garbage'", naming neither
    the table nor the row to correct. Now each such column is named with its first rows, nothing written."""
    database = str(tmp_path / "site.db")
    store = EventStore(database)
    for i in range(2):
        store.record("door", None, person(i, (0.9, 0.05, 0.05), first=time.time() - 5, last=time.time()))
    store.close()
    with create_engine(f"sqlite:///{database}").begin() as connection:
        connection.execute(text("UPDATE events SET last_seen = 'garbage' WHERE id = 2"))
    with pytest.raises(CopyError) as refused:
        copy_site_database(database, str(tmp_path / "copy.db"))
    assert str(refused.value) == (
        f"sqlite:///{database}: events.last_seen holds 1 value that is no number (a text or bytes written there by "
        "hand or a tool), in the row of id 2: correct or delete those rows in the source first; nothing was copied")
    assert not (tmp_path / "copy.db").exists()


def test_a_copy_stopped_by_ctrl_c_says_nothing_was_kept(old_site, postgres):  # noqa: F811
    """Ctrl-C or SIGTERM mid-copy (here while it waits for the target's lock, a site starting on
    it) ended the command with exit 130 and no word of what the target was left holding."""
    url = postgres.new_database("stopped")
    starting = create_engine(url)
    with starting.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        copy = subprocess.Popen([sys.executable, "-m", "maskwatch", "copy-database", "--database", old_site["database"],
                                 url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        while copy.poll() is None and not connection.execute(waiting).scalar():
            connection.commit()  # the next look sees the server's sessions anew
            time.sleep(0.05)
        copy.send_signal(signal.SIGINT)
        said = copy.communicate()
    starting.dispose()
    assert (copy.returncode, said) == (130, ("", "error: interrupted (Ctrl-C or SIGTERM) before the copy was "
                                                 f"committed: nothing was kept in {url}\n"))
    assert rows_of(url) == {}


def test_a_big_table_says_how_far_it_is(old_site, tmp_path, monkeypatch):
    """A year's counts or access log alone took minutes, and nothing was said until the end."""
    monkeypatch.setattr(copy_database_module, "ROWS_AT_ONCE", 2)
    monkeypatch.setattr(copy_database_module, "PROGRESS_ROWS", 2)  # as 500,000 rows do, in 5 rows
    said = []
    copied, _ = copy_site_database(old_site["database"], str(tmp_path / "copy.db"), said=said.append)
    assert [line for line in said if line.startswith("events:")] == [
        "events: 2 rows copied so far (committed once every table is)",
        "events: 4 rows copied so far (committed once every table is)"]
    assert [(one.table, one.rows) for one in copied if one.table == "events"] == [("events", 5)]


@pytest.mark.parametrize("version, said", [(7, "events schema version 7 is older than this maskwatch's (8): start the "
                                                "site on it once"),
                                           (9, "events schema version 9 is newer than this maskwatch (8)")])
def test_a_source_of_another_maskwatch_version_is_refused(tmp_path, version, said):
    database = str(tmp_path / "site.db")
    EventStore(database).close()
    with create_engine(f"sqlite:///{database}").begin() as connection:
        connection.execute(text("DELETE FROM schema_version WHERE version > :v"), {"v": version})
        connection.execute(text("INSERT INTO schema_version VALUES (:v)"), {"v": version})
    with pytest.raises(CopyError, match=re.escape(said)):
        copy_site_database(database, str(tmp_path / "copy.db"))
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("url, said", [("postgresql+psycopg://site:Pa@Secret9@127.0.0.1:1/x", "holds an @: write it %40"),
                                       ("postgresql+psycopg://site:Secret9@127.0.0.1:no/x", "not a database URL")])
def test_a_url_a_site_could_not_run_on_is_refused_with_its_password_hidden(old_site, tmp_path, url, said):
    """The checks storage.database has: a password's @ had the driver's error show its rest as the
    host ("failed to resolve host 'Secret9@127.0.0.1'"), a port that is no number a traceback."""
    for source, target in ((old_site["database"], url), (url, str(tmp_path / "copy.db"))):
        with pytest.raises(CopyError, match=re.escape(said)) as refused:
            copy_site_database(source, target)
        assert "site:***@127.0.0.1" in str(refused.value) and "Secret9" not in str(refused.value)
    assert not (tmp_path / "copy.db").exists()
