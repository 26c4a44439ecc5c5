"""A consistent copy of a site, taken while it runs: its SQLite database through SQLite's online
backup API, then the snapshots the copy can name. Copying the .db file alone leaves out what its
-wal file still holds: a site's copy after 40 s of running had no events table at all."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from maskwatch.site.database import database_url, disk_full_note, shown_database_url
from maskwatch.site.events import SNAPSHOT_NAME


class BackupError(RuntimeError):
    """Nothing was copied: the message says why."""


def backup_site(database: str, snapshots: Path | str | None, dest: Path | str) -> tuple[Path, int, int]:
    """Copy `database` (an SQLite file) into the new or empty folder `dest`, then the snapshot
    files of `snapshots` into dest/snapshots; the copy's path, its events and the snapshots copied.
    The database first: every snapshot its rows name is then on disk to copy (unless retention
    deleted it meanwhile)."""
    url = database_url(database)
    if not url.startswith("sqlite:///"):
        shown = shown_database_url(url)
        raise BackupError(f"{shown}: not an SQLite file; back a server database up with its own tools "
                          "(PostgreSQL: pg_dump)")
    source = Path(url.removeprefix("sqlite:///"))
    if not source.is_file():
        raise BackupError(f"{source}: no such database")
    folder = Path(snapshots) if snapshots is not None else None
    if source.name == "snapshots" and folder is not None and folder.is_dir():
        raise BackupError(f"{source}: a database file named snapshots would take the name of the backup's "
                          "snapshots folder; rename it (snapshots.db) and its setting, then back it up")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest}: not an empty folder; a backup goes into a new one")
    # Private, whatever the umask: the copy holds the users' password hashes and two-step login
    # secrets (kept as they are), and the snapshots people's faces. It was 644 in a 755 folder,
    # readable by every account of a machine where the site's own folder is 750.
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy = dest / source.name
    copy.touch(mode=0o600)  # before SQLite writes a byte (its journal takes the file's mode)
    # One read transaction over the whole file (pages=-1): the site's writers go on meanwhile (WAL).
    try:
        with closing(sqlite3.connect(source, timeout=30)) as live, closing(sqlite3.connect(copy)) as target:
            live.backup(target)
            names, events = set(), 0
            if target.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
                names = {row[0] for row in target.execute("SELECT snapshot FROM events WHERE snapshot IS NOT NULL")}
                events = target.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error as err:  # not a database, locked for 30 s, a full disk: no half copy is left
        reason = f"{err}{disk_full_note(dest, str(err))}"
        _remove_copy(copy)
        raise BackupError(f"{source}: cannot copy it to {copy}: {reason}") from None
    copied = 0
    if folder is not None and folder.is_dir():
        try:  # dest may be a folder made beforehand, not by us: only what we wrote is removed
            (dest / "snapshots").mkdir(mode=0o700)
        except OSError as err:  # a full disk (no room for one more folder): the copy is not left alone there
            _remove_copy(copy)
            raise BackupError(f"{dest / 'snapshots'}: cannot make it: {err.strerror or err}; "
                              "nothing was kept") from None
        for name in sorted(names):
            if SNAPSHOT_NAME.fullmatch(name):
                try:
                    shutil.copy2(folder / name, dest / "snapshots" / name)
                    copied += 1
                except FileNotFoundError:  # deleted by retention since, or never written (a full disk)
                    pass
                except OSError as err:  # a full disk, an unreadable file: one line, and no half copy kept
                    shutil.rmtree(dest / "snapshots", ignore_errors=True)
                    _remove_copy(copy)
                    raise BackupError(f"{folder / name}: cannot copy it to {dest / 'snapshots'}: "
                                      f"{err.strerror or err}; nothing was kept") from None
    return copy, events, copied


def _remove_copy(copy: Path) -> None:
    """The copy and the files SQLite keeps beside it: a copy read back in WAL mode (the site's)
    has a -wal and -shm, which a failed backup left in the folder it said held nothing."""
    for path in (copy, *(copy.with_name(copy.name + end) for end in ("-wal", "-shm", "-journal"))):
        path.unlink(missing_ok=True)
