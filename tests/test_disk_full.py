"""A disk that fills (ENOSPC) under each writer: a small tmpfs mounted for the test stands in for
a site's disk after weeks of snapshots, events and outputs, and is made larger again to see that
what was written is whole and that the writer goes on."""

import contextlib
import json
import shutil
import subprocess
import sys

import pytest

from maskwatch.atomic import write_text
from tests.conftest import ROOT


@contextlib.contextmanager
def small_disk(where, size: str):
    """A tmpfs of `size` (`64k`, `1m`) mounted at `where`, unmounted at the end; the test is skipped
    where mounting is refused (not root, a container without CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here to fill ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(where, size: str) -> None:
    """Space freed: the tmpfs at `where` made `size`."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def fill(where) -> None:
    """Every free byte of the disk at `where` taken by one file, `where/filler`."""
    with contextlib.suppress(OSError), open(where / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


@pytest.mark.system
def test_a_server_whose_stdout_is_on_a_full_disk_starts_and_says_so_once(tmp_path):
    """`serve > out.log` (or `run`) on a full disk ended at its first start line with `error: No
    space left on device`, written into the same full file: the service was simply not there."""
    import signal

    import httpx

    from tests.rtsp import lost_its_port, start_on_free_port
    from tests.test_cameras import wait_until

    log = tmp_path / "serve.log"

    def started(port: int):
        with open("/dev/full", "w") as full, open(log, "w") as said:
            process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port),
                                        "--database", str(tmp_path / "users.db")], stdout=full, stderr=said)
        if wait_until(lambda: process.poll() is not None or healthy(port), 60) and process.poll() is None:
            return process
        process.wait()
        if not lost_its_port(process, log.read_text()):
            pytest.fail(f"serve did not start:\n{log.read_text()}")
        return None

    def healthy(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    process = start_on_free_port(started, "maskwatch serve", log=log)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    lines = log.read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "WARNING maskwatch.cli.servers: standard output cannot be written (No space left on device): the start "
        "lines are lost; the server goes on"], lines


def maskwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maskwatch.cli", *args], capture_output=True, text=True, timeout=120)


def test_a_write_that_fills_the_disk_names_its_file(tmp_path):
    """Python's write() errors name no file: `detect` ended with `error: No space left on device`."""
    with small_disk(tmp_path / "disk", "4k") as disk:
        fill(disk)
        with pytest.raises(OSError) as failed:
            write_text(disk / "detect-run.json", "{}" * 10_000)
        assert failed.value.filename == str(disk / "detect-run.json") and failed.value.errno == 28
        assert [p.name for p in disk.iterdir()] == ["filler"]  # no temp file left


def test_an_oserror_without_an_errno_is_left_as_it_reads():
    """Naming the file of an OSError("disk full") made it read `[Errno None] None: 'out.json'`."""
    from maskwatch.atomic import naming, os_error_text

    with pytest.raises(OSError) as failed, naming("out.json"):
        raise OSError("disk full")
    assert str(failed.value) == os_error_text(failed.value) == "disk full"


@pytest.mark.system
def test_detect_on_a_full_disk_names_the_file_keeps_whole_lines_and_resumes(tmp_path, sample_dir):
    """Photos into a disk that fills part-way: one line naming the file that failed (it said only
    `[Errno 28] No space left on device`), exit 1, every line whole; --resume, once space is freed,
    reads only the photos not done."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((sample_dir / "images").glob("*.png"))[:5]:
        shutil.copy(photo, photos / photo.name)
    with small_disk(tmp_path / "disk", "160k") as disk:
        out = disk / "out"
        stopped = maskwatch("detect", str(photos), "--out", str(out), "--quiet")
        assert stopped.returncode == 1, stopped.stderr
        said = stopped.stderr.strip().splitlines()[-1]
        assert said.startswith(f"error: {photos}: stopped after ") and f": {out}/" in said, said
        assert said.split(" by an error: ")[1].split(" (those frames")[0].endswith(": No space left on device"), said
        done = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
        assert 0 < len(done) < 5
        grow(disk, "4m")
        resumed = maskwatch("detect", str(photos), "--out", str(out), "--quiet", "--resume")
        assert resumed.returncode == 0, resumed.stderr
        lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
        assert sorted(line["name"] for line in lines) == sorted(p.stem for p in photos.iterdir())
        assert sorted(p.name for p in out.glob("*.jpg")) == sorted(f"{p.stem}.jpg" for p in photos.iterdir())


def test_an_upload_over_a_megabyte_is_answered_while_the_temp_disk_is_full(tmp_path, sample_dir, monkeypatch):
    """Starlette spooled a form's file over 1 MB to the temp folder: on a full disk every such
    upload to `serve` was a 500, its traceback in the log. The body is in memory already."""
    import tempfile

    import cv2
    import numpy as np
    from fastapi.testclient import TestClient

    from maskwatch import Detector
    from maskwatch.serving.app import create_app

    photo = cv2.resize(cv2.imread(str(sorted((sample_dir / "images").glob("*.png"))[0])), (1200, 900))
    noisy = photo + np.random.default_rng(0).integers(0, 8, photo.shape, dtype=np.uint8)  # no longer compressible
    png = cv2.imencode(".png", noisy)[1].tobytes()
    assert len(png) > 1024 * 1024
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        with TestClient(create_app(Detector.load())) as client:
            answer = client.post("/v1/detect", files={"image": ("door.png", png, "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["width"] == 1200 and answer.json()["faces"]


def site_database(folder, snapshots: int = 0):
    """A site's SQLite file as a site leaves it (WAL), about 140 KB of events, and `snapshots`
    snapshot files of 64 KB that its events name."""
    import sqlite3
    from contextlib import closing

    folder.mkdir()
    (folder / "snapshots").mkdir()
    with closing(sqlite3.connect(folder / "site.db")) as db, db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, snapshot TEXT, padding BLOB)")
        db.executemany("INSERT INTO events (snapshot, padding) VALUES (?, ?)",
                       [(f"door-{i}.jpg" if i <= snapshots else None, b"x" * 4000) for i in range(1, 33)])
    for i in range(1, snapshots + 1):
        (folder / "snapshots" / f"door-{i}.jpg").write_bytes(b"\xff" * 65536)
    return folder / "site.db"


@pytest.mark.parametrize("snapshots", [0, 4])
def test_a_backup_onto_a_full_disk_names_the_copy_and_leaves_no_file(tmp_path, snapshots):
    """A copy whose -shm file the full disk refused said `SITE.db: cannot copy it: disk I/O error`,
    naming the site's database and not the full disk, and left the copy's -wal and -shm in a
    folder it said held nothing; a snapshot that did not fit named the site's snapshot only."""
    from maskwatch.site.backup import BackupError, backup_site

    database = site_database(tmp_path / "site", snapshots)
    pages = -(-database.stat().st_size // 4096)
    room = (pages + 4) * 4096 + (32 * 1024 + 65536 if snapshots else 0)  # the copy fits; its -shm or a snapshot not
    with small_disk(tmp_path / "disk", str(room)) as disk:
        with pytest.raises(BackupError) as failed:
            backup_site(str(database), database.parent / "snapshots", disk / "backup")
        assert list((disk / "backup").iterdir()) == []
        said = str(failed.value)
        where = f"{disk / 'backup' / 'snapshots'}: No space left on device" if snapshots else \
            f"{disk / 'backup' / 'site.db'}: disk I/O error; its disk is full"
        assert f"cannot copy it to {where}" in said, said
        grow(disk, "4m")
        copy, events, copied = backup_site(str(database), database.parent / "snapshots", disk / "backup")
        assert (events, copied) == (32, snapshots)


def test_a_database_whose_disk_is_full_says_so_not_only_disk_io_error(tmp_path):
    """SQLite says "disk I/O error" where a full disk refuses the -shm file it makes at opening:
    `users add` and a site's start said only that."""
    from maskwatch.site.database import DatabaseUnavailable
    from maskwatch.site.events import EventStore

    EventStore(str(tmp_path / "site.db")).engine.dispose()  # its -wal and -shm go with the last connection
    with small_disk(tmp_path / "disk", "1m") as disk:
        shutil.copy(tmp_path / "site.db", disk / "site.db")
        fill(disk)
        with pytest.raises(DatabaseUnavailable) as failed:
            EventStore(str(disk / "site.db"))
        assert str(failed.value).endswith("cannot open or migrate the database: disk I/O error; its disk is full "
                                          "(0 KiB free)"), failed.value


def test_annotations_on_a_full_disk_name_their_folder_and_leave_nothing(tmp_path, sample_dir):
    """`maskwatch annotations` said only `error: No space left on device`."""
    import cv2

    from maskwatch.video.annotations import write_annotations

    photo = sorted((sample_dir / "images").glob("*.png"))[0]
    (tmp_path / "photos").mkdir()
    shutil.copy(photo, tmp_path / "photos" / photo.name)
    height, width = cv2.imread(str(photo)).shape[:2]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "detections.jsonl").write_text(
        json.dumps({"name": photo.stem, "width": width, "height": height, "faces": []}) + "\n")
    with small_disk(tmp_path / "disk", "4k") as disk:
        fill(disk)
        with pytest.raises(OSError) as failed:
            write_annotations(tmp_path / "out", tmp_path / "photos", "voc", disk / "labels")
        assert failed.value.filename == str(disk / "labels") and failed.value.errno == 28
        assert [p.name for p in disk.iterdir()] == ["filler"]


@pytest.mark.system
def test_data_printed_onto_a_full_disk_names_standard_output(sample_dir):
    """`classify --json > faces.jsonl` (or `report --csv > day.csv`) on a full disk said only
    `error: No space left on device`: which of the command's files, the user could not tell."""
    photo = sorted((sample_dir / "images").glob("*.png"))[0]
    with open("/dev/full", "w") as full:
        said = subprocess.run([sys.executable, "-m", "maskwatch.cli", "classify", "--json", str(photo)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert said.returncode == 1 and said.stderr == "error: standard output: No space left on device\n", said.stderr


@pytest.mark.parametrize("seconds", [3, 2])
def test_a_video_stopped_by_a_full_disk_says_its_annotated_copy_was_removed(tmp_path, sample_dir, seconds):
    """The lines' failure was said, and the annotated MP4 that could not be finished was removed
    without a word: the user looked for it in --out. 3 s a photo: the lines fail, then the video;
    2 s: every line fits, only the video fails (it is the error, said once)."""
    from maskwatch import Detector
    from maskwatch.demo import make_clip
    from maskwatch.video.pipeline import DetectFailed, run_detect

    clip = make_clip(sorted((sample_dir / "images").glob("*.png"))[:2], tmp_path / "door.mp4", size=(320, 240),
                     fps=10, seconds_per_photo=seconds)
    with small_disk(tmp_path / "disk", "64k") as disk:
        with pytest.raises(DetectFailed) as failed:
            run_detect(str(clip), disk / "out", Detector.load(), progress=False)
        result = failed.value.result
        removed = f"{disk / 'out' / 'door.mp4'}: the annotated video could not be finished (a full disk?); it was " \
                  "removed, unplayable"
        if seconds == 3:
            assert removed in result.errors, result.errors
            assert result.failed == f"{disk / 'out' / 'detections.jsonl'}: No space left on device"
        else:
            assert result.failed == removed and removed not in result.errors and result.frames == 40
        assert sorted(p.name for p in (disk / "out").iterdir()) == [".maskwatch-detect.json", "detect-run.json",
                                                                    "detections.jsonl", "summary.json"]
        lines = (disk / "out" / "detections.jsonl").read_text().splitlines()
        assert len(lines) == result.frames and all(json.loads(line) for line in lines)


def test_retention_on_a_full_disk_frees_the_old_snapshots_and_the_site_stores_again(tmp_path):
    """A full disk refused retention's deletes (SQLite writes them to its WAL first), so the old
    snapshots it was to delete, what filled the disk, stayed: the site stayed full for good."""
    import numpy as np
    from sqlalchemy.exc import OperationalError

    from maskwatch.site.events import EventStore
    from maskwatch.site.full_disk import FullDiskSweep
    from tests.test_events import NOW, person

    noise = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)  # a 60 KB JPEG
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = EventStore(str(disk / "site.db"), disk / "snapshots", retention_days=7)
        store._full_disk = FullDiskSweep(lambda: 0)  # the sweep at once off: the retention's own run, alone
        try:
            for i in range(12):  # nine days old
                store.record("door", None, person(i, (0.9, 0.05, 0.05), first=NOW - 9 * 86400, last=NOW - 9 * 86400),
                             noise)
            fill(disk)
            with pytest.raises(OperationalError, match="database or disk is full"):
                for i in range(100, 200):
                    store.record("door", None, person(i, (0.9, 0.05, 0.05)), noise)
            assert store.enforce_retention(now=NOW) == 12
            assert list((disk / "snapshots").iterdir()) == []
            stored = store.record("door", None, person(300, (0.9, 0.05, 0.05)), noise)
            assert [e["id"] for e in store.events(since=NOW - 86400)][0] == stored["id"]
        finally:
            store.close()


@pytest.mark.system
def test_the_first_log_line_after_a_full_disk_starts_a_line_of_its_own(tmp_path):
    """A log line the full disk cut was half written, and the first line once there was room again
    went on at its end, where a reader matching from a line's start (fail2ban, grep '^') missed it.
    A process of its own: its stderr is Python's, redirected to the log file, as a service's is."""
    script = """if True:
        import logging, os, sys
        from maskwatch.runtime import CurrentStderr
        from tests.test_disk_full import fill
        from pathlib import Path
        logger = logging.getLogger("maskwatch.site")
        logger.addHandler(CurrentStderr())
        logger.warning("before")
        disk = Path(sys.argv[1])
        fill(disk)
        for _ in range(3):
            logger.warning("lost %s", "x" * 5000)
        os.unlink(disk / "filler")
        logger.warning("frames analysed and people stored again")
    """
    with small_disk(tmp_path / "disk", "64k") as disk:
        with open(disk / "site.log", "w") as log:
            subprocess.run([sys.executable, "-c", script, str(disk)], stderr=log, check=True, timeout=60, cwd=ROOT)
        lines = (disk / "site.log").read_text().splitlines()
        assert lines[0] == "before" and lines[-1] == "frames analysed and people stored again", lines[-1][-60:]


def test_a_demo_clip_the_disk_cut_short_is_not_left_in_place(tmp_path, sample_dir):
    """OpenCV's writer says nothing of a failed write: `make demo` on a disk that filled left an
    MP4 without its index (unplayable) as a clip made, and the demo site's camera never played."""
    from maskwatch.demo import CLIPS, make_clip

    photos = [sample_dir / "images" / f"{stem}.png" for stem in CLIPS["entrance"]]
    with small_disk(tmp_path / "disk", "200k") as disk:
        with pytest.raises(RuntimeError, match=r"entrance.mp4: the clip could not be finished \(a full disk\?\)"):
            make_clip(photos, disk / "entrance.mp4", size=(320, 240), fps=10, seconds_per_photo=3)
        assert list(disk.iterdir()) == []


@pytest.mark.system
def test_a_token_that_cannot_be_printed_is_not_kept(tmp_path):
    """`tokens add` printing onto a full disk kept the token, which nobody saw, under its name: the
    same command again was refused, the name taken by a token no one holds."""
    database = str(tmp_path / "users.db")
    with open("/dev/full", "w") as full:
        said = subprocess.run([sys.executable, "-m", "maskwatch.cli", "tokens", "add", "prometheus", "--database",
                               database], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert said.returncode == 1
    assert said.stderr.splitlines()[-1] == ("error: standard output: No space left on device; the token could not be "
                                            "shown, so it was revoked: run this again where it can be printed")
    again = maskwatch("tokens", "add", "prometheus", "--database", database)
    assert again.returncode == 0 and again.stdout.startswith("mw_"), again.stderr


@pytest.mark.system
def test_a_user_added_whose_confirmation_cannot_be_printed_is_said_added(tmp_path):
    """`users add` with stdout on a full disk said `error: standard output: No space left on
    device` and exit 1 after the user was stored: read as not added, and the same command again
    was refused, the name taken."""
    from maskwatch.security.store import AuthStore

    database = str(tmp_path / "users.db")
    with open("/dev/full", "w") as full:
        said = subprocess.run([sys.executable, "-m", "maskwatch.cli", "users", "add", "ana", "--role", "admin",
                               "--database", database], input="ana's first password\n", stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert said.returncode == 1
    assert said.stderr.splitlines()[-1] == ("error: standard output: No space left on device; the user ana was added "
                                            "all the same (`users list` shows them): do not add them again")
    assert AuthStore(database).user("ana")["role"] == "admin"


@pytest.mark.system
def test_recovery_codes_that_cannot_be_printed_are_not_kept(tmp_path):
    """`users 2fa NAME --on` (or `--recovery-codes`) whose stdout failed at the codes kept the new
    set that nobody saw (the old one gone), and said only `standard output: ...`: whether
    two-step login was on, and that the codes were lost, the admin could not tell."""
    from maskwatch.security.store import AuthStore
    from tests.test_two_step import code_at

    database = str(tmp_path / "users.db")
    AuthStore(database).add_user("ana", "ana's first password", "admin")
    command = [sys.executable, "-m", "maskwatch.cli", "users", "2fa", "ana", "--database", database]
    # --on: the secret read, then the reader gone (stdout refused, as a full disk refuses it)
    on = subprocess.Popen([*command, "--on"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    on.stdout.readline()
    secret = on.stdout.readline().removeprefix("secret: ").strip()
    on.stdout.close()
    _, err = on.communicate(code_at(secret) + "\n", timeout=60)
    assert on.returncode == 1
    assert err.splitlines()[-1] == (
        "error: standard output: Broken pipe; two-step login is on for ana (the app's codes work), but the new "
        "recovery codes could not be shown, so none are kept: run `maskwatch users 2fa ana --recovery-codes` "
        "where they can be printed"), err
    assert AuthStore(database).two_step("ana")["secret"] == secret and AuthStore(database).recovery_left("ana") == 0
    renewed = maskwatch(*command[3:], "--recovery-codes")
    assert renewed.returncode == 0 and AuthStore(database).recovery_left("ana") == 10, renewed.stderr
    with open("/dev/full", "w") as full:
        said = subprocess.run([*command, "--recovery-codes"], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert said.returncode == 1 and said.stderr.splitlines()[-1].endswith(
        "No space left on device; the old recovery codes of ana no longer work, but the new recovery codes could "
        "not be shown, so none are kept: run `maskwatch users 2fa ana --recovery-codes` where they can be printed")
    assert AuthStore(database).recovery_left("ana") == 0


def test_a_store_the_full_disk_refuses_runs_its_retention_at_once_and_once_a_while(tmp_path, caplog):
    """Retention ran hourly: a site whose disk filled waited up to an hour (its people waiting, past
    1,000 dropped) for the snapshots already past retention_days to go. Now the first write the
    disk refuses sweeps at once, what is due only, and a disk that stays full is swept at most
    once every FULL_SWEEP_EVERY, not at each person."""
    import time

    import numpy as np
    from sqlalchemy.exc import OperationalError

    from maskwatch.site.events import EventStore
    from tests.test_events import person

    now = time.time()
    noise = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)  # a 60 KB JPEG
    with small_disk(tmp_path / "disk", "2m") as disk:
        store = EventStore(str(disk / "site.db"), disk / "snapshots", retention_days=7)
        try:
            for i, days in enumerate([9] * 8 + [6.9] * 3):  # eight past retention, three inside it
                seen = now - days * 86400
                store.record("door", None, person(i, (0.9, 0.05, 0.05), first=seen, last=seen), noise)
            fill(disk)
            with caplog.at_level("WARNING", logger="maskwatch.site.full_disk"):
                for i in range(100, 110):  # a snapshot refused, or the row: either sweeps
                    with contextlib.suppress(OperationalError):
                        store.record("door", None, person(i, (0.9, 0.05, 0.05), first=now, last=now), noise)
                    # No more people while the sweep runs: under load their snapshots took the room its
                    # first deletes made before its rows' delete could use it (the sweep then failed,
                    # to be tried again in 5 minutes; once in a full run, 2026-12-07).
                    if not store._full_disk.wait(0):
                        break
                assert store._full_disk.wait(60)  # the sweep runs in its own thread
            swept = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.full_disk"]
            assert swept == ["the disk is full: retention ran at once and deleted 8 events past retention_days with "
                             "their snapshots; again in 5 minutes at the soonest while it stays full"], swept
            left = {p.name for p in (disk / "snapshots").iterdir()}
            assert not left & {f"door-{i}.jpg" for i in range(1, 9)}, left  # the room it made was taken again
            assert {"door-9.jpg", "door-10.jpg", "door-11.jpg"} <= left, left
            assert len(store.events(since=now - 7 * 86400, limit=1000)) >= 3
            assert store.events(since=0, limit=1000)[-1]["last_seen"] == now - 6.9 * 86400
        finally:
            store.close()



def test_a_store_the_full_disk_refuses_returns_while_its_sweep_runs(tmp_path):
    """The sweep ran on the camera's thread, which analysed nothing until its thousands of old
    snapshots were deleted: record() returns while it runs, a refusal meanwhile starts no second
    one, and a sweep that never ends does not hold the store's close for longer than its bound."""
    import threading
    import time

    import numpy as np

    from maskwatch.site.events import EventStore
    from maskwatch.site.full_disk import FullDiskSweep
    from tests.test_events import person

    started, release, calls = threading.Event(), threading.Event(), []

    def slow_sweep() -> int:
        calls.append(1)
        started.set()
        release.wait(60)
        return 0

    now = time.time()
    noise = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)
    with small_disk(tmp_path / "disk", "64k") as disk:
        store = EventStore(str(tmp_path / "site.db"), disk / "snapshots")
        store._full_disk = FullDiskSweep(slow_sweep, every=0)  # no rate limit: only the running sweep holds a second
        try:
            fill(disk)
            first = []  # record() on a thread of its own: on the camera's, it waited for the sweep's end
            recording = threading.Thread(target=lambda: first.append(
                store.record("door", None, person(1, (0.9, 0.05, 0.05), first=now, last=now), noise)), daemon=True)
            recording.start()
            recording.join(30)
            assert first and first[0]["snapshot"] is None, "record() waited for the sweep"
            assert started.wait(60)  # the snapshot refused, the sweep started
            second = store.record("door", None, person(2, (0.9, 0.05, 0.05), first=now, last=now), noise)
            assert second["snapshot"] is None and calls == [1] and not store._full_disk.wait(0)
            release.set()
            assert store._full_disk.wait(60)
            store.record("door", None, person(3, (0.9, 0.05, 0.05), first=now, last=now), noise)
            assert store._full_disk.wait(60) and len(calls) == 2  # the next refusal after it sweeps again
            release.clear()
            started.clear()
            store.record("door", None, person(4, (0.9, 0.05, 0.05), first=now, last=now), noise)
            assert started.wait(60)
            store._full_disk.close(timeout=0.5)  # the site's stop: bounded, the sweep left to its daemon thread
            assert not store._full_disk.wait(0)
            store.record("door", None, person(5, (0.9, 0.05, 0.05), first=now, last=now), noise)
            assert len(calls) == 3  # none started after the close
        finally:
            release.set()
            store.close()


def test_a_full_disk_with_little_to_free_folds_the_wal_and_stores_again(tmp_path, caplog):
    """SQLite's WAL keeps its size once grown (about 4 MB), and on a full disk it cannot be folded
    back (the database cannot grow): the 120 KB of two old snapshots deleted went to the deletes
    of their 1,500 old rows, which still found no room, and the site stored nothing more for good.
    The WAL is folded into the database in the room freed, then the rows deleted."""
    import time

    import numpy as np
    from sqlalchemy.exc import OperationalError

    from maskwatch.site.events import EventStore
    from tests.test_events import person

    now = time.time()
    noise = np.random.default_rng(0).integers(0, 255, (150, 150, 3), dtype=np.uint8)  # a 60 KB JPEG
    with small_disk(tmp_path / "disk", "8m") as disk:
        store = EventStore(str(disk / "site.db"), disk / "snapshots", retention_days=7)
        try:
            for i in range(1500):  # past retention, two with a snapshot; the WAL grows to its 4 MB meanwhile
                seen = now - 9 * 86400 + i
                store.record("door", None, person(i, (0.9, 0.05, 0.05), first=seen, last=seen), noise if i < 2 else None)
            assert (disk / "site.db-wal").stat().st_size > 4_000_000
            fill(disk)
            stored = 0
            with caplog.at_level("WARNING", logger="maskwatch.site.full_disk"):
                for i in range(2000, 3000):  # the first one the disk refuses sweeps
                    try:
                        store.record("door", None, person(i, (0.9, 0.05, 0.05), first=now, last=now))
                        stored += 1
                    except OperationalError:  # the sweep runs in its own thread: its end awaited, as a camera retries
                        assert store._full_disk.wait(60)
            swept = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.full_disk"]
            assert swept[0].startswith("the disk is full: retention ran at once and deleted 1500 events"), swept
            assert stored > 800, stored  # the old rows' room taken again (about 110 went in before the sweep)
        finally:
            store.close()


def test_the_probe_tries_a_write_where_the_database_is_not_only_its_permission_bits(tmp_path):
    """`run --probe` said a database's folder writable from its permission bits: a full disk or a
    read-only mount passed, and the site then could not store; now it writes a file there and says why not."""
    from maskwatch.site.events import EventStore
    from maskwatch.site.probe import probe_database

    EventStore(str(tmp_path / "site.db")).engine.dispose()
    with small_disk(tmp_path / "disk", "1m") as disk:
        shutil.copy(tmp_path / "site.db", disk / "site.db")
        assert probe_database(str(disk / "site.db")).ok
        fill(disk)
        probe = probe_database(str(disk / "site.db"))
        assert (probe.ok, probe.detail) == (False, f"{disk / 'site.db'}: its folder {disk} cannot be written (No space "
                                                   "left on device; SQLite keeps its -wal and -shm files beside the database)")
        new = probe_database(str(disk / "new" / "site.db"))
        assert (new.ok, new.detail) == (False, f"{disk / 'new' / 'site.db'}: no database, and {disk} cannot be written "
                                               "to make it (No space left on device)")
        (disk / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        probe = probe_database(str(disk / "site.db"))
        assert not probe.ok and f"its folder {disk} cannot be written (Read-only file system;" in probe.detail
        assert "(Read-only file system)" in probe_database(str(disk / "new" / "site.db")).detail
