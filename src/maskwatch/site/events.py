"""Per-person events and per-minute counts in a real database, through one data layer.

An event is one person the tracker has decided (the vote over the track's frames): camera,
zone, track id, voted label and its probability, first and last seen (Unix seconds), and a
snapshot file with the face blurred, or none in privacy mode. Each event is committed on its
own, with its minute's count, before the next: a restart loses no finished event, and counts
carry on from the database.

SQLite by default (one file, WAL, synchronous=FULL); any SQLAlchemy URL otherwise. The schema
is versioned: MIGRATIONS[i] takes a database from version i to i + 1, applied in order at open.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import sqlite3
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np
from sqlalchemy import (Column, Float, Index, Integer, MetaData, String, Table, create_engine, delete, event, func,
                        insert, inspect, literal, select, text, tuple_, union_all, update)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, InterfaceError

from maskwatch.atomic import OutputError, write_bytes
from maskwatch.faces import CLASSES, PERSON_LABELS, UNASSESSABLE, Face
from maskwatch.render import FaceAnnotator, blur_boxes
from maskwatch.runtime import ProblemLog
from maskwatch.site.config import CAMERA_ID
from maskwatch.video.sources import Frame, redact_source

if TYPE_CHECKING:  # annotations only: the tracker brings scipy.optimize (~0.35 s), which no command
    # that only reads or writes the store needs (`maskwatch users ...`, `serve`); cameras import it
    # with their tracker, before their first frame.
    from maskwatch.video.tracker import Track

log = logging.getLogger(__name__)

# PostgreSQL advisory lock keys ("mw"): the events' schema, the users' schema, login attempts, users,
# the scheduled reports' schema (reports.py), the MQTT prefix's record (mqtt_record.py).
MIGRATION_LOCK, AUTH_MIGRATION_LOCK, LOGIN_ATTEMPT_LOCK, USERS_LOCK = 0x6D77_0001, 0x6D77_0002, 0x6D77_0003, 0x6D77_0004
REPORTS_MIGRATION_LOCK, MQTT_MIGRATION_LOCK = 0x6D77_0005, 0x6D77_0006
NO_ZONE = ""  # counts of faces outside every zone (or of cameras without zones)
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}-[0-9]{1,20}\.jpg")  # what record() names a snapshot
UNSTORED_SNAPSHOTS = 100  # people waiting for the database keep their snapshot up to this many
# How far a person's new running vote must lead the label last announced before listeners hear of
# the change (a share of the vote): a face between two labels sent 37 updates in 40 frames.
UPDATE_MARGIN = 0.1
# Seconds a person stays in the in-view counts after their face was last in a frame, while their
# track lives (the tracker's lost_after): a head turned away for 1.2 s took a count 1 -> 0 -> 1.
IN_VIEW_HOLD = 2.0

metadata = MetaData()
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("camera", String(64), nullable=False, index=True),
    Column("zone", String(64), nullable=True),
    Column("track_id", Integer, nullable=False),
    Column("label", String(32), nullable=False),
    Column("probability", Float, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("snapshot", String(255), nullable=True),
)
counts = Table(
    "counts", metadata,
    Column("camera", String(64), primary_key=True),
    Column("zone", String(64), primary_key=True),
    Column("minute", Integer, primary_key=True),  # Unix seconds at the start of the minute
    Column("people", Integer, nullable=False, default=0),  # decided people: the unassessable are apart
    *(Column(label, Integer, nullable=False, default=0) for label in PERSON_LABELS),
)
QUARTER = 900  # seconds: a span that never straddles an hour, a day or a week in any timezone
# The counts summed by quarter hour, kept beside the minutes by record() (schema version 4): a
# month's chart read 15 times fewer rows (benchmarks/site_reads.py); "minute" is the quarter's start.
quarters = Table(
    "counts_by_quarter", metadata,
    Column("camera", String(64), primary_key=True),
    Column("zone", String(64), primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("people", Integer, nullable=False, default=0),
    *(Column(label, Integer, nullable=False, default=0) for label in PERSON_LABELS),
)
COUNT_COLUMNS = ("people", *PERSON_LABELS)


# The reads a long-running site repeats, each a camera's (or a label's) recent rows: without them
# today's counts per camera scanned every row the camera ever kept (at 30 days of 8 cameras x 3
# zones, on every dashboard poll and scrape: 20.2 ms a camera summed in Python, 1.0 ms summed by
# the database over the index; benchmarks/site_reads.py) and a camera's newest events took 18-31
# ms (0.07 ms with its index, as measured in review).
# The events' indexes end in id, the order's tie-break (schema version 5): a page of events after
# a cursor (last_seen, id) is one range of an index, in order, on PostgreSQL too (SQLite's indexes
# carry the rowid, id, anyway; PostgreSQL's did not, and sorted each page's ties).
READ_INDEXES = (Index("counts_by_camera_minute", counts.c.camera, counts.c.minute),
                Index("events_by_last_seen_id", events.c.last_seen, events.c.id),
                Index("events_by_camera_last_seen_id", events.c.camera, events.c.last_seen, events.c.id),
                Index("events_by_label_last_seen_id", events.c.label, events.c.last_seen, events.c.id))
# What version 5's indexes replace (each read they served, the new ones serve).
REPLACED_INDEXES = ("ix_events_last_seen", "events_by_camera_last_seen", "events_by_label_last_seen")


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[events, counts])  # version 1's tables only: later ones migrate


def _add_unassessable_v2(connection: Connection) -> None:
    """Version 2: people too briefly or too small in view to decide are counted apart."""
    if UNASSESSABLE not in {c["name"] for c in inspect(connection).get_columns("counts")}:
        connection.execute(text(f"ALTER TABLE counts ADD COLUMN {UNASSESSABLE} INTEGER NOT NULL DEFAULT 0"))


def _read_indexes_v3(connection: Connection) -> None:
    """Version 3: READ_INDEXES (a database made at version 1 has them already; since version 5
    they are its indexes)."""
    for index in READ_INDEXES:
        index.create(connection, checkfirst=True)


def fill_quarters(connection: Connection) -> None:
    """counts_by_quarter made anew from every minute row: version 4's migration (run again on a
    database set back to an older version), and a benchmark's after writing minute rows by hand."""
    connection.execute(delete(quarters))
    start = (counts.c.minute - counts.c.minute % QUARTER).label("minute")
    summed = (select(counts.c.camera, counts.c.zone, start, *(func.sum(counts.c[name]) for name in COUNT_COLUMNS))
              .group_by(counts.c.camera, counts.c.zone, start))
    connection.execute(insert(quarters).from_select(["camera", "zone", "minute", *COUNT_COLUMNS], summed))


def _quarters_v4(connection: Connection) -> None:
    """Version 4: counts_by_quarter, filled from the minutes kept so far."""
    quarters.create(connection, checkfirst=True)
    fill_quarters(connection)


def _paging_indexes_v5(connection: Connection) -> None:
    """Version 5: the events' indexes end in id (READ_INDEXES), for paging by (last_seen, id)."""
    for index in READ_INDEXES:
        index.create(connection, checkfirst=True)
    for name in REPLACED_INDEXES:
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))


MIGRATIONS = [_create_v1, _add_unassessable_v2, _read_indexes_v3, _quarters_v4, _paging_indexes_v5]


def _distinct_by_index(column: Column, *where):
    """SELECT DISTINCT `column` as one index seek per value (a recursive walk from each value to
    the next greater one), where DISTINCT read every row of the index: the cameras of a month's
    events are a few seeks, not a pass over all of them. `column` must lead an index (events'
    camera, the counts' primary keys), or follow the columns `where` fixes in it (a camera's
    zones: the quarters' key is camera, zone, minute)."""
    walk = select(func.min(column).label("value")).where(*where).cte("walk", recursive=True)
    following = select(func.min(column)).where(column > walk.c.value, *where).scalar_subquery()
    walk = walk.union_all(select(following).where(walk.c.value.is_not(None)))
    return select(walk.c.value).where(walk.c.value.is_not(None))


def _count(connection: Connection, table: Table, camera: str, zone: str, start: int, label: str) -> None:
    """One more person of `label` in the row (camera, zone, start) of a counts table; the
    unassessable are not among the decided `people`."""
    decided = int(label != UNASSESSABLE)
    key = (table.c.camera == camera) & (table.c.zone == zone) & (table.c.minute == start)
    bump = {"people": table.c.people + decided, label: table.c[label] + 1}
    if connection.execute(update(table).where(key).values(**bump)).rowcount == 0:
        connection.execute(insert(table).values(camera=camera, zone=zone, minute=start, people=decided,
                                                **{name: int(name == label) for name in PERSON_LABELS}))


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached, opened or brought to this version's schema (a server down,
    a wrong password, a path that cannot be written, a file that is not a database); the message
    names it, password hidden, with the driver's reason."""


def shown_database_url(url: str) -> str:
    """A database URL as logs and errors show it: its password as ***, and a password in its
    query too (libpq takes postgresql://host/db?password=..., which SQLAlchemy's hide_password
    shows as written)."""
    return redact_source(make_url(url).render_as_string(hide_password=True))


def open_database(url: str, migrate: Callable[[], int]) -> None:
    """Run a store's first migration, where a database that cannot be used shows itself: as
    DatabaseUnavailable with one line, not the driver's traceback."""
    try:
        migrate()
    except (DatabaseError, InterfaceError) as err:
        shown = shown_database_url(url)
        raise DatabaseUnavailable(f"{shown}: cannot open or migrate the database: {driver_reason(err)}") from None


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
        pass
    except OSError as err:  # a folder this user cannot write: said here, where SQLite's words were vaguer
        raise DatabaseUnavailable(f"{path}: cannot make the database: {err.strerror or err}") from None


def stored_among(database: str, cameras: list[str]) -> list[str]:
    """Those of `cameras` with people or counts stored in `database`, read without migrating it
    (`users add` must not upgrade the events' schema): none where it or its tables are not there.
    DatabaseUnavailable where no installed driver opens it."""
    url = database_url(database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return []  # connecting would make the file
    engine = EventStore._connect(url)  # DatabaseUnavailable for a driver not installed, as the store says it
    try:
        with engine.connect() as connection:
            tables = [table for table in (events, quarters) if inspect(connection).has_table(table.name)]
            return [camera for camera in cameras if any(
                connection.execute(select(literal(1)).where(table.c.camera == camera).limit(1)).first()
                for table in tables)]
    finally:
        engine.dispose()


class EventStore:
    """Writes events and counts; reads them back for the API. Safe to share between camera threads."""

    def __init__(self, database: str, snapshots: Path | str | None = None, privacy: bool = False,
                 retention_days: float = 30.0) -> None:
        if retention_days <= 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        self.url = database_url(database)
        self.snapshots = Path(snapshots) if snapshots is not None and not privacy else None
        # Retention deletes the files of old events there in privacy mode too (taken before it was on).
        self._snapshot_folder = Path(snapshots) if snapshots is not None else None
        self.privacy, self.retention_days = privacy, retention_days
        self.engine = self._connect(self.url)
        self._write_lock = threading.Lock()  # one writer at a time: no "database is locked" in SQLite
        self._snapshot_problems = ProblemLog(log, "snapshots cannot be written; people are stored without them",
                                             "snapshots written again")
        open_database(self.url, self.migrate)
        if self.snapshots is not None:
            try:
                # Its owner's only, as the database: faces (a folder already there keeps its mode).
                self.snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as err:
                raise ValueError(f"snapshots folder {self.snapshots}: cannot create it "
                                 f"({err.strerror or err})") from None

    @staticmethod
    def _connect(url: str) -> Engine:
        """An engine for `url`; DatabaseUnavailable naming it for a URL no driver takes (a typo in
        the scheme, a driver not installed) or an SQLite file whose folder cannot be made."""
        shown = shown_database_url(url) if "://" in url else url
        try:
            if not url.startswith("sqlite"):
                return create_engine(url, pool_pre_ping=True, hide_parameters=True)
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                _new_private_file(Path(url.removeprefix("sqlite:///")))
            # hide_parameters: an error's text (logs, tracebacks) must not carry a password hash
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        except (ArgumentError, ImportError) as err:
            hint = ("; PostgreSQL needs pip install 'maskwatch[postgres]'"
                    if isinstance(err, ImportError) and "psycopg" in str(err) else "")
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

    def migrate(self) -> int:
        """Bring the schema to the newest version; the version it is at."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, MIGRATION_LOCK)
            before = apply_migrations(connection, self.url, "events schema", schema_version, MIGRATIONS)
        said_migrated(self.url, "events schema", before, len(MIGRATIONS))
        return len(MIGRATIONS)

    def record(self, camera: str, zone: str | None, track: Track, snapshot: np.ndarray | None = None) -> dict:
        """Store one person (and count it in the minute it was last seen); the event as stored.

        Their label is the tracker's decision: a class, or `unassessable` (probability 0), which
        is counted in its own column and not in `people` (decided people)."""
        if track.label is None:
            raise ValueError(f"track {track.track_id} has no voted label: nothing to record")
        label = track.decision
        row = {"camera": camera, "zone": zone, "track_id": track.track_id, "label": label,
               "probability": round(track.probability, 4),
               "first_seen": track.first_seen, "last_seen": track.last_seen, "frames": track.hits,
               "snapshot": None}
        minute = int(track.last_seen // 60) * 60
        written = None
        try:
            with self._write_lock, self.engine.begin() as connection:
                event_id = connection.execute(insert(events).values(**row)).inserted_primary_key[0]
                if snapshot is not None and self.snapshots is not None:
                    written = self._write_snapshot(f"{camera}-{event_id}.jpg", snapshot)
                    if written is not None:
                        row["snapshot"] = written.name
                        connection.execute(update(events).where(events.c.id == event_id).values(snapshot=row["snapshot"]))
                for table, start in ((counts, minute), (quarters, minute - minute % QUARTER)):
                    _count(connection, table, camera, zone or NO_ZONE, start, label)
        except BaseException:
            if written is not None:  # rolled back: no row names it (PostgreSQL does not reuse the id)
                written.unlink(missing_ok=True)
            raise
        return {"id": event_id, **row}

    def _write_snapshot(self, name: str, snapshot: np.ndarray) -> Path | None:
        """The snapshot's file, or None where it cannot be written (a full or read-only snapshots
        disk): the person is stored without one, said once until snapshots are written again
        (the event was rolled back, and the people behind it waited until the site dropped them)."""
        ok, encoded = cv2.imencode(".jpg", snapshot)
        if not ok:
            return None
        try:
            write_bytes(self.snapshots / name, encoded.tobytes())
        except (OSError, OutputError) as err:
            self._snapshot_problems.failed(f"{self.snapshots}: {getattr(err, 'strerror', None) or err}")
            return None
        self._snapshot_problems.ok()
        return self.snapshots / name

    def events(self, camera: str | None = None, zone: str | None = None, label: str | None = None,
               since: float | None = None, limit: int = 100, cameras: list[str] | None = None,
               until: float | None = None, before: tuple[float, int] | None = None) -> list[dict]:
        """The newest events first (last_seen, then id, descending), filtered; since / until: Unix
        seconds, events last seen at or after `since` and before `until`; cameras: only these (a
        viewer's list); before: a cursor (last_seen, id), the events after it in that order: the
        last event of a page gives the next page, whatever was stored since and whatever ties in
        last_seen (one range of an index, READ_INDEXES)."""
        newest_first = (events.c.last_seen.desc(), events.c.id.desc())
        where = [column == value for column, value in ((events.c.camera, camera), (events.c.zone, zone),
                                                       (events.c.label, label)) if value is not None]
        if since is not None:
            where.append(events.c.last_seen >= since)
        if until is not None:
            where.append(events.c.last_seen < until)
        if before is not None:
            where.append(tuple_(events.c.last_seen, events.c.id) < tuple_(*before))
        if cameras is not None and camera is None and len(set(cameras)) > 1:
            # A viewer's several cameras: each camera's newest `limit`, one range of its index each,
            # merged. camera IN (...) read every event of theirs after the cursor and sorted them,
            # at each page.
            each = [select(select(events).where(*where, events.c.camera == one).order_by(*newest_first)
                           .limit(limit).subquery()) for one in sorted(set(cameras))]
            merged = union_all(*each).subquery()
            query = select(merged).order_by(merged.c.last_seen.desc(), merged.c.id.desc()).limit(limit)
        else:
            if cameras is not None:
                where.append(events.c.camera.in_(cameras))
            query = select(events).where(*where).order_by(*newest_first).limit(limit)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def each_event(self, page: int = 1000, **filters) -> Iterator[dict]:
        """Every event `events(**filters)` finds, newest first, read a page at a time (each page
        its own short read): a month's export of 100k rows is never in memory at once, nor one
        read transaction held while a client downloads it."""
        before = filters.pop("before", None)
        while True:
            rows = self.events(limit=page, before=before, **filters)
            yield from rows
            if len(rows) < page:
                return
            before = (rows[-1]["last_seen"], rows[-1]["id"])

    def counts(self, camera: str | None = None, since: float | None = None, until: float | None = None,
               every: int = 60) -> list[dict]:
        """Counts per camera and zone (zone None: outside every zone), oldest first; since / until:
        Unix seconds, the minutes from `since` and before `until`. every: the rows summed by the
        database into spans of that many seconds ("minute" is then the span's start, a multiple
        of `every`): a month's chart by day read 488k minute rows into Python (4.7 s a call);
        15-minute spans never straddle a day in any timezone."""
        if every % 60 or every <= 0:
            raise ValueError(f"every must be a positive number of whole minutes in seconds, got {every}")
        # Whole quarters are read from their sums (a chart's buckets, a report's days); other spans,
        # or bounds inside a quarter, from the minutes.
        table = quarters if all(t is None or t % QUARTER == 0 for t in (every, since, until)) else counts
        if every == 60:
            query = select(counts).order_by(counts.c.minute, counts.c.camera, counts.c.zone)
        else:
            span = (table.c.minute - table.c.minute % every).label("minute")
            query = (select(table.c.camera, table.c.zone, span,
                            *(func.sum(table.c[name]).label(name) for name in COUNT_COLUMNS))
                     .group_by(table.c.camera, table.c.zone, span).order_by(span, table.c.camera, table.c.zone))
        if camera is not None:
            query = query.where(table.c.camera == camera)
        if since is not None:
            query = query.where(table.c.minute >= int(since // 60) * 60)
        if until is not None:
            query = query.where(table.c.minute < until)
        with self.engine.connect() as connection:
            return [{**row._mapping, "zone": row.zone or None} for row in connection.execute(query)]

    def quarter_sums(self, since: float, cameras: list[str] | None = None, zone: str | None = None) -> list[dict]:
        """The people per quarter hour from `since` (a quarter's start), summed over the cameras
        (None: all) and zones (None: all; a zone: its own) by the database, oldest first: what the
        chart buckets, one row a quarter (at 24 days of 8 cameras x 3 zones, 2,304 rows, not 55,296)."""
        query = (select(quarters.c.minute, *(func.sum(quarters.c[name]).label(name) for name in COUNT_COLUMNS))
                 .where(quarters.c.minute >= since - since % QUARTER)
                 .group_by(quarters.c.minute).order_by(quarters.c.minute))
        if cameras is not None:
            query = query.where(quarters.c.camera.in_(cameras))
        if zone is not None:
            query = query.where(quarters.c.zone == zone)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def stored_cameras(self) -> list[str]:
        """Every camera with people or counts stored, sorted: those of the config and those no
        longer running (removed from it, or `enabled: false`) whose history is still kept."""
        with self.engine.connect() as connection:
            found = {camera for column in (events.c.camera, quarters.c.camera)
                     for camera in connection.execute(_distinct_by_index(column)).scalars()}
        return sorted(found)

    def has_history(self, camera: str) -> bool:
        """Whether any person or count of `camera` is stored (one index seek per table). A name no
        camera can have is not looked up: a NUL in it failed the query on PostgreSQL (the API
        answered 503, the database away, for a fuzzer's camera id)."""
        if not CAMERA_ID.fullmatch(camera):
            return False
        with self.engine.connect() as connection:
            return any(connection.execute(select(literal(1)).where(column == camera).limit(1)).first()
                       for column in (events.c.camera, quarters.c.camera))

    def has_zone(self, zone: str, cameras: list[str] | None = None) -> bool:
        """Whether `zone` has counts stored for any of `cameras` (None: any camera, running or not),
        one seek of the quarters' key (camera, zone, minute) per camera: every stored person is
        counted there, in the quarter retention keeps while it keeps them. The events have no index
        on zone: the same question read every event of the caller's (1 M rows: seconds). A name no
        zone can have (zones are named as cameras are) is not looked up, as in has_history."""
        if not CAMERA_ID.fullmatch(zone):
            return False
        with self.engine.connect() as connection:
            if cameras is None:
                cameras = list(connection.execute(_distinct_by_index(quarters.c.camera)).scalars())
            if not cameras:
                return False
            query = select(literal(1)).where(quarters.c.camera.in_(sorted(set(cameras))), quarters.c.zone == zone)
            return connection.execute(query.limit(1)).first() is not None

    def zones_since(self, since: float, cameras: list[str] | None = None) -> list[str]:
        """The zones with people counted from `since` on `cameras` (None: every camera, running or
        not), sorted: what the chart may be asked of, a zone renamed or removed from the config
        since, or a retired camera's, among them. Per camera, its zones walked on the quarters' key
        (camera, zone, minute) and one seek each for a count from `since`: no pass over the rows."""
        found: set[str] = set()
        with self.engine.connect() as connection:
            if cameras is None:
                cameras = list(connection.execute(_distinct_by_index(quarters.c.camera)).scalars())
            for camera in sorted(set(cameras)):
                zones = _distinct_by_index(quarters.c.zone, quarters.c.camera == camera).subquery()
                counted = select(literal(1)).where(quarters.c.camera == camera, quarters.c.zone == zones.c.value,
                                                   quarters.c.minute >= since - since % QUARTER).exists()
                query = select(zones.c.value).where(zones.c.value != NO_ZONE, counted)
                found.update(connection.execute(query).scalars())
        return sorted(found)

    def last_seen(self, camera: str) -> float | None:
        """When the newest person of `camera` was last seen (Unix seconds); None: none stored."""
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(events.c.last_seen)).where(events.c.camera == camera)).scalar()

    def totals(self, camera: str, since: float) -> dict:
        """A camera's people (decided, and per label) in the minutes from `since`, summed by the
        database: what the dashboard, the metrics and MQTT ask of today at every poll."""
        columns = COUNT_COLUMNS
        query = select(*(func.coalesce(func.sum(counts.c[name]), 0) for name in columns)).where(
            counts.c.camera == camera, counts.c.minute >= int(since // 60) * 60)
        with self.engine.connect() as connection:
            return dict(zip(columns, (int(v) for v in connection.execute(query).one())))

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete events, counts and snapshots older than retention_days; how many events went."""
        cutoff = (time.time() if now is None else now) - self.retention_days * 86400
        with self._write_lock, self.engine.begin() as connection:
            old = connection.execute(select(events.c.snapshot).where(events.c.last_seen < cutoff)).scalars().all()
            connection.execute(delete(events).where(events.c.last_seen < cutoff))
            connection.execute(delete(counts).where(counts.c.minute + 60 <= cutoff))
            # The quarter the cut-off falls in is summed again from the minutes it keeps, so that no
            # deleted minute stays counted in a chart or report.
            edge = int(cutoff // 60 * 60) - int(cutoff // 60 * 60) % QUARTER
            connection.execute(delete(quarters).where(quarters.c.minute <= edge))
            kept = (select(counts.c.camera, counts.c.zone, literal(edge), *(func.sum(counts.c[n]) for n in COUNT_COLUMNS))
                    .where(counts.c.minute >= edge, counts.c.minute < edge + QUARTER)
                    .group_by(counts.c.camera, counts.c.zone))
            connection.execute(insert(quarters).from_select(["camera", "zone", "minute", *COUNT_COLUMNS], kept))
        if self._snapshot_folder is not None:
            failed = []
            for name in old:
                if name and SNAPSHOT_NAME.fullmatch(name):
                    try:
                        (self._snapshot_folder / name).unlink(missing_ok=True)
                    except OSError as err:  # one file's trouble does not keep the others
                        failed.append(f"{name} ({err.strerror or err})")
            if failed:
                log.warning("retention: %d old snapshots could not be deleted, first %s", len(failed), failed[0])
        return len(old)

    def snapshot_path(self, name: str) -> Path | None:
        """The file of a snapshot named in an event (None in privacy mode or for a name `record`
        does not write: only "<camera>-<event id>.jpg" is looked up, so no name leaves the folder
        or is too long for the file system)."""
        if self.snapshots is None or not SNAPSHOT_NAME.fullmatch(name):
            return None
        path = self.snapshots / name
        return path if path.is_file() else None

    def close(self) -> None:
        self.engine.dispose()


def iso_utc(seconds: float | None) -> str | None:
    """Unix seconds as the API and MQTT write a time: ISO 8601 in UTC, to the millisecond."""
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def event_view(row: dict) -> dict:
    """A stored event as /v1/events and MQTT give it: times in ISO 8601 UTC, the snapshot as its
    URL path (MQTT sent Unix seconds and the bare file name, a second shape of one event)."""
    return {**row, "first_seen": iso_utc(row["first_seen"]), "last_seen": iso_utc(row["last_seen"]),
            "snapshot": f"/v1/snapshots/{row['snapshot']}" if row["snapshot"] else None}


# A page's cursor, the (last_seen, id) of its last event: "1764153600.25_1042". The time is
# written exactly (the shortest digits that read back as the same float), so that events tied on
# it are neither skipped nor repeated.
CURSOR = re.compile(r"^(-?[0-9]{1,20}(?:\.[0-9]{1,30})?)_([0-9]{1,19})$")
MAX_ID = 2**63 - 1  # the largest id a database's integer holds


def cursor_of(event: dict, time: str = "last_seen") -> str:
    """The cursor of a stored event (a row, or as event_view gives it with its id and Unix times),
    or of an access-log row (`time` "at")."""
    return f"{np.format_float_positional(event[time], trim='-')}_{event['id']}"


def parse_cursor(value: str, name: str = "before") -> tuple[float, int]:
    """(last_seen, id) of a cursor cursor_of wrote; ValueError naming the form for anything else."""
    found = CURSOR.fullmatch(value)
    if found is None:
        raise ValueError(f"{name} must be a cursor as a page's `next` gives it (such as 1764153600.25_1042); "
                         f"got {value!r}")
    # An id past the largest a database holds reads as that one: the same events follow either.
    return float(found[1]), min(int(found[2]), MAX_ID)


# What a spreadsheet runs as a formula when a cell starts with it (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
EVENT_COLUMNS = ("id", "camera", "zone", "track_id", "label", "probability", "first_seen", "last_seen", "frames",
                 "snapshot")
# events.csv's columns: those of /v1/events as they were (integrators read them by position too),
# then the times on the site's clock, which a spreadsheet reads as dates.
CSV_COLUMNS = (*EVENT_COLUMNS, "first_seen_local", "last_seen_local")


def csv_cell(value):
    """A value as a CSV cell a spreadsheet shows, never runs: text starting like a formula gets a
    leading ' (numbers are written as numbers)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def local_time(seconds: float | None, tz: tzinfo | None) -> str | None:
    """Unix seconds as the site's wall clock shows them (`tz`, None: the machine's), YYYY-MM-DD
    HH:MM:SS: what Excel and LibreOffice read as a date and time (the ISO offset and milliseconds
    they take for text). Cut to the second, not rounded: 23:59:59.7 stays on its day, as the
    chart's and report.csv's days count it."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz).replace(tzinfo=None).isoformat(" ", "seconds")


def events_csv(rows, tz: tzinfo | None) -> Iterator[str]:
    """Stored events (Unix seconds) as CSV text, a header line and then a line per event, as they
    come: an export is written while it is read. The columns of /v1/events (event_view's), then
    first and last seen on the clock of `tz` (the site's timezone)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        view = event_view(row)
        writer.writerow([*(csv_cell(view[column]) for column in EVENT_COLUMNS),
                         local_time(row["first_seen"], tz), local_time(row["last_seen"], tz)])
        if buffer.tell() >= 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def alert_view(alert: dict) -> dict:
    """A compliance alert as the webhooks and MQTT send it: its `at` in ISO 8601 UTC, as every
    time of the events beside it (it went out in Unix seconds)."""
    return {**alert, "at": iso_utc(alert["at"])}


def zone_of(face_box, width: int, height: int, zones: dict[str, list]) -> str | None:
    """The first zone (in config order) holding the centre of `face_box`; None when none does."""
    x = (face_box[0] + face_box[2]) / 2 / width
    y = (face_box[1] + face_box[3]) / 2 / height
    for name, polygon in zones.items():
        if cv2.pointPolygonTest(np.asarray(polygon, np.float32).reshape(-1, 1, 2), (x, y), False) >= 0:
            return name
    return None


@dataclass(frozen=True)
class Listeners:
    """Who hears about a camera's people (alerts, MQTT, a Ray actor's mailbox). Each takes one
    dict and must not block: it runs on the camera's thread."""

    event: Callable[[dict], None] | None = None  # a person's event, once stored
    start: Callable[[dict], None] | None = None  # a person coming into view
    update: Callable[[dict], None] | None = None  # a person in view whose running vote changed label
    in_view: Callable[[dict], None] | None = None  # {"camera", "counts"}: people in view per label, on change


def voted_class(face: Face) -> str | None:
    """A tracked face's running vote: its label, or, while the face is shown in doubt
    (`unassessable`, video.tracker), the class its vote's probabilities favour; None without one.
    A moment's doubt is not news to listeners: neither a change nor a person gone from view."""
    if face.label in CLASSES:
        return face.label
    return CLASSES[int(np.argmax(face.probabilities))] if face.probabilities and any(face.probabilities) else None


def leads(face: Face, vote: str, before: str | None) -> bool:
    """Whether a tracked face's running vote for `vote` leads `before` by UPDATE_MARGIN."""
    if before not in CLASSES or not face.probabilities:
        return True
    shares = dict(zip(CLASSES, face.probabilities))
    return shares[vote] - shares[before] >= UPDATE_MARGIN


class EventSink:
    """The sink a camera's worker writes to: remembers a blurred view of each tracked face and
    records an event for each person the tracker decides (Sink protocol plus write_people).

    recorded keeps the newest `keep_recorded` events as stored (the database keeps them all), so
    a site that runs for months holds a few, not every event since it started; recorded_total
    counts them all.
    """

    def __init__(self, store: EventStore, camera: str, zones: dict[str, list] | None = None,
                 margin: float = 1.0, forget_after: int = 100, listeners: Listeners = Listeners(),
                 keep_recorded: int = 100, keep_unstored: int = 1_000) -> None:
        if keep_recorded < 0:
            raise ValueError(f"keep_recorded must be 0 or more, got {keep_recorded}")
        if keep_unstored < 1:
            raise ValueError(f"keep_unstored must be 1 or more, got {keep_unstored}")
        self.store, self.camera, self.zones, self.margin = store, camera, zones or {}, margin
        self.listeners = listeners  # MQTT, alerts, a Ray actor's mailbox; none may block
        self.announced: dict[int, str | None] = {}  # track id of a person in view -> label last announced
        self.people: dict[int, Track] = {}  # track id of a person in view -> their track (its evidence)
        self.in_view: dict[str, int] | None = None
        self.forget_after = forget_after  # frames: a view of a track gone this long (never a person) is dropped
        self.last_frame: dict[int, int] = {}  # track id -> index of the frame it was last in
        self.annotator = FaceAnnotator(blur=True, show_counts=False)
        self.size: tuple[int, int] | None = None  # width, height of the camera's frames
        self.views: dict[int, tuple[float, np.ndarray]] = {}  # track id -> (face area, blurred snapshot)
        self.zone_frames: dict[int, Counter] = {}  # track id -> detected frames per zone: the person's zone
        self.seen_at: dict[int, float] = {}  # track id of a person in view -> time their face was last shown
        self.recorded: deque[dict] = deque(maxlen=keep_recorded)
        self.recorded_total = 0
        self.unstored: deque[tuple[str | None, Track, np.ndarray | None]] = deque(maxlen=keep_unstored)
        self.unstored_dropped = 0
        self.store_problem: str | None = None  # why people wait unstored, until they are all in

    def write(self, frame: Frame, faces: list[Face], detected: bool) -> None:
        height, width = frame.image.shape[:2]
        self.size = (width, height)
        for face in faces:
            if face.track_id in self.announced:
                self.seen_at[face.track_id] = frame.timestamp
        if not detected:
            # A carried frame repeats the votes, but may hold a person who just became one: with
            # motion gating, a person standing still is only carried until the next full check.
            self._announce_in_view(faces, frame.timestamp)
            return
        self._announce_changes(faces, frame.timestamp)
        for face in faces:
            if face.track_id is None or face.missed:  # a predicted box is no view of the face
                continue
            self.last_frame[face.track_id] = frame.index
            self.zone_frames.setdefault(face.track_id, Counter())[zone_of(face.box, width, height, self.zones)] += 1
            if self.store.privacy:
                continue
            best = self.views.get(face.track_id)
            if best is None or face.area > best[0]:
                self.views[face.track_id] = (face.area, self._snapshot(frame.image, face, faces, frame.hidden))
        for track_id in [t for t, i in self.last_frame.items() if frame.index - i > self.forget_after]:
            self.views.pop(track_id, None)
            self.zone_frames.pop(track_id, None)
            del self.last_frame[track_id]

    def _snapshot(self, image: np.ndarray, face: Face, shown: list[Face] = (), hidden=()) -> np.ndarray:
        """The face with a margin around it, the face blurred and boxed in its class colour; any
        other face of the frame that the margin takes in, shown or `hidden` (boxes), is blurred
        too (a bystander kept sharp on disk would break the privacy statement)."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = face.box
        mx, my = face.width * self.margin, face.height * self.margin
        cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
        cx1, cy1 = min(w, int(x1 + mx) + 1), min(h, int(y1 + my) + 1)
        offset = np.array([cx0, cy0, cx0, cy0], np.float64)
        others = np.array([*(f.box for f in shown if f is not face), *hidden], np.float64).reshape(-1, 4)
        crop = blur_boxes(image[cy0:cy1, cx0:cx1], others - offset)
        moved = Face(box=tuple(float(v) for v in np.array(face.box) - offset), label=face.label,
                     probabilities=face.probabilities)
        return self.annotator.annotate(crop, [moved])

    def _announce_changes(self, faces: list[Face], now: float | None = None) -> None:
        """Tell listeners of people whose running vote changed, and of new counts in view."""
        for face in faces:
            if face.track_id not in self.announced:
                continue
            before, vote = self.announced[face.track_id], voted_class(face)
            if vote is not None and vote != before and leads(face, vote, before):
                self.announced[face.track_id] = vote
                if self.listeners.update is not None:
                    zone = zone_of(face.box, *self.size, self.zones)
                    self.listeners.update({"camera": self.camera, "zone": zone, "track_id": face.track_id,
                                           "label": vote, "before": before})
        self._announce_in_view(faces, now)

    def _in_view_label(self, track_id: int, vote: str | None) -> str | None:
        """The label a person in view is counted under: their vote, or `unassessable` while their
        track holds too few frames of a large enough face to decide on (a far face was counted
        under its vote here and recorded `unassessable` at the end)."""
        track = self.people.get(track_id)
        if vote is not None and track is not None and track.evidence < track.min_evidence:
            return UNASSESSABLE
        return vote

    def _announce_in_view(self, faces: list[Face], now: float | None = None) -> None:
        """Tell listeners how many people are in view per label (their votes), when that changed:
        the people shown, and those shown within IN_VIEW_HOLD seconds of `now` whose track lives on
        (None: nobody is held, the view is empty)."""
        in_view = dict.fromkeys(PERSON_LABELS, 0)
        shown = set()
        for face in faces:  # by the label last announced, so that the counts flap no more than it
            if face.track_id in self.announced and (vote := self.announced[face.track_id] or voted_class(face)):
                in_view[self._in_view_label(face.track_id, vote)] += 1
                shown.add(face.track_id)
        if now is not None:
            for track_id, label in self.announced.items():
                if track_id not in shown and label in CLASSES and now - self.seen_at.get(track_id, -1e18) <= IN_VIEW_HOLD:
                    in_view[self._in_view_label(track_id, label)] += 1
        if in_view != self.in_view:
            self.in_view = in_view
            if self.listeners.in_view is not None:
                self.listeners.in_view({"camera": self.camera, "counts": in_view})

    def nobody_in_view(self) -> None:
        """The camera's tracks all ended (its stream lost, the site stopping): in-view counts go to 0,
        so that a building system does not go on seeing people at a dead camera."""
        self._announce_in_view([])

    def start_people(self, people: list[Track]) -> None:
        for track in people:
            self.announced[track.track_id] = track.label
            self.people[track.track_id] = track
            if self.listeners.start is None:
                continue
            zone = zone_of(track.box, *self.size, self.zones) if self.size else None
            self.listeners.start({"camera": self.camera, "zone": zone, "track_id": track.track_id,
                                  "label": track.label, "first_seen": track.first_seen})

    def write_people(self, people: list[Track]) -> None:
        """Record each person. While the database fails (a server restarting, a locked file),
        the people not stored wait here, oldest first, and go in at the next call; the error is
        raised for the camera to report. At most `keep_unstored` wait (past that the oldest are
        dropped and counted in `unstored_dropped`), and only the first UNSTORED_SNAPSHOTS keep
        their snapshot (a large face's crop is up to about 1 MB). A person the store refuses as bad
        data (ValueError) is logged and passed over, not retried forever ahead of the rest."""
        backlog = len(self.unstored)  # people already waiting: the database failed before
        for track in people:
            view = self.views.pop(track.track_id, None)
            self.last_frame.pop(track.track_id, None)
            self.announced.pop(track.track_id, None)
            self.people.pop(track.track_id, None)
            self.seen_at.pop(track.track_id, None)
            # The zone their face was detected in most often (the first of them on a tie): the
            # last one was where they left the view, a door zone counting people going out.
            seen = self.zone_frames.pop(track.track_id, None)
            zone = seen.most_common(1)[0][0] if seen else zone_of(track.box, *self.size, self.zones) if self.size else None
            if len(self.unstored) == self.unstored.maxlen:
                self.unstored_dropped += 1
            keep_view = view is not None and backlog < UNSTORED_SNAPSHOTS  # capped again if storing fails
            self.unstored.append((zone, track, view[1] if keep_view else None))
        while self.unstored:
            zone, track, snapshot = self.unstored[0]
            try:
                stored = self.store.record(self.camera, zone, track, snapshot)
            except ValueError as err:  # this person's data, not the database: retrying cannot help
                log.error("camera %s: person %s not stored: %s", self.camera, track.track_id, err)
                self.unstored.popleft()
                continue
            except Exception as err:
                self.store_problem = (f"{len(self.unstored)} people wait to be stored: {type(err).__name__}: "
                                      f"{driver_reason(err)}")
                self._cap_waiting_snapshots()
                raise
            self.unstored.popleft()
            self.recorded.append(stored)
            self.recorded_total += 1
            if self.listeners.event is not None:
                self.listeners.event(stored)
        self.store_problem = None

    def _cap_waiting_snapshots(self) -> None:
        """Only the first UNSTORED_SNAPSHOTS people waiting keep their snapshot (up to about 1 MB
        each, a large face's crop): the cap was checked once per hand-out, so 30 people handed out
        beside 99 waiting kept all 129."""
        kept = 0
        for i, (zone, track, snapshot) in enumerate(self.unstored):
            if snapshot is not None:
                kept += 1
                if kept > UNSTORED_SNAPSHOTS:
                    self.unstored[i] = (zone, track, None)

    def close(self) -> None:
        if self.unstored:  # a last try for the people the database refused
            try:
                self.write_people([])
            except Exception as err:  # noqa: BLE001 - closing goes on; what is lost is said
                log.error("camera %s: %d people could not be stored: %s: %s", self.camera, len(self.unstored),
                          type(err).__name__, driver_reason(err))  # one line: not SQLAlchemy's SQL after it
        self.views.clear()
        self.last_frame.clear()
        self.announced.clear()
        self.people.clear()
        self.zone_frames.clear()
        self.seen_at.clear()
