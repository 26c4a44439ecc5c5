"""The day's compliance alerts kept in the site's database (events schema 7; `infrared` and `seen` with
them since 8), on SQLite and PostgreSQL:
a site made again over the same database (a restart) lists the alerts fired before, to each caller their
cameras' only; an alert the database refuses is sent and listed all the same, and stored once it can be;
retention takes old alerts with the events; a database of version 6 gains the table and says since when.
Real sites (their cameras never started: the figures are the store's), their apps through TestClient."""

import logging
import sqlite3
import sys
import threading
import time
import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import AuthStore
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site import compliance
from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.runner import Site
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import refused_port
from tests.test_alert_rules import crowd
from tests.test_alerts_page import about_noon
from tests.test_events import NOW, person


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.system)])
def database(request, tmp_path) -> str:
    """A new, empty database: an SQLite file, or one of its own on the test's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "site.db")
    return request.getfixturevalue("postgres").new_database(f"alerts_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def detector():
    return Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame


def site_on(database: str, folder, detector, minutes: int = 5, cooldown: float = 900) -> Site:
    """A site of two cameras over `database`, one rule watching each: under 80 % over `minutes`."""
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (folder / "site.yaml").write_text(f"""
cameras:
  door: {{source: "{dead}"}}
  till: {{source: "{dead}"}}
timezone: {about_noon()}
storage: {{database: "{database}", privacy: true, retention_days: 30}}
alerts:
  compliance:
    - {{below: 80, minutes: {minutes}, min_people: 5, cooldown: {cooldown}}}
""")
    return Site(load_site_config(folder / "site.yaml", environ={}), detector)


def token_on(database: str, name: str, scope: str = "full", cameras: list[str] | None = None) -> str:
    auth = AuthStore(database)
    try:
        return auth.add_token(name, scope, cameras=cameras)
    finally:
        auth.close()


def alerts_of(site: Site, database: str, token: str) -> dict:
    """GET /v1/alerts of `site`'s app (no lifespan: no camera starts) as the holder of `token`."""
    app = create_app(None, ServeSettings(auth=AuthSettings(database=database, open_without_users=False)), site=site)
    answer = TestClient(app, base_url="http://127.0.0.1").get("/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def refuse_alerts(site: Site) -> None:
    """The database refuses every new alert, as a full disk would, and still answers reads."""
    with site.store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON alerts "
                                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
        else:
            connection.execute(text("CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                                    "RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ "
                                    "LANGUAGE plpgsql"))
            connection.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION refuse()"))


def take_alerts_again(site: Site) -> None:
    with site.store.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse" + (" ON alerts" if connection.dialect.name != "sqlite" else "")))


def test_a_site_made_again_over_its_database_lists_the_alerts_fired_before(database, tmp_path, detector):
    """The alerts were kept in memory: a restart (an upgrade, a crash, `systemctl restart`) emptied the
    list, and the supervisor who opened the page after the 10:00 restart lost the 08:30 alert."""
    full, till_only = token_on(database, "full"), token_on(database, "till-screen", "read", ["till"])
    first = site_on(database, tmp_path, detector)
    now = time.time()
    crowd(first.store, masked=1, unmasked=19, when=now - 60, camera="door", infrared=True)  # a night camera's
    crowd(first.store, masked=2, unmasked=18, when=now - 60, camera="till")
    assert [a["camera"] for a in first.compliance.check(now)] == ["door", "till"]
    before = alerts_of(first, database, full)
    first.stop()  # never started: its parts are stopped, its store closed
    again = site_on(database, tmp_path, detector)
    try:
        after = alerts_of(again, database, full)
        assert after == before and [a["camera"] for a in after["alerts"]] == ["till", "door"]  # newest first
        assert after["since_start"] is False and after["cut"] is False  # a new database: every alert is kept
        assert datetime.fromisoformat(after["alerts"][1]["at"]).timestamp() == pytest.approx(now, abs=1e-3)
        assert after["alerts"][1]["now"]["state"] == "under" and after["alerts"][1]["with_mask"] == 1
        assert [(a["infrared"], a["seen"]) for a in after["alerts"]] == [(0, 20), (20, 20)]  # its grey frames said
        app = create_app(None, ServeSettings(auth=AuthSettings(database=database, open_without_users=False)), site=again)
        privacy = TestClient(app, base_url="http://127.0.0.1").get("/v1/privacy", headers={"Authorization": f"Bearer {full}"})
        assert privacy.json()["site"]["alerts_kept"].startswith("compliance alerts: camera, zone, rule, when")  # said
        limited = alerts_of(again, database, till_only)
        assert [a["camera"] for a in limited["alerts"]] == ["till"] and limited["rules"] == 1
    finally:
        again.stop()


def test_each_alert_stands_by_its_own_rule_after_the_file_changed_it(database, tmp_path, detector):
    """Rule 0 over 10 minutes fired, then the file made rule 0 a 2-minute rule and it fired again: the
    two alerts' standings were read once for "rule 0 on door", both over the newest's window."""
    token = token_on(database, "full")
    now = time.time()
    first = site_on(database, tmp_path, detector, minutes=10)
    crowd(first.store, masked=1, unmasked=19, when=now - 400, camera="door")
    assert [a["camera"] for a in first.compliance.check(now - 300)] == ["door"]
    first.stop()
    again = site_on(database, tmp_path, detector, minutes=2)
    try:
        crowd(again.store, masked=0, unmasked=20, when=now - 5, camera="door")
        assert [(a["camera"], a["rule"]) for a in again.compliance.check(now)] == [("door", 0)]
        newest, older = alerts_of(again, database, token)["alerts"]
        assert (newest["minutes"], newest["now"]["people"]) == (2, 20)  # the last 2 minutes' people only
        assert (older["minutes"], older["now"]["people"]) == (10, 40)  # both crowds, within its 10 minutes
    finally:
        again.stop()


def test_an_alert_the_database_refuses_is_sent_listed_and_stored_once_it_can_be(database, tmp_path, detector,
                                                                                 caplog):
    """A database that refuses the write while an alert fires: the alert still goes out (here the
    log, the site having no webhook), the list still shows it, nothing fails; stored at a later check."""
    token = token_on(database, "full")
    site = site_on(database, tmp_path, detector)
    try:
        refuse_alerts(site)
        now = time.time()
        crowd(site.store, masked=1, unmasked=19, when=now - 60, camera="door")
        with caplog.at_level(logging.WARNING):
            (fired,) = site.compliance.check(now)
        assert "compliance alert at door" in caplog.text  # sent
        assert "compliance alerts cannot be stored (they are sent, and listed from memory until they are): " \
               "1 waiting: " in caplog.text
        listed = alerts_of(site, database, token)
        assert [a["camera"] for a in listed["alerts"]] == ["door"] and listed["cut"] is False
        assert site.store.alerts(0)[0] == []
        take_alerts_again(site)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert site.compliance.check(now + 30) == []  # within the rule's cooldown: nothing new fires
        assert "compliance alerts stored again" in caplog.text and not site.compliance.unstored
        assert [a["at"] for a in site.store.alerts(0)[0]] == [fired["at"]]
        assert alerts_of(site, database, token) == listed  # once, from the database now
        refuse_alerts(site)
        crowd(site.store, masked=1, unmasked=19, when=now, camera="till")
        assert [a["camera"] for a in site.compliance.check(now + 60)] == ["till"]
        caplog.clear()
    finally:
        with caplog.at_level(logging.WARNING):
            site.stop()
    assert "1 compliance alert the database refused is not stored (first at " in caplog.text
    assert " on till): they were sent, but the dashboard's list after a restart lacks them" in caplog.text


def test_alerts_let_go_unstored_on_another_camera_neither_cut_nor_date_a_limited_list(database, tmp_path, detector,
                                                                                    monkeypatch):
    """The database refused the door's alerts until more waited than the site keeps (1000; 1 here): the
    time of the door's alert let go was the `since` of every caller's list, `cut`, and a till-only
    screen lost its own stored alert of before it and learnt when the door's had fired."""
    monkeypatch.setattr(compliance, "ALERTS_LISTED", 1)  # the alerts waiting unstored: 1 kept
    full, till_only = token_on(database, "full"), token_on(database, "till-screen", "read", ["till"])
    site = site_on(database, tmp_path, detector, cooldown=0)
    try:
        now = time.time()
        crowd(site.store, masked=2, unmasked=18, when=now - 400, camera="till")
        assert [a["camera"] for a in site.compliance.check(now - 300)] == ["till"]  # stored
        refuse_alerts(site)
        crowd(site.store, masked=1, unmasked=19, when=now - 60, camera="door")
        assert [a["camera"] for at in (now - 20, now - 10) for a in site.compliance.check(at)] == ["door", "door"]
        limited = alerts_of(site, database, till_only)
        assert (limited["cut"], limited["since_start"]) == (False, False)
        assert [datetime.fromisoformat(a["at"]).timestamp() for a in limited["alerts"]] == [pytest.approx(now - 300)]
        everyone = alerts_of(site, database, full)  # the door's first is let go: the list is whole after it
        assert everyone["cut"] is True and datetime.fromisoformat(everyone["since"]).timestamp() == pytest.approx(now - 20)
        assert [a["camera"] for a in everyone["alerts"]] == ["door"]
        take_alerts_again(site)
    finally:
        site.stop()


def test_retention_deletes_the_alerts_older_than_the_events_kept(database):
    store = EventStore(database, retention_days=7)
    try:
        alert = {"rule": 0, "zone": None, "compliance": 50.0, "compliance_low": 40.0, "compliance_high": 60.0,
                 "observed": 50.0, "below": 80.0, "people": 20, "with_mask": 10, "unassessable": 0, "infrared": 0, "seen": 20,
                 "minutes": 5, "min_people": 5}
        store.record_alert(alert | {"camera": "door", "at": NOW - 8 * 86400}, alert | {"camera": "door", "at": NOW},
                           alert | {"camera": "till", "at": NOW + 1})
        store.enforce_retention(now=NOW)
        assert [(a["camera"], a["at"]) for a in store.alerts(0)[0]] == [("till", NOW + 1), ("door", NOW)]
        assert [a["camera"] for a in store.alerts(0, cameras=["door"])[0]] == ["door"]
        assert store.alerts(NOW + 1, limit=5)[0][0]["camera"] == "till" and len(store.alerts(0, limit=1)[0]) == 1
    finally:
        store.close()


def test_a_database_of_version_6_gains_the_alerts_and_says_since_when_they_are_kept(database, tmp_path, detector,
                                                                                    caplog):
    """Version 6 kept no alert: a site upgraded at 10:00 has none of the morning's, and the list says it
    is whole from the upgrade, not from midnight. A new database is whole from the start."""
    store = EventStore(database)
    assert store.alerts(0) == ([], float("-inf"))  # new: nothing fired before it
    store.record("door", None, person(1, (0.9, 0.05, 0.05)))
    with store.engine.begin() as connection:  # as version 6 left it
        connection.execute(text("DROP TABLE alerts"))
        connection.execute(text("DROP TABLE alerts_kept_since"))
        for table in ("counts", "counts_by_quarter"):
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN infrared"))
        connection.execute(text("DELETE FROM schema_version WHERE version >= 7"))
    store.close()
    with caplog.at_level(logging.WARNING):
        upgraded = site_on(database, tmp_path, detector)
    assert "events schema migrated from version 6 to 8" in caplog.text
    try:
        rows, kept_since = upgraded.store.alerts(0)
        assert rows == [] and kept_since == pytest.approx(time.time(), abs=60)
        answer = alerts_of(upgraded, database, token_on(database, "full"))
        assert answer["since_start"] is True and answer["cut"] is False  # the site's clock reads about noon
        assert datetime.fromisoformat(answer["since"]).timestamp() == pytest.approx(kept_since, abs=1e-3)
    finally:
        upgraded.stop()
    reopened = EventStore(database)  # the migration is not run again: the moment stays
    assert reopened.alerts(0)[1] == kept_since
    reopened.close()


def test_an_upgrade_under_a_clock_set_ahead_does_not_hide_the_alerts_stored_since(database, tmp_path, detector):
    """Version 7 notes the upgrade's time by the clock: a site booted with its clock a week ahead (an
    RTC's garbage, before NTP pulled it back) upgraded then, and every day's list until that date was
    empty, "since" the next week's upgrade. An alert stored is proof the table kept them from then."""
    token = token_on(database, "full")
    site = site_on(database, tmp_path, detector)
    try:
        now = time.time()
        with site.store.engine.begin() as connection:  # as the migration under that clock left it
            connection.execute(text("INSERT INTO alerts_kept_since VALUES (:at)"), {"at": now + 7 * 86400})
        crowd(site.store, masked=1, unmasked=19, when=now - 60, camera="door")
        assert [a["camera"] for a in site.compliance.check(now - 30)] == ["door"]  # by the clock set right
        answer = alerts_of(site, database, token)
        assert [a["camera"] for a in answer["alerts"]] == ["door"] and answer["cut"] is False
        assert datetime.fromisoformat(answer["since"]).timestamp() == pytest.approx(now - 30)  # kept from it at least
        assert answer["since_start"] is True
    finally:
        site.stop()


def test_a_stop_while_a_check_waits_on_the_database_stores_each_alert_once(tmp_path, detector):
    """A check waiting on SQLite's lock (another process writing) past the stop's 10 s: stop() stored the
    alerts waiting beside it, both wrote them, and the second took from the queue more than was left,
    an IndexError that ended the site's stop there (its store left open, the reports unstopped)."""
    database = str(tmp_path / "site.db")
    site = site_on(database, tmp_path, detector)
    monitor, now = site.compliance, time.time()
    crowd(site.store, masked=1, unmasked=19, when=now - 60, camera="door")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write
    check = threading.Thread(target=monitor.check, args=(now,))
    check.start()
    while not site.store._write_lock.locked():  # the check is storing its alert, waiting on the lock
        time.sleep(0.01)
    failed = []
    stop = threading.Thread(target=lambda: failed.extend(raised(site.stop)))  # as after its 10 s wait for the check
    stop.start()
    for _ in range(200):  # until the stop has taken the waiting alerts too (where nothing holds it back: 2 s)
        frame = sys._current_frames().get(stop.ident)
        if frame is not None and frame.f_code.co_name == "record_alert":
            break
        time.sleep(0.01)
    holder.execute("COMMIT")
    holder.close()
    check.join()
    stop.join()
    assert failed == []
    again = EventStore(database)
    try:
        assert [a["camera"] for a in again.alerts(0)[0]] == ["door"]  # once
    finally:
        again.close()


def raised(call) -> list[BaseException]:
    try:
        call()
    except BaseException as err:  # noqa: BLE001  the test's: what the stop raised
        return [err]
    return []


def damaged_copies(connection: sqlite3.Connection, where: str, damage) -> None:
    """For each (column, value) of `damage`, a copy of the first stored alert `where` picks with that
    column's value written in, as a hand or a tool in SQLite would."""
    good = connection.execute(f"SELECT * FROM alerts {where}").fetchone()
    columns = [row[1] for row in connection.execute("PRAGMA table_info(alerts)")][1:]
    for column, value in damage:
        row = dict(zip(columns, good[1:])) | {column: value}
        connection.execute(f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           list(row.values()))


def test_a_row_damaged_by_hand_is_left_out_of_the_list_and_named_once_in_the_log(tmp_path, detector, caplog):
    """A text in `at`, a negative `minutes`, a blob for a camera (or a text in alerts_kept_since), written
    into SQLite by hand or a tool: one such row made GET /v1/alerts a 500 ("the server failed on this
    request"), the page's list with it, for the rest of the day. Now the good alerts are listed and the log names each damaged row once."""
    database = str(tmp_path / "site.db")
    full = token_on(database, "full")
    site = site_on(database, tmp_path, detector)
    try:
        now = time.time()
        crowd(site.store, masked=1, unmasked=19, when=now - 60, camera="door")
        crowd(site.store, masked=2, unmasked=18, when=now - 60, camera="till")
        assert len(site.compliance.check(now)) == 2
        with sqlite3.connect(database) as connection:
            damage = {"at": "garbage", "minutes": -5, "camera": b"\xff\x00", "below": "x", "compliance": 1e309}
            damaged_copies(connection, "WHERE camera = 'till'", damage.items())
            connection.execute("INSERT INTO alerts_kept_since VALUES ('garbage')")  # an upgrade's row, by hand
        caplog.set_level(logging.WARNING, logger="maskwatch.site.events")
        listed = alerts_of(site, database, full)
        assert [a["camera"] for a in listed["alerts"]] == ["till", "door"] and listed["cut"] is False
        said = [r.getMessage() for r in caplog.records if "left out of the alerts list" in r.getMessage()]
        assert sorted(line.split(": ", 1)[1].split(" (")[0] for line in said) == sorted(
            f"{column} is {value!r}" if column != "compliance" else "compliance is inf" for column, value in damage.items())
        caplog.clear()
        alerts_of(site, database, full)  # the page polls: said once
        assert not [r for r in caplog.records if "left out of the alerts list" in r.getMessage()]
    finally:
        site.stop()


def test_a_row_whose_rule_could_not_be_made_again_or_whose_counts_are_no_counts_is_left_out(tmp_path, detector, caplog):
    """Each listed alert is judged by its own stored rule (below, minutes, min_people): a `below` of 0
    or 150, or a `min_people` of 0, written by hand passed the damaged-row check and then made the rule
    refuse itself (ValueError), GET /v1/alerts a 500 for the day. The newest counts (`infrared`, `seen`,
    whole numbers like `people`) were read as any number: -1 of 2.5 people was listed."""
    database = str(tmp_path / "site.db")
    full = token_on(database, "full")
    site = site_on(database, tmp_path, detector)
    try:
        now = time.time()
        crowd(site.store, masked=2, unmasked=18, when=now - 60, camera="till")
        assert len(site.compliance.check(now)) == 1
        with sqlite3.connect(database) as connection:
            damaged_copies(connection, "", [("below", 0), ("below", 150), ("min_people", 0), ("infrared", -1),
                                            ("seen", 2.5)])
        caplog.set_level(logging.WARNING, logger="maskwatch.site.events")
        listed = alerts_of(site, database, full)
        assert [a["camera"] for a in listed["alerts"]] == ["till"]
        said = [r.getMessage() for r in caplog.records if "left out of the alerts list" in r.getMessage()]
        assert sorted(line.split(" left out of the alerts list: ")[1].split(" (the row")[0] for line in said) == sorted([
            "its rule is refused: below is a percentage in (0, 100]; got 0.0",
            "its rule is refused: below is a percentage in (0, 100]; got 150.0",
            "its rule is refused: min_people must be at least 1; got 0", "infrared is -1", "seen is 2.5"])
    finally:
        site.stop()
