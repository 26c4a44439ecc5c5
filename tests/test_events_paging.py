"""Reading every stored event: /v1/events pages by a cursor (`next`), stable while people are
stored, and /v1/events.csv exports what the same filters find, streamed, as a viewer may see it.

The site of test_site_history (door running, till disabled, old removed from the file), with 2,500
more people stored at once, five to a moment (ties in last_seen), in an order their ids do not follow.
"""

import contextlib
import csv
import io
import random
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select

from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import AuthStore
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.serving.exports import EXPORT_RETRY_AFTER, EXPORTS, EXPORTS_AT_ONCE
from maskwatch.site.event_views import EVENT_COLUMNS, csv_cell, cursor_of, events_csv, parse_cursor
from maskwatch.site.events import EventStore, events
from tests.conftest import ADMIN
from tests.rtsp import free_port
from tests.test_alert_rules import berlin
from tests.test_cameras import wait_until
from tests.test_events import NOW, person
from tests.test_site_history import CSRF, DOOR_VIEWER, OLD_VIEWER, make_site
from tests.test_site_trend import serving

START = berlin(25, 0, 0)  # after make_site's people
CAMERAS = ("door", "old", "till")


def crowd_rows(n: int, start: float) -> list[dict]:
    """`n` people, five last seen at each moment, shuffled: ids follow no order of last_seen; one
    in four seen on grey (infrared) frames."""
    rows = [{"camera": CAMERAS[i % 3], "zone": "queue" if i % 3 == 0 else None, "track_id": i,
             "label": ("with_mask", "without_mask", "mask_weared_incorrect")[i % 7 % 3],
             "probability": 0.9, "first_seen": start + i // 5 * 1.5 - 3, "last_seen": start + i // 5 * 1.5,
             "frames": 4, "snapshot": None, "infrared": i % 4 == 0} for i in range(n)]
    random.Random(7).shuffle(rows)
    return rows


@pytest.fixture(scope="module")
def site_clients(tmp_path_factory):
    """The site, and a logged-in TestClient for the admin, the viewer of door and old, and the
    viewer of door alone."""
    site, detector = make_site(tmp_path_factory.mktemp("paging"), users=True)
    with site.store.engine.begin() as connection:
        connection.execute(insert(events), crowd_rows(2500, START))
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False)), site=site)
    logged_in = []
    for name, password in (ADMIN, OLD_VIEWER, DOOR_VIEWER):
        client = TestClient(app)
        assert client.post("/login", json={"username": name, "password": password}, headers=CSRF).status_code == 200
        logged_in.append(client)
    yield site, *logged_in
    site.store.close()


def stored_ids(store: EventStore, until: float | None = None, **where) -> list[int]:
    """The ids of the stored events, newest first, read straight from the table."""
    query = select(events.c.id).order_by(events.c.last_seen.desc(), events.c.id.desc())
    if until is not None:
        query = query.where(events.c.last_seen < until)
    for column, value in where.items():
        query = query.where(events.c[column].in_(value) if isinstance(value, list) else events.c[column] == value)
    with store.engine.connect() as connection:
        return list(connection.execute(query).scalars())


def every_page(client, url: str, between=None) -> tuple[list[dict], int]:
    """The events of every page from `url` on, following `next`; how many pages. `between(n)` runs
    after page n."""
    found, pages = [], 0
    while url is not None:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        found += answer.json()["events"]
        url = answer.json()["next"]
        pages += 1
        if between is not None:
            between(pages)
    return found, pages


def test_paging_reaches_every_event_once_while_new_people_are_stored(site_clients):
    """A client syncing got the newest 1000 and could never reach the older ones."""
    site, admin, _, _ = site_clients
    before = stored_ids(site.store)
    assert len(before) == 2511
    newest = max(row["last_seen"] for row in site.store.events(limit=1))

    def store_more(page: int) -> None:  # people stored between pages: newer, and tied with the newest
        site.store.record("door", None, person(10_000 + page, (0.9, 0.05, 0.05), first=newest, last=newest))
        site.store.record("door", None, person(20_000 + page, (0.1, 0.8, 0.1), first=NOW + 10**8, last=NOW + 10**8))

    limit = 1000
    found, pages = every_page(admin, f"/v1/events?limit={limit}&since=2026-09-21", store_more)
    assert [e["id"] for e in found] == before  # none skipped, none twice, in order, none stored since
    assert pages == 3
    # Smaller pages whose edges fall inside the ties, filtered: the same events as the table's.
    first_page = admin.get("/v1/events", params={"camera": "door", "limit": 7}).json()
    assert first_page["next"].startswith("/v1/events?camera=door&limit=7&before=")
    found, _ = every_page(admin, f"/v1/events?camera=door&label=with_mask&limit=7&until={START + 600}")
    expected = stored_ids(site.store, camera="door", label="with_mask", until=START + 600)
    assert [e["id"] for e in found] == expected and len(expected) > 7 * 5
    assert all(e["last_seen"] < "2026-09-25T00:10" for e in found)


def test_a_page_of_exactly_the_rest_says_there_is_no_next(site_clients):
    _, admin, _, _ = site_clients
    answer = admin.get("/v1/events", params={"camera": "old", "zone": "lobby"}).json()
    assert len(answer["events"]) == 4 and answer["next"] is None
    exact = admin.get("/v1/events", params={"camera": "old", "zone": "lobby", "limit": 4}).json()
    assert len(exact["events"]) == 4 and exact["next"] is None
    more = admin.get("/v1/events", params={"camera": "old", "zone": "lobby", "limit": 3}).json()
    rest = admin.get(more["next"]).json()
    assert [e["id"] for e in more["events"] + rest["events"]] == [e["id"] for e in answer["events"]]
    assert rest["next"] is None


def test_a_bad_cursor_or_time_range_is_refused_in_one_line(site_clients):
    _, admin, _, _ = site_clients
    for params, status, message in (
            ({"before": "yesterday"}, 422, "query parameter 'before': not a cursor: give the one in the `next` link "
                                           "of the page before, as it is (for a time, use until) (got 'yesterday')"),
            ({"before": "1_99999999999999999999"}, 422, "query parameter 'before': not a cursor"),
            ({"since": "2026-09-22", "until": "2026-09-21"}, 400, "since must not be after until"),
            ({"until": "tomorrow"}, 400, "until must be Unix seconds or an ISO 8601 time")):
        for path in ("/v1/events", "/v1/events.csv"):
            if path.endswith(".csv") and "before" in params:
                continue
            answer = admin.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text)
            assert answer.json()["error"].startswith(message), answer.json()


def test_a_time_with_its_offsets_plus_unescaped_in_the_url_is_read_as_that_offset(site_clients):
    """The documented `since=2026-09-22T10:00:00+02:00`, pasted into curl or a browser, arrives
    as `10:00:00 02:00` (a query string's `+` is a space) and was refused with a 400."""
    _, admin, _, _ = site_clients
    since, until = (datetime.fromtimestamp(START + seconds, timezone(timedelta(hours=5, minutes=30)))
                    .isoformat() for seconds in (30, 90))
    escaped = admin.get("/v1/events", params={"since": since, "until": until, "limit": 1000})
    typed = admin.get(f"/v1/events?since={since}&until={until}&limit=1000")
    assert "+05:30" in since and escaped.status_code == 200 and len(escaped.json()["events"]) == 200
    assert typed.status_code == 200, typed.text
    assert typed.json()["events"] == escaped.json()["events"]
    assert admin.get(f"/v1/compliance?since={since}").status_code == 200


def test_a_parameter_given_twice_is_refused_not_read_as_its_last_value(site_clients):
    """`camera=door&camera=till`, as requests and axios send a list, answered till's events
    alone, as if they were both cameras'; two limits or times took the last silently."""
    _, admin, _, _ = site_clients
    for query, paths in (("camera=door&camera=till", ("/v1/events", "/v1/events.csv", "/v1/compliance")),
                         ("limit=5&limit=10", ("/v1/events", "/v1/access-log"))):
        name = query.split("=")[0]
        for path in paths:
            answer = admin.get(f"{path}?{query}")
            assert answer.status_code == 422, (path, query, answer.text)
            assert answer.json()["error"].startswith(f"query parameter '{name}': given 2 values"), answer.json()
    assert admin.get("/v1/events?camera=door&label=with_mask&camera=door").status_code == 200  # one value


def test_the_document_takes_each_form_of_a_time_the_docs_give(site_clients):
    """since and until were a number or a date-time in /openapi.json: a client generated from it,
    or one that checks its requests against it, could not send a day (`since=2026-09-22`), the
    form the docs give for reading a day's events, which the server reads."""
    import jsonschema

    _, admin, _, _ = site_clients
    spec = admin.get("/openapi.json").json()
    for path, name in (("/v1/events", "since"), ("/v1/events", "until"), ("/v1/compliance", "since"),
                       ("/v1/access-log", "until")):
        [parameter] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
        for value in ("2026-09-22", "2026-09-22T10:00:00+02:00", 1790000000.25):
            matching = [form for form in parameter["schema"]["anyOf"]
                        if jsonschema.Draft202012Validator(form, format_checker=jsonschema.FormatChecker(["date"]))
                        .is_valid(value) and (form.get("format") != "date-time" or "T" in str(value))]
            assert matching, (path, name, value)
            assert admin.get(path, params={name: value}).status_code == 200, (path, name, value)


def test_an_empty_time_range_finds_nobody(site_clients):
    _, admin, _, _ = site_clients
    moment = {"since": f"{START}", "until": f"{START}"}  # until is not in the range: nothing is
    assert admin.get("/v1/events", params=moment).json() == {"events": [], "next": None}
    assert rows_of(admin, **moment) == [] and admin.get("/v1/events.csv", params=moment).text.count("\n") == 1


def test_a_cursor_keeps_the_exact_time_of_its_event():
    for last_seen in (1_764_153_600.123456789, 5.0, 1e-05, 0.1 + 0.2, 253_402_300_799.999):
        cursor = cursor_of({"last_seen": last_seen, "id": 42})
        assert parse_cursor(cursor) == (last_seen, 42), cursor
    assert parse_cursor("1_9999999999999999999") == (1.0, 2**63 - 1)  # no id is larger: the same events follow
    with pytest.raises(ValueError, match="before must be a cursor as a page's `next` gives it"):
        parse_cursor("1e5_3")


def rows_of(client, **params) -> list[dict]:
    answer = client.get("/v1/events.csv", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="maskwatch-events')
    return list(csv.DictReader(io.StringIO(answer.text)))


def as_cells(event: dict) -> dict:
    return {key: "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in event.items()}


def test_the_csv_holds_the_events_of_the_json_pages_cell_for_cell(site_clients):
    site, admin, _, _ = site_clients
    every = rows_of(admin)
    assert len(every) == len(stored_ids(site.store)) > 2500  # no limit: a month's audit is whole
    for params in ({}, {"camera": "door", "zone": "queue", "label": "without_mask"},
                   {"since": "2026-09-23", "until": f"{START + 300}"}, {"camera": "old"}):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        pages, _ = every_page(admin, f"/v1/events?limit=1000&{query}")
        assert [{key: row[key] for key in (*EVENT_COLUMNS, "infrared")} for row in rows_of(admin, **params)] == [
            as_cells(e) for e in pages] and pages, params
    # /v1/events' columns where they were (integrators read them), the site's clock after them, then
    # whether the person was seen on grey frames (said true or false, as the JSON says it), then
    # the local times' offsets (added last: a spreadsheet reading the columns before by name or place)
    assert list(every[0]) == ["id", "camera", "zone", "track_id", "label", "probability", "first_seen",
                              "last_seen", "frames", "snapshot", "first_seen_local", "last_seen_local", "infrared",
                              "first_seen_local_offset", "last_seen_local_offset"]
    assert {row["infrared"] for row in every} == {"true", "false"}
    assert every[-1]["last_seen"].endswith("+00:00") and every[-1]["first_seen"] == "2026-09-21T08:04:55.000+00:00"
    assert every[-1]["first_seen_local"] == "2026-09-21 10:04:55"  # Berlin's summer time, UTC+2


def test_the_csv_says_when_on_the_site_s_clock_as_a_spreadsheet_reads_a_date(site_clients):
    """The times were ISO 8601 UTC to the millisecond, which Excel and LibreOffice take for text,
    an hour or two off the shop's clock: first_seen_local and last_seen_local say them as
    YYYY-MM-DD HH:MM:SS in the site's timezone, summer and winter time alike, cut to the second."""
    site, admin, _, _ = site_clients
    # Berlin's clocks go back from 03:00 CEST to 02:00 CET at 2026-10-25 01:00 UTC: 02:30 is read twice.
    back = datetime(2026, 10, 25, 1, tzinfo=timezone.utc).timestamp()
    seen = {}
    for track, (first, last) in enumerate(((back - 1800.25, back - 0.001), (back + 1800, back + 1800.999),
                                           (datetime(2026, 12, 31, 22, 59, 59, tzinfo=timezone.utc).timestamp(),
                                            datetime(2026, 12, 31, 23, 0, 0, 500_000, tzinfo=timezone.utc).timestamp()))):
        stored = site.store.record("door", None, person(800 + track, (0.9, 0.05, 0.05), first=first, last=last))
        seen[str(stored["id"])] = stored
    rows = {row["id"]: row for row in rows_of(admin, since="2026-10-24") if row["id"] in seen}
    assert [(rows[i]["first_seen_local"], rows[i]["last_seen_local"]) for i in seen] == [
        ("2026-10-25 02:29:59", "2026-10-25 02:59:59"),  # CEST
        ("2026-10-25 02:30:00", "2026-10-25 02:30:00"),  # CET: the same wall clock an hour on
        ("2026-12-31 23:59:59", "2027-01-01 00:00:00")]  # the new year in Berlin, not yet in UTC
    assert [rows[i]["last_seen"] for i in seen] == ["2026-10-25T00:59:59.999+00:00", "2026-10-25T01:30:00.999+00:00",
                                                    "2026-12-31T23:00:00.500+00:00"]  # as they were
    # The repeated hour's two readings told apart on the site's clock too, not only by the UTC columns.
    assert [(rows[i]["first_seen_local_offset"], rows[i]["last_seen_local_offset"]) for i in seen] == [
        ("UTC+02:00", "UTC+02:00"), ("UTC+01:00", "UTC+01:00"), ("UTC+01:00", "UTC+01:00")]


def test_the_csv_s_local_times_in_new_york_s_repeated_hour_carry_their_offsets(site_clients):
    """events.csv's `*_local` read "2026-11-01 01:10:00" for two people an hour apart in New York
    (EDT, then EST): the offset columns tell which, as the UTC columns do, on the site's clock."""
    site, _, _, _ = site_clients
    back = datetime(2026, 11, 1, 6, tzinfo=timezone.utc).timestamp()  # 02:00 EDT becomes 01:00 EST
    ids = {site.store.record("door", None, person(900 + k, (0.9, 0.05, 0.05), first=at, last=at + 5))["id"]
           for k, at in enumerate((back - 3000, back + 600))}
    found = [row for row in site.store.each_event(since=back - 3600, until=back + 3600) if row["id"] in ids]
    text = "".join(events_csv(found, ZoneInfo("America/New_York")))
    rows = sorted(csv.DictReader(io.StringIO(text)), key=lambda row: row["first_seen"])
    assert [(row["first_seen_local"], row["first_seen_local_offset"], row["last_seen_local_offset"]) for row in rows] == [
        ("2026-11-01 01:10:00", "UTC-04:00", "UTC-04:00"), ("2026-11-01 01:10:00", "UTC-05:00", "UTC-05:00")]


def test_the_export_is_read_a_page_at_a_time(site_clients):
    """A month of a busy site is 100k rows: the export reads 1000 at a time, each its own short read."""
    site, admin, _, _ = site_clients
    reads = []
    listener = lambda _conn, _cursor, statement, _parameters, _context, _many: reads.append(statement)  # noqa: E731
    sa_event.listen(site.store.engine, "before_cursor_execute", listener)
    try:
        rows = rows_of(admin)
    finally:
        sa_event.remove(site.store.engine, "before_cursor_execute", listener)
    pages = [statement for statement in reads if "FROM events" in statement and "ORDER BY" in statement]
    assert len(rows) > 2500 and len(pages) == len(rows) // 1000 + 1
    assert [row["id"] for row in rows] == [str(i) for i in stored_ids(site.store)]


@contextlib.contextmanager
def events_table_gone(site, at_page: int):
    """The events table renamed away ("no such table: events", a real failure of the database)
    as an export reads its page `at_page` (1: at once), and back after the block."""
    database = site.config.storage.database
    pages = []

    def gone(_conn, _cursor, statement, *_):
        if "FROM events" in statement and "ORDER BY" in statement:
            pages.append(statement)
            if len(pages) == at_page:
                with sqlite3.connect(database) as raw:
                    raw.execute("ALTER TABLE events RENAME TO events_away")

    sa_event.listen(site.store.engine, "before_cursor_execute", gone)
    try:
        yield
    finally:
        sa_event.remove(site.store.engine, "before_cursor_execute", gone)
        if len(pages) >= at_page:
            with sqlite3.connect(database) as raw:
                raw.execute("ALTER TABLE events_away RENAME TO events")


def test_an_export_the_database_fails_midway_says_it_is_incomplete(site_clients, caplog):
    """The answer has begun (200) when the second page fails: the file ended as if whole."""
    site, admin, _, _ = site_clients
    with events_table_gone(site, at_page=2):
        answer = admin.get("/v1/events.csv")
    assert answer.status_code == 200
    lines = answer.text.splitlines()
    shown = len(lines) - 2  # the header and the last line
    assert lines[-1] == (f"# incomplete: the database failed after {shown} events; download it again "
                         "(its end is not this file's)") and 0 < shown <= 1000
    assert "the database failed after" in caplog.text and "no such table: events" in caplog.text
    assert len(rows_of(admin)) == len(stored_ids(site.store))  # whole again
    with events_table_gone(site, at_page=1):  # failing at once: a 503 as every route's, no file begun
        away = admin.get("/v1/events.csv", params={"label": "with_mask"})
    assert away.status_code == 503 and away.headers["retry-after"] == "5"


def test_a_viewer_exports_their_cameras_only_and_the_export_is_audited(site_clients):
    site, admin, mine, doors = site_clients
    assert {row["camera"] for row in rows_of(mine)} == {"door", "old"}  # old: removed, its history theirs
    assert len(rows_of(mine)) == len(stored_ids(site.store, camera=["door", "old"]))
    assert {row["camera"] for row in rows_of(doors)} == {"door"}
    for client in (mine, doors):
        assert client.get("/v1/events.csv", params={"camera": "till"}).status_code == 403
    assert doors.get("/v1/events.csv", params={"camera": "old"}).status_code == 403
    unknown = doors.get("/v1/events.csv", params={"zone": "lobby"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown zone 'lobby'; zones: queue"
    # Its pages too: the viewer's `next` leads through their cameras only.
    found, _ = every_page(mine, "/v1/events?limit=1000")
    assert [e["id"] for e in found] == stored_ids(site.store, camera=["door", "old"])
    log = admin.get("/v1/access-log", params={"action": "events_export"}).json()["entries"]
    assert {entry["user"] for entry in log} >= {"oldviewer", "doorviewer"}


def test_text_a_spreadsheet_would_run_is_exported_as_text(site_clients):
    site, admin, _, _ = site_clients
    formula = "=HYPERLINK(\"http://x\",\"y\")"
    stored = site.store.record("door", formula, person(77, (0.9, 0.05, 0.05), first=NOW + 2e8, last=NOW + 2e8))
    [row] = [r for r in rows_of(admin) if r["id"] == str(stored["id"])]
    assert row["zone"] == "'" + formula and row["camera"] == "door"
    assert [csv_cell(v) for v in ("+1", "-1", "@A1", "\tx", "plain", 0.5, -2)] == ["'+1", "'-1", "'@A1", "'\tx",
                                                                                    "plain", 0.5, -2]


@pytest.mark.parametrize("where", [{}, {"camera": "door"}, {"label": "with_mask"}, {"camera": "door", "zone": "queue"},
                                   {"since": 1.0, "until": 9.0}, {"cameras": ["door"]}])
def test_each_page_is_one_range_of_an_index_in_order(tmp_path, where):
    """SQLite's plan of a page after a cursor: a SEARCH of an index ending in id, no sort."""
    store = EventStore(str(tmp_path / "site.db"), privacy=True)
    sent = []
    sa_event.listen(store.engine, "before_cursor_execute",
                    lambda _conn, _cursor, statement, parameters, _context, _many: sent.append((statement, parameters)))
    store.events(limit=100, before=(5.0, 3), **where)
    statement, parameters = sent[-1]
    with sqlite3.connect(tmp_path / "site.db") as raw:
        plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
        unordered = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement.replace(
            "ORDER BY events.last_seen DESC", "ORDER BY events.frames DESC"), parameters)]
    assert len(plan) == 1 and plan[0].startswith("SEARCH events USING INDEX events_by_"), plan
    assert "_last_seen_id" in plan[0], plan
    assert "TEMP B-TREE" in " ".join(unordered)  # what a sort looks like in a plan
    store.close()


def test_a_viewers_several_cameras_are_a_range_of_each_ones_index_merged(tmp_path):
    """camera IN (their list) read every event of theirs after the cursor and sorted them all, at
    each page: each camera's page is read from its index now, and only those merged."""
    store = EventStore(str(tmp_path / "site.db"), privacy=True)
    with store.engine.begin() as connection:
        connection.execute(insert(events), crowd_rows(300, NOW))
    every = store.events(limit=1000)
    mine = [e for e in every if e["camera"] in ("door", "till") and e["label"] == "with_mask"]
    pages, before = [], None
    while page := store.events(limit=9, before=before, cameras=["till", "door", "door"], label="with_mask"):
        pages += page
        before = (page[-1]["last_seen"], page[-1]["id"])
    assert pages == mine and len(mine) > 50
    assert store.events(cameras=[]) == [] and store.events(cameras=["old"], limit=3) == [
        e for e in every if e["camera"] == "old"][:3]
    sent = []
    sa_event.listen(store.engine, "before_cursor_execute",
                    lambda _conn, _cursor, statement, parameters, _context, _many: sent.append((statement, parameters)))
    store.events(limit=100, before=(NOW + 60, 10**6), cameras=["door", "till"])
    with sqlite3.connect(tmp_path / "site.db") as raw:
        plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sent[-1][0], sent[-1][1])]
    reads = [step for step in plan if "events" in step]
    assert len(reads) == 2 and all(step.startswith("SEARCH events USING INDEX events_by_camera_last_seen_id")
                                   for step in reads), plan
    store.close()


def test_a_head_of_the_export_reads_no_more_than_its_first_page(site_clients):
    """HEAD ran the whole export as a GET and dropped its chunks: every stored event read, a page
    at a time, for an answer of a few headers (a read-only token's loop of HEADs kept the database
    busy at no cost of its own bandwidth)."""
    site, admin, _, _ = site_clients
    reads = []
    listener = lambda _conn, _cursor, statement, _parameters, _context, _many: reads.append(statement)  # noqa: E731
    sa_event.listen(site.store.engine, "before_cursor_execute", listener)
    try:
        answer = admin.head("/v1/events.csv")
    finally:
        sa_event.remove(site.store.engine, "before_cursor_execute", listener)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="maskwatch-events')
    pages = [statement for statement in reads if "FROM events" in statement and "ORDER BY" in statement]
    assert len(pages) == 1 and len(stored_ids(site.store)) > 2000
    assert len(rows_of(admin)) == len(stored_ids(site.store))  # the GET after it is whole
    assert admin.head("/v1/events", params={"limit": 1}).headers["content-length"] != "0"


def test_the_privacy_statement_says_the_export_is_logged(site_clients):
    """/v1/privacy's list of what the access log records was written by hand and left out the
    export, which it records: a reader was told an export of every person leaves no trace."""
    _, admin, mine, _ = site_clients
    assert rows_of(mine, camera="door")
    records = mine.get("/v1/privacy").json()["access_log"]["records"]
    assert "events_export" in records and {"login", "camera_frame", "snapshot", "report"} <= set(records)
    assert "events_erased" in records  # written by `maskwatch events delete`: the dashboard's filter offers it
    logged = {entry["action"] for entry in admin.get("/v1/access-log", params={"limit": 1000}).json()["entries"]}
    assert "events_export" in logged and logged <= set(records)


def test_each_export_says_in_the_access_log_what_it_read(site_clients):
    """The row's target was the path alone, once a minute per path: a viewer's second export in
    that minute (another camera's people, another label) left no row, and none said what was read."""
    _, admin, _, doors = site_clients
    for label in ("without_mask", "with_mask", "with_mask"):
        rows_of(doors, camera="door", label=label)
    assert doors.get("/v1/report.csv", params={"from": "2026-09-20", "to": "2026-09-21"}).status_code == 200
    repeated = doors.get("/v1/events.csv?label=mask_weared_incorrect&label=mask_weared_incorrect&camera=door")
    assert repeated.status_code == 200
    entries = admin.get("/v1/access-log", params={"user": "doorviewer", "limit": 1000}).json()["entries"]
    targets = [entry["target"] for entry in entries if entry["action"] in ("events_export", "report")]
    assert sorted(targets) == sorted(["/v1/events.csv?camera=door&label=without_mask",
                                      "/v1/events.csv?camera=door&label=with_mask",  # once in the minute
                                      "/v1/events.csv?label=mask_weared_incorrect&camera=door",
                                      "/v1/report.csv?from=2026-09-20&to=2026-09-21"]
                                     + [t for t in targets if "?" not in t]), targets


@pytest.fixture()
def served(site_clients):
    """The paging site's app on a real uvicorn (exports held open side by side, a client that goes
    away; no lifespan: no camera started), and httpx clients with read-only API tokens of their
    own: the first, and two more for exports beside it."""
    site, admin, _, _ = site_clients
    auth = AuthStore(site.config.storage.database)
    tokens = [auth.add_token(f"exports-{free_port()}-{i}", "read") for i in range(3)]
    auth.close()
    with serving(admin.app, lifespan="off") as base, contextlib.ExitStack() as clients:
        yield site, *(clients.enter_context(httpx.Client(base_url=base, timeout=30, headers={
            "Authorization": f"Bearer {token}"})) for token in tokens)
    assert EXPORTS.in_use == 0


def held_at_page_two(store: EventStore):
    """An engine hook that holds every export's second page until the Event it returns is set; the
    pages read (one list of statements)."""
    go, pages = threading.Event(), []

    def hold(_conn, _cursor, statement, _parameters, _context, _many):
        if "FROM events" in statement and "ORDER BY" in statement and "events.id) <" in statement:
            pages.append(statement)
            assert go.wait(30), "the test never let the export go on"
    sa_event.listen(store.engine, "before_cursor_execute", hold)
    return go, pages, lambda: sa_event.remove(store.engine, "before_cursor_execute", hold)


def test_exports_past_the_cap_are_refused_at_once_and_the_slots_come_back_when_they_end(served):
    """Forty exports at once by one read-only token took every worker thread and the database: the
    dashboards' polls of every other user waited. Past EXPORTS_AT_ONCE an export is a 503 at once,
    and one caller runs one at a time (a 429), so that a looping script, or a leaked token, does
    not hold every slot and shut the other users out of theirs."""
    site, client, other, third = served
    go, pages, unhook = held_at_page_two(site.store)
    try:
        with client.stream("GET", "/v1/events.csv") as first:
            assert first.status_code == 200 and EXPORTS.in_use == 1
            for path in ("/v1/events.csv", "/v1/report.csv"):
                mine = client.get(path)
                assert mine.status_code == 429 and mine.headers["retry-after"] == str(EXPORT_RETRY_AFTER), path
                assert mine.json() == {"error": "an export of yours (events.csv or report.csv) is running on this "
                                                "server already; one at a time: try again when it ends (in about "
                                                f"{EXPORT_RETRY_AFTER} s)"}
            with other.stream("GET", "/v1/events.csv") as second:
                assert second.status_code == 200 and EXPORTS.in_use == EXPORTS_AT_ONCE == 2
                # Answered while both exports are held (go is set below): not queued behind them,
                # which would have ended in the client's 30 s timeout or, once the hold gave up, a 200.
                for path in ("/v1/events.csv", "/v1/report.csv"):
                    busy = third.get(path)
                    assert busy.status_code == 503 and busy.headers["retry-after"] == str(EXPORT_RETRY_AFTER), path
                    assert busy.json() == {"error": "2 exports (events.csv, report.csv) are running on this server "
                                                    f"already; try again in {EXPORT_RETRY_AFTER} s"}
                assert client.get("/v1/events", params={"limit": 1}).status_code == 200  # the rest still answer
                go.set()
                texts = [first.read().decode(), second.read().decode()]
    finally:
        go.set()
        unhook()
    assert all(text.count("\n") == len(stored_ids(site.store)) + 1 for text in texts)  # whole files
    assert wait_until(lambda: EXPORTS.in_use == 0, 10), EXPORTS.in_use
    assert client.get("/v1/report.csv").status_code == 200 and EXPORTS.in_use == 0  # its own slot came back
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/events.csv", "/v1/report.csv"):
        responses = paths[path]["get"]["responses"]
        assert "2 exports (events.csv, report.csv) are running" in responses["503"]["description"]
        assert "An export of the caller's (user or token) is running already" in responses["429"]["description"]


def test_an_export_whose_client_goes_away_gives_its_slot_back_and_reads_no_further(served):
    site, client, *_ = served
    go, pages, unhook = held_at_page_two(site.store)
    try:
        with client.stream("GET", "/v1/events.csv") as gone:
            assert gone.status_code == 200 and EXPORTS.in_use == 1
            # The lines before the second page, then the client closes the connection. They fill
            # two pieces of the stream now that a row has its local times: the export sends the
            # second (as far as the client reads) before it asks for the second page.
            lines = gone.iter_bytes()
            while not wait_until(lambda: pages, 2):
                next(lines)
        time.sleep(0.5)  # uvicorn hears of the disconnect while the second page is read
        go.set()
        assert wait_until(lambda: EXPORTS.in_use == 0, 10), EXPORTS.in_use
    finally:
        go.set()
        unhook()
    assert len(pages) == 1 and len(stored_ids(site.store)) > 2000  # page three was never read


def test_an_export_the_database_fails_gives_its_slot_back(site_clients):
    """At once (the 503 before any line) and midway (the file said incomplete), the slot returns."""
    site, admin, _, _ = site_clients
    with events_table_gone(site, at_page=2):
        midway = admin.get("/v1/events.csv")
        at_once = admin.get("/v1/events.csv")  # the table still away
    assert midway.status_code == 200 and midway.text.splitlines()[-1].startswith("# incomplete")
    assert at_once.status_code == 503 and EXPORTS.in_use == 0
    assert admin.head("/v1/events.csv").status_code == 200 and EXPORTS.in_use == 0  # a HEAD, cut at its headers


def test_a_zone_the_config_lacks_is_looked_up_in_the_stored_counts_not_the_events(site_clients):
    """A zone renamed since (door's 'entrance') still finds its people; a typo is a 404 naming the
    caller's zones. The lookup read the events, which have no index on zone: every event of the
    caller's (1 M rows: seconds), at each request naming such a zone."""
    site, admin, _, doors = site_clients
    renamed = site.store.record("door", "entrance", person(1, (0.9, 0.05, 0.05), first=NOW - 5, last=NOW))
    reads = []
    listener = lambda _conn, _cursor, statement, _parameters, _context, _many: reads.append(statement)  # noqa: E731
    sa_event.listen(site.store.engine, "before_cursor_execute", listener)
    try:
        typo = doors.get("/v1/events", params={"zone": "entrnace"})
        lookups = list(reads)
        for client in (admin, doors):
            for params in ({"zone": "entrance"}, {"zone": "entrance", "camera": "door"}):
                found = client.get("/v1/events", params=params)
                assert found.status_code == 200 and [e["id"] for e in found.json()["events"]] == [renamed["id"]]
                assert client.get("/v1/compliance", params=params).status_code == 200
        lobby = doors.get("/v1/events", params={"zone": "lobby"})  # old's zone: not this viewer's camera
    finally:
        sa_event.remove(site.store.engine, "before_cursor_execute", listener)
        with site.store.engine.begin() as connection:
            connection.execute(events.delete().where(events.c.id == renamed["id"]))
    assert typo.status_code == 404 and typo.json() == {"error": "unknown zone 'entrnace'; zones: queue"}
    assert lobby.status_code == 404 and lobby.json() == {"error": "unknown zone 'lobby'; zones: queue"}
    assert lookups and not [statement for statement in lookups if "FROM events" in statement], lookups


def test_a_page_of_another_site_cannot_start_an_export_in_a_logged_in_browsers_name(site_clients):
    """SameSite=Lax sends the session cookie on a link followed from another site: a page there
    could start exports that the access log put in the logged-in user's name."""
    site, admin, mine, doors = site_clients
    for path in ("/v1/events.csv", "/v1/report.csv"):
        refused = admin.get(path, headers={"Sec-Fetch-Site": "cross-site"})
        assert refused.status_code == 403 and refused.json()["error"] == "cross-site request refused", refused.text
        for own in ("same-origin", "none"):  # the dashboard's link; a bookmark or a typed address
            assert admin.get(path, headers={"Sec-Fetch-Site": own}).status_code == 200, (path, own)
    assert admin.get("/v1/events", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # not an export
