"""Per-person events and per-minute counts in a real database, through one data layer.

An event is one person the tracker has decided (the vote over the track's frames): camera,
zone, track id, voted label and its probability, first and last seen (Unix seconds), and a
snapshot file with the face blurred, or none in privacy mode. Each event is committed on its
own, with its minute's count, before the next: a restart loses no finished event, and counts
carry on from the database. The compliance alerts sent are stored here too (compliance.py),
for the day's list after a restart.

SQLite by default (one file, WAL, synchronous=FULL); any SQLAlchemy URL otherwise. The schema
is versioned: MIGRATIONS[i] takes a database from version i to i + 1, applied in order at open.
What a camera writes here is event_sink.py's; how events are shown, event_views.py's; the
plumbing the other stores share, database.py's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np
from sqlalchemy import (Boolean, Column, Float, Index, Integer, MetaData, String, Table, delete, false, func, insert,
                        inspect, literal, select, text, tuple_, union_all, update)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.schema import CreateTable
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.atomic import OutputError, write_bytes
from maskwatch.faces import PERSON_LABELS, UNASSESSABLE
from maskwatch.runtime import ProblemLog
from maskwatch.site.config import CAMERA_ID
from maskwatch.site.database import (MIGRATION_LOCK, apply_migrations, database_engine, database_url, hold_database,
                                     open_database, said_migrated, stored_number)
from maskwatch.site.full_disk import FullDiskSweep, disk_is_full
from maskwatch.site.infrared import INFRARED, SUMMED_COLUMNS

if TYPE_CHECKING:  # annotations only: the tracker brings scipy.optimize (~0.35 s), which no command
    # that only reads or writes the store needs (`maskwatch users ...`, `serve`); cameras import it
    # with their tracker, before their first frame.
    from maskwatch.video.tracker import Track

log = logging.getLogger(__name__)


class ErasureError(Exception):
    """An erasure that could not be done whole; nothing of it was taken from the database."""

NO_ZONE = ""  # counts of faces outside every zone (or of cameras without zones)
# Seconds between two looks for the snapshot files no event names. Once a process, a file left by a
# power cut, hours old at the restart after it, stayed as long as that process ran: months.
UNNAMED_SWEPT_EVERY = 86400
# Seconds a person's write waits for another process's hold on an SQLite file (30 s elsewhere):
# it holds the site's writer (event_writer), and every camera's people behind it, meanwhile;
# refused, they wait in memory for its next try. When the cameras wrote on their own threads, 30 s
# and a file held 45 s by another process stopped every camera's analysis (each waited its turn
# for the file), and the people who passed then were never seen.
RECORD_WAIT = 2.0
SNAPSHOT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}-[0-9]{1,20}\.jpg")  # what record() names a snapshot
# A snapshot's temporary file while it is written (atomic.atomic_path), left by a process killed then.
PARTIAL_SNAPSHOT = re.compile(r"\.[A-Za-z0-9_-]{1,64}-[0-9]{1,20}\.jpg\.[A-Za-z0-9_]{1,32}\.partial")

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
    # Seen on grey frames more often than not (schema version 8): an auditor tells which of a night's
    # people the counts' `infrared` were. DEFAULT false in the database too, as version 8's ALTER
    # gives it: a process of a version before still running stores its people on.
    Column(INFRARED, Boolean, nullable=False, default=False, server_default=false()),
    # An id is never given again (schema version 6): without it SQLite gave the next one after the
    # largest stored, so a table that retention emptied started again at 1, and a client keeping
    # events by id (or a snapshot by its name) took a new person for one it had.
    sqlite_autoincrement=True,
)
counts = Table(
    "counts", metadata,
    Column("camera", String(64), primary_key=True),
    Column("zone", String(64), primary_key=True),
    Column("minute", Integer, primary_key=True),  # Unix seconds at the start of the minute
    Column("people", Integer, nullable=False, default=0),  # decided people: the unassessable are apart
    *(Column(label, Integer, nullable=False, default=0) for label in PERSON_LABELS),
    # schema version 8; DEFAULT 0 in the database too, as version 8's ALTER gives it: a process of a
    # version before still running on the database writes its counts without it
    Column(INFRARED, Integer, nullable=False, default=0, server_default=text("0")),
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
    Column(INFRARED, Integer, nullable=False, default=0, server_default=text("0")),
)
COUNT_COLUMNS = ("people", *PERSON_LABELS)
# The compliance alerts as they fired (schema version 7), with their rule's min_people (how each
# stands now is judged by its own rule, whatever the config says later): GET /v1/alerts and the
# dashboard read the day's back. Kept in memory before, a restart at 10:00 lost the 08:30 alert.
# Their `infrared` of the `seen` people came with version 8 (0 for the alerts of a database of 7,
# which had the table without them; DEFAULT 0, as the ALTER gives it, so a run of 7 still going
# stores its alerts on).
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", Integer, nullable=False),
    Column("camera", String(64), nullable=False),
    Column("zone", String(64), nullable=True),
    Column("at", Float, nullable=False),  # Unix seconds
    *(Column(name, Float, nullable=False) for name in ("compliance", "compliance_low", "compliance_high", "observed",
                                                       "below")),
    *(Column(name, Integer, nullable=False) for name in ("people", "with_mask", "unassessable")),
    *(Column(name, Integer, nullable=False, server_default=text("0")) for name in (INFRARED, "seen")),
    *(Column(name, Integer, nullable=False) for name in ("minutes", "min_people")),
    Index("alerts_by_at_id", "at", "id"),
    sqlite_autoincrement=True,
)
ALERT_COLUMNS = tuple(column.name for column in alerts.columns if column.name != "id")
# Whole numbers, 0 or more: the Integer columns, `infrared` and `seen` (version 8's) among them
ALERT_COUNTS = tuple(column.name for column in alerts.columns if isinstance(column.type, Integer) and column.name != "id")


def alert_row_problem(row: dict) -> str | None:
    """What is wrong with a stored alert's row (None: nothing): SQLite keeps what a hand or a tool
    writes into a column, a text in a Float one among them."""
    for name in ALERT_COLUMNS:
        value = row.get(name)
        if name == "camera":
            ok = isinstance(value, str) and CAMERA_ID.fullmatch(value) is not None
        elif name == "zone":
            ok = value is None or (isinstance(value, str) and 0 < len(value) <= 64)
        elif name in ALERT_COUNTS:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= (1 if name == "minutes" else 0)
        else:
            ok = stored_number(value) and (
                name != "at" or 0 <= value < 253402214400)  # before 9999-12-31: a date on any clock
        if not ok:
            return f"{name} is {value!r}"
    from maskwatch.site.compliance import ComplianceRule

    try:  # GET /v1/alerts judges each by its own rule: a `below` of 150 made it refuse itself, the list a 500
        ComplianceRule(row["below"], row["minutes"], row["camera"], row["zone"], row["min_people"])
    except ValueError as err:
        return f"its rule is refused: {err}"
    return None


# Since when `alerts` holds every alert: the moment version 7 came to a database that had counted
# people (those of before were in memory only); no row: since ever (a new database).
alerts_kept_since = Table("alerts_kept_since", metadata, Column("since", Float, nullable=False))


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
    has = {c["name"] for c in inspect(connection).get_columns("counts")}  # infrared: from version 7
    summed_columns = [name for name in SUMMED_COLUMNS if name in has]
    start = (counts.c.minute - counts.c.minute % QUARTER).label("minute")
    summed = (select(counts.c.camera, counts.c.zone, start, *(func.sum(counts.c[name]) for name in summed_columns))
              .group_by(counts.c.camera, counts.c.zone, start))
    connection.execute(insert(quarters).from_select(["camera", "zone", "minute", *summed_columns], summed))


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


def _ids_never_reused_v6(connection: Connection) -> None:
    """Version 6: SQLite's events table remade with AUTOINCREMENT (the ids kept), so that no id is
    given twice; PostgreSQL's sequence never gave one twice."""
    if connection.dialect.name != "sqlite":
        return
    made = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")).scalar()
    if "AUTOINCREMENT" in (made or "").upper():  # made at version 1 by this maskwatch
        return
    # The columns the old table has: today's `events` has version 8's `infrared` too (DEFAULT false
    # in the new table), which a database of 5 lacks
    has = {c["name"] for c in inspect(connection).get_columns("events")}
    columns = ", ".join(column.name for column in events.columns if column.name in has)
    connection.execute(text("DROP TABLE IF EXISTS events_v6"))
    connection.execute(text(str(CreateTable(events).compile(dialect=connection.dialect))
                            .replace("CREATE TABLE events", "CREATE TABLE events_v6", 1)))
    connection.execute(text(f"INSERT INTO events_v6 ({columns}) SELECT {columns} FROM events"))
    connection.execute(text("DROP TABLE events"))  # and its indexes, made again below
    connection.execute(text("ALTER TABLE events_v6 RENAME TO events"))
    for index in events.indexes:
        index.create(connection, checkfirst=True)


def _alerts_v7(connection: Connection) -> None:
    """Version 7: the compliance alerts stored; a database with people counted notes since when
    (the alerts of before went with the process that sent them). Tables already there are those of
    an upgrade rolled back by `pg_restore --clean`, which drops the dump's tables alone: their alerts
    went with the rows the restore put back, and the list is whole from now, not from that upgrade."""
    alerts.create(connection, checkfirst=True)
    alerts_kept_since.create(connection, checkfirst=True)
    connection.execute(delete(alerts))
    connection.execute(delete(alerts_kept_since))
    counted = connection.execute(select(literal(1)).select_from(counts).limit(1)).first() is not None
    if counted and connection.execute(select(func.count()).select_from(alerts_kept_since)).scalar() == 0:
        connection.execute(insert(alerts_kept_since).values(since=time.time()))


def _infrared_v8(connection: Connection) -> None:
    """Version 8: the counts' and quarter sums' people seen on grey (infrared) frames (INFRARED),
    an alert's of its `seen` people, and whether each event's person was one; none before, so 0
    and false. Version 7's alerts table had neither: its list and every alert stored after failed
    on "no such column: alerts.infrared"."""
    for table, names in ((counts, (INFRARED,)), (quarters, (INFRARED,)), (alerts, (INFRARED, "seen"))):
        has = {c["name"] for c in inspect(connection).get_columns(table.name)}
        for name in names:
            if name not in has:
                connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0"))
    if INFRARED not in {c["name"] for c in inspect(connection).get_columns("events")}:
        no = "false" if connection.dialect.name == "postgresql" else "0"
        connection.execute(text(f"ALTER TABLE events ADD COLUMN {INFRARED} BOOLEAN NOT NULL DEFAULT {no}"))


MIGRATIONS = [_create_v1, _add_unassessable_v2, _read_indexes_v3, _quarters_v4, _paging_indexes_v5,
              _ids_never_reused_v6, _alerts_v7, _infrared_v8]
# The newest version whose migration alters tables already there on PostgreSQL (version 5's
# indexes, version 8's infrared columns of counts, counts_by_quarter, alerts and events), which PostgreSQL lets
# their owner alone do; version 7 makes tables of its own (the alerts), which CREATE on the schema
# allows: `run --probe` asks ownership only up to it.
ALTERS_TABLES_UNTIL = 8
# From version 5 on, only version 8 alters, and only these (6 changes nothing on PostgreSQL, 7 makes
# its own): the probe asks a database of 5 to 7 their ownership alone (it named schema_version
# too, and said FAILED to a user owning what the start alters).
LATER_ALTERS = (5, ("counts", "counts_by_quarter", "alerts", "events"))


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


def _count(connection: Connection, table: Table, camera: str, zone: str, start: int, label: str,
           infrared: bool = False) -> None:
    """One more person of `label` in the row (camera, zone, start) of a counts table (and of
    INFRARED, one seen on grey frames); the unassessable are not among the decided `people`."""
    decided = int(label != UNASSESSABLE)
    key = (table.c.camera == camera) & (table.c.zone == zone) & (table.c.minute == start)
    bump = {"people": table.c.people + decided, label: table.c[label] + 1, INFRARED: table.c[INFRARED] + int(infrared)}
    if connection.execute(update(table).where(key).values(**bump)).rowcount == 0:
        connection.execute(insert(table).values(camera=camera, zone=zone, minute=start, people=decided,
                                                **{name: int(name == label) for name in PERSON_LABELS},
                                                **{INFRARED: int(infrared)}))


def stored_among(database: str, cameras: list[str], connect_timeout: int | None = None) -> list[str]:
    """Those of `cameras` with people or counts stored in `database`, read without migrating it
    (`users add` must not upgrade the events' schema): none where it or its tables are not there.
    DatabaseUnavailable where no installed driver opens it. `connect_timeout`: database_engine's."""
    url = database_url(database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return []  # connecting would make the file
    engine = database_engine(url, connect_timeout)  # DatabaseUnavailable for a driver not installed, as the store says it
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
                 retention_days: float = 30.0, connect_timeout: int | None = None) -> None:
        """`connect_timeout`: seconds a database server has to answer (database_engine; None: for ever)."""
        if retention_days <= 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        self.url = database_url(database)
        self.snapshots = Path(snapshots) if snapshots is not None and not privacy else None
        # Retention deletes the files of old events there in privacy mode too (taken before it was on).
        self._snapshot_folder = Path(snapshots) if snapshots is not None else None
        self.privacy, self.retention_days = privacy, retention_days
        self.engine = database_engine(self.url, connect_timeout)
        self._write_lock = threading.Lock()  # one writer at a time: no "database is locked" in SQLite
        self._snapshot_problems = ProblemLog(log, "snapshots cannot be written; people are stored without them",
                                             "snapshots written again")
        self._full_disk = FullDiskSweep(self._sweep_full_disk)
        self._snapshot_refused = False  # a snapshot the full disk refused, for record() to sweep after
        self._damaged_alerts_said: set = set()  # the ids of damaged alert rows logged already
        self._unnamed_swept_at: float | None = None  # when the snapshot files no event names were last looked for
        open_database(self.url, self.migrate)
        if self.snapshots is not None:
            try:
                # Its owner's only, as the database: faces (a folder already there keeps its mode).
                self.snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as err:
                raise ValueError(f"snapshots folder {self.snapshots}: cannot create it "
                                 f"({err.strerror or err})") from None

    def migrate(self) -> int:
        """Bring the schema to the newest version; the version it is at."""
        with self._write_lock, self.engine.begin() as connection:
            hold_database(connection, MIGRATION_LOCK)
            before = apply_migrations(connection, self.url, "events schema", schema_version, MIGRATIONS)
        said_migrated(self.url, "events schema", before, len(MIGRATIONS))
        return len(MIGRATIONS)

    def record(self, camera: str, zone: str | None, track: Track, snapshot: bytes | np.ndarray | None = None,
               infrared: bool = False) -> dict:
        """Store one person (and count it in the minute it was last seen); the event as stored.

        Their label is the tracker's decision: a class, or `unassessable` (probability 0), which
        is counted in its own column and not in `people` (decided people). `infrared`: they were
        seen mostly on grey frames, counted in INFRARED too and marked so in their event."""
        if track.label is None:
            raise ValueError(f"track {track.track_id} has no voted label: nothing to record")
        label = track.decision
        row = {"camera": camera, "zone": zone, "track_id": track.track_id, "label": label,
               "probability": round(track.probability, 4),
               "first_seen": track.first_seen, "last_seen": track.last_seen, "frames": track.hits,
               "snapshot": None, INFRARED: bool(infrared)}
        minute = int(track.last_seen // 60) * 60
        written = None
        try:
            with self._write_lock, self._briefly_waiting() as connection:
                event_id = connection.execute(insert(events).values(**row)).inserted_primary_key[0]
                if snapshot is not None and self.snapshots is not None:
                    written = self._write_snapshot(f"{camera}-{event_id}.jpg", snapshot)
                    if written is not None:
                        row["snapshot"] = written.name
                        connection.execute(update(events).where(events.c.id == event_id).values(snapshot=row["snapshot"]))
                for table, start in ((counts, minute), (quarters, minute - minute % QUARTER)):
                    _count(connection, table, camera, zone or NO_ZONE, start, label, infrared)
        except BaseException as err:
            if written is not None:  # rolled back: no row names it (PostgreSQL does not reuse the id)
                written.unlink(missing_ok=True)
            if disk_is_full(err):
                self._full_disk.refused()
            raise
        if self._snapshot_refused:
            self._snapshot_refused = False
            self._full_disk.refused()
        return {"id": event_id, **row}

    @contextlib.contextmanager
    def _briefly_waiting(self) -> Iterator[Connection]:
        """A transaction whose SQLite waits RECORD_WAIT seconds at most for a file another
        process holds (its connection's own wait is restored after it); elsewhere, a plain one."""
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection if self.engine.dialect.name == "sqlite" else None
            waited = raw.execute("PRAGMA busy_timeout").fetchone()[0] if raw is not None else None
            try:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {round(RECORD_WAIT * 1000)}")
                with connection.begin():
                    yield connection
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(waited)}")

    def _write_snapshot(self, name: str, snapshot: bytes | np.ndarray) -> Path | None:
        """The snapshot's file, or None where it cannot be written (a full or read-only snapshots
        disk): the person is stored without one, said once until snapshots are written again
        (the event was rolled back, and the people behind it waited until the site dropped them)."""
        if not isinstance(snapshot, bytes):  # an image, not the JPEG itself (event_sink.jpeg)
            ok, encoded = cv2.imencode(".jpg", snapshot)
            if not ok:
                return None
            snapshot = encoded.tobytes()
        try:
            write_bytes(self.snapshots / name, snapshot)
        except (OSError, OutputError) as err:
            self._snapshot_problems.failed(f"{self.snapshots}: {getattr(err, 'strerror', None) or err}")
            self._snapshot_refused = disk_is_full(err)
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
                            *(func.sum(table.c[name]).label(name) for name in SUMMED_COLUMNS))
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
        query = (select(quarters.c.minute, *(func.sum(quarters.c[name]).label(name) for name in SUMMED_COLUMNS))
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

    def newest_row(self) -> float | None:
        """When the newest person stored was last seen (Unix seconds; None: nothing stored), for
        retention to doubt a clock by which every row is too old. The events alone, read from the
        end of their last_seen index: record() counts each minute with its event, in the minute of
        its last_seen, so no count is newer. max(counts.minute) read every minute row (none of
        their indexes starts with the minute), 73 ms at 30 days of 8 cameras x 3 zones per start."""
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(events.c.last_seen))).scalar()

    def totals(self, camera: str, since: float) -> dict:
        """A camera's people (decided, and per label, and those seen on grey frames) in the minutes
        from `since`, summed by the database: what the dashboard, the metrics and MQTT ask of today
        at every poll."""
        columns = SUMMED_COLUMNS
        query = select(*(func.coalesce(func.sum(counts.c[name]), 0) for name in columns)).where(
            counts.c.camera == camera, counts.c.minute >= int(since // 60) * 60)
        with self.engine.connect() as connection:
            return dict(zip(columns, (int(v) for v in connection.execute(query).one())))

    def record_alert(self, *fired: dict) -> None:
        """Store compliance alerts (each with its rule's min_people), in one transaction."""
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(insert(alerts), [{name: alert[name] for name in ALERT_COLUMNS} for alert in fired])

    def alerts(self, since: float, cameras: list[str] | None = None, limit: int = 1000) -> tuple[list[dict], float]:
        """(the stored compliance alerts fired at or after `since` on `cameras` (None: every camera),
        newest first, at most `limit`; since when the table holds every alert fired: -inf for ever).
        That is the upgrade's time, or the oldest alert stored where it is older: an upgrade under a
        clock set ahead (a week, before NTP pulled it back) noted a time that hid every list until then."""
        query = select(alerts).where(alerts.c.at >= since).order_by(alerts.c.at.desc(), alerts.c.id.desc()).limit(limit)
        if cameras is not None:
            query = query.where(alerts.c.camera.in_(sorted(set(cameras))))
        with self.engine.connect() as connection:
            # One row (the upgrade's); a text written there by hand is passed over, as a damaged alert is
            upgrades = connection.execute(select(alerts_kept_since.c.since)).scalars().all()
            oldest = connection.execute(select(func.min(alerts.c.at))).scalar()
            rows = [dict(row._mapping) for row in connection.execute(query)]
        rows = [row for row in rows if self._readable_alert(row)]
        upgraded = max((at for at in upgrades if stored_number(at)), default=None)
        if upgraded is None:
            return rows, float("-inf")
        return rows, min(upgraded, oldest) if stored_number(oldest) else upgraded

    def _readable_alert(self, row: dict) -> bool:
        """Whether a stored alert's row holds what the list needs: one damaged by hand or a tool (a
        text in `at`, a negative `minutes`) made GET /v1/alerts, and so the page's list, a 500 for the
        whole day. Such a row is left out and named once in the log (the page polls)."""
        problem = alert_row_problem(row)
        if problem and row.get("id") not in self._damaged_alerts_said:
            self._damaged_alerts_said.add(row.get("id"))
            log.warning("stored alert id %s left out of the alerts list: %s (the row was changed outside maskwatch; "
                        "delete it, or restore the database from a backup)", row.get("id"), problem)
        return not problem

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete events, counts, compliance alerts and snapshots older than retention_days; how many events went.

        A full disk refuses the deletes (SQLite writes them to its WAL first): the old events'
        snapshots, the weeks of files that most often filled it, are then deleted first, SQLite's
        WAL folded into the database in the space freed (it could not be, the database unable to
        grow, and kept its 4 MB), and the rows tried again. The site stayed full for good, its
        retention refused every hour while the files it was to delete took the space."""
        now = time.time() if now is None else now
        # On a whole minute, as the counts are kept: the person seen in the minute the cut-off fell
        # in went while the minute's count of them stayed (events.csv and report.csv then disagreed).
        # No row is older than 1970: a cut-off before it (retention_days: 100000, keep all) is 1970,
        # which PostgreSQL's INTEGER minutes hold (they refused it: "integer out of range", hourly).
        cutoff = max((now - self.retention_days * 86400) // 60 * 60, 0.0)
        try:
            old = self._delete_old_rows(cutoff)
        except SQLAlchemyError:
            if self._snapshot_folder is None or not self._delete_snapshots(self._old_snapshots(cutoff)):
                raise
            self._fold_wal()
            old = self._delete_old_rows(cutoff)
        self._delete_snapshots(old)
        if self._unnamed_swept_at is None or not 0 <= now - self._unnamed_swept_at < UNNAMED_SWEPT_EVERY:
            self._unnamed_swept_at = now
            if unnamed := self._unnamed_snapshots(cutoff):
                log.info("retention: %d snapshot files older than retention_days that no event names deleted "
                         "(left by a stop between a snapshot's writing and its event's commit)",
                         self._delete_snapshots(unnamed))
        return len(old)

    def _unnamed_snapshots(self, cutoff: float) -> list[str]:
        """The snapshot files (and temporary ones) last written before `cutoff` that no event
        names: retention goes by the events' rows, and a file whose row never was committed (the
        process killed, the power lost, between the file and the commit) or was deleted by hand
        stayed, a face kept past every retention. Read at a process's first retention, which a clock
        in doubt puts off (runner._clock_doubted), then daily (a scan of the folder: 0.33 s at 100k
        files on a shared 2-core machine); a row's file is written after the person was last seen, so a file
        of a row retention keeps is no older than the cut-off, and each is checked against the rows.
        Only names of cameras with people or counts stored here: any WORD-DIGITS.jpg went, a photo
        kept in the folder or another site's snapshot in a folder the two share."""
        if self._snapshot_folder is None or not self._snapshot_folder.is_dir():
            return []
        ours, old = set(self.stored_cameras()), []
        with os.scandir(self._snapshot_folder) as entries:
            for entry in entries:
                if not (SNAPSHOT_NAME.fullmatch(entry.name) or PARTIAL_SNAPSHOT.fullmatch(entry.name)):
                    continue
                if entry.name.lstrip(".").split(".jpg", 1)[0].rsplit("-", 1)[0] not in ours:
                    continue  # another site's in a shared folder, or someone's photo named as one (IMG-20240101.jpg)
                with contextlib.suppress(OSError):  # gone meanwhile
                    if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        old.append(entry.name)
        named = set()
        with self.engine.connect() as connection:
            for start in range(0, len(old), 500):
                named.update(connection.execute(select(events.c.snapshot).where(
                    events.c.snapshot.in_(old[start:start + 500]))).scalars())
        return [name for name in old if name not in named]

    def _sweep_full_disk(self) -> int:
        """The retention a full disk calls for, SQLite's WAL folded into the database and cut to
        nothing before and after: a WAL keeps its size once grown (about 4 MB, more after
        retention's deletes), room the people waiting can have until it has grown back."""
        self._fold_wal()
        deleted = self.enforce_retention()
        self._fold_wal()
        return deleted

    def _fold_wal(self) -> None:
        """SQLite's WAL checkpointed and truncated (a reader elsewhere may keep part of it; the
        disk may refuse the database's growth: then it stays as it was)."""
        if self.engine.dialect.name != "sqlite":
            return
        with contextlib.suppress(SQLAlchemyError), self._write_lock, self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def _delete_old_rows(self, cutoff: float) -> list[str | None]:
        """The events, counts, alerts and quarter sums before `cutoff` deleted; the events' snapshot names."""
        with self._write_lock, self.engine.begin() as connection:
            old = connection.execute(select(events.c.snapshot).where(events.c.last_seen < cutoff)).scalars().all()
            connection.execute(delete(events).where(events.c.last_seen < cutoff))
            connection.execute(delete(counts).where(counts.c.minute + 60 <= cutoff))
            connection.execute(delete(alerts).where(alerts.c.at < cutoff))
            # The quarter the cut-off falls in is summed again from the minutes it keeps, so that no
            # deleted minute stays counted in a chart or report.
            edge = int(cutoff // 60 * 60) - int(cutoff // 60 * 60) % QUARTER
            connection.execute(delete(quarters).where(quarters.c.minute <= edge))
            kept = (select(counts.c.camera, counts.c.zone, literal(edge), *(func.sum(counts.c[n]) for n in SUMMED_COLUMNS))
                    .where(counts.c.minute >= edge, counts.c.minute < edge + QUARTER)
                    .group_by(counts.c.camera, counts.c.zone))
            connection.execute(insert(quarters).from_select(["camera", "zone", "minute", *SUMMED_COLUMNS], kept))
        return old

    def _old_snapshots(self, cutoff: float) -> list[str]:
        """The snapshot names of the events before `cutoff` (a read: a full disk allows it)."""
        with self.engine.connect() as connection:
            return connection.execute(select(events.c.snapshot).where(events.c.last_seen < cutoff,
                                                                      events.c.snapshot.is_not(None))).scalars().all()

    def _delete_snapshots(self, names: list[str | None]) -> int:
        """Delete the snapshot files `names` (None, and a name `record` does not write, passed
        over); how many there were."""
        deleted, failed = self._unlink_snapshots(names)
        if failed:
            log.warning("retention: %d old snapshots could not be deleted, first %s", len(failed), failed[0])
        return deleted

    def _unlink_snapshots(self, names: list[str | None]) -> tuple[int, list[str]]:
        """(how many of the snapshot files `names` were deleted, each that could not be, with why)."""
        if self._snapshot_folder is None:
            return 0, []
        deleted, failed = 0, []
        for name in names:
            if name and (SNAPSHOT_NAME.fullmatch(name) or PARTIAL_SNAPSHOT.fullmatch(name)):
                try:
                    (self._snapshot_folder / name).unlink()
                    deleted += 1
                except FileNotFoundError:
                    pass
                except OSError as err:  # one file's trouble does not keep the others
                    failed.append(f"{self._snapshot_folder / name} ({err.strerror or err})")
        return deleted, failed

    def in_view(self, since: float, until: float, camera: str | None = None) -> list[dict]:
        """The people in view at any moment from `since` to before `until` (Unix seconds: first
        seen before `until`, last seen at or after `since`), of `camera` (None: every camera),
        oldest first: what a request from a person filmed then reaches (`maskwatch events`). By
        the moments in view, not the last seen alone as /v1/events filters: a person who came in
        at 14:05 and left at 14:20 was filmed at 14:10."""
        where = [events.c.last_seen >= since, events.c.first_seen < until]
        if camera is not None:
            where.append(events.c.camera == camera)
        query = select(events).where(*where).order_by(events.c.first_seen, events.c.id)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def erase(self, since: float, until: float, camera: str | None = None,
              audit: Callable[[int, int], Executable] | None = None) -> tuple[int, int]:
        """Delete the events `in_view` finds and their snapshot files, for a request to erase; (events
        deleted, their snapshot files gone). The files go first: one that cannot be deleted stops it
        (ErasureError) with every row kept, so the same command run again, once the file can go,
        finds it (a row deleted first would leave its face on disk, named by no row, and retention
        goes by rows). The files counted are those the rows name, whichever run deleted them: a run
        again counted only the stuck one, the answer to the person one picture short.
        `audit(events, snapshots)`: the access-log line written in the rows' own transaction, so
        an erasure is never done unrecorded. The per-minute counts are kept (docs/site.md)."""
        found = self.in_view(since, until, camera)
        named = [row["snapshot"] for row in found if row["snapshot"] and SNAPSHOT_NAME.fullmatch(row["snapshot"])]
        deleted, failed = self._unlink_snapshots(named)
        if failed:
            others = (f" ({deleted} other snapshot file{'s' * (deleted != 1)} of theirs {'was' if deleted == 1 else 'were'}, "
                      "counted when it is run again)") if deleted else ""
            raise ErasureError(f"{len(failed)} snapshot file{'s' * (len(failed) != 1)} could not be deleted, first "
                               f"{failed[0]}; nothing erased from the database{others}: fix that, then run it again")
        snapshots = len(named) if self._snapshot_folder is not None else 0
        ids, erased = [row["id"] for row in found], 0
        with self._write_lock, self.engine.begin() as connection:
            for start in range(0, len(ids), 500):  # bound parameters per statement: SQLite's limit
                erased += connection.execute(delete(events).where(events.c.id.in_(ids[start:start + 500]))).rowcount
            if audit is not None:  # retention may have taken some of them meanwhile: those it did not
                connection.execute(audit(erased, snapshots))
        return erased, snapshots

    def snapshot_path(self, name: str) -> Path | None:
        """The file of a snapshot named in an event (None in privacy mode or for a name `record`
        does not write: only "<camera>-<event id>.jpg" is looked up, so no name leaves the folder
        or is too long for the file system)."""
        if self.snapshots is None or not SNAPSHOT_NAME.fullmatch(name):
            return None
        path = self.snapshots / name
        return path if path.is_file() else None

    def close(self) -> None:
        """The full-disk sweep running waited for (10 s at most), then the connections closed."""
        self._full_disk.close()
        self.engine.dispose()
