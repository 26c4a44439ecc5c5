"""A site's database copied whole into a new, empty one (`maskwatch copy-database`): SQLite to
PostgreSQL when a site outgrows one file, or back. Every store's tables (events, users, reports,
MQTT) with their rows as they are: the events' ids (API clients sync by id and cursor), password
hashes, two-step secrets, recovery codes, tokens, sessions, the access log, when each report
went; and each id's counter set past the last id the source gave, so that the target never gives
an id again. Nothing of the source is changed."""

from __future__ import annotations

import os
import struct
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import MetaData, String, Table, create_engine, delete, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError, InterfaceError

from maskwatch.site import events as events_schema
from maskwatch.site import mqtt_record, reports
from maskwatch.site.database import (COMMAND_CONNECT_TIMEOUT, MIGRATION_LOCK, MQTT_MIGRATION_LOCK, REPORTS_MIGRATION_LOCK,
                                     apply_migrations, database_engine, database_url,
                                     driver_reason, hold_database, newer_schema_words, shown_database_url,
                                     url_problem)
from maskwatch.video.sources import redact_source

ROWS_AT_ONCE = 1000  # rows read and written per batch: a month's access log is never all in memory
PROGRESS_ROWS = 500_000  # a table's rows copied so far are said each time this many more are (5-10 s)


class CopyError(RuntimeError):
    """Nothing was copied (or what was, rolled back): the message says why."""


@dataclass(frozen=True)
class Store:
    """One store's tables as a site makes them: its schema's name, version table, migrations, lock,
    and the chores its start does besides (tables no version lists)."""

    what: str
    metadata: MetaData
    version_table: Table
    migrations: list
    lock: int
    chores: Callable[[Connection], object] | None = None


# The site's own stores; the users' store (a layer above) is added by security.store.STORES.
SITE_STORES = (
    Store("events schema", events_schema.metadata, events_schema.schema_version, events_schema.MIGRATIONS,
          MIGRATION_LOCK),
    Store("reports schema", reports.metadata, reports.reports_schema_version, reports.MIGRATIONS,
          REPORTS_MIGRATION_LOCK),
    Store("mqtt schema", mqtt_record.metadata, mqtt_record.mqtt_schema_version, mqtt_record.MIGRATIONS,
          MQTT_MIGRATION_LOCK),
)


@dataclass(frozen=True)
class Copied:
    """A table copied: its rows in the source's snapshot and in the target once committed."""

    table: str
    rows: int
    next_id: int | None = None  # the first id the target gives, for a table of ids


def copy_database(source: str, target: str, stores: tuple[Store, ...],
                  said: Callable[[str], object] = lambda line: None) -> tuple[list[Copied], list[str]]:
    """Copy every table of `stores` in `source` into `target`, a database with no tables (an SQLite
    file not there is made); the tables copied, and the source's other tables (left out). One read
    snapshot of the source, one transaction on the target: a failure leaves it as it was. `said`
    takes a line of progress in a big table, which alone takes minutes with nothing to see."""
    source_url, target_url = database_url(source), database_url(target)
    for url in (source_url, target_url):  # as storage.database is checked: a site could not run on it
        if problem := url_problem(url):
            raise CopyError(f"{redact_source(url)}: {problem}")
    if source_url == target_url:
        raise CopyError(f"{shown_database_url(source_url)}: the source and the target are the same database")
    if source_url.startswith("sqlite:///") and not Path(source_url.removeprefix("sqlite:///")).is_file():
        raise CopyError(f"{source_url.removeprefix('sqlite:///')}: no such database")
    pid = sqlite_held_open_by(source_url.removeprefix("sqlite:///")) if source_url.startswith("sqlite:///") else None
    if pid is not None:
        holder = f"process {pid}" if pid > 0 else "a process in another container (PID namespace)"
        raise CopyError(f"{source_url.removeprefix('sqlite:///')}: {holder} has it open (the site, or another "
                        "maskwatch command): stop every maskwatch on it first, or the events it stores after the "
                        "copy are not in the target")
    made = target_url.startswith("sqlite:///") and not Path(target_url.removeprefix("sqlite:///")).exists()
    # An SQLite source as it is: the site's engine would turn a file in another journal mode (an
    # older copy) to WAL, a write.
    source_engine = (create_engine(source_url, connect_args={"timeout": 30}) if source_url.startswith("sqlite")
                     else database_engine(source_url, COMMAND_CONNECT_TIMEOUT))
    target_engine = database_engine(target_url, COMMAND_CONNECT_TIMEOUT)  # a server that never answers: no hang
    try:
        copied, left_out = _copy(source_engine, source_url, target_engine, target_url, stores, said)
    except (DatabaseError, InterfaceError) as err:
        _discard(target_engine, target_url, made)
        raise CopyError(f"the copy from {shown_database_url(source_url)} to {shown_database_url(target_url)} "
                        f"failed, nothing was kept in the target: {driver_reason(err)}") from None
    except BaseException:  # a refusal, Ctrl-C: the target as it was
        _discard(target_engine, target_url, made)
        raise
    finally:
        source_engine.dispose()
    shown = shown_database_url(target_url)
    try:
        return [_checked(target_engine, one, shown) for one in copied], left_out
    except KeyboardInterrupt:  # committed: not "nothing kept", as a Ctrl-C before the commit is
        raise CopyError(f"{shown}: interrupted (Ctrl-C or SIGTERM) while its rows were counted again, after the "
                        "copy was committed: it holds the copy") from None
    finally:
        target_engine.dispose()


def _copy(source_engine: Engine, source_url: str, target_engine: Engine, target_url: str, every: tuple[Store, ...],
          said: Callable[[str], object]):
    shown_source, shown_target = shown_database_url(source_url), shown_database_url(target_url)
    with _snapshot(source_engine) as source:
        if source.dialect.name == "postgresql":
            # A session of another role shows its user but not its kind (NULL) to a role that is
            # no superuser; the server's own workers (autovacuum) have no user.
            others = source.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND pid <> pg_backend_pid() AND (backend_type = 'client backend' "
                                         "OR (backend_type IS NULL AND usesysid IS NOT NULL))")).scalars().all()
            if others:
                raise CopyError(f"{shown_source}: {len(others)} other session(s) on it (process "
                                f"{', '.join(map(str, sorted(others)))} on the server: the site, or another maskwatch "
                                "command): stop every maskwatch on it first, or the events it stores after the "
                                "copy are not in the target")
        there = set(inspect(source).get_table_names())
        stores = [store for store in every if store.version_table.name in there]
        if not stores:
            raise CopyError(f"{shown_source}: no maskwatch tables in it (no events, users, reports or MQTT schema)")
        for store in stores:
            version = source.execute(select(func.max(store.version_table.c.version))).scalar() or 0
            if version > len(store.migrations):
                raise CopyError(f"{shown_source}: {newer_schema_words(store.what, version, len(store.migrations))}")
            if version < len(store.migrations):
                raise CopyError(f"{shown_source}: {store.what} version {version} is older than this maskwatch's "
                                f"({len(store.migrations)}): start the site on it once with this maskwatch (it "
                                "migrates at start), stop it, then copy it")
        if source.dialect.name == "sqlite":  # named before writing: the copy's words named no table or row
            problems = [problem for store in stores for table in store.metadata.sorted_tables if table.name in there
                        for problem in _not_numbers(source, table)]
            if problems:
                raise CopyError(f"{shown_source}: {'; '.join(problems)}: correct or delete those rows in the source "
                                "first; nothing was copied")
        if source.dialect.name == "sqlite" and target_engine.dialect.name == "postgresql":  # named before writing
            problems = [problem for store in stores for table in store.metadata.sorted_tables if table.name in there
                        for problem in _too_long(source, table)]
            if problems:
                raise CopyError(f"{shown_source}: {'; '.join(problems)}: shorten them in the source first; nothing "
                                "was copied")
        ours = {table.name for store in stores for table in store.metadata.tables.values()}
        left_out = sorted(name for name in there - ours if not name.startswith("sqlite_"))
        with target_engine.begin() as target:
            for number, store in enumerate(every):  # hold the target as a site's start would
                if target.dialect.name == "postgresql" or number == 0:
                    hold_database(target, store.lock)
            if found := inspect(target).get_table_names():
                raise CopyError(f"{shown_target}: not empty ({len(found)} tables: {', '.join(sorted(found)[:5])}"
                                f"{', ...' if len(found) > 5 else ''}); the copy goes into a new, empty database")
            copied = []
            for store in stores:
                apply_migrations(target, target_url, store.what, store.version_table, store.migrations)
                if store.chores:
                    store.chores(target)  # its tables no version lists; their rows replaced below
                for table in store.metadata.sorted_tables:
                    if table.name in there:
                        copied.append(_copy_table(source, target, table, said))
    return copied, left_out


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that reads one snapshot of the database until it closes: SQLite's read
    transaction (begun at once: the driver begins none for a SELECT), PostgreSQL's REPEATABLE READ.
    Read only: rolled back."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        else:
            connection.execution_options(isolation_level="REPEATABLE READ").begin()
        try:
            yield connection
        finally:
            connection.rollback()


def _rows_words(source: Connection, table: Table, where, count: int) -> str:
    """"the rows of id 2, 3, 4, ..." : the first three rows of `table` that `where` picks."""
    key = list(table.primary_key.columns) or list(table.columns)[:1]
    first = source.execute(select(*key).where(where).order_by(*key).limit(3)).all()
    rows = ", ".join(str(row[0]) if len(row) == 1 else str(tuple(row)) for row in first)
    return f"row{'s' * (count != 1)} of {', '.join(part.name for part in key)} {rows}{', ...' if count > 3 else ''}"


def _python_type(column) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:  # a type of its own: not a number column
        return None


def _not_numbers(source: Connection, table: Table) -> list[str]:
    """The number columns of `table` holding a text or bytes, in words: SQLite keeps what a hand or a
    tool writes there (`at` = 'garbage'), and the copy then stopped on "could not convert string to
    float: 'garbage'", naming neither the table nor the row."""
    numeric = [column for column in table.columns if _python_type(column) in (int, float)]
    if not numeric:
        return []
    odd = {column: func.typeof(column).in_(("text", "blob")) for column in numeric}
    over = source.execute(select(*(func.count().filter(where) for where in odd.values())).select_from(table)).one()
    return [f"{table.name}.{column.name} holds {count} value{'s' * (count != 1)} that {'are' if count != 1 else 'is'} "
            f"no number (a text or bytes written there by hand or a tool), in the {_rows_words(source, table, odd[column], count)}"
            for column, count in zip(numeric, over) if count]


def _too_long(source: Connection, table: Table) -> list[str]:
    """The columns of `table` holding values longer than their VARCHAR takes, in words: SQLite
    keeps them (an older maskwatch made some: a token's 64-character name in the access log's
    "token:NAME"), PostgreSQL refuses them, and its words named neither the table nor the column."""
    limited = [column for column in table.columns if isinstance(column.type, String) and column.type.length]
    if not limited:
        return []
    over = source.execute(select(*(func.count().filter(func.length(column) > column.type.length)
                                   for column in limited)).select_from(table)).one()
    said = []
    for column, count in zip(limited, over):
        if count:
            key = list(table.primary_key.columns) or [column]
            first = source.execute(select(*key).where(func.length(column) > column.type.length)
                                   .order_by(*key).limit(3)).all()
            rows = ", ".join(str(row[0]) if len(row) == 1 else str(tuple(row)) for row in first)
            said.append(f"{table.name}.{column.name} holds {count} value{'s' * (count != 1)} longer than its "
                        f"{column.type.length} characters, which PostgreSQL refuses (SQLite kept them), in the "
                        f"row{'s' * (count != 1)} of {', '.join(part.name for part in key)} {rows}"
                        f"{', ...' if count > 3 else ''}")
    return said


def _copy_table(source: Connection, target: Connection, table: Table, said: Callable[[str], object]) -> Copied:
    """The rows of `table`, in its key's order, in place of any the migrations made (a version
    table's, a chore's); its id counter past the source's last id."""
    target.execute(delete(table))
    key = list(table.primary_key.columns) or list(table.columns)
    rows = 0
    result = source.execution_options(stream_results=True).execute(select(table).order_by(*key))
    for batch in result.partitions(ROWS_AT_ONCE):
        target.execute(insert(table), [dict(row._mapping) for row in batch])
        rows += len(batch)
        if rows // PROGRESS_ROWS > (rows - len(batch)) // PROGRESS_ROWS:
            said(f"{table.name}: {rows} rows copied so far (committed once every table is)")
    ids = table.autoincrement_column
    if ids is None:
        return Copied(table.name, rows)
    largest = source.execute(select(func.max(ids))).scalar() or 0
    last = max(_last_id(source, table), largest)
    if target.dialect.name == "sqlite" and not table.dialect_options["sqlite"]["autoincrement"]:
        return Copied(table.name, rows, largest + 1)  # SQLite gives the largest id's next there, as before
    _set_last_id(target, table, last)
    return Copied(table.name, rows, last + 1)


def _last_id(connection: Connection, table: Table) -> int:
    """The last id the database gave in `table`, which may be above its largest row's (the newest
    rows deleted: retention, a token revoked); 0 where none is kept."""
    if connection.dialect.name == "sqlite":
        if not inspect(connection).has_table("sqlite_sequence"):
            return 0
        return connection.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :name"),
                                  {"name": table.name}).scalar() or 0
    return connection.execute(text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:name, :column)::regclass)"),
                              {"name": table.name, "column": table.autoincrement_column.name}).scalar() or 0


def _set_last_id(connection: Connection, table: Table, last: int) -> None:
    """The target's next id in `table` is last + 1: PostgreSQL's sequence, SQLite's AUTOINCREMENT counter."""
    if last < 1:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT setval(pg_get_serial_sequence(:name, :column), :last)"),
                           {"name": table.name, "column": table.autoincrement_column.name, "last": last})
    else:
        sequence = Table("sqlite_sequence", MetaData(), autoload_with=connection)
        if not connection.execute(update(sequence).where(sequence.c.name == table.name).values(seq=last)).rowcount:
            connection.execute(insert(sequence).values(name=table.name, seq=last))


def _checked(engine: Engine, copied: Copied, shown: str) -> Copied:
    """`copied` once the target, read again after the commit, holds its rows."""
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(text(f'"{copied.table}"'))).scalar()
    if rows != copied.rows:
        raise CopyError(f"{shown}: {copied.table} holds {rows} rows after the copy, the source {copied.rows}")
    return copied


def _discard(engine: Engine, url: str, made: bool) -> None:
    """An SQLite target this copy made is removed with its -wal and -shm; a server's was rolled back."""
    engine.dispose()
    if made:
        path = Path(url.removeprefix("sqlite:///"))
        for one in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
            one.unlink(missing_ok=True)


# SQLite's unix VFS holds a read lock on this byte of a database's -shm file for as long as a
# connection has it open in WAL mode (its "DMS" lock, 120 + 8 lock slots): a process with the
# site's database open, `run`, `serve` or any of its workers, holds it.
SHM_DMS_BYTE = 128


def sqlite_held_open_by(database: str) -> int | None:
    """The id of another process that has the SQLite `database` open (WAL mode), or None; 0 for a
    process Linux does not number here, one in another PID namespace (a site in another container
    on the same volume: 0 read as "nobody" let the copy go on while it stored events); None on
    systems other than Linux, whose struct flock is not read here."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl  # Unix only

    try:
        fd = os.open(f"{database}-shm", os.O_RDONLY)
    except OSError:  # no -shm: no process has it open in WAL mode
        return None
    try:
        layout = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, length, pid
        asked = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, SHM_DMS_BYTE, 1, 0)
        kind, _, _, _, pid = struct.unpack(layout, fcntl.fcntl(fd, fcntl.F_GETLK, asked))
    except OSError:
        return None
    finally:
        os.close(fd)
    return pid if kind != fcntl.F_UNLCK else None

