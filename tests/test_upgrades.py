"""Upgrades and backups of a site database: databases written by older maskwatch (SQL dumps in
tests/data, made by tests/data/make_old_site.py with that commit's own code) open with today's,
and a copy taken while a site writes holds its rows."""

import logging
import re
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from maskwatch.security.store import AuthStore
from maskwatch.site.backup import backup_site
from maskwatch.site.events import EventStore
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_events import NOW, person

DATA = Path(__file__).parent / "data"
PASSWORD = "correct horse battery"
# make_old_site.py's people: (camera, zone, label), 400 s apart from NOW
PEOPLE = [("door", "inside", "with_mask"), ("door", None, "without_mask"), ("hall", "desk", "mask_weared_incorrect"),
          ("door", "inside", "with_mask"), ("hall", None, "without_mask"), ("door", "inside", "without_mask")]


def restore(dump: Path, database: Path) -> dict[str, str]:
    """The dump loaded into a new SQLite file; the secrets its first lines note (token, session)."""
    script = dump.read_text()
    with sqlite3.connect(database) as connection:
        connection.executescript(script)
    return dict(re.findall(r"^-- (\w+ \w+): (\S+)$", script, re.M))


@pytest.mark.parametrize("commit", ["1b08615", "fb7f4a3"])
def test_a_database_of_an_older_maskwatch_is_migrated_with_its_rows(tmp_path, caplog, commit):
    """1b08615: the first events database (schema 1); fb7f4a3: the first with users (auth schema 1)."""
    secrets = restore(DATA / f"site-{commit}.sql", tmp_path / "site.db")
    with caplog.at_level(logging.WARNING):
        store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
    # The operator is told: an older maskwatch no longer opens it (a downgrade needs the backup).
    assert "events schema migrated from version 1 to 8" in caplog.text
    with sqlite3.connect(tmp_path / "site.db") as raw:  # the paging order's indexes (version 5), the old ones gone
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"events_by_last_seen_id", "events_by_camera_last_seen_id", "events_by_label_last_seen_id"} <= indexes
    assert not indexes & {"ix_events_last_seen", "events_by_camera_last_seen", "events_by_label_last_seen"}
    stored = store.events()
    assert [(e["camera"], e["zone"], e["label"]) for e in reversed(stored)] == PEOPLE
    assert [e["id"] for e in reversed(stored)] == [1, 2, 3, 4, 5, 6]
    assert {e["snapshot"] for e in stored} == {None, "door-1.jpg", "hall-3.jpg", "hall-5.jpg"}
    # version 6 remakes the table with today's columns, copying those it had (version 8's `infrared` not among them)
    assert [e["infrared"] for e in stored] == [False] * 6
    minutes = store.counts()
    assert len(minutes) == 6 and all((m["people"], m["unassessable"], m["infrared"]) == (1, 0, 0) for m in minutes)
    # The chart's and report's quarter sums are filled from the old minutes.
    day = store.counts(since=NOW - NOW % 86400, every=86400)
    assert sum(row["people"] for row in day) == 6 and sum(row["without_mask"] for row in day) == 3
    chart = store.quarter_sums(NOW - NOW % 86400)
    assert len(chart) == 4 and sum(row["people"] for row in chart) == 6 and sum(row["with_mask"] for row in chart) == 2
    new = store.record("door", "inside", person(7, (0.9, 0.05, 0.05), first=NOW + 3000, last=NOW + 3005))
    assert new["id"] == 7
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        auth = AuthStore(str(tmp_path / "site.db"))
        EventStore(str(tmp_path / "site.db")).close()
    if commit == "1b08615":  # no users then: today's tables are made, and a new schema is not news
        assert auth.users() == [] and "migrated" not in caplog.text
        return
    assert "auth schema migrated from version 1 to 7" in caplog.text
    assert "events schema" not in caplog.text  # migrated once
    assert [(u["name"], u["role"], u["cameras"]) for u in auth.users()] == [("ana", "admin", None),
                                                                             ("vic", "viewer", ["door"])]
    assert auth.check_login("ana", PASSWORD)["name"] == "ana" and auth.check_login("vic", "wrong") is None
    assert auth.token(secrets["token prom"], now=NOW) == {"name": "prom", "scope": "read", "cameras": None, "expires": None}
    assert [(t["name"], t["owner"]) for t in auth.tokens()] == [("prom", None)]  # made before owners: a site token
    assert auth.tokens()[0]["expires"] is None  # version 6: made before expiry, it never expires
    assert auth.session_user(secrets["session ana"], idle=1e9, absolute=1e9, now=NOW + 1)["name"] == "ana"
    assert [(row["action"], row["user"]) for row in auth.access_log(since=0)] == [("login", "ana")]
    assert auth.recovery_left("ana") == 0  # version 5: the recovery codes' table, none yet
    auth.close()


def test_a_copy_taken_while_a_site_writes_holds_its_rows(tmp_path):
    """Copying the .db file alone loses what is still in the -wal file (all of a new site's rows,
    its tables too); maskwatch backup (the online backup API) and VACUUM INTO copy what was committed."""
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=100_000)
    for i in range(20):
        store.record("door", None, person(i, (0.9, 0.05, 0.05), last=NOW + i), np.zeros((8, 8, 3), np.uint8))
    stop, written = threading.Event(), [20]

    def write() -> None:
        while not stop.is_set():
            store.record("door", None, person(written[0], (0.1, 0.8, 0.1), last=NOW + written[0]),
                         np.zeros((8, 8, 3), np.uint8))
            written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        before = written[0]
        shutil.copy(tmp_path / "site.db", tmp_path / "naive.db")
        copy, events, snapshots = backup_site(str(tmp_path / "site.db"), tmp_path / "snaps", tmp_path / "backup")
        with sqlite3.connect(tmp_path / "site.db") as live:
            live.execute(f"VACUUM INTO '{tmp_path / 'vacuum.db'}'")
        after = written[0]
    finally:
        stop.set()
        writer.join()
    store.close()
    with sqlite3.connect(tmp_path / "naive.db") as naive, pytest.raises(sqlite3.OperationalError, match="no such table"):
        naive.execute("SELECT count(*) FROM events")
    assert copy == tmp_path / "backup" / "site.db" and before <= events <= after + 1 and snapshots == events
    assert sorted(p.name for p in (tmp_path / "backup" / "snapshots").iterdir()) == sorted(
        f"door-{i}.jpg" for i in range(1, events + 1))
    for database in (copy, tmp_path / "vacuum.db"):
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        restored = EventStore(str(database))
        held = len(restored.events(limit=100_000))
        assert before <= held <= after + 1 and sum(c["people"] for c in restored.counts()) == held
        restored.close()


def test_backup_refuses_what_it_cannot_copy_consistently(tmp_path):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    EventStore(str(tmp_path / "site.db")).close()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.db").touch()
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    for args, message in ((["--database", str(tmp_path / "site.db"), str(tmp_path / "full")], "not an empty folder"),
                          (["--database", str(tmp_path / "nope.db"), str(tmp_path / "b")], "no such database"),
                          (["--database", "postgresql://ana:secret@db/site", str(tmp_path / "b")], "pg_dump"),
                          (["--database", str(tmp_path / "text.db"), str(tmp_path / "t")], "not a database")):
        result = CliRunner().invoke(app, ["backup", *args])
        assert result.exit_code == 1 and message in result.output and "secret" not in result.output
    assert not (tmp_path / "b").exists() and not (tmp_path / "nope.db").exists()
    assert list((tmp_path / "t").iterdir()) == []  # no half copy
    result = CliRunner().invoke(app, ["backup", "--database", str(tmp_path / "site.db"), str(tmp_path / "b")])
    assert result.exit_code == 0 and result.output == f"{tmp_path / 'b' / 'site.db'}: 0 events\n"
    # --config and --database both: the site's database was copied, the one named ignored in silence.
    (tmp_path / "site.yaml").write_text(f"cameras:\n  door:\n    source: webcam:0\nstorage:\n  database: "
                                        f"{tmp_path / 'site.db'}\n")
    result = CliRunner().invoke(app, ["backup", "--config", str(tmp_path / "site.yaml"), "--database",
                                      str(tmp_path / "other.db"), str(tmp_path / "c")])
    assert result.exit_code == 1 and "not both" in result.output and not (tmp_path / "c").exists()


def test_backup_copies_an_older_database_as_it_is(tmp_path):
    """The new maskwatch may take the backup before its first start: backup migrates nothing."""
    restore(DATA / "site-fb7f4a3.sql", tmp_path / "site.db")
    copy, events, _ = backup_site(str(tmp_path / "site.db"), None, tmp_path / "backup")
    for database in (tmp_path / "site.db", copy):
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
            assert connection.execute("SELECT count(*) FROM users").fetchone() == (2,)
    assert events == 6
    # the users' password hashes and two-step secrets: for the owner only, whatever the umask (644 in a 755 folder)
    assert copy.stat().st_mode & 0o777 == 0o600 and (tmp_path / "backup").stat().st_mode & 0o777 == 0o700


def test_a_snapshot_that_cannot_be_copied_is_one_line_and_leaves_no_half_copy(tmp_path):
    """A full disk (or a snapshot that cannot be read) while the snapshots were copied ended the
    backup in an OSError traceback, the database copied and half the snapshots beside it."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=100_000)
    for i in range(3):
        store.record("door", None, person(i, (0.9, 0.05, 0.05), last=NOW + i), np.zeros((8, 8, 3), np.uint8))
    store.close()
    (tmp_path / "snaps" / "door-2.jpg").unlink()
    (tmp_path / "snaps" / "door-2.jpg").mkdir()  # copying it fails as a full disk's would: an OSError
    (tmp_path / "site.yaml").write_text(f"cameras:\n  door:\n    source: webcam:0\nstorage:\n  database: "
                                        f"{tmp_path / 'site.db'}\n  snapshots: {tmp_path / 'snaps'}\n")
    result = CliRunner().invoke(app, ["backup", "--config", str(tmp_path / "site.yaml"), str(tmp_path / "b")])
    assert result.exit_code == 1 and "door-2.jpg: cannot copy it" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list((tmp_path / "b").iterdir()) == []


def test_an_older_sites_database_takes_the_reports_and_its_backup_keeps_when_they_went(tmp_path, caplog):
    """A database of a maskwatch from before `reports:` gets reports_sent at the site's start, said
    as nothing migrated; `maskwatch backup` copies it, so a site restored from the copy neither sends
    again a report the original sent nor forgets the one it owes."""
    from maskwatch.site.reports import SentReports

    restore(DATA / "site-fb7f4a3.sql", tmp_path / "site.db")
    store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sent = SentReports(store.engine, store.url)
    assert "reports schema" not in caplog.text and sent.read() == {}
    assert sent.mark("daily", NOW) and not sent.mark("daily", NOW) and sent.mark("daily", NOW + 86400)
    store.close()
    copy, events, _ = backup_site(str(tmp_path / "site.db"), None, tmp_path / "backup")
    restored = EventStore(str(copy), retention_days=100_000)
    assert events == 6 and SentReports(restored.engine, restored.url).read() == {"daily": NOW + 86400}
    restored.close()


def test_a_snapshots_folder_that_cannot_be_made_leaves_no_copy(tmp_path, monkeypatch):
    """The backup's snapshots folder was made outside the guard: a full disk refusing it right
    after the database copy (or a database file named `snapshots` already there) left the copy in
    DEST and a traceback, though a failed backup leaves nothing there."""
    import errno

    from maskwatch.site.backup import BackupError

    EventStore(str(tmp_path / "snapshots"), tmp_path / "snaps").close()
    with pytest.raises(BackupError, match="named snapshots would take the name"):
        backup_site(str(tmp_path / "snapshots"), tmp_path / "snaps", tmp_path / "a")
    assert not (tmp_path / "a").exists()
    copy, _, _ = backup_site(str(tmp_path / "snapshots"), None, tmp_path / "a")  # no snapshots: no clash
    assert copy == tmp_path / "a" / "snapshots" and copy.is_file()

    EventStore(str(tmp_path / "site.db"), tmp_path / "snaps").close()
    make = Path.mkdir

    def full_disk(path, *args, **kwargs):
        if path == tmp_path / "b" / "snapshots":  # a full disk has no room for its directory entry
            raise OSError(errno.ENOSPC, "No space left on device")
        return make(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", full_disk)
    with pytest.raises(BackupError) as failed:
        backup_site(str(tmp_path / "site.db"), tmp_path / "snaps", tmp_path / "b")
    assert str(failed.value) == (f"{tmp_path / 'b' / 'snapshots'}: cannot make it: No space left on device; "
                                 "nothing was kept")
    assert list((tmp_path / "b").iterdir()) == []


def test_the_probe_says_each_schema_the_start_would_upgrade_or_refuse(tmp_path, sample_dir):
    """`run --probe` read the events schema alone: on a database of fb7f4a3 it said nothing of the
    users' schema the start then upgraded (after which that maskwatch no longer opens it), and on
    one whose users' schema is newer it said OK to a site whose start then refused it."""
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.security.schema import MIGRATIONS as AUTH_MIGRATIONS
    from maskwatch.site.database import DatabaseUnavailable
    from tests.test_probe import rows

    restore(DATA / "site-fb7f4a3.sql", tmp_path / "site.db")
    photo = next((sample_dir / "images").glob("*.png"))
    config = tmp_path / "site.yaml"
    config.write_text(f"cameras:\n  door:\n    source: {photo}\nstorage:\n  database: {tmp_path / 'site.db'}\n")
    kept = (tmp_path / "site.db").read_bytes()
    older = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])
    assert older.exit_code == 0, older.output
    assert rows(older.output)["database"] == ("OK", (
        f"{tmp_path / 'site.db'}: SQLite, writable; events schema 1: upgraded to 8 at the start, auth schema 1: "
        f"upgraded to {len(AUTH_MIGRATIONS)} at the start (older maskwatch then no longer opens it; "
        "`maskwatch backup` first)"))
    assert (tmp_path / "site.db").read_bytes() == kept
    EventStore(str(tmp_path / "site.db")).close()
    AuthStore(str(tmp_path / "site.db")).close()
    current = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])
    assert rows(current.output)["database"][1].endswith("; events schema 8, this maskwatch's")
    with sqlite3.connect(tmp_path / "site.db") as connection:  # as a later maskwatch left it
        connection.execute("INSERT INTO auth_schema_version VALUES (99)")
    newer = CliRunner().invoke(app, ["run", "--config", str(config), "--probe"])
    assert newer.exit_code == 1
    said = (f"auth schema version 99 is newer than this maskwatch ({len(AUTH_MIGRATIONS)}); upgrade maskwatch, "
            "or restore the backup taken before the upgrade")
    assert rows(newer.output)["database"] == ("FAILED", f"{tmp_path / 'site.db'}: SQLite, writable; {said}")
    with pytest.raises(DatabaseUnavailable, match=re.escape(said)):  # the start's words
        AuthStore(str(tmp_path / "site.db"))


def test_a_database_of_2026_12_06_keeps_two_step_login_its_recovery_codes_and_token_owners(tmp_path, caplog):
    """3ff55e8 (auth schema 5): a user's two-step secret and unused recovery codes, written by that
    commit's own code, log in with today's; the token an admin owns stays theirs, and works."""
    from maskwatch.security.store import AuthStore
    from tests.data.make_old_site import CODES, SECRET
    from tests.test_two_step import CSRF, client_of, code_at

    secrets = restore(DATA / "site-3ff55e8.sql", tmp_path / "site.db")
    with caplog.at_level(logging.WARNING):
        store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
        auth = AuthStore(str(tmp_path / "site.db"))
    assert "auth schema migrated from version 5 to 7" in caplog.text
    assert "events schema migrated from version 5 to 8" in caplog.text  # ids never given again: its table remade
    assert [(e["camera"], e["zone"], e["label"]) for e in reversed(store.events())] == PEOPLE
    assert [e["id"] for e in reversed(store.events())] == [1, 2, 3, 4, 5, 6]  # kept
    assert sum(row["people"] for row in store.quarter_sums(NOW - NOW % 86400)) == 6
    store.close()
    assert [(u["name"], u["two_step"]) for u in auth.users()] == [("ana", False), ("vic", True)]
    assert auth.recovery_left("vic") == 9  # the first was used
    assert [(t["name"], t["owner"], t["expires"]) for t in auth.tokens()] == [("prom", None, None),
                                                                             ("script", "ana", None)]
    assert auth.token(secrets["token script"])["name"] == "script"
    assert [t["cameras"] for t in auth.tokens()] == [None, None]  # version 7: made before token cameras, every camera
    auth.close()
    with client_of(str(tmp_path / "site.db")) as client:
        def log_in(code: str | None):
            body = {"username": "vic", "password": PASSWORD} | ({"code": code} if code is not None else {})
            return client.post("/login", json=body, headers=CSRF).status_code

        assert log_in(None) == 401 and log_in(CODES[0]) == 401  # no code; the code used before the upgrade
        assert log_in(CODES[1]) == 200 and log_in(CODES[1]) == 401 and log_in(code_at(SECRET)) == 200
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {secrets['token script']}"}).json()["role"] \
            == "admin"


def test_a_database_other_accounts_may_read_is_said_at_its_open_once(tmp_path, caplog):
    """A database made before 2026-12-06 (0644 under the usual umask) kept its mode through the
    upgrade, as it should, but nothing said so: every account on the machine read the users'
    password hashes and two-step secrets. A group's read (an admin's choice) is not said."""
    import os

    from maskwatch.security.store import AuthStore

    old = os.umask(0o022)
    try:
        restore(DATA / "site-3ff55e8.sql", tmp_path / "site.db")
    finally:
        os.umask(old)
    assert (tmp_path / "site.db").stat().st_mode & 0o777 == 0o644
    with caplog.at_level(logging.WARNING):
        EventStore(str(tmp_path / "site.db"), retention_days=100_000).close()
        AuthStore(str(tmp_path / "site.db")).close()
    said = [r.getMessage() for r in caplog.records if "other accounts" in r.getMessage()]
    assert said == [f"{tmp_path / 'site.db'}: other accounts on this machine may read it (mode 644), and with it "
                    "the users' password hashes and two-step secrets: chmod 600 it (its -wal and -shm too), as the "
                    "account that runs the site"]
    assert (tmp_path / "site.db").stat().st_mode & 0o777 == 0o644  # said, not changed
    caplog.clear()
    for mode in (0o640, 0o600, 0o601):  # execute alone lets no one read or change a data file
        (tmp_path / f"{mode:o}.db").touch(mode=mode)
        with caplog.at_level(logging.WARNING):
            EventStore(str(tmp_path / f"{mode:o}.db")).close()
    assert "other accounts" not in caplog.text


def test_a_database_other_accounts_may_write_says_they_may_change_it(tmp_path, caplog):
    """Others' write bit (0666, 0602) lets any account change the users' password hashes and
    roles: it is said as 'write', not 'read' alone (0602 let no one read it)."""
    for mode in (0o666, 0o602):
        path = tmp_path / f"{mode:o}.db"
        path.touch()
        path.chmod(mode)
        with caplog.at_level(logging.WARNING):
            EventStore(str(path)).close()
    said = [r.getMessage() for r in caplog.records if "other accounts" in r.getMessage()]
    assert said == [
        f"{tmp_path / '666.db'}: other accounts on this machine may read and write it (mode 666), and with it read "
        "the users' password hashes and two-step secrets and change them (make themselves an admin): chmod 600 it "
        "(its -wal and -shm too), as the account that runs the site",
        f"{tmp_path / '602.db'}: other accounts on this machine may write it (mode 602), and with it change the "
        "users' password hashes and roles (make themselves an admin): chmod 600 it (its -wal and -shm too), as "
        "the account that runs the site"]


def test_a_migration_that_fails_halfway_leaves_the_old_schema_and_runs_again(tmp_path, monkeypatch):
    """A full disk in the middle of the upgrade (after version 4's quarter sums were filled, or the
    users' version 5): one line, the database as the older maskwatch left it (it still opens it),
    and the next start migrates it whole."""
    import sqlalchemy.exc

    from maskwatch.security import schema as auth_schema
    from maskwatch.security import store as auth_store
    from maskwatch.security.store import AuthStore
    from maskwatch.site import events
    from maskwatch.site.database import DatabaseUnavailable

    restore(DATA / "site-fb7f4a3.sql", tmp_path / "site.db")

    def full_disk_after(migration):
        def migrate(connection):
            migration(connection)
            raise sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
        return migrate

    broken = [*events.MIGRATIONS[:3], full_disk_after(events.MIGRATIONS[3]), *events.MIGRATIONS[4:]]
    monkeypatch.setattr(events, "MIGRATIONS", broken)
    broken = [*auth_schema.MIGRATIONS[:4], full_disk_after(auth_schema.MIGRATIONS[4]), *auth_schema.MIGRATIONS[5:]]
    monkeypatch.setattr(auth_store, "MIGRATIONS", broken)
    with pytest.raises(DatabaseUnavailable, match="cannot open or migrate the database: database or disk is full"):
        EventStore(str(tmp_path / "site.db"), retention_days=100_000)
    with pytest.raises(DatabaseUnavailable, match="database or disk is full"):
        AuthStore(str(tmp_path / "site.db"))
    with sqlite3.connect(tmp_path / "site.db") as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
        assert raw.execute("SELECT max(version) FROM auth_schema_version").fetchone() == (1,)
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"counts_by_quarter", "recovery_codes"}
    monkeypatch.undo()
    store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
    assert len(store.events()) == 6 and sum(row["people"] for row in store.quarter_sums(NOW - NOW % 86400)) == 6
    store.close()
    auth = AuthStore(str(tmp_path / "site.db"))
    assert auth.check_login("ana", PASSWORD)["name"] == "ana" and auth.recovery_left("ana") == 0
    auth.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_token_limited_to_cameras_is_refused_by_an_older_process_still_running(tmp_path, request, database):
    """An older maskwatch (auth schema 6 or before) still running on the database when a newer one
    migrated it and made `tokens add lobby --camera door` (a service not stopped for the upgrade,
    one of two instances on PostgreSQL) looks a token up by its SHA-256 alone and knows no camera
    list: it answered the lobby token as a viewer of every camera. Such a token is kept under
    another hash, which the old lookup does not find (401); a token of every camera still works there."""
    import hashlib

    from sqlalchemy import create_engine, text

    url = (str(tmp_path / "site.db") if database == "sqlite"
           else request.getfixturevalue("postgres").new_database("limited_tokens"))
    auth = AuthStore(url)
    try:
        lobby, prom = auth.add_token("lobby", "read", cameras=["door"]), auth.add_token("prom", "read")
        engine = create_engine(url if "://" in url else f"sqlite:///{url}")
        try:
            with engine.connect() as connection:  # the lookup of d1a3050 and every release before it
                def old_lookup(token: str):
                    return connection.execute(text("SELECT name, scope FROM api_tokens WHERE token_hash = :key"),
                                              {"key": hashlib.sha256(token.encode()).hexdigest()}).first()

                assert old_lookup(lobby) is None
                assert tuple(old_lookup(prom)) == ("prom", "read")
        finally:
            engine.dispose()
        assert auth.token(lobby) == {"name": "lobby", "scope": "read", "cameras": ["door"], "expires": None}
        assert auth.token(prom) == {"name": "prom", "scope": "read", "cameras": None, "expires": None}
        auth.revoke_token("lobby")
        assert auth.token(lobby) is None
    finally:
        auth.close()


def test_a_database_of_events_schema_7_keeps_its_alerts_and_stores_new_ones_with_their_infrared(tmp_path, caplog):
    """63d1097 (events schema 7, the compliance alerts stored, of the night before the infrared
    counts), written by that commit's own code: its `alerts` table had no `infrared` and `seen`,
    which version 8 added to the counts alone, so the day's list and every alert stored after the
    upgrade failed on "no such column: alerts.infrared"."""
    from tests.data.make_old_site import ALERT

    restore(DATA / "site-63d1097.sql", tmp_path / "site.db")
    with caplog.at_level(logging.WARNING):
        store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
    assert "events schema migrated from version 7 to 8" in caplog.text
    (kept,), _ = store.alerts(since=NOW)
    assert {name: kept[name] for name in ALERT} == ALERT and (kept["infrared"], kept["seen"]) == (0, 0)
    store.record_alert(ALERT | {"at": NOW + 2100, "infrared": 3, "seen": 4})
    assert [(a["at"], a["infrared"], a["seen"]) for a in store.alerts(since=NOW)[0]] == [(NOW + 2100, 3, 4),
                                                                                       (NOW + 2000, 0, 0)]
    assert sum(row["infrared"] for row in store.counts()) == 0 and len(store.counts()) == 6
    assert [e["infrared"] for e in store.events()] == [False] * 6  # its people: none seen on grey frames then
    night = store.record("door", None, person(7, (0.9, 0.05, 0.05), first=NOW + 3000, last=NOW + 3005), infrared=True)
    assert store.events(limit=1) == [night] and night["infrared"] is True
    store.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:  # a run of version 7 still going stores its alerts on
        raw.execute("INSERT INTO alerts (rule, camera, zone, at, compliance, compliance_low, compliance_high, observed, "
                    "below, people, with_mask, unassessable, minutes, min_people) "
                    "VALUES (0, 'door', NULL, 1, 0.4, 0.2, 0.6, 0.5, 80, 4, 2, 0, 15, 3)")


def test_the_release_sites_run_dba03c1_upgrades_with_yesterdays_figures_and_logins(tmp_path, caplog):
    """dba03c1 (events schema 6, auth 7), the last release that passed CI, as its own code wrote it:
    the upgrade an admin does. The day's figures read as before, with infrared 0 (not known then) in
    report.csv's last column; the alerts list is whole from the upgrade; users, two-step login and
    tokens as they were."""
    from maskwatch.security.two_step import recovery_hash
    from maskwatch.site.report import report_csv, report_period
    from tests.data.make_old_site import CODES, SECRET

    secrets = restore(DATA / "site-dba03c1.sql", tmp_path / "site.db")
    with caplog.at_level(logging.WARNING):
        store = EventStore(str(tmp_path / "site.db"), retention_days=100_000)
        auth = AuthStore(str(tmp_path / "site.db"))
    assert "events schema migrated from version 6 to 8" in caplog.text and "auth schema" not in caplog.text
    assert [e["id"] for e in store.events()] == [6, 5, 4, 3, 2, 1]
    csv = report_csv(store, report_period("2026-09-21", "2026-09-21", None), None).splitlines()
    assert csv[0].endswith(",observed_share,infrared,day_hours") and len(csv) == 5
    assert [line.split(",")[3] for line in csv[1:]] == ["1", "3", "1", "1"] and all(line.endswith(",0,24") for line in csv[1:])
    listed, whole_since = store.alerts(since=NOW)
    assert listed == [] and whole_since > NOW  # counted people: whole from the upgrade, the alerts before went
    store.close()
    vic = auth.check_login("vic", PASSWORD)
    assert vic["name"] == "vic" and auth.recovery_left("vic") == len(CODES) - 1
    assert not auth.use_recovery(vic["id"], recovery_hash(SECRET, CODES[0]))  # used before the upgrade: spent
    assert auth.token(secrets["token script"], now=NOW)["scope"] == "full"
    assert auth.session_user(secrets["session ana"], idle=1e9, absolute=1e9, now=NOW + 1)["name"] == "ana"
    auth.close()
