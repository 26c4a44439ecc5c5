"""Per-person events and per-minute counts in SQLite (one file, WAL), with snapshots and retention."""

import os
import re
import sqlite3

import cv2
import numpy as np
import pytest
from sqlalchemy import text

from maskwatch import Detector
from maskwatch.site.event_sink import EventSink, Listeners, View, zone_of
from maskwatch.site.events import EventStore
from maskwatch.video.process import FrameProcessor
from maskwatch.video.sources import read_frames
from maskwatch.video.tracker import FaceTracker, Track
from tests.test_detection import make_video

NOW = 1_789_999_980.0  # a fixed Unix time, at the start of a minute (divisible by 60)


def person(track_id, probabilities, first=NOW, last=NOW + 5, box=(10, 10, 40, 40), evidence=4):
    """A person seen in 4 frames, `evidence` of them with a face large enough to decide on."""
    track = Track(track_id, box, first_seen=first, last_seen=last, hits=4, detections=4, evidence=evidence)
    track.probability_sum += np.array(probabilities)
    track.evidence_sum += np.array(probabilities) * bool(evidence)
    return track


def whole_view(image):
    """A view of a face that fills `image`, with no other face in it."""
    from maskwatch.faces import Face

    h, w = image.shape[:2]
    return View(float(w * h), image, Face(box=(0, 0, w, h), label="with_mask"), np.empty((0, 4)))


@pytest.fixture()
def store(tmp_path):
    s = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=7)
    yield s
    s.close()


def test_an_event_is_stored_with_its_vote_and_counted(store):
    event = store.record("door", "inside", person(3, (0.1, 0.8, 0.1)), np.zeros((20, 20, 3), np.uint8))
    assert event["label"] == "without_mask" and event["probability"] == 0.8 and event["track_id"] == 3
    assert event["snapshot"] == f"door-{event['id']}.jpg" and store.snapshot_path(event["snapshot"]).is_file()
    (stored,) = store.events()
    assert stored == event
    (count,) = store.counts()
    assert count == {"camera": "door", "zone": "inside", "minute": int(NOW), "people": 1, "with_mask": 0,
                     "without_mask": 1, "mask_weared_incorrect": 0, "unassessable": 0, "infrared": 0}


def test_the_database_is_one_sqlite_file_in_wal_mode_with_a_schema_version(store, tmp_path):
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    with sqlite3.connect(tmp_path / "site.db") as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (8,)
        raw.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(RuntimeError, match="schema version 99 is newer"):
        EventStore(str(tmp_path / "site.db"))


V5_EVENTS = """CREATE TABLE events (id INTEGER NOT NULL, camera VARCHAR(64) NOT NULL, zone VARCHAR(64),
    track_id INTEGER NOT NULL, label VARCHAR(32) NOT NULL, probability FLOAT NOT NULL, first_seen FLOAT NOT NULL,
    last_seen FLOAT NOT NULL, frames INTEGER NOT NULL, snapshot VARCHAR(255), PRIMARY KEY (id))"""


def as_version_5(path: str) -> None:
    """The SQLite database at `path` as events schema 5 left it: its events table without
    AUTOINCREMENT, its rows kept."""
    with sqlite3.connect(path) as raw:
        raw.execute("ALTER TABLE events RENAME TO events_old")
        raw.execute(V5_EVENTS)
        columns = "id, camera, zone, track_id, label, probability, first_seen, last_seen, frames, snapshot"
        raw.execute(f"INSERT INTO events SELECT {columns} FROM events_old")  # version 8's infrared left behind
        raw.execute("DROP TABLE events_old")
        raw.execute("DELETE FROM schema_version WHERE version >= 6")


@pytest.mark.parametrize("made_at", [6, 5])
def test_an_id_is_never_given_again_once_retention_empties_the_table(tmp_path, made_at):
    """SQLite gave the next id after the largest stored: a site idle for longer than its retention
    had every row deleted, and its next person was id 1 again, with snapshot door-1.jpg, so a
    client that keeps events by id took them for one it had. A version 5 database keeps its ids
    through the upgrade, and its next id is past them."""
    path = str(tmp_path / "site.db")
    first = EventStore(path, tmp_path / "snaps", retention_days=7)
    old = [first.record("door", None, person(n, (0.9, 0.05, 0.05)), np.zeros((20, 20, 3), np.uint8))["id"]
           for n in range(3)]
    first.close()
    if made_at == 5:
        as_version_5(path)
    store = EventStore(path, tmp_path / "snaps", retention_days=7)
    assert [e["id"] for e in store.events()] == old[::-1]  # kept, through the upgrade
    assert store.enforce_retention(now=NOW + 30 * 86400) == 3 and store.events() == []
    new = store.record("door", None, person(9, (0.9, 0.05, 0.05), first=NOW + 31 * 86400, last=NOW + 31 * 86400 + 5),
                       np.zeros((20, 20, 3), np.uint8))
    assert new["id"] > max(old) and new["snapshot"] == f"door-{new['id']}.jpg"
    store.close()
    with sqlite3.connect(path) as raw:  # the paging indexes made again with the table
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_events_camera", "events_by_last_seen_id", "events_by_camera_last_seen_id",
            "events_by_label_last_seen_id"} <= indexes


def test_a_failure_while_the_table_is_remade_leaves_version_5s_table_and_rows(tmp_path, monkeypatch):
    """Version 6 drops the events table for its copy: a full disk then rolls all of it back."""
    import sqlalchemy.exc

    from maskwatch.site import events as events_module
    from maskwatch.site.database import DatabaseUnavailable

    path = str(tmp_path / "site.db")
    first = EventStore(path)
    first.record("door", None, person(1, (0.9, 0.05, 0.05)))
    first.close()
    as_version_5(path)

    def remade_then_full(connection):
        events_module._ids_never_reused_v6(connection)
        raise sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(events_module, "MIGRATIONS", [*events_module.MIGRATIONS[:5], remade_then_full])
    with pytest.raises(DatabaseUnavailable, match="database or disk is full"):
        EventStore(path)
    with sqlite3.connect(path) as raw:
        made = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
        assert "AUTOINCREMENT" not in made and raw.execute("SELECT count(*) FROM events").fetchone() == (1,)
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (5,)
    monkeypatch.undo()
    again = EventStore(path)
    assert [e["track_id"] for e in again.events()] == [1]
    again.close()


def test_an_unassessable_person_is_stored_and_counted_apart_from_the_decided(store):
    store.record("door", None, person(1, (0.9, 0.05, 0.05)))
    event = store.record("door", None, person(2, (0.2, 0.7, 0.1), evidence=0))
    assert event["label"] == "unassessable" and event["probability"] == 0.0
    assert [e["label"] for e in store.events(label="unassessable")] == ["unassessable"]
    (count,) = store.counts()
    assert (count["people"], count["with_mask"], count["without_mask"], count["unassessable"]) == (1, 1, 0, 1)


def test_a_version_1_database_gains_the_unassessable_count_and_keeps_its_rows(tmp_path):
    first = EventStore(str(tmp_path / "site.db"), privacy=True)
    first.record("door", None, person(1, (0.9, 0.05, 0.05)))
    first.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:  # back to version 1's shape
        for index in ("counts_by_camera_minute", "events_by_last_seen_id", "events_by_camera_last_seen_id",
                      "events_by_label_last_seen_id"):
            raw.execute(f"DROP INDEX {index}")
        raw.execute("ALTER TABLE counts DROP COLUMN unassessable")
        raw.execute("DELETE FROM schema_version WHERE version >= 2")
    again = EventStore(str(tmp_path / "site.db"), privacy=True)
    assert [(c["people"], c["with_mask"], c["unassessable"]) for c in again.counts()] == [(1, 1, 0)]
    again.record("door", None, person(2, (0.2, 0.7, 0.1), evidence=0))
    assert [(c["people"], c["unassessable"]) for c in again.counts()] == [(1, 1)]
    again.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:  # and the read indexes of version 3
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"counts_by_camera_minute", "events_by_last_seen_id", "events_by_camera_last_seen_id",
            "events_by_label_last_seen_id"} <= indexes


def test_a_version_4_database_gains_the_paging_indexes_in_place_of_the_old_ones(tmp_path):
    """Version 5: the events' indexes end in id, the paging order's tie-break; those they replace go."""
    first = EventStore(str(tmp_path / "site.db"), privacy=True)
    first.record("door", None, person(1, (0.9, 0.05, 0.05)))
    first.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:  # back to version 4's indexes
        for index in ("events_by_last_seen_id", "events_by_camera_last_seen_id", "events_by_label_last_seen_id"):
            raw.execute(f"DROP INDEX {index}")
        raw.execute("CREATE INDEX ix_events_last_seen ON events (last_seen)")
        raw.execute("CREATE INDEX events_by_camera_last_seen ON events (camera, last_seen)")
        raw.execute("CREATE INDEX events_by_label_last_seen ON events (label, last_seen)")
        raw.execute("DELETE FROM schema_version WHERE version >= 5")
    again = EventStore(str(tmp_path / "site.db"), privacy=True)
    assert [e["track_id"] for e in again.events()] == [1]
    again.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (8,)
    assert {"events_by_last_seen_id", "events_by_camera_last_seen_id", "events_by_label_last_seen_id"} <= indexes
    assert not indexes & {"ix_events_last_seen", "events_by_camera_last_seen", "events_by_label_last_seen"}


def test_a_cameras_totals_are_summed_by_the_database_from_a_time_on(store):
    store.record("door", None, person(1, (0.9, 0.05, 0.05), first=NOW - 86400, last=NOW - 86400))  # yesterday
    store.record("door", None, person(2, (0.9, 0.05, 0.05)))
    store.record("door", "inside", person(3, (0.1, 0.8, 0.1), last=NOW + 70))
    store.record("door", None, person(4, (0.2, 0.7, 0.1), evidence=0))
    store.record("till", None, person(5, (0.9, 0.05, 0.05)))
    assert store.totals("door", since=NOW) == {"people": 2, "with_mask": 1, "without_mask": 1,
                                                "mask_weared_incorrect": 0, "unassessable": 1, "infrared": 0}
    assert store.totals("nowhere", since=NOW) == {"people": 0, "with_mask": 0, "without_mask": 0,
                                                   "mask_weared_incorrect": 0, "unassessable": 0, "infrared": 0}


def test_a_restart_keeps_every_event_and_counts_carry_on(tmp_path):
    first = EventStore(str(tmp_path / "site.db"), privacy=True)
    first.record("door", None, person(1, (0.9, 0.05, 0.05)))
    first.record("door", None, person(2, (0.2, 0.7, 0.1)))
    first.close()
    again = EventStore(str(tmp_path / "site.db"), privacy=True)
    again.record("door", None, person(1, (0.9, 0.05, 0.05), last=NOW + 30))  # same minute, after the restart
    assert [e["track_id"] for e in again.events()] == [1, 2, 1]
    (count,) = again.counts()
    assert (count["people"], count["with_mask"], count["without_mask"], count["zone"]) == (3, 2, 1, None)
    again.close()


def test_filters(store):
    store.record("door", "queue", person(1, (0.9, 0.05, 0.05), last=NOW + 10))
    store.record("door", None, person(2, (0.1, 0.8, 0.1), last=NOW + 70))
    store.record("till", None, person(1, (0.1, 0.1, 0.8), last=NOW + 130))
    assert [e["camera"] for e in store.events(camera="till")] == ["till"]
    assert [e["track_id"] for e in store.events(zone="queue")] == [1]
    assert [e["label"] for e in store.events(label="without_mask")] == ["without_mask"]
    assert [e["last_seen"] for e in store.events(since=NOW + 60)] == [NOW + 130, NOW + 70]
    assert [c["minute"] for c in store.counts(camera="door")] == [NOW, NOW + 60]


def test_counts_are_read_between_since_and_until(store):
    for minutes in (0, 1, 2, 3):
        store.record("door", None, person(minutes, (0.9, 0.05, 0.05), first=NOW + 60 * minutes, last=NOW + 60 * minutes))
    assert [c["minute"] - NOW for c in store.counts(since=NOW + 60, until=NOW + 180)] == [60, 120]


def test_retention_deletes_old_events_counts_and_snapshots(store):
    old = store.record("door", None, person(1, (0.9, 0.05, 0.05), first=NOW - 9 * 86400, last=NOW - 9 * 86400),
                       np.zeros((8, 8, 3), np.uint8))
    store.record("door", None, person(2, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    assert store.enforce_retention(now=NOW) == 1
    assert [e["track_id"] for e in store.events()] == [2]
    assert store.snapshot_path(old["snapshot"]) is None
    assert [c["minute"] for c in store.counts()] == [NOW]


def test_retention_leaves_no_deleted_minute_in_the_quarter_sums(store):
    """A quarter was kept whole until its end passed the cut-off: charts counted up to 14 minutes
    of people already deleted."""
    quarter = NOW - NOW % 900
    for n in range(15):  # a person a minute through one quarter
        at = quarter + 60 * n
        store.record("door", None, person(n, (0.9, 0.05, 0.05), first=at, last=at))
    store.enforce_retention(now=quarter + 420.5 + 7 * 86400)  # retention 7 days: minutes 7 to 14 are kept
    minutes = store.counts()
    assert len(minutes) == 8 and sum(r["people"] for r in store.quarter_sums(0)) == 8
    # and their people: the cut-off falls inside minute 7, whose count stayed while its person, seen
    # at its start, went (report.csv's oldest day said one person more than events.csv)
    assert len(store.events()) == 8


def test_retention_keeps_a_person_seen_over_the_cut_off_s_minute_with_their_count(store):
    """A person in view over several minutes is counted in the minute they were last seen: the
    cut-off inside that minute kept the count and deleted the person. Cut on the minute, the person
    and their count stay together, then go together."""
    minute = NOW - NOW % 60
    store.record("door", None, person(1, (0.9, 0.05, 0.05), first=minute - 150, last=minute + 10))  # over 4 minutes
    day = 7 * 86400  # the store's retention
    store.enforce_retention(now=minute + 40 + day)  # inside the minute last seen in
    assert len(store.events()) == 1 and sum(r["people"] for r in store.counts()) == 1
    store.enforce_retention(now=minute + 60 + day)  # that minute over
    assert store.events() == [] and store.counts() == []


def test_the_newest_row_is_read_from_an_index_not_every_minute(store):
    """The start's clock check read max(counts.minute), every minute row the site kept (73 ms at 30
    days of 8 cameras x 3 zones): the newest event's last_seen, at its index's end, is the newest
    row. Counted in SQLite's VM steps, which grew with the minutes stored."""
    from sqlalchemy import event, insert

    from maskwatch.site.events import counts

    store.record("door", None, person(1, (0.9, 0.05, 0.05), first=NOW, last=NOW + 5))
    with store.engine.begin() as connection:  # a month of minutes of three zones, older than the event
        connection.execute(insert(counts), [{"camera": "door", "zone": zone, "minute": int(NOW) - 60 * n, "people": 1}
                            for zone in ("a", "b", "c") for n in range(1, 10_001)])
    steps = []

    def count_steps(dbapi_connection, *_):
        dbapi_connection.set_progress_handler(lambda: steps.append(1) and 0, 100)

    event.listen(store.engine, "checkout", count_steps)
    try:
        assert store.newest_row() == NOW + 5
    finally:
        event.remove(store.engine, "checkout", count_steps)
    assert len(steps) < 10, f"{len(steps) * 100} VM steps"


def test_retention_deletes_old_snapshot_files_no_event_names(tmp_path):
    """Retention went by the events' rows: a snapshot whose row was never committed (the process
    killed, the power lost, between writing the file and the commit) or was deleted by hand, and a
    temporary file left mid-write, stayed on disk past every retention_days, a face kept for good.
    At its first run a store deletes those older than the window; files the rows name stay, and
    so do files that are no snapshot's."""
    import os
    import time

    now = time.time()
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=30)
    kept = store.record("door", None, person(1, (0.9, 0.05, 0.05), first=now - 10, last=now), np.zeros((8, 8, 3), np.uint8))
    snaps = tmp_path / "snaps"
    for name in ("door-900.jpg", ".door-901.jpg.k3_x9q2a.partial", "door-902.jpg", "notes.txt"):
        (snaps / name).write_bytes(b"\xff\xd8 a face")
    for name, days in ((kept["snapshot"], 40), ("door-900.jpg", 40), (".door-901.jpg.k3_x9q2a.partial", 31),
                       ("door-902.jpg", 29), ("notes.txt", 400)):
        os.utime(snaps / name, (now - days * 86400, now - days * 86400))
    assert store.enforce_retention() == 0
    assert sorted(p.name for p in snaps.iterdir()) == sorted([kept["snapshot"], "door-902.jpg", "notes.txt"])
    store.close()


def test_an_unnamed_snapshot_file_too_young_at_the_start_goes_once_past_the_window_while_the_site_runs(tmp_path):
    """The sweep of unnamed snapshot files ran once a process: a file left by a power cut was hours
    old at the restart that followed, too young, and then stayed as long as that process ran
    (months, for a site restarted by nothing else), a face past every retention_days. It runs daily."""
    import time

    now = time.time()
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=30)
    orphan = tmp_path / "snaps" / "door-7.jpg"  # its event never committed: the power went
    orphan.write_bytes(b"\xff\xd8 a face")
    os.utime(orphan, (now - 3600, now - 3600))
    store.enforce_retention(now)  # the restart's
    assert orphan.is_file()
    store.enforce_retention(now + 3600)  # the hourly ones: no scan of the folder each hour
    later = now + 29 * 86400  # the site stores people on
    store.record("door", None, person(8, (0.9, 0.05, 0.05), first=later - 10, last=later))
    store.enforce_retention(now + 30 * 86400)  # a month on, the same process
    assert not orphan.exists()
    store.close()


def test_the_unnamed_snapshot_sweep_keeps_files_named_for_cameras_this_database_never_had(tmp_path):
    """The sweep deleted every old file whose name looked like a snapshot (any WORD-DIGITS.jpg): in a
    snapshots folder shared with another site (its cameras, its longer retention) or holding
    someone's photos (IMG-20240101.jpg), those went at the first start after the upgrade. It now
    takes only names of cameras with people or counts stored here; this site's own orphans still go."""
    import time

    now = time.time()
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=30)
    kept = store.record("door", None, person(1, (0.9, 0.05, 0.05), first=now - 10, last=now), np.zeros((8, 8, 3), np.uint8))
    snaps = tmp_path / "snaps"
    foreign = ["IMG-20240101.jpg", "gate-3.jpg", ".gate-4.jpg.k3_x9q2a.partial"]
    for name in (*foreign, "door-5.jpg", ".door-6.jpg.k3_x9q2a.partial"):
        (snaps / name).write_bytes(b"\xff\xd8 a picture")
        os.utime(snaps / name, (now - 40 * 86400, now - 40 * 86400))
    store.enforce_retention(now)
    assert sorted(p.name for p in snaps.iterdir()) == sorted([kept["snapshot"], *foreign])
    store.close()


def test_retention_goes_on_past_a_snapshot_it_cannot_delete_and_in_privacy_mode(tmp_path, monkeypatch):
    """One file that would not go (permissions, an I/O error) ended the retention thread, so the
    database grew for good; a site put in privacy mode kept the snapshots it had taken, forever."""
    from pathlib import Path

    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=7)
    names = [store.record("door", None, person(n, (0.9, 0.05, 0.05), first=NOW - 9 * 86400, last=NOW - 9 * 86400),
                          np.zeros((8, 8, 3), np.uint8))["snapshot"] for n in range(3)]
    store.close()
    private = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", privacy=True, retention_days=7)
    unlink = Path.unlink

    def stuck(path, missing_ok=False):
        if path.name == names[0]:
            raise PermissionError(13, "Permission denied")
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", stuck)
    assert private.enforce_retention(now=NOW) == 3 and private.events() == []
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [names[0]]  # the others went
    private.close()


def test_a_person_the_database_refuses_leaves_no_snapshot_behind(store, monkeypatch):
    """The snapshot is written inside the transaction; rolled back, no row names it (PostgreSQL
    does not reuse the id), so it would lie there for good."""
    from sqlalchemy.exc import OperationalError

    from maskwatch.site import events as events_module

    real_update = events_module.update

    def failing(table):
        if table is events_module.counts:
            raise OperationalError("UPDATE counts", {}, Exception("disk I/O error"))
        return real_update(table)

    monkeypatch.setattr(events_module, "update", failing)
    with pytest.raises(OperationalError):
        store.record("door", None, person(1, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    assert store.events() == [] and list((store.snapshots).iterdir()) == []


def test_privacy_mode_keeps_no_snapshot(tmp_path):
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", privacy=True)
    event = store.record("door", None, person(1, (0.9, 0.05, 0.05)), np.zeros((8, 8, 3), np.uint8))
    assert event["snapshot"] is None and not (tmp_path / "snaps").exists()


@pytest.mark.parametrize("name", ["../site.db", ".hidden", "a/b.jpg", "x" * 300 + ".jpg", "nul\0.jpg",
                                  "door-1.jpg\n", "T\u0335o invoke.jpg"])
def test_snapshot_names_cannot_leave_the_folder(store, name):
    assert store.snapshot_path(name) is None


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(ValueError, match="retention_days must be positive"):
        EventStore(str(tmp_path / "x.db"), retention_days=0)
    store = EventStore(str(tmp_path / "x.db"))
    with pytest.raises(ValueError, match="no voted label"):
        store.record("door", None, Track(1, (0, 0, 1, 1), NOW, NOW))


@pytest.mark.parametrize("database, message", [
    ("nosuch://x", "nosuch://x: not a database URL this install can open"),
    ("postgresql+nodriver://user:s3cret@h/db", "postgresql+nodriver://user:***@h/db: not a database URL"),
    ("/proc/no/such/events.db", "cannot make the database's folder"),
])
def test_a_database_that_cannot_be_opened_is_named_in_one_line(database, message):
    from maskwatch.site.database import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match=re.escape(message)) as err:
        EventStore(database)
    assert "s3cret" not in str(err.value)


def test_a_new_sqlite_database_is_its_owners_alone_and_an_old_one_keeps_its_mode(tmp_path):
    """Under the usual umask (022) the database `serve` made was 0644: every account on the machine
    read its password hashes and two-step secrets, and the snapshots folder (755) its faces. SQLite
    gives the -wal file the database's mode."""
    from maskwatch.security.store import AuthStore

    old = os.umask(0o022)
    try:
        store = AuthStore(str(tmp_path / "new.db"))
        store.add_user("ana", "ana's long password", "admin")
        kept = tmp_path / "kept.db"
        kept.touch(mode=0o640)
        EventStore(str(kept), snapshots=str(tmp_path / "snapshots")).migrate()  # opened, written to
    finally:
        os.umask(old)
    assert (tmp_path / "snapshots").stat().st_mode & 0o777 == 0o700  # faces, as the database
    assert (tmp_path / "new.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new.db-wal").stat().st_mode & 0o777 == 0o600
    assert kept.stat().st_mode & 0o777 == 0o640  # an admin's own choice stays


def test_zone_of_uses_the_box_centre():
    zones = {"left": [(0, 0), (0.5, 0), (0.5, 1), (0, 1)], "right": [(0.5, 0), (1, 0), (1, 1), (0.5, 1)]}
    assert zone_of((10, 10, 30, 30), 100, 100, zones) == "left"
    assert zone_of((60, 10, 90, 30), 100, 100, zones) == "right"
    assert zone_of((60, 10, 90, 30), 100, 100, {"left": zones["left"]}) is None


def test_event_sink_records_each_decided_person_with_a_blurred_snapshot(store, tmp_path, sample_dir):
    clip = make_video(tmp_path / "clip.mp4", sample_dir, frames=4)
    sink = EventSink(store, "door", zones={"all": [(0, 0), (1, 0), (1, 1), (0, 1)]})
    tracker = FaceTracker(min_hits=2)
    processor = FrameProcessor(Detector.load(), tracker, detect_every=1)
    frames = list(read_frames(str(clip)))
    for frame in frames:
        faces, detected = processor(frame)
        sink.write(frame, faces, detected)
        sink.write_people(processor.take_finished_people())
    sink.write_people(tracker.flush())
    assert sink.writer.settle()  # stored off this thread, by the writer
    stored = store.events()
    assert stored and len(stored) == len(sink.recorded)
    assert {e["zone"] for e in stored} == {"all"} and all(e["snapshot"] for e in stored)
    assert sum(c["people"] + c["unassessable"] for c in store.counts()) == len(stored)
    assert not set(sink.views) & {e["track_id"] for e in stored}  # a recorded person's view is let go


def test_a_snapshot_blurs_a_bystanders_face_inside_its_margin_too(store):
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 200, 3), np.uint8)  # sharp texture everywhere
    person_face = Face(box=(60, 40, 90, 70), label="with_mask", track_id=1)
    bystander = Face(box=(95, 40, 120, 65), label="without_mask", track_id=2)  # within one face width
    sink = EventSink(store, "door")
    sink.write(Frame(0, NOW, image, "f0"), [person_face, bystander], True)
    view = sink.render(sink.views[1])  # the crop starts at (30, 10): one face of margin
    sharp = image[10:, 30:][45:50, 70:85].astype(float)  # inside the bystander's box, away from its edges
    blurred = view[45:50, 70:85].astype(float)
    assert blurred.std() < sharp.std() / 3


def test_a_growing_face_is_blurred_and_drawn_once_when_the_person_is_stored(store, monkeypatch):
    """A face coming closer is a larger view on most detected frames: each used to be blurred and
    drawn at once, and all but the last thrown away (5 % of a demo site's CPU)."""
    from maskwatch.faces import Face
    from maskwatch.render import FaceAnnotator
    from maskwatch.video.sources import Frame

    drawn = []
    real = FaceAnnotator.annotate
    monkeypatch.setattr(FaceAnnotator, "annotate", lambda self, *args: drawn.append(1) or real(self, *args))
    sink = EventSink(store, "door")
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
    for i in range(6):
        sink.write(Frame(i, NOW + i, image, f"f{i}"), [Face(box=(80 - 5 * i, 80 - 5 * i, 100 + 5 * i, 100 + 5 * i),
                                                            label="with_mask", track_id=1)], True)
    assert drawn == []
    sink.write_people([person(1, (0.9, 0.05, 0.05))])
    assert len(drawn) == 1 and sink.writer.settle()
    (event,) = store.events()
    assert (store.snapshots / event["snapshot"]).stat().st_size > 0


def test_event_sink_forgets_views_of_tracks_that_never_became_people(store, sample_dir):
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    sink = EventSink(store, "door", forget_after=3)
    image = np.zeros((100, 100, 3), np.uint8)
    sink.write(Frame(0, NOW, image, "f0"), [Face(box=(10, 10, 40, 40), label="with_mask", track_id=7)], True)
    assert set(sink.views) == {7}
    for i in range(1, 5):
        sink.write(Frame(i, NOW + i, image, f"f{i}"), [], True)
    assert sink.views == {} and sink.last_frame == {}


class Flaky:
    """The store, refusing while `down` is set (a server restarting, a locked file)."""

    def __init__(self, store):
        self.store, self.down, self.privacy, self.tries = store, True, store.privacy, 0

    def record(self, *args, **kwargs):
        self.tries += 1
        if self.down:
            raise OSError("database is locked")
        return self.store.record(*args, **kwargs)


def waiting_ids(writer, camera="door", snapshots=False):
    """The track ids of `camera`'s people waiting in `writer`, oldest first (with a snapshot only)."""
    with writer._changed:
        return [person.track.track_id for _, person in writer._waiting.get(camera, ())
                if person.snapshot is not None or not snapshots]


def test_people_the_database_refuses_wait_and_go_in_when_it_is_back(store, monkeypatch, caplog):
    from maskwatch.site import event_writer
    from maskwatch.site.event_writer import EventWriter
    from tests.test_cameras import wait_until

    monkeypatch.setattr(event_writer, "RETRY_WAITING", 0.05)
    flaky, heard = Flaky(store), []
    writer = EventWriter(flaky, keep_waiting=3)
    sink = EventSink(flaky, "door", listeners=Listeners(event=heard.append), writer=writer)
    sink.write_people([person(1, (0.9, 0.05, 0.05)), person(2, (0.9, 0.05, 0.05))])
    assert wait_until(lambda: flaky.tries >= 2)  # tried again on the writer's own clock, nobody leaving
    assert store.events() == [] and waiting_ids(writer) == [1, 2] and "database is locked" in sink.store_problem
    flaky.down = False
    sink.write_people([person(3, (0.1, 0.8, 0.1))])  # the waiting ones first, in order
    assert wait_until(lambda: len(heard) == 3)
    assert [e["track_id"] for e in heard] == [1, 2, 3] and len(store.events()) == 3 and sink.store_problem is None
    # Past keep_waiting the oldest are dropped and counted; close() tries once more.
    flaky.down = True
    sink.write_people([person(track_id, (0.9, 0.05, 0.05)) for track_id in (4, 5, 6, 7)])
    left = waiting_ids(writer)  # 5, 6, 7; or 4, 6, 7 where 4 was being tried (never dropped mid-write)
    assert writer.dropped["door"] == 1 and len(left) == 3 and left[1:] == [6, 7]
    assert sink.storing() == {"people_waiting": 3, "people_dropped": 1}  # /v1/cameras and /metrics say them
    flaky.down = False
    assert writer.close() == 0
    assert [e["track_id"] for e in heard] == [1, 2, 3, *left]
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.event_sink"]
    assert "camera door: 3 people wait to be stored: its oldest are dropped from now on, each counted, to keep " \
           "the newest" in said, said
    assert said[-1] == "people dropped unstored while the database was away, past 3 waiting at a camera: camera door: 1"


def test_a_person_refused_as_bad_data_is_passed_over_not_retried_ahead_of_the_rest(store, caplog):
    heard = []
    sink = EventSink(store, "door", listeners=Listeners(event=heard.append))
    unlabelled = Track(8, (10, 10, 40, 40), first_seen=NOW, last_seen=NOW + 1)
    sink.write_people([unlabelled, person(9, (0.9, 0.05, 0.05))])
    assert sink.writer.settle() and [e["track_id"] for e in heard] == [9]
    assert "camera door: person 8 not stored: track 8 has no voted label" in caplog.text
    sink.close()


def test_a_person_failing_by_something_not_the_database_is_stored_without_it_not_retried_ahead_of_all(store,
                                                                                                     caplog):
    """A write failing by something other than the database (OpenCV refusing to encode the
    snapshot) was taken for the database refusing: that person was tried again every 10 s for
    ever, first in line, and nobody of any camera was stored again. Now they are tried at once
    without their snapshot; one failing so too is passed over, said; the rest go in."""
    from maskwatch.site.event_writer import EventWriter, Person

    writer, heard = EventWriter(store), []
    real = store.record

    def record(camera, zone, track, snapshot=None, infrared=False):
        if track.track_id == 3:
            raise TypeError("not a track this store knows")
        return real(camera, zone, track, snapshot, infrared=infrared)

    store.record = record
    unencodable = np.zeros((0, 0, 3), np.uint8)  # cv2.imencode raises cv2.error on it
    for track_id, snapshot in ((1, unencodable), (2, np.zeros((8, 8, 3), np.uint8)), (3, None), (4, None)):
        writer.put(Person("door", None, person(track_id, (0.9, 0.05, 0.05)), snapshot, False, heard.append))
    assert writer.settle(5) and writer.problem is None
    assert [(e["track_id"], bool(e["snapshot"])) for e in heard] == [(1, False), (2, True), (4, False)]
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.event_sink"]
    assert said[0].startswith("camera door: person 1 not stored with their snapshot, tried again without it: error: "), said
    assert said[1:] == ["camera door: person 3 not stored, passed over: TypeError: not a track this store knows"]
    writer.close()


def test_a_person_refused_by_a_held_file_goes_in_once_it_is_free_though_nobody_leaves(store, tmp_path, monkeypatch):
    """A person's write waits 2 s for an SQLite file another process holds (`BEGIN EXCLUSIVE` in
    `sqlite3 site.db`, a copy tool): one refused then waited for the next person to leave, an hour at
    night, then for the camera's next frames (an offline camera: for ever). Now the site's writer
    tries them again every RETRY_WAITING seconds of its own clock, whatever the cameras do."""
    from maskwatch.site import event_writer
    from tests.test_cameras import wait_until

    monkeypatch.setattr(event_writer, "RETRY_WAITING", 0.1)
    monkeypatch.setattr("maskwatch.site.events.RECORD_WAIT", 0.1)
    sink = EventSink(store, "door")
    hold = sqlite3.connect(tmp_path / "site.db", isolation_level=None)
    hold.execute("BEGIN EXCLUSIVE")
    try:
        sink.write_people([person(1, (0.9, 0.05, 0.05))])  # handed over at once: the camera waits on nothing
        assert wait_until(lambda: sink.store_problem is not None), sink.store_problem
        assert "database is locked" in sink.store_problem and store.events() == []
    finally:
        hold.execute("COMMIT")
        hold.close()
    assert wait_until(lambda: store.events() != [])  # no frame, nobody leaving: the writer's own retry
    assert [e["track_id"] for e in store.events()] == [1] and sink.store_problem is None
    sink.close()


def test_five_cameras_on_a_held_file_hand_their_people_to_one_writer_and_wait_for_nothing(store, tmp_path,
                                                                                            monkeypatch):
    """Each camera wrote its own people on its analysis thread: five on an SQLite file another
    process held took turns at its lock, 2 s each, and most analysis stopped. The site's one
    writer does every write, in the order handed out; the cameras' threads never touch the database."""
    import threading

    from maskwatch.site import event_writer
    from maskwatch.site.event_writer import EventWriter
    from tests.test_cameras import wait_until

    monkeypatch.setattr(event_writer, "RETRY_WAITING", 0.1)
    monkeypatch.setattr("maskwatch.site.events.RECORD_WAIT", 0.1)
    writers, real = set(), store.record
    monkeypatch.setattr(store, "record", lambda *args, **kwargs: writers.add(threading.current_thread().name)
                        or real(*args, **kwargs))
    writer = EventWriter(store)
    sinks = [EventSink(store, f"cam{i}", writer=writer) for i in range(5)]
    hold = sqlite3.connect(tmp_path / "site.db", isolation_level=None)
    hold.execute("BEGIN EXCLUSIVE")
    try:
        for i, sink in enumerate(sinks):
            sink.write_people([person(i, (0.9, 0.05, 0.05), first=NOW + i, last=NOW + i + 1)])
        assert wait_until(lambda: all(sink.store_problem for sink in sinks)), [s.store_problem for s in sinks]
        assert all(sink.store_problem == "1 people wait to be stored: OperationalError: database is locked"
                   for sink in sinks)
    finally:
        hold.execute("COMMIT")
        hold.close()
    assert wait_until(lambda: writer.waiting() == 0)
    assert [(e["camera"], e["track_id"]) for e in store.events()][::-1] == [(f"cam{i}", i) for i in range(5)]
    assert writers == {"maskwatch-event-writer"}
    writer.close()


def test_a_listener_failing_does_not_end_the_sites_writer(store, caplog):
    """The listeners of a stored person (MQTT, alerts) run on the site's one writer: one raising
    ended that thread, and no camera's people were stored again, with not a line said."""
    def broken(event):
        raise RuntimeError("broker gone")

    sink = EventSink(store, "door", listeners=Listeners(event=broken))
    sink.write_people([person(1, (0.9, 0.05, 0.05))])
    assert sink.writer.settle()
    sink.write_people([person(2, (0.9, 0.05, 0.05))])
    assert sink.writer.settle() and [e["track_id"] for e in store.events()] == [2, 1]
    assert "camera door: person 1 stored, but telling listeners failed: RuntimeError: broker gone" in caplog.text
    sink.close()


def test_a_stop_stores_everyone_while_the_database_answers_however_slowly(store):
    """A stop gave the people waiting 5 s in all: a database answering each write, only slower
    (a server across a network, an SD card, a queue after an outage), lost the rest at a
    SIGTERM, said as "did not answer". Now it waits while writes go in, `timeout` for each."""
    import time

    from maskwatch.site.event_writer import EventWriter, Person

    real = store.record

    def slow(*args, **kwargs):
        time.sleep(0.1)
        return real(*args, **kwargs)

    store.record = slow
    writer, heard = EventWriter(store), []
    for track_id in range(12):  # 1.2 s of writes at least, each well within the stop's 1 s
        writer.put(Person("door", None, person(track_id, (0.9, 0.05, 0.05)), None, False, heard.append))
    assert writer.close(timeout=1.0) == 0
    assert len(heard) == 12 and len(store.events()) == 12
    # ...within the stop's `total`: a service manager kills a stop that takes longer, unsaid.
    writer = EventWriter(store)
    for track_id in range(100, 140):  # 4 s of writes at least
        writer.put(Person("door", None, person(track_id, (0.9, 0.05, 0.05)), None, False, heard.append))
    lost = writer.close(timeout=1.0, total=1.5)
    assert 0 < lost < 40
    writer._thread.join(5)
    assert len(store.events(limit=100)) - 12 in (40 - lost, 40 - lost + 1)  # (the one in its write at the end)


def test_people_said_lost_at_a_stop_are_not_written_after_it(store, caplog):
    """A stop during a hung write said the people waiting lost and went on (the store closed);
    the writer, once the server answered, stored them all the same, unsaid, after the site's
    `stopped` line, telling MQTT and alerts already stopped."""
    import threading

    from maskwatch.site.event_writer import EventWriter, Person

    hung, real = threading.Event(), store.record

    def hangs(*args, **kwargs):
        hung.wait(5)
        return real(*args, **kwargs)

    store.record = hangs
    writer, heard = EventWriter(store), []
    for track_id in (1, 2, 3):
        writer.put(Person("door", None, person(track_id, (0.9, 0.05, 0.05)), None, False, heard.append))
    assert writer.close(timeout=0.2) == 3
    assert "camera door: 3 people could not be stored: the database did not answer a write for 0.2 s at the stop" \
        in caplog.text
    hung.set()  # the server answers: the one in its write goes in, none after it
    writer._thread.join(5)
    assert not writer._thread.is_alive() and [e["track_id"] for e in store.events()] == [1]
    # ...said, as the stop's count had them among those not stored (the count was one too many, unsaid)
    assert "camera door: person 1 stored after all, in their write when the stop counted them as not stored" \
        in caplog.text
    # A camera whose analysis outlived its stop (its thread joined 10 s at most) hands out one more:
    # said, where it sat in the writer unsaid.
    writer.put(Person("door", None, person(4, (0.9, 0.05, 0.05)), None, False, heard.append))
    assert "camera door: person 4 handed out after the stop, not stored" in caplog.text
    assert writer.waiting() == 0


def test_a_stop_during_a_refused_write_gives_the_people_their_one_more_try(store):
    """A stop that came while a try was being refused took that try for its one more: the people
    were said lost without being tried again, the database back by then."""
    import threading

    import sqlalchemy

    from maskwatch.site.event_writer import EventWriter, Person

    in_write, refuse, real = threading.Event(), threading.Event(), store.record

    def refused_once(*args, **kwargs):
        if not in_write.is_set():
            in_write.set()
            refuse.wait(5)
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    store.record = refused_once
    writer, lost = EventWriter(store), []
    writer.put(Person("door", None, person(1, (0.9, 0.05, 0.05)), None, False, lambda event: None))
    assert in_write.wait(5)
    stop = threading.Thread(target=lambda: lost.append(writer.close()))
    stop.start()
    assert writer._closing.wait(5)  # the stop came during the try
    refuse.set()
    stop.join(10)
    assert lost == [0] and [e["track_id"] for e in store.events()] == [1]


def test_a_writer_held_in_a_listeners_database_read_is_said_hung(store, caplog):
    """MQTT's listener reads today's counts from the database once a person is stored, on the
    writer's thread: a server that hung during that read held the writer as surely as in a
    write, but the writer counted itself idle: no line in the log, no camera's analysis_error,
    while every camera's people waited."""
    import threading
    import time

    from maskwatch.site.event_writer import EventWriter, Person
    from maskwatch.site.stalls import STUCK_SAID_AFTER

    in_read, answer = threading.Event(), threading.Event()

    def counts_read(event):  # MQTT's publish_counts on a server that hangs
        in_read.set()
        answer.wait(10)

    writer = EventWriter(store)
    writer.put(Person("door", None, person(1, (0.9, 0.05, 0.05)), None, False, counts_read))
    assert in_read.wait(5)
    writer.put(Person("door", None, person(2, (0.9, 0.05, 0.05)), None, False, lambda event: None))
    later = time.monotonic() + STUCK_SAID_AFTER
    try:
        problem = writer.problem_of("door", now=later)
        writer.look(now=later)
    finally:
        answer.set()
    assert problem is not None and problem.startswith("1 people wait to be stored: the database has not answered for ")
    assert "the database has not answered a write for " in caplog.text
    assert writer.close() == 0


def test_people_lost_at_the_close_are_one_log_line(store, caplog):
    """SQLAlchemy's error went on with the SQL statement: four lines for one loss."""
    import logging

    import sqlalchemy

    def locked(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT INTO events (camera) VALUES (?)", None,
                                              sqlite3.OperationalError("database is locked"))

    store.record = locked
    sink = EventSink(store, "door")
    sink.write_people([person(1, (0.9, 0.05, 0.05))])
    sink.close()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.event_sink" and r.levelno == logging.ERROR]
    assert said == ["camera door: 1 people could not be stored: OperationalError: database is locked"], said


def test_a_person_waits_for_the_database_with_their_snapshot_as_its_jpeg_not_the_drawn_crop(store, sample_dir,
                                                                                              monkeypatch):
    """A person waiting kept their snapshot as drawn, uncompressed: a near face at a 1080p door
    camera, 900 x 1080 pixels, took 2.9 MB, so a camera's 100 snapshots waiting about 300 MB (a
    whole 4K frame each: 2.5 GB), where the docs said about 1 MB. It waits as the JPEG stored."""
    from tests.test_cameras import wait_until

    monkeypatch.setattr(store, "record", Flaky(store).record)  # down
    sink = EventSink(store, "door")
    photo = cv2.imread(str(sorted((sample_dir / "images").iterdir())[0]))
    crop = cv2.resize(photo, (900, 1080))
    sink.views[1] = whole_view(crop)
    sink.write_people([person(1, (0.9, 0.05, 0.05))])
    assert wait_until(lambda: sink.store_problem is not None)  # refused once: waiting
    with sink.writer._changed:
        [(_, waiting)] = sink.writer._waiting["door"]
    assert isinstance(waiting.snapshot, bytes) and waiting.snapshot[:2] == b"\xff\xd8"  # a JPEG
    assert len(waiting.snapshot) < crop.nbytes / 5, (len(waiting.snapshot), crop.nbytes)
    monkeypatch.undo()  # the database back: the file stored is that JPEG
    assert sink.writer.close() == 0
    (event,) = store.events()
    assert (store.snapshots / event["snapshot"]).read_bytes() == waiting.snapshot


def test_people_waiting_keep_at_most_the_capped_number_of_snapshots(store, monkeypatch):
    """The cap was checked once per hand-out: 30 people handed out beside 99 waiting kept 129."""
    from maskwatch.site import event_sink

    monkeypatch.setattr(event_sink, "UNSTORED_SNAPSHOTS", 5)
    monkeypatch.setattr(store, "record", Flaky(store).record)  # down
    sink = EventSink(store, "door")
    image = np.zeros((8, 8, 3), np.uint8)
    for batch in (range(0, 4), range(4, 12)):  # 4 waiting, then 8 more at once
        for track_id in batch:
            sink.views[track_id] = whole_view(image)
        sink.write_people([person(track_id, (0.9, 0.05, 0.05)) for track_id in batch])
    assert waiting_ids(sink.writer, snapshots=True) == [0, 1, 2, 3, 4] and len(waiting_ids(sink.writer)) == 12
    sink.writer.close(0)


def test_a_snapshot_that_cannot_be_written_costs_the_snapshot_not_the_person(tmp_path, caplog):
    """A full or read-only snapshots disk rolled the event back with it: nobody was stored until
    1,000 waited, then the people with a snapshot were dropped, the rest lost at the stop."""
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    sink = EventSink(store, "door")
    image = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "snaps").rmdir()
    (tmp_path / "snaps").write_text("a file where the folder was")  # every write there fails
    for track_id in (1, 2):
        sink.views[track_id] = whole_view(image)
    sink.write_people([person(1, (0.9, 0.05, 0.05)), person(2, (0.1, 0.8, 0.1))])
    assert sink.writer.settle()
    assert [(e["track_id"], e["snapshot"]) for e in store.events()] == [(2, None), (1, None)]
    said = [r.getMessage() for r in caplog.records if "snapshots cannot be written" in r.getMessage()]
    assert len(said) == 1 and str(tmp_path / "snaps") in said[0]
    (tmp_path / "snaps").unlink()
    (tmp_path / "snaps").mkdir()
    assert store.record("door", None, person(3, (0.9, 0.05, 0.05)), image)["snapshot"] == "door-3.jpg"
    store.close()


def test_a_face_the_detector_missed_is_no_view_of_the_person(store):
    """A tracked person shown at its predicted box through a missed detection (Face.missed) is
    not a snapshot candidate, however large the predicted box."""
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    sink = EventSink(store, "door")
    image = np.zeros((100, 100, 3), np.uint8)
    sink.write(Frame(0, NOW, image, "f0"), [Face(box=(10, 10, 40, 40), label="with_mask", track_id=7)], True)
    kept = sink.views[7]
    sink.write(Frame(2, NOW + 1, image, "f2"), [Face(box=(5, 5, 60, 60), label="with_mask", track_id=7, missed=True)],
               True)
    assert sink.views[7] is kept and sink.last_frame[7] == 0


def test_event_sink_announces_vote_changes_and_people_in_view(store):
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    updates, in_view = [], []
    sink = EventSink(store, "door", zones={"left": [(0, 0), (0.5, 0), (0.5, 1), (0, 1)]},
                     listeners=Listeners(update=updates.append,
                                         in_view=lambda view: in_view.append((view["camera"], view["counts"]))))
    image = np.zeros((100, 100, 3), np.uint8)
    box = (10, 10, 40, 40)

    def frame(i, label, detected=True, track_id=3):
        sink.write(Frame(i, NOW + i, image, f"f{i}"), [Face(box=box, label=label, track_id=track_id)], detected)

    frame(0, "with_mask")  # not a person yet: nothing to tell
    assert updates == [] and in_view[-1] == ("door", {"with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0})
    sink.start_people([person(3, [0.9, 0.05, 0.05], box=box)])
    frame(1, "with_mask")
    assert updates == [] and in_view[-1][1]["with_mask"] == 1
    frame(2, "mask_weared_incorrect", detected=False)  # carried frames repeat the vote: no news
    assert updates == []
    frame(3, "mask_weared_incorrect")
    assert updates == [{"camera": "door", "zone": "left", "track_id": 3, "label": "mask_weared_incorrect",
                        "before": "with_mask"}]
    assert in_view[-1][1] == {"with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 1, "unassessable": 0}
    calls = len(in_view)
    frame(4, "mask_weared_incorrect")  # same counts: not repeated
    assert len(in_view) == calls and len(updates) == 1
    # Shown in doubt (a sure detection of another class, video.tracker): the vote has not changed.
    sink.write(Frame(5, NOW + 5, image, "f5"), [Face(box=box, label="unassessable", track_id=3,
                                                     probabilities=(0.3, 0.1, 0.6))], True)
    assert len(in_view) == calls and len(updates) == 1
    sink.write_people([person(3, [0.1, 0.1, 0.8], box=box)])
    frame(6, "mask_weared_incorrect")  # the person's event is stored; the same id is no longer a person in view
    assert in_view[-1][1]["mask_weared_incorrect"] == 0 and len(updates) == 1


def test_when_a_cameras_tracks_all_end_its_in_view_counts_go_to_zero(store):
    """A lost stream or a stopping site ends every track: retained MQTT counts must not go on
    showing people at a dead camera."""
    from maskwatch.faces import Face
    from maskwatch.video.loop import end_tracks
    from maskwatch.video.sources import Frame

    in_view = []
    sink = EventSink(store, "door", listeners=Listeners(in_view=lambda view: in_view.append(view["counts"])))
    sink.start_people([person(3, [0.1, 0.85, 0.05])])
    sink.write(Frame(0, NOW, np.zeros((100, 100, 3), np.uint8), "f0"),
               [Face(box=(10, 10, 40, 40), label="without_mask", track_id=3)], True)
    assert in_view[-1]["without_mask"] == 1

    class Flushed:
        def flush_people(self, ended=False):
            return [person(3, [0.1, 0.85, 0.05])]

    end_tracks(Flushed(), [sink])
    assert in_view[-1] == {"with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0}
    assert sink.writer.settle() and [e["track_id"] for e in store.events()] == [3]


def test_a_persons_zone_is_where_their_face_was_seen_most_and_a_wavering_vote_is_no_news(store):
    """The event went to the zone of the last detection (a door zone counted people going out), and
    a face between two labels sent an update at almost every frame (37 in 40)."""
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    updates = []
    sink = EventSink(store, "door", zones={"queue": [(0, 0), (0.5, 0), (0.5, 1), (0, 1)],
                                           "exit": [(0.5, 0), (1, 0), (1, 1), (0.5, 1)]},
                     listeners=Listeners(update=updates.append))
    image = np.zeros((100, 200, 3), np.uint8)
    sink.start_people([person(3, [0.52, 0.48, 0.0], box=(10, 10, 40, 40))])
    for i in range(8):  # in the queue, the vote wavering either side of a half
        shares = (0.52, 0.48, 0.0) if i % 2 else (0.48, 0.52, 0.0)
        label = "with_mask" if i % 2 else "without_mask"
        sink.write(Frame(i, NOW + i, image, f"f{i}"), [Face(box=(10 + i, 10, 40 + i, 40), label=label,
                                                            probabilities=shares, track_id=3)], True)
    assert updates == []
    sink.write(Frame(8, NOW + 8, image, "f8"), [Face(box=(150, 10, 180, 40), label="without_mask",
                                                      probabilities=(0.2, 0.8, 0.0), track_id=3)], True)
    assert [(u["label"], u["zone"]) for u in updates] == [("without_mask", "exit")]  # a real change, where they are
    sink.write_people([person(3, [0.2, 0.8, 0.0], box=(150, 10, 180, 40))])  # last seen at the exit
    assert sink.writer.settle()
    (event,) = store.events()
    assert event["zone"] == "queue"


def test_a_person_briefly_unseen_stays_in_the_in_view_counts(store):
    """A head turned away for 1.2 s took the count 1 -> 0 -> 1 (retained MQTT flapping)."""
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    counts = []
    sink = EventSink(store, "door", listeners=Listeners(in_view=lambda view: counts.append(view["counts"]["with_mask"])))
    image = np.zeros((100, 100, 3), np.uint8)
    sink.start_people([person(3, [0.9, 0.05, 0.05])])
    face = [Face(box=(10, 10, 40, 40), label="with_mask", track_id=3)]
    for i, (at, shown) in enumerate([(0.0, face), (0.5, face), (1.0, []), (1.7, []), (2.2, face), (5.0, [])]):
        sink.write(Frame(i, NOW + at, image, f"f{i}"), shown, True)
    assert counts == [1, 0]  # held through 1.2 s unseen; gone 2.8 s after the last sight


def test_a_person_too_small_to_decide_is_in_view_as_unassessable_until_their_face_is_large_enough(store):
    """A far face was counted under its running vote in MQTT's in-view counts, and recorded
    `unassessable` at the end: the counts now say what the event will."""
    from maskwatch.faces import Face
    from maskwatch.video.sources import Frame

    counts = []
    sink = EventSink(store, "door", listeners=Listeners(in_view=lambda view: counts.append(view["counts"])))
    far = person(3, [0.1, 0.85, 0.05], evidence=0)
    sink.start_people([far])
    face = [Face(box=(10, 10, 40, 40), label="without_mask", track_id=3)]
    sink.write(Frame(0, NOW, np.zeros((100, 100, 3), np.uint8), "f0"), face, True)
    assert (counts[-1]["without_mask"], counts[-1]["unassessable"]) == (0, 1)
    far.evidence = far.min_evidence  # it came near: three frames of a large enough face
    sink.write(Frame(1, NOW + 0.5, np.zeros((100, 100, 3), np.uint8), "f1"), face, True)
    assert (counts[-1]["without_mask"], counts[-1]["unassessable"]) == (1, 0)
    sink.write(Frame(2, NOW + 5, np.zeros((100, 100, 3), np.uint8), "f2"), [], True)
    assert sum(counts[-1].values()) == 0


def test_in_view_counts_go_to_zero_even_when_storing_the_people_fails(store, monkeypatch):
    from maskwatch.faces import Face
    from maskwatch.video.loop import end_tracks
    from maskwatch.video.sources import Frame

    in_view = []
    sink = EventSink(store, "door", listeners=Listeners(in_view=lambda view: in_view.append(view["counts"])))
    sink.start_people([person(3, [0.1, 0.85, 0.05])])
    sink.write(Frame(0, NOW, np.zeros((100, 100, 3), np.uint8), "f0"),
               [Face(box=(10, 10, 40, 40), label="without_mask", track_id=3)], True)

    class Flushed:
        def flush_people(self, ended=False):
            return [person(3, [0.1, 0.85, 0.05])]

    import sqlalchemy

    def locked(*args, **kwargs):  # the database away as the stream is lost
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "record", locked)
    end_tracks(Flushed(), [sink])  # the person waits in the writer: the camera hears nothing of it
    assert in_view[-1] == {"with_mask": 0, "without_mask": 0, "mask_weared_incorrect": 0, "unassessable": 0}
    assert sink.writer.waiting("door") == 1
    sink.writer.close(0)


def test_counts_summed_into_spans_by_the_database_give_the_same_charts_in_any_timezone(store):
    """The chart reads 15-minute spans summed by the database, not every minute row: every zone's
    offset is a multiple of 15 minutes (Kathmandu +5:45), so a span never straddles a day."""
    from zoneinfo import ZoneInfo

    from maskwatch.site.trend import compliance_series

    midnight = 1_789_841_700  # 2026-09-20 00:00 in Kathmandu (18:15 UTC the day before)
    for n, offset in enumerate(range(-3600, 3600, 420)):  # people on both sides of midnight
        vote = (0.9, 0.05, 0.05) if n % 3 else (0.1, 0.8, 0.1)
        store.record("door", "queue" if n % 2 else None, person(n, vote, first=midnight + offset, last=midnight + offset))
    minutes, spans = store.counts(), store.counts(every=900)
    assert len(spans) < len(minutes) and all(row["minute"] % 900 == 0 for row in spans)
    for field in ("people", "with_mask", "without_mask"):
        assert sum(r[field] for r in spans) == sum(r[field] for r in minutes)
    for tz in (ZoneInfo("Asia/Kathmandu"), ZoneInfo("Europe/Berlin"), None):
        for bucket in ("hour", "day", "week"):
            assert compliance_series(spans, bucket, tz) == compliance_series(minutes, bucket, tz), (tz, bucket)
    days = store.counts(every=86400)
    assert {r["minute"] % 86400 for r in days} == {0} and sum(r["people"] for r in days) == len(range(-3600, 3600, 420))
    # Bounds inside a quarter are kept to the minute (read from the minutes, not the quarters' sums).
    since = midnight - 3600 + 120
    assert sum(r["people"] for r in store.counts(since=since, every=900)) == sum(
        r["people"] for r in minutes if r["minute"] >= since)


def test_the_cameras_with_stored_history_are_found_by_index_seeks(store, tmp_path):
    """What a camera no longer running is read by (stored_cameras, has_history): one index seek per
    camera, not a pass over every event and count (DISTINCT read all of them, at each poll)."""
    assert store.stored_cameras() == [] and not store.has_history("door") and store.last_seen("door") is None
    for n, camera in enumerate(["till", "door", "old", "door", "till", "door"]):
        store.record(camera, "queue" if n % 2 else None, person(n, (0.9, 0.05, 0.05), last=NOW + n))
    assert store.stored_cameras() == ["door", "old", "till"]
    assert store.has_history("old") and not store.has_history("ol") and not store.has_history("nope")
    assert (store.last_seen("door"), store.last_seen("old")) == (NOW + 5, NOW + 2)
    # A camera whose events retention took keeps its counts' history until they go too.
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE camera = 'old'"))
    assert store.stored_cameras() == ["door", "old", "till"] and store.has_history("old")
    assert store.last_seen("old") is None
    from maskwatch.site.events import _distinct_by_index, events, quarters

    with sqlite3.connect(tmp_path / "site.db") as raw:
        for column in (events.c.camera, quarters.c.camera):
            query = str(_distinct_by_index(column).compile(store.engine, compile_kwargs={"literal_binds": True}))
            plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + query)]
            reads = [step for step in plan if column.table.name in step]
            assert reads and all(step.startswith("SEARCH") and "INDEX" in step for step in reads), plan


def test_the_zones_counted_in_a_period_are_found_by_index_seeks(store, tmp_path):
    """The chart's zone choices (zones_since): each camera's zones with a count from `since`, a zone
    or camera no longer in the config among them, by seeks of the quarters' key, at every chart read."""
    from sqlalchemy import event

    for n, (camera, zone, ago) in enumerate([("door", "queue", 0), ("door", None, 0), ("door", "exit", 86400),
                                             ("old", "lobby", 3600), ("till", "queue", 0)]):
        store.record(camera, zone, person(n, (0.9, 0.05, 0.05), first=NOW - ago, last=NOW - ago))
    assert store.zones_since(NOW - 2 * 86400) == ["exit", "lobby", "queue"]  # "" (outside every zone) is none
    assert store.zones_since(NOW - 7200) == ["lobby", "queue"]
    assert store.zones_since(NOW - 2 * 86400, cameras=["old", "nope"]) == ["lobby"]
    assert store.zones_since(NOW + 900) == [] and store.zones_since(0, cameras=[]) == []
    statements = []
    event.listen(store.engine, "before_cursor_execute", lambda *call: statements.append(call[2:4]))
    store.zones_since(NOW - 7200, cameras=["door", "old"])
    with sqlite3.connect(tmp_path / "site.db") as raw:
        assert len(statements) == 2  # one statement per camera
        for statement, parameters in statements:
            plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            reads = [step for step in plan if "counts_by_quarter" in step]
            assert len(reads) == 3 and all(step.startswith("SEARCH") and "INDEX" in step for step in reads), plan


def test_a_version_3_database_gains_quarter_sums_of_the_minutes_it_kept(store, tmp_path):
    """The chart reads counts_by_quarter (schema version 4): a database from before has its minutes
    summed into it at open, and record() keeps both from then on."""
    for n in range(12):
        store.record("door", None, person(n, (0.9, 0.05, 0.05) if n % 3 else (0.1, 0.8, 0.1),
                                          first=NOW + 170 * n, last=NOW + 170 * n))
    store.close()
    with sqlite3.connect(tmp_path / "site.db") as raw:
        raw.execute("DROP TABLE counts_by_quarter")
        raw.execute("DELETE FROM schema_version WHERE version >= 4")
    again = EventStore(str(tmp_path / "site.db"), privacy=True)
    again.record("door", None, person(99, (0.1, 0.8, 0.1), first=NOW + 30, last=NOW + 30))
    spans, minutes = again.counts(every=900), again.counts()
    assert [r["minute"] for r in spans] == sorted({r["minute"] // 900 * 900 for r in minutes})
    for field in ("people", "with_mask", "without_mask"):
        assert sum(r[field] for r in spans) == sum(r[field] for r in minutes) > 0
    again.close()
    with pytest.raises(ValueError, match="whole minutes"):
        store.counts(every=90)


OPEN_AT = """import os, sys, time
from maskwatch.security.store import AuthStore
from maskwatch.site.events import EventStore
print("ready", flush=True)
for round, database in enumerate(sys.argv[2:]):
    while not os.path.exists(sys.argv[1] + str(round)):
        time.sleep(0.001)
    try:
        EventStore(database).close()
        AuthStore(database).close()
        print("ok", flush=True)
    except Exception as err:
        print(type(err).__name__, str(err).replace(chr(10), " "), flush=True)
"""


def opened_together(databases: list[str], processes: int = 4) -> list[list[str]]:
    """What each of `processes` processes says opening each new database of `databases`, released
    together on each once all have imported maskwatch and opened the one before (one import for
    all the rounds: it was most of a round's time)."""
    import subprocess
    import sys
    import tempfile
    import threading
    from pathlib import Path

    go = Path(tempfile.mkdtemp()) / "go"
    running = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(go), *databases], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(processes)]
    deadline = threading.Timer(120, lambda: [process.kill() for process in running])  # a hung open ends the read
    deadline.start()
    try:
        assert [process.stdout.readline().strip() for process in running] == ["ready"] * processes
        said = []
        for round in range(len(databases)):
            Path(f"{go}{round}").touch()
            said.append([process.stdout.readline().strip() for process in running])
        for process in running:
            process.communicate(timeout=120)
    finally:
        deadline.cancel()
    return said


@pytest.mark.system  # starts processes
def test_processes_opening_a_new_database_together_all_open_it(tmp_path):
    """Both read "no version" and the second failed: "table schema_version already exists" (7 of 8
    pairs), "table users already exists", "database is locked"."""
    databases = [str(tmp_path / f"site{attempt}.db") for attempt in range(3)]
    assert opened_together(databases) == [["ok"] * 4] * 3


def test_a_database_of_a_newer_maskwatch_is_one_line(tmp_path):
    from maskwatch.security.store import AuthStore
    from maskwatch.site.database import DatabaseUnavailable

    AuthStore(str(tmp_path / "site.db")).close()
    with sqlite3.connect(tmp_path / "site.db") as connection:
        connection.execute("INSERT INTO auth_schema_version VALUES (99)")
    with pytest.raises(DatabaseUnavailable, match=r"auth schema version 99 is newer than this maskwatch \(\d\); "
                                                  "upgrade maskwatch"):
        AuthStore(str(tmp_path / "site.db"))


def test_a_database_another_account_owns_is_named_with_its_owner(tmp_path):
    """A backup put back as root (600) stopped the unit's site, run as its own account, with
    `unable to open database file` alone: the message now says whose file it is and who runs."""
    import pwd

    from maskwatch.site.database import DatabaseUnavailable, owner_note

    if os.geteuid() != 0:
        pytest.skip("giving a file to another account needs root")
    nobody = pwd.getpwnam("nobody").pw_uid
    copy = tmp_path / "maskwatch.db"
    EventStore(str(copy)).close()
    os.chown(copy, nobody, -1)
    assert owner_note(copy, "unable to open database file") == (
        "; it is nobody's (mode 600) and this process runs as root: chown it (and the snapshots) "
        "to the account that runs the site")
    assert owner_note(copy, "database or disk is full") == ""
    # The same words from SQLite itself: a path it cannot open (here a folder), another account's.
    folder = tmp_path / "taken.db"
    folder.mkdir()
    os.chown(folder, nobody, -1)
    with pytest.raises(DatabaseUnavailable, match="unable to open database file; it is nobody's"):
        EventStore(str(folder))


@pytest.mark.parametrize("made_at", [7, 6])
def test_a_database_of_before_gains_the_infrared_count_and_keeps_its_rows(tmp_path, made_at):
    """Version 8: the people seen on grey (infrared) frames are counted in the minutes and their
    quarters, and each person's event says whether they were one (`/v1/events`, events.csv, MQTT and
    the webhooks said nothing of it: an auditor could not tell which of the night's people were); a
    database of before has none, and its counts and people are kept. One of version 6 goes through
    7 (the alerts' tables) on the way."""
    path = tmp_path / "site.db"
    first = EventStore(str(path), privacy=True)
    first.record("door", None, person(1, (0.9, 0.05, 0.05)))
    first.close()
    with sqlite3.connect(path) as raw:  # back to version 7's shape, or 6's
        for table in ("counts", "counts_by_quarter", "events"):
            raw.execute(f"ALTER TABLE {table} DROP COLUMN infrared")
        if made_at == 6:
            raw.execute("DROP TABLE alerts")
            raw.execute("DROP TABLE alerts_kept_since")
        raw.execute(f"DELETE FROM schema_version WHERE version > {made_at}")
    again = EventStore(str(path), privacy=True)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT max(version) FROM schema_version").fetchone() == (8,)
        assert raw.execute("SELECT count(*) FROM alerts_kept_since").fetchone() == (int(made_at == 6),)
    # the event as the sink hands it on (MQTT, webhooks), and as it is read back
    assert again.record("door", None, person(2, (0.9, 0.05, 0.05), last=NOW + 30), infrared=True)["infrared"] is True
    again.record("door", None, person(3, (0.2, 0.7, 0.1), last=NOW + 40, evidence=0), infrared=True)
    assert again.record("door", None, person(4, (0.9, 0.05, 0.05), last=NOW + 50))["infrared"] is False
    for rows in (again.counts(), again.counts(every=900), again.quarter_sums(NOW)):
        assert [(r["people"], r["unassessable"], r["infrared"]) for r in rows] == [(3, 1, 2)]
    assert [(e["track_id"], e["infrared"]) for e in again.events()] == [(4, False), (3, True), (2, True), (1, False)]
    assert [e["infrared"] for e in again.in_view(0, NOW + 60)] == [False, True, True, False]  # `maskwatch events list`
    again.close()


@pytest.mark.parametrize("made_at", [8, 7])
def test_a_process_of_version_7_still_running_writes_its_counts_without_the_infrared_count(tmp_path, made_at):
    """A site of the version before, still running on the database another process migrated, writes
    counts and people as it did: without `infrared`, which is 0 and false then (NOT NULL without a
    default refused them)."""
    path = tmp_path / "site.db"
    EventStore(str(path), privacy=True).close()
    if made_at == 7:
        with sqlite3.connect(path) as raw:
            for table in ("counts", "counts_by_quarter", "events"):
                raw.execute(f"ALTER TABLE {table} DROP COLUMN infrared")
            raw.execute("DELETE FROM schema_version WHERE version >= 8")
        EventStore(str(path), privacy=True).close()
    with sqlite3.connect(path) as raw:
        for table in ("counts", "counts_by_quarter"):
            raw.execute(f"INSERT INTO {table} (camera, zone, minute, people, with_mask, without_mask, "
                        f"mask_weared_incorrect, unassessable) VALUES ('door', '', {int(NOW)}, 1, 1, 0, 0, 0)")
        assert raw.execute("SELECT infrared FROM counts UNION ALL SELECT infrared FROM counts_by_quarter").fetchall() == [(0,), (0,)]
        raw.execute("INSERT INTO events (camera, zone, track_id, label, probability, first_seen, last_seen, frames, "
                    f"snapshot) VALUES ('door', NULL, 1, 'with_mask', 0.9, {NOW}, {NOW}, 3, NULL)")
    store = EventStore(str(path), privacy=True)
    assert [e["infrared"] for e in store.events()] == [False]
    store.close()


def test_retention_keeps_the_infrared_count_of_the_quarter_it_cuts(store):
    """The quarter the cut-off falls in is summed again from the minutes it keeps: its infrared too."""
    quarter = NOW - NOW % 900
    store.record("door", None, person(1, (0.9, 0.05, 0.05), first=quarter, last=quarter), infrared=True)
    store.record("door", None, person(2, (0.9, 0.05, 0.05), first=quarter, last=quarter + 120), infrared=True)
    store.record("door", None, person(3, (0.9, 0.05, 0.05), first=quarter, last=quarter + 180))
    store.enforce_retention(now=quarter + 60 + 7 * 86400)  # the quarter's first minute goes
    assert [(r["minute"], r["people"], r["infrared"]) for r in store.counts(every=900)] == [(quarter, 2, 1)]
