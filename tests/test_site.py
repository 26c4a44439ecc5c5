"""`maskwatch run --config`: a whole site in one process, called over HTTP on loopback and in
headless Chromium, with a real RTSP camera that is stopped and restarted, a looped file and a
camera that never answers."""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from maskwatch.faces import PERSON_LABELS
from maskwatch.site.events import EventStore
from maskwatch.site.alerts import signature_matches
from tests.conftest import Credentials, log_in
from tests.mosquitto import Broker, Subscriber
from tests.postgres import postgres  # noqa: F401  (fixture)
from tests.rtsp import (RtspServer, lost_its_port, make_frames, refused_port, rtsp_server_available,
                        start_on_free_port)
from tests.test_alerts import SECRET, Receiver
from tests.test_cameras import wait_until
from tests.test_dashboard import NEXT_FRAMES, page  # noqa: F401  (headless Chromium)


class SiteProcess:
    """`maskwatch run --config CONFIG` in its own process, on a free loopback port, with an admin
    and a viewer (tests/conftest.py); `get` calls with the admin's API token."""

    def __init__(self, folder, cameras: str, extra: str = "", args: tuple[str, ...] = (),
                 viewer_cameras: list[str] | None = None, server: str = "", database: str = "site.db"):
        self.folder, self.database = folder, database  # a file in folder, or a server's URL
        self.credentials = Credentials(folder / database if "://" not in database else database, viewer_cameras)
        self.config = folder / "site.yaml"
        # a new port where the other xdist worker took ours (free_port)
        start_on_free_port(lambda port: self._started(port, cameras, extra, args, server), "maskwatch run",
                           log=folder / "run.log")

    def _started(self, port: int, cameras: str, extra: str, args: tuple[str, ...], server: str) -> bool:
        """Whether the site runs on `port` (now self.port); False where it lost that port. `server`:
        more of the server section's settings (", name: value")."""
        self.port = port
        self.config.write_text(f"""
defaults: {{fps: 3, detect_every: 1, stall_timeout: 2, retry_max: 0.5}}
cameras:
{cameras}
server: {{host: 127.0.0.1, port: {self.port}{server}}}
storage: {{database: "{self.database}", snapshots: snapshots, retention_days: 7}}
{extra}""")
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(self.folder / "run.log", "w+")
        self.process = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "run", "--config", str(self.config),
                                         *args], stdout=self.log, stderr=subprocess.STDOUT,
                                        env=os.environ | {"PYTHONUNBUFFERED": "1"})
        # healthy only while running: once ended, an answer there is another process's
        if wait_until(lambda: self.process.poll() is not None or self._healthy(), 60) and self._healthy() \
                and self.process.poll() is None:
            return True
        self.stop()
        self.log.seek(0)
        said = self.log.read()
        if not lost_its_port(self.process, said):
            pytest.fail(f"maskwatch run did not start:\n{said}")
        return False

    def _healthy(self) -> bool:
        try:
            return self.get("/healthz").json()["site"] is True  # with the token: the site's part is not public
        except (httpx.HTTPError, KeyError):
            return False

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(self.base + path, params=params, headers=self.credentials.headers, timeout=10)

    def camera(self, camera_id: str) -> dict:
        return next(c for c in self.get("/v1/cameras").json() if c["id"] == camera_id)

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)  # SIGINT as Ctrl-C: uvicorn shuts down, the site with it
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_dir):
    if not rtsp_server_available():
        pytest.fail("GStreamer's RTSP server is missing: the Makefile's rtsp target installs it")
    folder = tmp_path_factory.mktemp("site")
    # One photo held: the same people in every frame, so each is tracked for as long as the stream runs.
    rtsp = RtspServer(make_frames(folder / "frames", sample_dir, photos=1), folder / "rtsp.log").start()
    # The till is only looked at (its state, its card): a still 320x240 clip, which its motion gate
    # mostly skips, where three 640x480 photos had the detector busy on it all the module long.
    still_clip(folder / "till.mp4", sample_dir)
    receiver = Receiver(failures=1)  # the first POST fails: the site retries it
    broker = Broker(folder).start()
    listener = Subscriber(broker.port, "maskwatch/#")
    try:
        running = start_site(folder, rtsp, receiver, broker)
    except BaseException:
        rtsp.stop()
        receiver.close()
        listener.close()
        broker.stop()
        raise
    running.rtsp, running.receiver, running.mqtt = rtsp, receiver, listener
    yield running
    running.stop()
    rtsp.stop()
    receiver.close()
    listener.close()
    broker.stop()


def start_site(folder, rtsp, receiver, broker):
    return SiteProcess(folder, f"""
  door: {{name: Front door, source: "{rtsp.url}", zones: {{left: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}}}}
  till: {{name: Till, source: till.mp4}}
  dead: {{name: Back door, source: "rtsp://127.0.0.1:{refused_port()}/none"}}
""", extra=f"""alerts:
  webhooks: [{{url: "{receiver.url}", secret: "{SECRET}", cameras: [door], retries: 3,
              labels: [with_mask, without_mask, mask_weared_incorrect, unassessable]}}]
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
""")


def ensure_door_events(site) -> list[dict]:
    """The door camera's events; when there are none yet, make some: the people on a stream are
    decided when it drops, so stop the RTSP server once and start it again."""
    events = site.get("/v1/events", camera="door").json()["events"]
    if not events:
        assert wait_until(lambda: site.camera("door")["connected"], 60)
        analysed = site.camera("door")["analysed"]
        assert wait_until(lambda: site.camera("door")["analysed"] > analysed + 6, 60)
        site.rtsp.stop()
        assert wait_until(lambda: site.get("/v1/events", camera="door").json()["events"], 30)
        site.rtsp.start()
        events = site.get("/v1/events", camera="door").json()["events"]
    return events


def test_cameras_report_their_state(site):
    assert wait_until(lambda: site.camera("door")["connected"] and site.camera("till")["connected"], 60), \
        site.get("/v1/cameras").json()
    assert wait_until(lambda: site.camera("dead")["reconnects"] >= 2), site.camera("dead")
    cameras = {c["id"]: c for c in site.get("/v1/cameras").json()}
    assert list(cameras) == ["door", "till", "dead"]
    assert cameras["door"]["name"] == "Front door" and cameras["door"]["zones"] == ["left"]
    # on the site's clock, with its offset: this site names no timezone, so the machine's
    last_frame = datetime.fromisoformat(cameras["door"]["last_frame_at"])
    assert last_frame.utcoffset() == last_frame.astimezone().utcoffset() and cameras["door"]["frames"] > 0
    dead = cameras["dead"]
    assert not dead["connected"] and dead["frames"] == 0 and "retrying" in dead["last_error"]
    assert set(cameras["till"]["today"]) == {"people", "with_mask", "without_mask", "mask_weared_incorrect",
                                             "unassessable", "infrared"}


def test_metrics_carry_a_camera_label(site):
    assert wait_until(lambda: site.camera("door")["connected"], 60)
    text = site.get("/metrics").text
    assert 'maskwatch_camera_up{camera="door"} 1.0' in text
    assert 'maskwatch_camera_up{camera="dead"} 0.0' in text
    assert 'maskwatch_camera_people_today{camera="till",label="with_mask"}' in text
    assert 'maskwatch_camera_fps{camera="door"}' in text
    # The site's writer: nobody waits or was dropped while the database answers.
    assert 'maskwatch_camera_people_waiting{camera="door"} 0.0' in text
    assert 'maskwatch_camera_people_dropped_total{camera="door"} 0.0' in text
    # The site's deliveries: its webhook alerts by outcome and whether its MQTT broker is connected.
    assert 'maskwatch_webhook_alerts_total{outcome="failed"}' in text and "maskwatch_mqtt_connected 1.0" in text
    assert site.get("/healthz").json()["mqtt"] is True


def test_a_camera_frame_is_a_jpeg(site):
    assert wait_until(lambda: site.get("/v1/cameras/door/frame.jpg").status_code == 200, 60)
    response = site.get("/v1/cameras/door/frame.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (320, 240)
    missing = site.get("/v1/cameras/nope/frame.jpg")
    assert missing.status_code == 404 and "no camera 'nope'" in missing.json()["error"]
    assert site.get("/v1/cameras/dead/frame.jpg").status_code == 404


def test_the_camera_goes_offline_comes_back_and_events_keep_flowing(site):
    assert wait_until(lambda: site.camera("door")["connected"], 60)
    analysed = site.camera("door")["analysed"]
    assert wait_until(lambda: site.camera("door")["analysed"] > analysed + 6, 60)
    site.rtsp.stop()
    assert wait_until(lambda: not site.camera("door")["connected"]), site.camera("door")
    # Losing the stream ends the tracks: everyone seen on it is decided, an event each.
    assert wait_until(lambda: site.get("/v1/events", camera="door").json()["events"], 30)
    restarted = time.time()
    site.rtsp.start()
    assert wait_until(lambda: site.camera("door")["connected"], 60), site.camera("door")
    analysed = site.camera("door")["analysed"]
    assert wait_until(lambda: site.camera("door")["analysed"] > analysed + 6, 60)
    site.rtsp.stop()
    assert wait_until(lambda: site.get("/v1/events", camera="door", since=restarted).json()["events"], 30), \
        "no event from the stream after its restart"
    site.rtsp.start()


def test_events_filter_and_snapshots(site):
    ensure_door_events(site)
    events = site.get("/v1/events").json()["events"]
    event = next(e for e in events if e["camera"] == "door")
    assert event["label"] in ("with_mask", "without_mask", "mask_weared_incorrect", "unassessable")
    decided = event["label"] != "unassessable"  # too few frames of a large enough face: probability 0
    assert (0 < event["probability"] <= 1 if decided else event["probability"] == 0)
    assert event["first_seen"] <= event["last_seen"]
    assert event["zone"] in ("left", None)
    snapshot = site.get(event["snapshot"])
    assert snapshot.status_code == 200 and Image.open(io.BytesIO(snapshot.content)).format == "JPEG"
    assert snapshot.headers["cache-control"] == "no-store"  # a cached copy outlived retention and revoked access
    label = event["label"]
    assert all(e["label"] == label for e in site.get("/v1/events", label=label).json()["events"])
    assert site.get("/v1/events", since="2999-01-01T00:00:00Z").json()["events"] == []
    # A zone no camera has was an empty list, a typo read as "nobody was seen there".
    nowhere = site.get("/v1/events", zone="nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "unknown zone 'nowhere'; zones: left"
    assert site.get("/v1/events", zone="left").status_code == 200
    # since as ISO 8601 allows it: a basic date was read as second 20,260,922 of 1970
    assert site.get("/v1/events", since="29990101").json()["events"] == []
    assert site.get("/v1/events", since="2026-01-01t00:00:00z").status_code == 200


def test_each_door_event_is_posted_to_the_webhook_signed(site):
    ensure_door_events(site)
    assert wait_until(lambda: site.receiver.received, 30)
    assert site.receiver.attempts > len(site.receiver.received)  # the first try failed and was retried
    stored = {e["id"]: e for e in site.get("/v1/events", camera="door").json()["events"]}
    for body, signature in site.receiver.received:
        assert signature_matches(SECRET, body, signature)
        posted = json.loads(body)["event"]
        assert posted["camera"] == "door" and posted == stored[posted["id"]]  # one shape: as /v1/events gives it


def test_mqtt_hears_availability_events_and_counts(site):
    assert wait_until(lambda: site.mqtt.on("maskwatch/available")[-1:] == ["online"], 30)
    ensure_door_events(site)
    assert wait_until(lambda: any(m["type"] == "end" for m in site.mqtt.json_on("maskwatch/events")), 30)
    messages = site.mqtt.json_on("maskwatch/events")
    ends = [m["event"] for m in messages if m["type"] == "end"]
    news = [m for m in messages if m["type"] == "new"]
    assert news and {(m["camera"], m["track_id"]) for m in news} >= {(e["camera"], e["track_id"]) for e in ends}
    counts = site.mqtt.json_on("maskwatch/door/counts")
    assert counts and counts[-1]["people"] + counts[-1]["unassessable"] >= 1 and set(counts[-1]) == {
        "people", "with_mask", "without_mask", "mask_weared_incorrect", "unassessable", "infrared"}
    # People in view now, per voted label (Frigate's <camera>/<label>, and unassessable for a face
    # too small to decide): a person was seen, so some label's count rose above 0 at some point.
    in_view = {label: site.mqtt.on(f"maskwatch/door/{label}") for label in PERSON_LABELS}
    assert all(in_view.values()) and any(int(n) > 0 for values in in_view.values() for n in values), in_view
    # An end event is the event /v1/events gives (times in ISO 8601, the snapshot's URL): one shape.
    stored = {e["id"]: e for e in site.get("/v1/events", limit=1000).json()["events"]}
    assert ends and all(event == stored[event["id"]] for event in ends), (ends, stored)


def test_mqtt_says_each_camera_up_or_down_as_the_api_does(site):
    """Nothing on MQTT said that a camera was down: only /v1/cameras, the page and Prometheus."""
    assert wait_until(lambda: site.mqtt.on("maskwatch/till/available")[-1:] == ["online"], 60)
    assert wait_until(lambda: site.mqtt.on("maskwatch/door/available")[-1:] == ["online"], 60)
    assert site.mqtt.on("maskwatch/dead/available") == ["offline"]  # it never sent a frame
    site.rtsp.stop()
    assert wait_until(lambda: site.mqtt.on("maskwatch/door/available")[-1:] == ["offline"], 30)
    assert not site.camera("door")["connected"]
    site.rtsp.start()
    assert wait_until(lambda: site.mqtt.on("maskwatch/door/available")[-1:] == ["online"], 60)
    assert site.camera("door")["connected"]


def test_the_daily_report_is_csv(site):
    ensure_door_events(site)
    response = site.get("/v1/report.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    door = [r for r in rows if r["camera"] == "door"]
    decided = [e for e in site.get("/v1/events", camera="door", limit=1000).json()["events"]
               if e["label"] != "unassessable"]  # the report's people are decided people
    assert door and sum(int(r["people"]) for r in door) == len(decided)
    unassessable = [e for e in site.get("/v1/events", camera="door", limit=1000).json()["events"]
                    if e["label"] == "unassessable"]
    assert sum(int(r["unassessable"]) for r in door) == len(unassessable)  # counted apart, not left out
    recent = {time.strftime("%Y-%m-%d", time.gmtime(time.time() - lag)) for lag in (0, 3600)}  # near midnight
    assert all(r["date"] in recent for r in door)
    bad = site.get("/v1/report.csv", **{"from": "2026-02-30"})
    assert bad.status_code == 400 and "from must be a date written YYYY-MM-DD" in bad.json()["error"]


@pytest.mark.parametrize("params, message", [
    ({"camera": "nope"}, "unknown camera 'nope'; cameras: door, till, dead"),
    ({"label": "masked"}, "label must be one of"),
    ({"since": "yesterday"}, "since must be Unix seconds or an ISO 8601 time"),
])
def test_bad_event_filters_are_named(site, params, message):
    response = site.get("/v1/events", **params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_misspelt_event_filter_is_refused_not_ignored(site):
    response = site.get("/v1/events", camra="door")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "camra"] and "camera" in error["msg"]


def test_the_page_shows_every_camera_with_its_state(site, page):  # noqa: F811
    assert wait_until(lambda: site.camera("door")["connected"], 60)
    log_in(page, site.base)
    page.wait_for_selector("#cameras:not([hidden])", timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('#camera-grid .camera').length === 3", timeout=20_000)
    page.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"]').dataset.connected === 'true'",
                           timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('.camera[data-camera=\"door\"] img').naturalWidth > 0", timeout=20_000)
    dead = page.query_selector('.camera[data-camera="dead"]')
    assert dead.get_attribute("data-connected") == "false"
    assert "offline" in dead.inner_text() and "Back door" in dead.inner_text()
    names = [el.inner_text() for el in page.query_selector_all("#camera-grid .name")]
    assert names == ["Front door", "Till", "Back door"]
    door = page.query_selector('.camera[data-camera="door"]')
    assert not door.query_selector(".nofeed").is_visible()  # "no frame yet" showed under the live frame
    assert "frames a second" in door.query_selector(".state").inner_text()  # the config's rate, not the stream's alone


def still_clip(path, sample_dir, frames=6):
    """A 320x240 clip of one sample photo held: the same people in every frame."""
    photo = cv2.resize(cv2.imread(str(sorted(sample_dir.glob("images/*.png"))[0])), (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for _ in range(frames):
        writer.write(photo)
    writer.release()
    return path


def leaving_clip(path, sample_dir):
    """A 320x240 clip of a sample photo's people for 3 s, then an empty grey room for 4 s: looped
    by a site camera, its people become people (seen at several of the site's frames) and leave
    every loop (past the tracker's 2 s), so events come within seconds, not whenever a loaded
    machine happens to lose a track. At 640x480 the detector took about three times as long a frame,
    beside every request the tests make; at this size its people are mostly too small to decide
    (unassessable), and events all the same, which is what the tests ask of them."""
    photo = cv2.resize(cv2.imread(str(sorted(sample_dir.glob("images/*.png"))[0])), (320, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(70):
        writer.write(photo if i < 30 else np.full_like(photo, 128))
    writer.release()
    return path


def test_the_page_lists_events_and_filters_them(site, page):  # noqa: F811
    ensure_door_events(site)
    log_in(page, site.base)
    page.wait_for_selector("#events:not([hidden])", timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('#event-list tr.event').length > 0", timeout=20_000)
    page.wait_for_selector('#event-list tr[data-camera="door"] img', timeout=20_000)  # the blurred snapshot, once read
    row = page.query_selector('#event-list tr[data-camera="door"]')
    assert row.query_selector_all("td")[1].inner_text() == "Front door"  # by name, as on its card
    page.select_option("#filter-camera", "dead")  # a camera that never sent a frame has no event
    page.wait_for_function("() => document.querySelectorAll('#event-list tr.event').length === 0", timeout=20_000)
    page.select_option("#filter-camera", "door")
    page.wait_for_function("() => document.querySelectorAll('#event-list tr.event').length > 0", timeout=20_000)
    cameras = {row.get_attribute("data-camera") for row in page.query_selector_all("#event-list tr.event")}
    assert cameras == {"door"}
    label = page.query_selector("#event-list tr.event").get_attribute("data-label")
    page.select_option("#filter-label", label)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#event-list tr.event')].every(r => r.dataset.label === '{label}')",
        timeout=20_000)
    assert page.eval_on_selector("#report-link", "a => new URL(a.href).pathname") == "/v1/report.csv"  # relative in the page
    # "daily report (CSV)" downloaded 7 days of per-day rows
    assert page.inner_text("#report-link") == "compliance per day, last 7 days (CSV)"
    # On a phone the events table scrolls in its box: the page was 552 px wide on 375, and the chart
    # kept a 240 px box for a drawing scaled to 122. The drawing is made in the box's own pixels.
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.evaluate(NEXT_FRAMES)  # the chart drawn again at its new size
        width, height, drawn = page.evaluate("() => { const c = document.getElementById('trend-chart'); "
                                             "return [c.clientWidth, c.clientHeight, c.getAttribute('viewBox')]; }")
        assert width == 0 or (drawn == f"0 0 {width} {height}" and 1.7 < width / height < 1.9), (width, height, drawn)
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})  # Playwright's default, as the other tests have it


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_stopping_the_site_loses_no_event_and_warns_of_nothing(tmp_path, sample_dir, stop):
    """A clean stop (Ctrl-C, SIGTERM) said its two lines as WARNINGs: each stop read as trouble."""
    still_clip(tmp_path / "till.mp4", sample_dir)
    running = SiteProcess(tmp_path, "  till: {source: till.mp4}\n")
    assert wait_until(lambda: running.camera("till")["analysed"] >= 6, 60)
    running.process.send_signal(getattr(signal, stop))
    assert running.process.wait(timeout=30) in (0, -signal.SIGTERM)
    said = (tmp_path / "run.log").read_text()
    assert " INFO maskwatch.site.stop: stopped: " in said and " WARNING " not in said, said  # shown, as news
    # People still in view at the stop are decided on the way out: at least one event is stored.
    store = EventStore(str(tmp_path / "site.db"))
    events = store.events(camera="till")
    assert events and all(e["snapshot"] and (tmp_path / "snapshots" / e["snapshot"]).is_file() for e in events)
    assert sum(c["people"] + c["unassessable"] for c in store.counts()) == len(events)
    store.close()


def test_a_database_file_held_by_another_process_stops_no_camera(tmp_path, sample_dir):
    """Another process holding site.db (`sqlite3 site.db 'BEGIN EXCLUSIVE'`, a long backup) for
    45 s stopped the cameras' analysis: each camera's write waited 30 s for the file, the others
    waited their turn, and the people who passed meanwhile were never seen. Now a write waits
    2 s, the people wait in memory, the camera analyses on and says why they wait."""
    import sqlite3

    leaving_clip(tmp_path / "door.mp4", sample_dir)  # people leave every 7 s: a write each time
    running = SiteProcess(tmp_path, "  door: {source: door.mp4}\n")
    store = EventStore(str(tmp_path / "site.db"))
    hold = sqlite3.connect(tmp_path / "site.db", timeout=30, isolation_level=None)
    try:
        assert wait_until(lambda: store.events(camera="door"), 60)
        hold.execute("BEGIN EXCLUSIVE")
        held_at = time.time()
        problem = lambda: running.camera("door")["analysis_error"] or ""  # noqa: E731
        # (with a 30 s wait the camera said nothing, stuck in the write, for 30 s)
        assert wait_until(lambda: "database is locked" in problem(), 20), running.camera("door")
        assert re.match(r"\d+ people wait to be stored", problem()), problem()
        analysed = running.camera("door")["analysed"]
        assert wait_until(lambda: running.camera("door")["analysed"] > analysed + 3, 20)  # analysing on
        hold.execute("COMMIT")
        released_at = time.time()
        assert wait_until(lambda: running.camera("door")["analysis_error"] is None, 30), running.camera("door")
        events = store.events(camera="door", limit=1000)
        assert any(held_at < event["last_seen"] < released_at for event in events), events  # kept, then stored
        assert len({(event["track_id"], event["first_seen"]) for event in events}) == len(events)  # once each
    finally:
        hold.close()
        store.close()
        running.stop()


def test_a_hung_postgresql_holds_no_camera_and_a_stop_during_it_ends(tmp_path, sample_dir, postgres):  # noqa: F811
    """A PostgreSQL server that hung (`kill -STOP` of it) held every camera's thread in its write:
    2 frames analysed per camera in 20 s where 60 were due, the people who passed never seen; and a
    SIGTERM meanwhile waited as long as the server did (over 60 s). Now the cameras hand their people
    to the site's writer and analyse on: the people who pass during the hang are stored once it
    answers, each once; a stop during a hang ends, saying how many could not be stored."""
    leaving_clip(tmp_path / "door.mp4", sample_dir)  # people leave every 7 s: a write each time
    database = postgres.new_database("hung")
    running = SiteProcess(tmp_path, "  door: {source: door.mp4}\n", database=database)
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    server = [postmaster, *map(int, subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True,
                                                    text=True).stdout.split())]
    log = tmp_path / "run.log"
    try:
        assert wait_until(lambda: running.camera("door")["today"]["unassessable"] > 0, 60)  # stored: connected
        for pid in server:
            os.kill(pid, signal.SIGSTOP)
        held_at = time.time()
        # /healthz answers all the same, as to anyone (it waited on the users database: no answer at all)
        assert httpx.get(running.base + "/healthz", headers=running.credentials.headers, timeout=15).json() == {"status": "ok"}
        assert wait_until(lambda: "maskwatch.site.event_sink: the database has not answered a write for " in log.read_text(),
                          40), log.read_text()
        assert wait_until(lambda: time.time() > held_at + 15, 20)  # two passes of the clip's people at least
        for pid in server:
            os.kill(pid, signal.SIGCONT)
        released_at = time.time()
        assert wait_until(lambda: "the database answered again after " in log.read_text(), 30), log.read_text()
        store = EventStore(database)
        try:
            passed = lambda: [e for e in store.events(camera="door", limit=1000)  # noqa: E731
                              if held_at < e["first_seen"] and e["last_seen"] < released_at]
            assert wait_until(passed, 30), store.events(camera="door")  # seen while it hung, stored after
            events = store.events(camera="door", limit=1000)
            assert len({(e["track_id"], e["first_seen"]) for e in events}) == len(events)  # once each
        finally:
            store.close()
        assert " maskwatch.site.stalls: " not in log.read_text()  # no camera was stuck
        for pid in server:
            os.kill(pid, signal.SIGSTOP)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=30) in (0, -signal.SIGTERM)
        said = log.read_text()
        assert re.search(r"INFO maskwatch.site.stop: stopped: \d+ people stored since the start", said), said
    finally:
        for pid in server:
            os.kill(pid, signal.SIGCONT)
        running.stop()


def test_a_paused_site_says_so_once_it_runs_again(tmp_path, sample_dir):
    """A `run` stopped by SIGSTOP (a virtual machine suspended) past its cameras' offline_after
    came back with them counted offline and their people in view as gone, and no line in the log."""
    still_clip(tmp_path / "till.mp4", sample_dir)
    running = SiteProcess(tmp_path, "  till: {source: till.mp4}\n")  # stall_timeout 2: offline after 2 s
    try:
        assert wait_until(lambda: running.camera("till")["analysed"] >= 3, 60)
        running.process.send_signal(signal.SIGSTOP)
        time.sleep(7)  # past the 5 s the watch says at the least
        running.process.send_signal(signal.SIGCONT)
        log = tmp_path / "run.log"
        assert wait_until(lambda: "maskwatch.site.pause: the site was paused for " in log.read_text(), 30), log.read_text()
        said = next(line for line in log.read_text().splitlines() if "the site was paused" in line)
        seconds = int(re.search(r"paused for (\d+) s", said).group(1))
        assert 6 <= seconds <= 30 and "offline_after (2 s at the shortest)" in said, said
        analysed = running.camera("till")["analysed"]
        assert wait_until(lambda: running.camera("till")["analysed"] > analysed, 30)  # and analyses on
    finally:
        running.process.send_signal(signal.SIGCONT)
        running.stop()


def test_a_site_whose_start_fails_stops_what_it_started(tmp_path, monkeypatch):
    import threading

    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text(
        "cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n"
        "alerts:\n  webhooks: [{url: 'http://127.0.0.1:1/hook', secret: 's3cret-key'}]\n")
    config = load_site_config(tmp_path / "site.yaml", environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    Site(config, detector).stop()  # never started: nothing to stop, no error

    site = Site(config, detector)

    def cameras_fail():
        raise OSError("no camera thread to be had")

    monkeypatch.setattr(site, "_start_cameras", cameras_fail)
    with pytest.raises(OSError, match="no camera thread"):
        site.start()
    assert not any(t.name.startswith("maskwatch-webhook") and t.is_alive() for t in threading.enumerate())


def test_while_the_database_cannot_be_read_the_cameras_state_still_goes_out(tmp_path, monkeypatch):
    """/v1/cameras and /metrics read today's counts from the database: during an outage they give
    the cameras' own state (up, FPS) and leave the counts out, where the whole scrape failed."""
    from sqlalchemy.exc import OperationalError

    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.config import load_site_config
    from maskwatch.site.metrics import SiteCollector
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))

    def down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(site.store, "counts", down)
    monkeypatch.setattr(site.store, "totals", down)
    try:
        [door] = site.cameras()
        assert door["id"] == "door" and door["today"] is None
        series = {family.name: family.samples for family in SiteCollector(site).collect()}
        assert [s.labels for s in series["maskwatch_camera_up"]] == [{"camera": "door"}]
        assert series["maskwatch_camera_people_today"] == []
    finally:
        site.stop()



def test_requests_failing_on_the_database_are_one_log_line_a_minute(tmp_path, monkeypatch, caplog):
    """Each request that met the database away was a warning: an open dashboard polling every few
    seconds wrote a line each time, thousands over a night's outage."""
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.serving.app import create_app
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n")
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), detector)

    def down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(site.store, "events", down)
    try:
        client = TestClient(create_app(detector, site=site))  # no lifespan: no camera started
        assert [client.get("/v1/events").status_code for _ in range(5)] == [503] * 5
    finally:
        site.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.serving.app"]
    assert said == ["GET /v1/events: the database failed ((builtins.Exception) server closed the connection "
                    "unexpectedly)"], said


def test_a_site_tells_every_camera_to_stop_before_it_waits_for_any(tmp_path):
    """A camera waiting on a dead stream (an open, a check of a mute camera) ends its wait when
    told; told one after another, each began a new wait while the one before was stopping
    (eight mute cameras took 80 s, past systemd's 90 s with the rest of the stop)."""
    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text("cameras:\n" + "".join(f"  cam{i}: {{source: 'rtsp://127.0.0.1:1/x'}}\n"
                                                                for i in range(3)))
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))
    calls = []

    class Reader:
        def __init__(self, name):
            self.name = name

        def stop(self):
            calls.append(("reader joined", self.name))

    class Worker:
        def __init__(self, name):
            self.name, self.reader = name, Reader(name)

        def stopping(self):
            calls.append(("told", self.name))

        def hand_out(self):
            calls.append(("people stored", self.name))

    for camera_id, camera in site.cameras_by_id.items():
        camera.worker = Worker(camera_id)
    site.stop()
    # ... and every camera's people are stored before any reader is waited for (one stuck in
    # OpenCV's open held the later cameras' people past docker stop's 10 s)
    assert [what for what, _ in calls] == ["told"] * 3 + ["people stored"] * 3 + ["reader joined"] * 3


def test_a_stalled_request_does_not_hold_the_stop_and_the_people_in_view_are_stored(tmp_path, sample_dir):
    """uvicorn waited for open requests without end: SIGTERM with one stalled upload left the site
    recording for 40 s until it was killed, nobody stored; a second Ctrl-C skipped the storing."""
    import socket

    still_clip(tmp_path / "door.mp4", sample_dir, frames=30)
    # the shipped 5 s wait for open requests, waited out to no purpose here: any wait proves the stop is bounded
    running = SiteProcess(tmp_path, "  door: {source: door.mp4}\n", server=", open_requests_at_stop_seconds: 0.5")
    stalled = None
    try:
        assert wait_until(lambda: running.camera("door")["analysed"] >= 6, 60)
        stalled = socket.create_connection(("127.0.0.1", running.port))
        stalled.sendall(b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: 100000\r\n\r\n\xff\xd8" + b"0" * 100)  # and nothing more
        time.sleep(1)
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=60)  # a guard: the old stop waited for the stalled request without end
        running.log.seek(0)
        said = running.log.read()
        # The stalled request given up at open_requests_at_stop_seconds, not waited for (uvicorn's words)
        assert "timeout graceful shutdown exceeded" in said, said[-3000:]
        # Ended by its signal after the clean stop (uvicorn's way), or 0: what systemd counts as a
        # stop that succeeded (the package's maskwatch.service); an exit(143) would be a failed unit.
        assert running.process.returncode in (0, -signal.SIGTERM), running.process.returncode
    finally:
        if stalled is not None:
            stalled.close()
        if running.process.poll() is None:
            running.stop()
    store = EventStore(str(tmp_path / "site.db"))
    assert [e["camera"] for e in store.events()] == ["door"] * len(store.events()) and store.events()
    stored = len(store.events())
    store.close()
    said = (tmp_path / "run.log").read_text()
    assert "stopping: the people in view at 1 camera are stored" in said  # "1 cameras" until 2026-12-05
    people = "person" if stored == 1 else "people"
    assert f"stopped: {stored} {people} stored since the start" in said, said  # the stop ran to its end


def test_two_runs_started_together_on_one_port_leave_one_site_and_one_line(tmp_path, sample_dir):
    """The second passed the port check while the first loaded its models, ran its site against
    the shared database, then failed to bind: "site on ...", an ERROR, exit 3."""
    still_clip(tmp_path / "door.mp4", sample_dir)
    # both lose where the other xdist worker took the port (free_port): again on a new one
    start_on_free_port(lambda port: _two_runs_on_one_port(tmp_path, port), "maskwatch run")


def _two_runs_on_one_port(folder, port: int) -> bool:
    """The test above on `port`, checked; False where both runs lost it to another process."""
    runs = []
    (folder / "site.yaml").write_text(f"cameras:\n  door: {{source: door.mp4}}\n"
                                      f"server: {{host: 127.0.0.1, port: {port}}}\nstorage: {{database: site.db}}\n")
    try:
        for n in range(2):
            runs.append(subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "run", "--config",
                                          str(folder / "site.yaml")], stdout=open(folder / f"run{n}.log", "w"),
                                         stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"}))
        said = [folder / f"run{n}.log" for n in range(2)]
        assert wait_until(lambda: any(run.poll() is not None for run in runs), 60)
        lost = next(n for n, run in enumerate(runs) if run.poll() is not None)
        won = 1 - lost  # it says "site on" once it listens: the port is its own
        assert wait_until(lambda: runs[won].poll() is not None or "site on" in said[won].read_text(), 60)
        if all(lost_its_port(run, log.read_text()) for run, log in zip(runs, said)):
            return False
        lost_said = said[lost].read_text()
        assert runs[lost].returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in lost_said \
            and "site on" not in lost_said, lost_said
        assert runs[won].poll() is None, said[won].read_text()

        def healthy():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:  # the winner listens from its start: a request waits until it serves
                return False

        assert wait_until(healthy, 60)
        return True
    finally:
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
                run.wait(timeout=30)


def test_retention_at_the_start_waits_an_hour_when_every_stored_row_is_older_than_its_window(tmp_path, caplog):
    """A clock set ahead at boot (an RTC's garbage before NTP pulls it back) made every stored row
    older than retention_days, and the start's sweep deleted the whole history. It waits for the
    hourly sweep, saying so; a site truly off that long loses them then, and a site with a recent row
    sweeps at the start as before. A clock set ahead while the site runs waits an hour the same way."""
    import time

    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site
    from tests.test_events import person

    (tmp_path / "site.yaml").write_text("cameras:\n  door: {source: 'rtsp://127.0.0.1:1/none'}\n"
                                        "storage: {retention_days: 7}\n")
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), detector)
    old = time.time() - 8 * 86400
    site.store.record("door", None, person(1, (0.9, 0.05, 0.05), first=old, last=old))
    try:
        site.start()
        assert site.store.last_seen("door") == old  # kept at the start
        said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.runner"]
        assert any(m.startswith("retention at the start postponed to the next hourly sweep: every stored row is "
                                "older than retention_days (7) by this clock") for m in said), said
        # A clock set a year ahead since the last sweep (`date -s` mistyped): every row would go; it waits
        steady, wall = time.monotonic() - 3600, time.time() - 3600 - 365 * 86400
        site._hourly_retention(steady, wall)
        assert site.store.last_seen("door") == old
        said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.runner"]
        assert said[-1].startswith("retention after the clock was set +31536000 s postponed to the next hourly "
                                   "sweep"), said
        site._hourly_retention(time.monotonic() - 3600, time.time() - 3600)  # the hour after: gone
        assert site.store.last_seen("door") is None
    finally:
        site.stop()

    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), detector)
    site.store.record("door", None, person(2, (0.9, 0.05, 0.05), first=old, last=old))
    site.store.record("door", None, person(3, (0.9, 0.05, 0.05), first=time.time(), last=time.time()))
    try:
        site.start()
        assert len(site.store.events(camera="door")) == 1  # the old one swept at the start
    finally:
        site.stop()


def test_a_run_killed_is_said_at_the_next_start_and_a_clean_stop_is_not(tmp_path, caplog):
    """After a `kill -9` (a crash, a power cut) the next start said nothing: the people in view
    then, and any waiting to be stored, were lost unnoticed."""
    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    killed = SiteProcess(tmp_path, f"  door: {{source: 'rtsp://127.0.0.1:{refused_port()}/none'}}\n")
    marker = tmp_path / "site.db.running"
    assert marker.is_file()  # beside the database while it runs
    killed.process.kill()
    killed.process.wait()
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    for run in range(2):
        site = Site(load_site_config(killed.config, environ={}), detector)
        try:
            site.start()
        finally:
            site.stop()
        assert not marker.exists()  # a clean stop takes it away
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.unclean_end"]
    assert len(said) == 1 and said[0].startswith(f"the run before on {tmp_path / 'site.db'} (process "
                                                 f"{killed.process.pid}, started "), said
    assert "did not stop cleanly" in said[0]


NEWS_WRITES = """() => { window.newsWrites = 0;  // each change of the region's text, which a screen reader says
  new MutationObserver(() => { window.newsWrites += 1; }).observe(document.getElementById('camera-news'),
                                                                   {childList: true, characterData: true, subtree: true}); }"""


def test_a_camera_going_offline_and_back_is_said_once_each(site, page):  # noqa: F811
    """A camera's card changed to "offline" and back without a word to a screen reader: its change is
    said once in a polite live region (not the cards' fps, which change every second); a camera
    offline from the start (dead) is not news."""
    assert wait_until(lambda: site.camera("door")["connected"], 60)
    log_in(page, site.base)
    page.wait_for_function("() => document.querySelector('.camera[data-camera=\"door\"]')?.dataset.connected === 'true'",
                           timeout=20_000)
    page.evaluate(NEWS_WRITES)
    assert page.text_content("#camera-news") == ""
    site.rtsp.stop()
    try:
        page.wait_for_function("() => document.getElementById('camera-news').textContent.includes('Front door went offline')",
                               timeout=30_000)
        page.wait_for_timeout(3000)  # three polls more: said once
        assert page.evaluate("window.newsWrites") == 1
    finally:
        site.rtsp.start()
    page.wait_for_function("() => document.getElementById('camera-news').textContent.includes('Front door is back online')",
                           timeout=60_000)
    assert page.evaluate("window.newsWrites") == 2
    assert re.fullmatch(r"\d\d:\d\d: Front door is back online\.", page.text_content("#camera-news"))
    assert page.get_attribute("#camera-news", "aria-live") == "polite"
