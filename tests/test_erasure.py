"""Requests from the people filmed: `maskwatch events list|delete` finds a camera's people in view
between two times on the site's clock, lists them as events.csv, deletes them with their snapshot
files (the site's own store open and writing meanwhile), keeps the counts, and writes the access
log's rows; on SQLite by the command, on PostgreSQL by the store."""

from __future__ import annotations

import csv
import getpass
import io
import shutil
from datetime import date, datetime, time as clock_time
from zoneinfo import ZoneInfo

import numpy as np
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.security.store import AuthStore, log_row
from maskwatch.site.events import EventStore
from maskwatch.site.hours import first_instant
from maskwatch.site.trend import parse_since
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.test_events import person

BERLIN = ZoneInfo("Europe/Berlin")
MASKED, UNMASKED = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05)
runner = CliRunner()


def berlin(hour, minute, second=0):
    """Unix seconds of 2026-12-01 (a Tuesday) hour:minute:second on a Berlin clinic's clock (UTC+1)."""
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=BERLIN).timestamp()


def site_file(folder, storage: str) -> str:
    (folder / "site.yaml").write_text(f"""
cameras:
  door: {{source: door.mp4}}
  till: {{source: till.mp4}}
  gate: {{source: gate.mp4, enabled: false}}
timezone: Europe/Berlin
storage: {storage}
""")
    return str(folder / "site.yaml")


def test_a_persons_visit_is_listed_then_erased_with_its_snapshots_and_logged_without_its_content(tmp_path):
    """"I walked through the door on Tuesday around 14:10": the people of `door` in view from
    14:00 to 14:15 on the clinic's clock (one came at 13:58, one left at 14:12), not those of
    another camera or after; listed first, deleted with --yes while the site's store writes."""
    config = site_file(tmp_path, "{database: site.db, snapshots: snaps, retention_days: 3650}")
    site = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps", retention_days=3650)  # the running site's
    face = np.zeros((8, 8, 3), np.uint8)
    asker = site.record("door", None, person(1, UNMASKED, first=berlin(14, 5), last=berlin(14, 12)), face)
    early = site.record("door", None, person(2, MASKED, first=berlin(13, 58), last=berlin(14, 1)))
    later = site.record("door", None, person(3, MASKED, first=berlin(14, 15), last=berlin(14, 16)), face)
    other = site.record("till", None, person(4, MASKED, first=berlin(14, 10), last=berlin(14, 11)), face)
    counts_before = site.counts()
    window = ["--config", config, "--camera", "door", "--since", "2026-12-01T14:00", "--until", "2026-12-01 14:15"]

    listed = runner.invoke(app, ["events", "delete", *window])  # without --yes: what would go, nothing gone
    assert listed.exit_code == 0, listed.output
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [int(row["id"]) for row in rows] == [early["id"], asker["id"]]  # by their first moment in view
    assert rows[1]["first_seen_local"] == "2026-12-01 14:05:00" and rows[1]["snapshot"].endswith(asker["snapshot"])
    assert ("would delete 2 people of camera 'door', in view from 2026-12-01T14:00:00+01:00 to "
            "2026-12-01T14:15:00+01:00 (Europe/Berlin)") in listed.stderr
    assert len(site.events()) == 4 and (tmp_path / "snaps" / asker["snapshot"]).is_file()

    deleted = runner.invoke(app, ["events", "delete", *window, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.startswith("deleted 2 people of camera 'door'") and "and 1 snapshot file;" in deleted.stdout
    assert sorted(e["id"] for e in site.events()) == [later["id"], other["id"]]
    assert not (tmp_path / "snaps" / asker["snapshot"]).exists()
    assert (tmp_path / "snaps" / later["snapshot"]).is_file() and (tmp_path / "snaps" / other["snapshot"]).is_file()
    assert site.counts() == counts_before  # the aggregated figures stay (docs/site.md says why)
    site.record("door", None, person(5, MASKED, first=berlin(15, 0), last=berlin(15, 1)))  # the site writes on

    before = runner.invoke(app, ["events", "list", "--config", config, "--since", "2026-12-01", "--until", "2026-12-02"])
    assert before.exit_code == 0 and before.stderr.startswith("3 people of every camera, in view from 2026-12-01T00:00:00+01:00")
    assert f"; 2 snapshots (files named as the snapshot column ends, in {tmp_path / 'snaps'})" in before.stderr
    again = runner.invoke(app, ["events", "list", *window])
    assert again.exit_code == 0 and again.stdout.count("\n") == 1, again.output  # the header alone
    assert "0 people of camera 'door'" in again.stderr
    site.close()

    auth = AuthStore(str(tmp_path / "site.db"))
    try:
        log = [(row["user"], row["client"], row["action"], row["target"]) for row in reversed(auth.access_log())]
    finally:
        auth.close()
    asked = "events?camera=door&since=2026-12-01T14:00:00+01:00&until=2026-12-01T14:15:00+01:00"
    user = f"cli:{getpass.getuser()}"
    day = "events?since=2026-12-01T00:00:00+01:00&until=2026-12-02T00:00:00+01:00"
    assert log == [(user, "local", "events_export", asked),
                   (user, "local", "events_erased", f"{asked}: events 2, snapshots 1"),
                   (user, "local", "events_export", day), (user, "local", "events_export", asked)]


def test_a_time_the_clocks_skip_is_read_as_their_jump_as_opening_hours_and_reports_read_it(tmp_path):
    """On the night Berlin's clocks go forward (2026-03-29, 02:00 is 03:00) a wall time in the
    missing hour is the jump, as hours.first_instant has it for opening hours and the reports' times:
    read with the offset from before it, 02:30 was 03:30, and a range from 02:30 to 03:15 was refused
    as ending before it began, and one to 04:00 left out the person in view at 03:05-03:10."""
    config = site_file(tmp_path, "{database: site.db, retention_days: 3650}")
    site = EventStore(str(tmp_path / "site.db"), retention_days=3650)
    night = datetime(2026, 3, 29, 3, 5, tzinfo=BERLIN).timestamp()
    seen = site.record("door", None, person(1, MASKED, first=night, last=night + 300))
    site.close()
    for until in ("03:15", "04:00"):
        listed = runner.invoke(app, ["events", "list", "--config", config, "--since", "2026-03-29 02:30",
                                     "--until", f"2026-03-29 {until}"])
        assert listed.exit_code == 0, listed.output
        assert [int(row["id"]) for row in csv.DictReader(io.StringIO(listed.stdout))] == [seen["id"]]
        assert f"in view from 2026-03-29T03:00:00+02:00 to 2026-03-29T{until}:00+02:00" in listed.stderr
    jump = first_instant(date(2026, 3, 29), clock_time(2, 30), BERLIN)
    assert parse_since("2026-03-29T02:59:59.5", times=BERLIN) == jump == datetime(2026, 3, 29, 3, tzinfo=BERLIN).timestamp()
    # a time the clocks go back over is its first passing, as before
    assert parse_since("2026-10-25 02:30", times=BERLIN) == datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0).timestamp()


def test_a_snapshot_that_cannot_be_deleted_erases_nothing_and_bad_requests_are_named(tmp_path):
    """A snapshot file that stays (here a folder in its place) stops the erasure before a row goes:
    a row deleted first would leave that face on disk, named by no row, past every retention."""
    config = site_file(tmp_path, "{database: site.db, snapshots: snaps}")
    site = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    stuck = site.record("door", None, person(1, MASKED, first=berlin(9, 0), last=berlin(9, 1)), np.zeros((8, 8, 3), np.uint8))
    site.close()
    (tmp_path / "snaps" / stuck["snapshot"]).unlink()
    (tmp_path / "snaps" / stuck["snapshot"]).mkdir()
    (tmp_path / "snaps" / stuck["snapshot"] / "x").write_text("x")
    day = ["--config", config, "--since", "2026-12-01", "--until", "2026-12-02"]
    refused = runner.invoke(app, ["events", "delete", *day, "--yes"])
    assert refused.exit_code == 1 and "1 snapshot file could not be deleted, first " in refused.output, refused.output
    assert "nothing erased from the database" in refused.output
    shutil.rmtree(tmp_path / "snaps" / stuck["snapshot"])
    done = runner.invoke(app, ["events", "delete", *day, "--yes"])
    assert done.exit_code == 0 and done.stdout.startswith("deleted 1 person of every camera,"), done.output
    switched_off = runner.invoke(app, ["events", "list", *day, "--camera", "gate"])  # in the file, no history
    assert switched_off.exit_code == 0 and "0 people of camera 'gate'" in switched_off.stderr, switched_off.output
    for args, said in ((["--camera", "nowhere"], "--camera 'nowhere': no such camera in"),
                       (["--since", "2026-12-02", "--until", "2026-12-01"],
                        "--since (2026-12-02) must be before --until (2026-12-01)"),
                       (["--since", "Tuesday", "--until", "2026-12-02"], "--since must be Unix seconds or an ISO 8601 time")):
        base = ["--config", config, "--since", "2026-12-01", "--until", "2026-12-02"]
        answer = runner.invoke(app, ["events", "list", *base, *args])
        assert answer.exit_code == 1 and said in answer.output, answer.output


def test_an_erasure_on_postgresql_deletes_the_rows_and_writes_its_access_log_row_with_them(postgres, tmp_path):  # noqa: F811
    from sqlalchemy import text

    AuthStore(postgres.url).close()  # the access log's table, as the command opens it first
    store = EventStore(postgres.url, tmp_path / "snaps", retention_days=100_000)
    with store.engine.begin() as connection:  # another test's rows, or none
        connection.execute(text("DELETE FROM events"))
    gone = store.record("door", None, person(1, MASKED, first=berlin(14, 5), last=berlin(14, 6)), np.zeros((8, 8, 3), np.uint8))
    kept = store.record("door", None, person(2, MASKED, first=berlin(16, 0), last=berlin(16, 1)))
    assert [e["id"] for e in store.in_view(berlin(14, 0), berlin(15, 0), "door")] == [gone["id"]]
    assert store.erase(berlin(14, 0), berlin(15, 0), "door", audit=lambda people, files: log_row(
        "events_erased", "cli:dpo", "local", f"door: events {people}, snapshots {files}", berlin(17, 0))) == (1, 1)
    assert [e["id"] for e in store.events()] == [kept["id"]] and not (tmp_path / "snaps" / gone["snapshot"]).exists()
    store.close()
    auth = AuthStore(postgres.url)
    try:
        assert [row["target"] for row in auth.access_log(action="events_erased")] == ["door: events 1, snapshots 1"]
    finally:
        auth.close()


def test_an_admin_erases_over_the_api_with_their_password_and_nobody_else_does(tmp_path):
    """DELETE /v1/events as `events delete --yes`: an admin logged in, with their own password (a
    wrong one a failed login of theirs); a viewer, a full API token and a bad request refused."""
    from fastapi.testclient import TestClient

    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.serving.app import ServeSettings, create_app
    from tests.conftest import ADMIN
    from tests.test_site_history import CSRF, OLD_VIEWER, make_site

    site, detector = make_site(tmp_path, users=True)  # `old` holds a person with a snapshot on the 24th, 08:00
    auth = AuthStore(site.config.storage.database)
    token = auth.add_token("script", "full")
    auth.close()
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False)), site=site)
    clients = {}
    for name, password in (ADMIN, OLD_VIEWER):
        clients[name] = TestClient(app)
        assert clients[name].post("/login", json={"username": name, "password": password}, headers=CSRF).status_code == 200
    admin, viewer = clients[ADMIN[0]], clients[OLD_VIEWER[0]]
    snapshot = next(e for e in site.store.events(camera="old") if e["snapshot"])["snapshot"]
    ask = {"camera": "old", "since": "2026-09-24", "until": "2026-09-25"}

    def erase(client, body, **headers):
        return client.request("DELETE", "/v1/events", json=body, headers=CSRF | headers)

    try:
        assert erase(viewer, ask | {"admin_password": OLD_VIEWER[1]}).status_code == 403
        by_token = erase(TestClient(app), ask | {"admin_password": ADMIN[1]}, Authorization=f"Bearer {token}")
        assert by_token.status_code == 403 and "admin logged in" in by_token.json()["error"]
        assert erase(admin, ask | {"admin_password": "wrong"}).status_code == 403
        for bad, said in (({"camera": "gate"}, "gate"), ({"until": "2026-09-24"}, "since must be before until")):
            answer = erase(admin, ask | bad | {"admin_password": ADMIN[1]})
            assert answer.status_code == 400 and said in answer.json()["error"], answer.text
        assert len(site.store.events(camera="old")) == 5 and site.store.snapshot_path(snapshot) is not None
        done = erase(admin, ask | {"admin_password": ADMIN[1]})
        assert done.status_code == 200, done.text
        assert done.json() | {"status": ""} == {"status": "", "erased": 1, "snapshots": 1, "camera": "old",
                                                "since": "2026-09-23T22:00:00.000+00:00",
                                                "until": "2026-09-24T22:00:00.000+00:00"}
        assert len(site.store.events(camera="old")) == 4 and not (tmp_path / "snaps" / snapshot).exists()
    finally:
        site.store.close()
    auth = AuthStore(site.config.storage.database)
    try:
        rows = [(row["user"], row["action"], row["target"]) for row in reversed(auth.access_log())
                if row["action"] in ("admin_password_failed", "events_erased")]
    finally:
        auth.close()
    asked = "events?camera=old&since=2026-09-24T00:00:00+02:00&until=2026-09-25T00:00:00+02:00"
    assert rows == [("admin", "admin_password_failed", f"events_erased {asked}"),
                    ("admin", "events_erased", f"{asked}: events 1, snapshots 1")]


def test_an_erasure_over_the_api_refuses_a_time_with_no_zone_rather_than_erase_another_hour(tmp_path):
    """"I passed the old entrance at 08:00": DELETE /v1/events with 07:55-08:05 and no zone read
    UTC's (09:55-10:05 in Berlin), answered 200 "deleted 0 people" and kept the person asking (and
    would have deleted whoever passed at 10:00); `maskwatch events` reads the same text on the
    site's clock. A time with no zone is refused; with its offset, Unix seconds or a date it goes."""
    from fastapi.testclient import TestClient

    from maskwatch.security.auth_settings import AuthSettings
    from maskwatch.serving.app import ServeSettings, create_app
    from tests.conftest import ADMIN
    from tests.test_site_history import CSRF, make_site

    site, detector = make_site(tmp_path, users=True)  # `old`: a person in view 2026-09-24 08:00:00-08:00:01 Berlin
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False)), site=site)
    admin = TestClient(app)
    assert admin.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}, headers=CSRF).status_code == 200

    def erase(since, until):
        return admin.request("DELETE", "/v1/events", headers=CSRF, json={
            "camera": "old", "since": since, "until": until, "admin_password": ADMIN[1]})

    try:
        for since, until in (("2026-09-24T07:55", "2026-09-24T08:05"), ("1790229000", "2026-09-24 08:05")):
            refused = erase(since, until)
            assert refused.status_code == 400, refused.text
            assert "names no timezone" in refused.json()["error"], refused.text
        assert "(2026-09-24T08:05:00+02:00 on the site's clock)" in refused.json()["error"]
        assert len(site.store.events(camera="old")) == 5  # nothing erased
        done = erase("2026-09-24T07:55+02:00", "2026-09-24T06:05Z")
        assert done.status_code == 200 and done.json()["erased"] == 1, done.text
    finally:
        site.store.close()


def test_an_erasure_stopped_by_one_file_and_run_again_counts_the_files_the_first_run_deleted(tmp_path):
    """Two people of the range with a snapshot each, one file stuck: the first run deleted the
    other file and stopped (no row, no access-log line); the run again counted only the files it
    deleted itself ("0 snapshot files" here, the stuck one cleared by hand), the answer to the
    person asking pictures short. The files the rows named are counted, and the stopped run says
    what it did delete."""
    config = site_file(tmp_path, "{database: site.db, snapshots: snaps}")
    site = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    face = np.zeros((8, 8, 3), np.uint8)
    first = site.record("door", None, person(1, MASKED, first=berlin(9, 0), last=berlin(9, 1)), face)
    stuck = site.record("door", None, person(2, MASKED, first=berlin(9, 5), last=berlin(9, 6)), face)
    site.close()
    (tmp_path / "snaps" / stuck["snapshot"]).unlink()
    (tmp_path / "snaps" / stuck["snapshot"]).mkdir()  # a file that will not go (here a folder in its place)
    (tmp_path / "snaps" / stuck["snapshot"] / "x").write_text("x")
    day = ["events", "delete", "--config", config, "--since", "2026-12-01", "--until", "2026-12-02", "--yes"]
    refused = runner.invoke(app, day)
    assert refused.exit_code == 1 and "1 other snapshot file of theirs was" in refused.output, refused.output
    assert not (tmp_path / "snaps" / first["snapshot"]).exists()
    shutil.rmtree(tmp_path / "snaps" / stuck["snapshot"])
    done = runner.invoke(app, day)
    assert done.exit_code == 0 and "deleted 2 people of every camera" in done.stdout, done.output
    assert "and 2 snapshot files;" in done.stdout, done.output
    auth = AuthStore(str(tmp_path / "site.db"))
    try:
        assert [row["target"].rsplit(": ", 1)[1] for row in auth.access_log(action="events_erased")] == [
            "events 2, snapshots 2"]
    finally:
        auth.close()
