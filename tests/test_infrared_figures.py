"""A night camera's figures say which were of grey (infrared) frames: the counts' `infrared`
people in /v1/compliance, report.csv, a scheduled report's line and a compliance alert. On grey
frames the shipped classifier passes two bare faces in three as masked (docs/site.md#night-and-
infrared-cameras): the operator reading Monday's report saw a 95 % night with no word of it.

The site runs in this process, its camera never started; its people are written beforehand:
"platform" at 23:00 (infrared, 14 of 20 called masked) and at 12:00 (colour, 10 of 20) on
2026-09-21 in Berlin."""

import csv
import io
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maskwatch.data.grey import NIGHT_WORDS
from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.serving.app import create_app
from maskwatch.site.compliance import ComplianceMonitor, ComplianceRule
from maskwatch.site.config import load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.notify import compliance_message
from maskwatch.site.report import daily_rows, period_totals
from maskwatch.site.reports import figures_line
from maskwatch.site.runner import Site
from tests.rtsp import refused_port
from tests.test_alert_rules import MASKED, UNMASKED, berlin
from tests.test_events import person
from tests.test_notify import BERLIN

NIGHT, NOON = berlin(21, 23), berlin(21, 12)
SAID = f"seen on grey (infrared) frames, {NIGHT_WORDS} (docs/site.md#night-and-infrared-cameras)"


def crowd(store, masked, unmasked, when, infrared):
    for i in range(masked + unmasked):
        store.record("platform", None, person(i, MASKED if i < masked else UNMASKED, first=when - 5, last=when),
                     infrared=infrared)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("night")
    (folder / "site.yaml").write_text(f"""
cameras:
  platform: {{name: Platform 2, source: "rtsp://127.0.0.1:{refused_port()}/none"}}
timezone: Europe/Berlin
storage: {{database: site.db, retention_days: 3650}}
""")
    config = load_site_config(folder / "site.yaml", environ={})
    store = EventStore(config.storage.database, retention_days=3650)
    crowd(store, masked=10, unmasked=10, when=NOON, infrared=False)
    crowd(store, masked=14, unmasked=6, when=NIGHT, infrared=True)
    store.record("platform", None, person(99, MASKED, first=NIGHT - 5, last=NIGHT, evidence=0), infrared=True)
    store.close()
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    site = Site(config, detector)
    yield site, TestClient(create_app(detector, site=site), base_url="http://127.0.0.1")  # no lifespan
    site.store.close()


def test_the_compliance_api_marks_the_hours_seen_on_grey_frames(site):
    _, client = site
    answer = client.get("/v1/compliance", params={"camera": "platform", "since": "2026-09-21T00:00:00+02:00"})
    assert answer.status_code == 200, answer.text
    hours = {b["start"][11:16]: (b["people"], b["unassessable"], b["infrared"], b["infrared_share"])
             for b in answer.json()["buckets"]}
    assert hours == {"12:00": (20, 0, 0, 0.0), "23:00": (20, 1, 21, 1.0)}
    (day,) = client.get("/v1/compliance", params={"camera": "platform", "bucket": "day",
                                                  "since": "2026-09-21"}).json()["buckets"]
    assert (day["infrared"], day["infrared_share"]) == (21, round(21 / 41, 4))


def test_report_csv_has_the_days_people_seen_on_grey_frames(site):
    _, client = site
    answer = client.get("/v1/report.csv", params={"from": "2026-09-21", "to": "2026-09-21"})
    (row,) = csv.DictReader(io.StringIO(answer.text))
    assert (row["people"], row["unassessable"], row["infrared"]) == ("40", "1", "21")


def test_a_scheduled_reports_line_says_how_many_were_seen_on_grey_frames(site):
    store = site[0].store
    from datetime import date

    rows = daily_rows(store.counts(since=berlin(21, 0), until=berlin(22, 0), every=900), date(2026, 9, 21),
                      date(2026, 9, 21), BERLIN)
    (total,) = period_totals(rows, by_zone=False).values()
    line = figures_line("Platform 2", total)
    assert line.startswith("Platform 2: 40 people: 24 with a mask, 16 without") and line.endswith(f"; 21 of 41 people {SAID}")
    day_only = daily_rows(store.counts(since=berlin(21, 0), until=berlin(21, 13), every=900), date(2026, 9, 21),
                          date(2026, 9, 21), BERLIN)
    assert "infrared" not in figures_line("Platform 2", period_totals(day_only, by_zone=False)[("platform", None)])


def test_a_compliance_alert_over_grey_frames_says_so(site, caplog):
    store = site[0].store
    rule = ComplianceRule(below=90, minutes=15, camera="platform", min_people=5)
    monitor = ComplianceMonitor(store, [rule], zones_of={"platform": []}, send=None)
    with caplog.at_level(logging.WARNING, logger="maskwatch.site.compliance"):
        (night,) = monitor.check(NIGHT + 60)
    (noon,) = ComplianceMonitor(store, [rule], zones_of={"platform": []}, send=lambda alert: None).check(NOON + 60)
    assert (night["infrared"], night["seen"], noon["infrared"]) == (21, 21, 0)
    assert f"; 21 of 21 people {SAID} (said here only" in caplog.text
    _, body = compliance_message(night, {"platform": "Platform 2"}, BERLIN)
    assert f"Infrared: 21 of 21 people {SAID}" in body.splitlines()
    assert "Infrared" not in compliance_message(noon, {"platform": "Platform 2"}, BERLIN)[1]


def test_a_days_totals_say_how_many_were_seen_on_grey_frames(site):
    """What /v1/cameras' `today`, the camera's card and MQTT's <camera>/counts read (runner.today_counts)."""
    totals = site[0].store.totals("platform", since=berlin(21, 0))
    assert (totals["people"], totals["unassessable"], totals["infrared"]) == (40, 1, 21)


def test_prometheus_says_how_many_of_todays_people_were_seen_on_grey_frames(site):
    """maskwatch_camera_compliance_today of a night camera read as a day camera's: a Grafana alert on it
    had no series telling the grey frames' people apart (the API's `today` and MQTT had them)."""
    import time

    from sqlalchemy import delete

    from maskwatch.site.events import counts, events, quarters

    store, client = site[0].store, site[1]
    now = time.time()
    store.record("platform", None, person(500, MASKED, first=now - 5, last=now), infrared=True)
    store.record("platform", None, person(501, MASKED, first=now - 5, last=now))
    try:
        scraped = client.get("/metrics").text
    finally:  # the other tests' totals are of 2026-09-21 on: today's two people go again
        with store.engine.begin() as connection:
            for table in (events, counts, quarters):
                connection.execute(delete(table).where((table.c.last_seen if table is events else table.c.minute)
                                                       >= now - 3600))
    assert 'maskwatch_camera_people_infrared_today{camera="platform"} 1.0' in scraped
    (described,) = [line for line in scraped.splitlines()
                    if line.startswith("# HELP maskwatch_camera_people_infrared_today ")]
    assert "seen on grey (infrared) frames" in described and NIGHT_WORDS in described


def test_the_api_schema_says_what_a_grey_frames_mark_means_now(site):
    """Since the night model judges grey frames, /openapi.json still said "the classifier passes most
    bare faces as masked: ... overstated": its three `infrared` fields now give data/grey.py's words."""
    described = json.dumps(site[1].get("/openapi.json").json())
    assert described.count(NIGHT_WORDS) >= 3 and "overstated" not in described


def test_no_page_or_message_says_the_words_of_before_the_night_model():
    """The dashboard's notes, its alerts list and the site's messages said "most bare faces pass as
    masked ... overstated" after the night model had shipped; each says data/grey.py's words now."""
    package = Path(__file__).resolve().parents[1] / "src" / "maskwatch"
    stale = ("most bare faces", "overstated", "99 of 143 bare faces of held-out")
    said = {path.relative_to(package).as_posix(): " ".join(path.read_text().split())
            for folder in ("serving/static", "site", "video") for path in sorted((package / folder).glob("*.*"))
            if path.suffix in (".py", ".js", ".html")}
    assert [(name, words) for name, text in said.items() for words in stale if words in text] == []
    assert said["serving/static/dashboard.html"].count(NIGHT_WORDS) == 3  # under the cards, the chart, the list
