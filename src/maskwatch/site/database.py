"""Database plumbing every store shares (events, users, reports, MQTT): engines, migrations, errors in one line."""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Callable

from sqlalchemy import Table, create_engine, event, func, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError

from maskwatch.video.sources import redact_source

log = logging.getLogger(__name__)

# PostgreSQL advisory lock keys ("mw"): the events' schema, the users' schema, login attempts, users,
# the scheduled reports' schema (reports.py), the MQTT prefix's record (mqtt_record.py).
MIGRATION_LOCK, AUTH_MIGRATION_LOCK, LOGIN_ATTEMPT_LOCK, USERS_LOCK = 0x6D77_0001, 0x6D77_0002, 0x6D77_0003, 0x6D77_0004
REPORTS_MIGRATION_LOCK, MQTT_MIGRATION_LOCK = 0x6D77_0005, 0x6D77_0006
# Seconds a command (`users`, `tokens`, `events`, `report`) waits for a database server to answer its
# connection: libpq's own wait is for ever, and a port that takes the connection and never answers (a
# stuck server, a proxy with nothing behind it) held `users add` with no word. Twice the probe's 5 s
# (probe.NETWORK_TIMEOUT): a command that changes something may wait out a slow server's TLS a little longer.
COMMAND_CONNECT_TIMEOUT = 10


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached, opened or brought to this version's schema (a server down,
    a wrong password, a path that cannot be written, a file that is not a database); the message
    names it, password hidden, with the driver's reason."""


def shown_database_url(url: str) -> str:
    """A database URL as logs and errors show it: its password as ***, and a password in its
    query too (libpq takes postgresql://host/db?password=..., which SQLAlchemy's hide_password
    shows as written)."""
    return redact_source(make_url(url).render_as_string(hide_password=True))


def stored_number(value) -> bool:
    """Whether a value read from a number column is a finite number: SQLite keeps what a hand or a
    tool writes there (a text in a Float column), which the stores' readers then failed on."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def open_database(url: str, migrate: Callable[[], int]) -> None:
    """Run a store's first migration, where a database that cannot be used shows itself: as
    DatabaseUnavailable with one line, not the driver's traceback."""
    try:
        migrate()
    except (DatabaseError, InterfaceError) as err:
        shown = shown_database_url(url)
        reason = driver_reason(err)
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            reason += disk_full_note(path.parent, reason) + owner_note(path, reason)
        raise DatabaseUnavailable(f"{shown}: cannot open or migrate the database: {reason}") from None


def owner_note(path: Path, reason: str) -> str:
    """`; it is root's (mode 600) and this process runs as maskwatch: ...` where SQLite could not
    open or write a file another account owns: a backup put back as root stopped the unit's site
    with `unable to open database file` alone."""
    if "unable to open" not in reason and "readonly database" not in reason:
        return ""
    try:
        owner = path.stat()
    except OSError:
        return ""
    if owner.st_uid == os.geteuid():
        return ""
    return (f"; it is {_account(owner.st_uid)}'s (mode {owner.st_mode & 0o777:o}) and this process runs as "
            f"{_account(os.geteuid())}: chown it (and the snapshots) to the account that runs the site")


def _account(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


# Less free space than this is a full disk: SQLite needs 32 KiB for a new -shm file alone.
FULL_DISK_BYTES = 1024 * 1024


def disk_full_note(folder: Path, reason: str) -> str:
    """`; its disk is full (N KiB free)` where the disk holding `folder` has under FULL_DISK_BYTES
    free and `reason` does not say so already: SQLite says only "disk I/O error" where a full disk
    refused its -shm file."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if free >= FULL_DISK_BYTES or "full" in reason:
        return ""
    return f"; its disk is full ({free // 1024} KiB free)"


def hold_database(connection: Connection, key: int) -> None:
    """Hold the database for what `key` guards until the transaction ends, across processes: a
    store's migration (two processes opening a new database both read "no version", and the
    second failed "table schema_version already exists"), or login attempts counted before their
    password is checked. SQLite: a write lock now, not at the first INSERT; PostgreSQL: an
    advisory lock on `key`."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def apply_migrations(connection: Connection, url: str, what: str, version_table: Table, migrations: list) -> int:
    """Run the migrations `version_table` has not recorded, in the caller's transaction (held by
    hold_database); the version the database was at before."""
    version_table.metadata.create_all(connection, tables=[version_table])
    current = connection.execute(select(func.max(version_table.c.version))).scalar() or 0
    if current > len(migrations):
        raise newer_schema(url, what, current, len(migrations))
    for version in range(current, len(migrations)):
        migrations[version](connection)
        connection.execute(insert(version_table).values(version=version + 1))
    return current


def migrate_schema(engine: Engine, url: str, what: str, lock: int, version_table: Table, migrations: list) -> int:
    """Bring a store's own tables (`what`, versioned in `version_table`) to the newest version, in
    one transaction holding `lock`; the version they are at."""
    with engine.begin() as connection:
        hold_database(connection, lock)
        before = apply_migrations(connection, url, what, version_table, migrations)
    said_migrated(url, what, before, len(migrations))
    return len(migrations)


def said_migrated(url: str, what: str, before: int, after: int) -> None:
    """An upgraded database is said in the log (a new one is not): older maskwatch cannot open it now."""
    if 0 < before < after:
        shown = shown_database_url(url)
        log.warning("%s: %s migrated from version %d to %d (older maskwatch versions no longer open it)",
                    shown, what, before, after)


def newer_schema(url: str, what: str, current: int, known: int) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"{shown_database_url(url)}: {newer_schema_words(what, current, known)}")


def newer_schema_words(what: str, current: int, known: int) -> str:
    """A schema newer than this maskwatch's, in the words the start and `run --probe` both say."""
    return (f"{what} version {current} is newer than this maskwatch ({known}); "
            "upgrade maskwatch, or restore the backup taken before the upgrade")


def driver_reason(err: Exception) -> str:
    """The first line of what the database driver said (no SQL, no parameters: a password hash
    was among them)."""
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def url_problem(url: str) -> str | None:
    """What makes a server's URL one SQLAlchemy reads otherwise than meant, or None: its password
    ends at the first @ (one holding an @ was read as part of the host, and the driver's error
    showed the rest of the password), a port that is no number (a traceback)."""
    if "://" not in url or url.startswith("sqlite"):
        return None
    if url.split("?", 1)[0].count("@") > 1:
        return "the URL's user or password holds an @: write it %40 (and a % as %25)"
    try:
        make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return "not a database URL (dialect://user:password@host:port/database)"
    return None


def database_url(database: str) -> str:
    """An SQLAlchemy URL: a plain path means an SQLite file."""
    return database if "://" in database else f"sqlite:///{Path(database).resolve()}"


def _new_private_file(path: Path) -> None:
    """An SQLite database about to be made, made first as an empty file only its owner reads
    (0600): it holds password hashes and two-step secrets, and under the usual umask `serve`'s
    ./maskwatch.db was readable by every account on the machine. SQLite gives its -wal and -shm
    files the database's mode. A file already there keeps its mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        _said_if_shared(path)
    except OSError as err:  # a folder this user cannot write: said here, where SQLite's words were vaguer
        raise DatabaseUnavailable(f"{path}: cannot make the database: {err.strerror or err}") from None


_SAID_SHARED: set[Path] = set()  # the databases said readable by others, once a process


def _said_if_shared(path: Path) -> None:
    """A database that other accounts may read or write is said at its first open, once: one
    made before 2026-12-06 (0644 under the usual umask) kept its mode through the upgrade, and
    with it every account on the machine read the users' password hashes and two-step secrets,
    said only in the upgrade notes. The mode is left as it is (a group may be the admin's choice)."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    allowed = _what_others_may(mode)
    if allowed and path not in _SAID_SHARED:
        _SAID_SHARED.add(path)
        may, so = allowed
        log.warning("%s: other accounts on this machine %s (mode %03o), %s: chmod 600 it (its -wal and -shm too), "
                    "as the account that runs the site", path, may, mode, so)


def _what_others_may(mode: int) -> tuple[str, str] | None:
    """What the other accounts' bits of a database's mode let them do, in words; None for nothing
    (execute alone lets no one read or change a data file)."""
    if mode & 0o006 == 0o006:
        return ("may read and write it", "and with it read the users' password hashes and two-step secrets and "
                "change them (make themselves an admin)")
    if mode & 0o004:
        return "may read it", "and with it the users' password hashes and two-step secrets"
    if mode & 0o002:
        return "may write it", "and with it change the users' password hashes and roles (make themselves an admin)"
    return None


def read_only_engine(path: Path, timeout: float) -> Engine:
    """An engine reading the SQLite file `path` and writing nothing, for `run --check` and `--probe`:
    database_engine's connections turn a file to WAL (its header rewritten). mode=ro opens a database
    in WAL mode by making its -wal and -shm files, kept after the close; immutable=1 reads the file
    alone, which is whole when no -wal is there (a running site's is, and mode=ro then reads
    through it). SQLAlchemy reads it through this connection (no URL of its takes these flags)."""
    from urllib.parse import quote

    from sqlalchemy.pool import NullPool

    running = Path(f"{path}-wal").exists()
    uri = f"file:{quote(str(path))}?{'mode=ro' if running else 'immutable=1'}"
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=timeout),
                         poolclass=NullPool, hide_parameters=True)


def database_engine(url: str, connect_timeout: int | None = None) -> Engine:
    """An engine for `url`; DatabaseUnavailable naming it for a URL no driver takes (a typo in
    the scheme, a driver not installed) or an SQLite file whose folder cannot be made.
    `connect_timeout`: seconds a PostgreSQL server has to answer (None: libpq's, for ever)."""
    shown = shown_database_url(url) if "://" in url else url
    try:
        if not url.startswith("sqlite"):
            waits = {"connect_timeout": connect_timeout} if connect_timeout and make_url(url).get_backend_name() == "postgresql" else {}
            return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=waits)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            _new_private_file(Path(url.removeprefix("sqlite:///")))
        # hide_parameters: an error's text (logs, tracebacks) must not carry a password hash
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
    except (ArgumentError, ImportError) as err:
        hint = ""
        if isinstance(err, ImportError) and "psycopg" in str(err):  # worded as every missing extra
            from maskwatch.extras import install_line

            hint = f"; PostgreSQL needs the postgres extra: {install_line('postgres')}"
        raise DatabaseUnavailable(f"{shown}: not a database URL this install can open: {err}{hint}") from None
    except OSError as err:
        raise DatabaseUnavailable(f"{shown}: cannot make the database's folder: {err.strerror or err}") from None

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # Readers (the API) never block the writers. Turning a new file to WAL needs it alone:
        # SQLite says "locked" at once, without waiting, while another process's migration
        # holds it (hold_database), so the switch is tried again for up to 30 s.
        for attempt in range(600):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or attempt == 599:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=FULL")  # a committed event survives a power cut too
        # The WAL file is cut back to 64 MiB after a checkpoint; a long read had left it at its
        # largest size for good.
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.close()

    return engine
