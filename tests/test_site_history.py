"""The stored history of cameras no longer running: one removed from the site's file (`old`) and
one switched off (`till`, enabled: false) keep their people and counts until retention, and are
read as a running camera's, by admins and by the viewers whose list names them.

The site runs in this process, its cameras never started; the history is written to its SQLite
database beforehand, at fixed times (the week of 2026-09-21 in Berlin).
"""

import csv
import io
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.security.store import AuthStore
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.runner import Site
from maskwatch.site.schemas import RetiredCameraList
from tests.conftest import ADMIN, watched
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import refused_port
from tests.test_alert_rules import berlin, crowd
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_events import person
from tests.test_site_trend import serving

CSRF = {"X-Maskwatch-CSRF": "1"}
SINCE = "2026-09-21T00:00:00+02:00"
WEEK = {"from": "2026-09-21", "to": "2026-09-27"}
OLD_VIEWER = ("oldviewer", "old viewer's password")  # door and old
DOOR_VIEWER = ("doorviewer", "door viewer's password")  # door only


def make_site(folder, users: bool) -> Site:
    """door runs (never started); till is in the file with enabled: false; old was removed from
    it. All three have people stored, old with a snapshot and a zone the file never had."""
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (folder / "site.yaml").write_text(f"""
cameras:
  door: {{name: Front door, source: "{dead}", zones: {{queue: [[0, 0], [1, 0], [1, 1]]}}}}
  till: {{name: Till, source: "{dead}", enabled: false}}
timezone: Europe/Berlin
storage: {{database: site.db, snapshots: snaps, retention_days: 3650}}
""")
    config = load_site_config(folder / "site.yaml", environ={})
    store = EventStore(config.storage.database, config.storage.snapshots, retention_days=3650)
    crowd(store, masked=3, unmasked=1, when=berlin(21, 10, 5), zone="queue")
    crowd(store, masked=1, unmasked=1, when=berlin(22, 9, 0), camera="till")
    crowd(store, masked=2, unmasked=2, when=berlin(23, 11, 0), camera="old", zone="lobby")
    store.record("old", None, person(9, (0.9, 0.05, 0.05), first=berlin(24, 8, 0), last=berlin(24, 8, 1)),
                 np.zeros((8, 8, 3), np.uint8))
    store.close()
    if users:
        auth = AuthStore(config.storage.database)
        auth.add_user(*ADMIN, "admin")
        auth.add_user(*OLD_VIEWER, "viewer", ["door", "old"])
        auth.add_user(*DOOR_VIEWER, "viewer", ["door"])
        auth.close()
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    return Site(config, detector), detector


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    """A logged-in TestClient per user (no lifespan: no camera started)."""
    site, detector = make_site(tmp_path_factory.mktemp("history"), users=True)
    app = create_app(detector, ServeSettings(auth=AuthSettings(database=site.config.storage.database,
                                                               open_without_users=False)), site=site)
    logged_in = {}
    for name, password in (ADMIN, OLD_VIEWER, DOOR_VIEWER):
        client = TestClient(app)
        assert client.post("/login", json={"username": name, "password": password}, headers=CSRF).status_code == 200
        logged_in[name] = client
    yield logged_in["admin"], logged_in["oldviewer"], logged_in["doorviewer"]
    site.store.close()


def test_a_page_opened_logged_out_comes_back_with_its_query_after_the_login(clients):
    """A bookmarked chart (/?chart_camera=old) opened after the session ended went to the login page
    with next=/ only: once logged in, the chart was the default one."""
    stranger = TestClient(clients[0].app)  # no session
    html = {"Accept": "text/html"}
    to_login = stranger.get("/?chart_camera=old&chart_zone=lobby", headers=html, follow_redirects=False)
    assert to_login.status_code == 303
    assert parse_qs(urlsplit(to_login.headers["location"]).query) == {"next": ["/?chart_camera=old&chart_zone=lobby"]}
    assert stranger.get("/", headers=html, follow_redirects=False).headers["location"] == "/login?next=/"
    too_long = stranger.get("/?chart_zone=" + "x" * 2000, headers=html, follow_redirects=False)
    assert too_long.headers["location"] == "/login?next=/"  # the login page would refuse it (422)


def people(client, **params) -> list[tuple]:
    response = client.get("/v1/events", params=params)
    assert response.status_code == 200, response.text
    return sorted((e["camera"], e["zone"] or "") for e in response.json()["events"])


def week(client, **params) -> list[tuple]:
    response = client.get("/v1/compliance", params={"bucket": "day", "since": SINCE, **params})
    assert response.status_code == 200, response.text
    return [(b["start"][:10], b["people"], b["with_mask"]) for b in response.json()["buckets"] if b["start"] < "2026-09-28"]


def report(client) -> list[tuple]:
    response = client.get("/v1/report.csv", params=WEEK)
    assert response.status_code == 200, response.text
    return [(row["date"], row["camera"], row["zone"], row["people"]) for row in csv.DictReader(io.StringIO(response.text))]


def test_an_admin_lists_the_cameras_no_longer_running_whose_history_is_stored(clients):
    admin, _, _ = clients
    assert [c["id"] for c in admin.get("/v1/cameras").json()] == ["door"]  # the running ones, with their state
    listed = RetiredCameraList.model_validate(admin.get("/v1/cameras/retired").json()).model_dump()["cameras"]
    assert [(c["id"], c["disabled"]) for c in listed] == [("old", False), ("till", True)]
    assert listed[0]["last_seen"].startswith("2026-09-24T06:01:00")  # its newest person, UTC


def test_an_admin_reads_a_removed_or_disabled_cameras_events_compliance_report_and_snapshots(clients):
    """camera=old was a 400 "unknown camera" while report.csv listed its rows."""
    admin, _, _ = clients
    assert people(admin, camera="old") == [("old", "")] + [("old", "lobby")] * 4
    assert people(admin, camera="old", zone="lobby") == [("old", "lobby")] * 4
    assert people(admin, zone="lobby") == [("old", "lobby")] * 4  # a zone only a retired camera had
    assert people(admin, camera="till") == [("till", "")] * 2
    assert week(admin, camera="old") == [("2026-09-23", 4, 2), ("2026-09-24", 1, 1)]
    assert week(admin, camera="old", zone="lobby") == [("2026-09-23", 4, 2)]
    assert week(admin, camera="till") == [("2026-09-22", 2, 1)]
    assert week(admin) == [("2026-09-21", 4, 3), ("2026-09-22", 2, 1), ("2026-09-23", 4, 2), ("2026-09-24", 1, 1)]
    assert report(admin) == [("2026-09-21", "door", "queue", "4"), ("2026-09-22", "till", "", "2"),
                             ("2026-09-23", "old", "lobby", "4"), ("2026-09-24", "old", "", "1")]
    [snapshot] = [e["snapshot"] for e in admin.get("/v1/events", params={"camera": "old"}).json()["events"] if e["snapshot"]]
    fetched = admin.get(snapshot)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/jpeg"


def test_the_chart_s_answer_names_the_zones_with_people_in_its_period(clients):
    """The page's zone choice named the config's zones only: a zone renamed or removed from it, or a
    retired camera's (old's lobby, which the file never had), was charted by the API and listed in
    report.csv, but could not be chosen. /v1/compliance names those with people in its period."""
    admin, mine, doors = clients

    def zones(client, **params):
        response = client.get("/v1/compliance", params={"bucket": "day", "since": SINCE, **params})
        assert response.status_code == 200, response.text
        return response.json()["zones"]

    assert zones(admin) == ["lobby", "queue"]  # "" (outside every zone) is not one
    assert zones(admin, camera="old") == zones(admin, camera="old", zone="lobby") == ["lobby"]  # whatever zone is
    assert zones(admin, camera="door") == ["queue"] and zones(admin, camera="till") == []
    assert zones(admin, since="2026-09-22T00:00:00+02:00") == ["lobby"]  # door's queue: the 21st only
    assert zones(admin, since="2026-09-24T00:00:00+02:00") == []
    assert zones(mine) == ["lobby", "queue"] and zones(doors) == ["queue"]  # the caller's cameras only


def test_a_camera_neither_running_nor_stored_is_still_refused_by_name(clients):
    admin, _, _ = clients
    for path in ("/v1/events", "/v1/compliance"):
        refused = admin.get(path, params={"camera": "nope"})
        assert refused.status_code == 400, path
        assert refused.json()["error"] == "unknown camera 'nope'; cameras: door; not running, with stored history: old, till"
    assert admin.get("/v1/events", params={"camera": "old", "zone": "queue"}).json() == {
        "error": "camera 'old' is not running and has no people stored in zone 'queue'"}
    # A frame is a running camera's only; the one no longer running is said to be so.
    old = admin.get("/v1/cameras/old/frame.jpg")
    assert old.status_code == 404 and old.json()["error"].startswith("camera 'old' is not running")
    nope = admin.get("/v1/cameras/nope/frame.jpg")
    assert nope.status_code == 404 and nope.json()["error"] == "no camera 'nope'; cameras: door"


def test_prometheus_shows_no_camera_no_longer_running_as_down(clients):
    admin, _, _ = clients
    up = [line for line in admin.get("/metrics").text.splitlines() if line.startswith("maskwatch_camera_up")]
    assert up == ['maskwatch_camera_up{camera="door"} 0.0']


def test_a_viewer_reads_the_history_of_the_cameras_their_list_names_only(clients):
    """A viewer of door and old saw nothing of old once it was removed: not its people, its
    chart's share, nor its report rows."""
    _, mine, doors = clients
    assert [c["id"] for c in mine.get("/v1/cameras/retired").json()["cameras"]] == ["old"]
    assert people(mine, camera="old", zone="lobby") == [("old", "lobby")] * 4
    assert people(mine) == [("door", "queue")] * 4 + [("old", "")] + [("old", "lobby")] * 4
    assert week(mine, camera="old") == [("2026-09-23", 4, 2), ("2026-09-24", 1, 1)]
    assert week(mine) == [("2026-09-21", 4, 3), ("2026-09-23", 4, 2), ("2026-09-24", 1, 1)]
    assert [row[1] for row in report(mine)] == ["door", "old", "old"]
    [snapshot] = [e["snapshot"] for e in mine.get("/v1/events", params={"camera": "old"}).json()["events"] if e["snapshot"]]
    assert mine.get(snapshot).status_code == 200
    for client in (mine, doors):
        assert client.get("/v1/events", params={"camera": "till"}).status_code == 403
        assert client.get("/v1/compliance", params={"camera": "till"}).status_code == 403
    refused = mine.get("/v1/events", params={"camera": "door", "zone": "lobby"})
    assert refused.status_code == 404 and "till" not in refused.text
    # The viewer of door alone: old is theirs neither in lists nor by name.
    assert doors.get("/v1/cameras/retired").json() == {"cameras": []}
    assert doors.get("/v1/events", params={"camera": "old"}).status_code == 403
    assert doors.get(snapshot).status_code == 403
    assert people(doors) == [("door", "queue")] * 4 and [row[1] for row in report(doors)] == ["door"]
    assert week(doors) == [("2026-09-21", 4, 3)]
    unknown = doors.get("/v1/events", params={"zone": "lobby"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown zone 'lobby'; zones: queue"


def test_the_privacy_statement_names_the_cameras_no_longer_running_whose_people_are_kept(clients):
    admin, mine, doors = clients
    for client, running, kept in ((admin, ["door"], ["old", "till"]), (mine, ["door"], ["old"]), (doors, ["door"], [])):
        site = client.get("/v1/privacy").json()["site"]
        assert (site["cameras"], site["cameras_not_running_with_history"]) == (running, kept)


def test_the_api_document_lists_the_cameras_a_caller_may_read(clients):
    admin, mine, doors = clients

    def enum_of(client, name):
        parameters = client.get("/openapi.json").json()["paths"]["/v1/compliance"]["get"]["parameters"]
        return next(p["schema"]["enum"] for p in parameters if p["name"] == name)

    assert enum_of(admin, "camera") == ["door", "old", "till"]
    assert enum_of(mine, "camera") == ["door", "old"]
    assert enum_of(doors, "camera") == ["door"]
    # The zones as the queries take them: a retired camera's lobby too (the document named the config's only).
    assert enum_of(admin, "zone") == enum_of(mine, "zone") == ["lobby", "queue"]
    assert enum_of(doors, "zone") == ["queue"]


@pytest.fixture(scope="module")
def open_site(tmp_path_factory):
    """The same site on a real uvicorn, open on loopback (no users: an admin's view)."""
    site, detector = make_site(tmp_path_factory.mktemp("history-page"), users=False)
    with serving(create_app(detector, site=site)) as base:
        yield base


def test_the_page_offers_the_cameras_no_longer_running_marked_as_such(open_site, page):  # noqa: F811
    """Offered under "not running (history kept)", charted and listed; the people's times in the
    site's clock (Berlin) in a browser elsewhere (Tokyo), as events.csv's last_seen_local reads them
    (the list showed the browser's own clock beside the chart's Berlin hours)."""
    page = watched(page.context.browser.new_page(timezone_id="Asia/Tokyo"))  # a tab of its own, abroad
    page.goto(open_site + "/")
    page.wait_for_function("() => document.querySelectorAll('#camera-grid .camera').length === 1", timeout=20_000)
    for select in ("#filter-camera", "#trend-camera"):
        page.wait_for_selector(f"{select} optgroup option", state="attached", timeout=20_000)
        assert page.eval_on_selector(select, "s => [...s.options].map(o => [o.value, o.text])") == [
            ["", "all"], ["door", "Front door"], ["old", "old (retired)"], ["till", "till (switched off)"]]
        assert page.eval_on_selector(f"{select} optgroup", "g => g.label") == "not running (history kept)"
    assert page.query_selector_all("#camera-grid .camera") and not page.query_selector('.camera[data-camera="old"]')
    page.select_option("#filter-camera", "old")
    page.wait_for_function("() => document.querySelectorAll('#event-list tr.event').length === 5 && "
                           "[...document.querySelectorAll('#event-list tr.event')].every(r => r.dataset.camera === 'old')",
                           timeout=20_000)
    page.wait_for_function("() => document.querySelector('#event-list img[alt=\"blurred snapshot\"]')?.naturalWidth > 0",
                           timeout=20_000)  # its snapshot, read as the cards' pictures are
    # Berlin's clock in Tokyo, said once, each time as events.csv's last_seen_local has it.
    shown = page.locator("#event-list tr.event td:first-child").all_inner_texts()
    exported = page.evaluate("fetch('/v1/events.csv?camera=old').then((r) => r.text())")
    assert shown == [row["last_seen_local"] for row in csv.DictReader(io.StringIO(exported))]
    assert shown[0] == "2026-09-24 08:01:00"  # berlin(24, 8, 1): 15:01 in Tokyo
    assert page.inner_text("#clock") == "Times: Europe/Berlin (the site's clock)"
    page.select_option("#trend-bucket", "week")
    # The zones with people in the chart's period are offered, one the file no longer has (old's
    # lobby) marked: the choice named the config's zones only, where the API and report.csv take them.
    zone_texts = "s => [...s.options].map(o => o.text)"
    page.wait_for_selector("#trend-zone option[value=lobby]", state="attached", timeout=20_000)
    assert page.eval_on_selector("#trend-zone", zone_texts) == ["all", "queue", "lobby (no longer in the config)"]
    page.select_option("#trend-camera", "old")
    # The week's bar of all cameras is drawn first (same start, "of 11"): wait for the one of "old".
    page.wait_for_function("() => [...document.querySelectorAll('#trend-chart rect.bar title')]"
                           ".some(t => t.textContent.includes('of 5 judged;'))", timeout=20_000)
    bars = page.query_selector_all("#trend-chart rect.bar")
    assert len(bars) == 1 and "of 5 judged;" in bars[0].query_selector("title").text_content()
    assert page.eval_on_selector("#trend-zone", zone_texts) == ["all", "lobby (no longer in the config)"]
    page.select_option("#trend-zone", "lobby")
    lobby = ("() => [...document.querySelectorAll('#trend-chart rect.bar title')].map(t => t.textContent)"
             ".join().includes('of 4 judged;') && document.getElementById('trend-chart').getAttribute('aria-label').includes('lobby')")
    page.wait_for_function(lobby, timeout=20_000)
    page.select_option("#filter-label", "with_mask")
    listed = ("() => [...document.querySelectorAll('#event-list tr.event')].map(r => r.dataset.camera + '/' + "
              "r.dataset.label).join() === 'old/with_mask,old/with_mask,old/with_mask'")
    page.wait_for_function(listed, timeout=20_000)
    # The chart's and the list's choices are kept in the address (the list's were lost at a reload):
    # a retired camera's is taken once its list is read.
    assert parse_qs(urlsplit(page.url).query) == {"chart_bucket": ["week"], "chart_camera": ["old"], "chart_zone": ["lobby"],
                                                   "people_camera": ["old"], "people_label": ["with_mask"]}
    page.reload()  # the retired camera once its list is read, then its zone once the chart's answer names it
    page.wait_for_function(lobby, timeout=20_000)
    assert page.input_value("#trend-camera") == "old" and page.input_value("#trend-zone") == "lobby"
    assert "chart_zone=lobby" in page.url
    page.wait_for_function(listed, timeout=20_000)
    assert [page.input_value(f"#filter-{s}") for s in ("camera", "label")] == ["old", "with_mask"]
    assert (page.eval_on_selector("#events-csv-link", "a => a.pathname + a.search")  # relative in the page
            == "/v1/events.csv?camera=old&label=with_mask")
    # A camera or label the server does not offer (another viewer's, a link mistyped) is "all".
    page.goto(open_site + "/?people_camera=gone&people_label=masked")
    page.wait_for_function("() => location.search === ''", timeout=20_000)  # once the retired cameras are read
    assert [page.input_value(f"#filter-{s}") for s in ("camera", "label")] == ["", ""]
    page.close()


def test_a_camera_id_no_camera_can_have_is_refused_without_asking_the_database(postgres, tmp_path):  # noqa: F811
    """The stored history is read for a camera not running, but an id no camera can have (a NUL in
    it, as a fuzzer sends) made PostgreSQL fail the query: the answer was 503 "the database cannot
    be read or written just now" and the log said the database failed, where it was a 400."""
    (tmp_path / "site.yaml").write_text(f"""
cameras:
  door: {{source: "rtsp://127.0.0.1:{refused_port()}/none"}}
storage: {{database: "{postgres.url}", snapshots: snaps}}
""")
    config = load_site_config(tmp_path / "site.yaml", environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    site = Site(config, detector)
    client = TestClient(create_app(detector, site=site), base_url="http://127.0.0.1")  # no lifespan: no camera
    try:
        for path in ("/v1/events", "/v1/compliance"):
            refused = client.get(path, params={"camera": "a\x00b"})
            assert refused.status_code == 400 and refused.json()["error"].startswith("unknown camera 'a\\x00b'"), \
                (path, refused.text)
        for path in ("/v1/events", "/v1/compliance"):  # a zone alike (its names are written as camera ids)
            refused = client.get(path, params={"zone": "a\x00b"})
            assert refused.status_code == 404 and refused.json()["error"].startswith("unknown zone 'a\\x00b'"), \
                (path, refused.text)
        frame = client.get("/v1/cameras/a%00b/frame.jpg")
        assert frame.status_code == 404 and frame.json()["error"].startswith("no camera 'a\\x00b'"), frame.text
    finally:
        site.store.close()
