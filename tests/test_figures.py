"""One day's figures, read from every place a site gives them, agree: people per label, decided and
unassessable, the corrected share and its interval, the day's bounds, the camera and zone.

A running site (Europe/Berlin, two cameras, a zone, MQTT to a real mosquitto, uvicorn on loopback)
stores its people through its own event path (EventStore.record, as a camera's sink does) at fixed
times: Sunday 2026-10-25, Berlin's 25-hour day, with its edges and its hour that happens twice,
and today's, which the "today" outputs read (the cameras' cards, /v1/cameras, MQTT, /metrics).
"""

import csv
import io
import math
import time
from collections import Counter
from datetime import date, datetime, time as clock_time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.faces import CLASSES, PERSON_LABELS
from maskwatch.serving.app import create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.event_views import alert_view
from maskwatch.site.notify import compliance_message
from maskwatch.site.prevalence import compliance_estimate
from maskwatch.site.reports import Report, Schedule, compose, share
from maskwatch.site.runner import Site
from tests.mosquitto import Broker, Subscriber, mosquitto_available
from tests.rtsp import refused_port
from tests.test_cameras import wait_until
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_events import person
from tests.test_site_trend import serving

BERLIN = ZoneInfo("Europe/Berlin")
MASKED, UNMASKED, WRONGLY_WORN = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9)
DAY = "2026-10-25"
NAMES = {"door": "Front door", "till": "Till"}


def berlin(day, hour, minute, second=0, fold=0):
    return datetime(2026, 10, day, hour, minute, second, tzinfo=BERLIN, fold=fold).timestamp()


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    if not mosquitto_available():
        pytest.fail("mosquitto is missing: the Makefile's mqtt-broker target installs Debian's mosquitto")
    folder = tmp_path_factory.mktemp("figures")
    broker = Broker(folder).start()
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (folder / "site.yaml").write_text(f"""
cameras:
  door: {{name: Front door, source: "{dead}", zones: {{queue: [[0, 0], [1, 0], [1, 1]]}}}}
  till: {{name: Till, source: "{dead}"}}
timezone: Europe/Berlin
storage: {{database: site.db, privacy: true, retention_days: 3650}}
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
alerts:
  compliance: [{{camera: door, zone: queue, below: 99.9, minutes: 60, min_people: 1, cooldown: 0}}]
""")
    config = load_site_config(folder / "site.yaml", environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    site = Site(config, detector)
    ids = iter(range(1, 1000))

    def seen(camera, zone, probabilities, when, decided=True):
        site.store.record(camera, zone, person(next(ids), probabilities, first=when - 5, last=when,
                                               evidence=4 if decided else 0))

    seen("door", "queue", MASKED, berlin(24, 23, 59, 59) + 0.9)  # Saturday's last moment
    for minute in range(58):  # till's week of 10-19 with Sunday's: 41 masked and 18 not, a top end of 0.7997
        seen("till", None, MASKED if minute < 41 else UNMASKED, berlin(24, 9, minute))
    seen("door", "queue", MASKED, berlin(25, 0, 0, 30))
    seen("door", "queue", UNMASKED, berlin(25, 2, 30))  # 02:30 summer time
    seen("door", "queue", WRONGLY_WORN, berlin(25, 2, 30, fold=1))  # 02:30 again, winter time
    for minute in range(7):  # the compliance rule's hour: 5 of 7
        seen("door", "queue", MASKED if minute < 5 else UNMASKED, berlin(25, 10, minute))
    seen("door", "queue", MASKED, berlin(25, 10, 7), decided=False)  # and one not judged
    seen("till", None, UNMASKED, berlin(25, 12, 0))
    for second in range(3):
        seen("till", None, MASKED, berlin(25, 13, 0, second), decided=False)
    seen("door", None, MASKED, berlin(25, 23, 59, 59))  # Sunday's last second
    seen("door", None, MASKED, berlin(26, 0, 0))  # Monday's first
    tomorrow = datetime.combine(datetime.now(BERLIN).date() + timedelta(days=1), clock_time(0), BERLIN).timestamp()
    if time.time() > tomorrow - 180:  # the tests read "today" in the minutes after: not across its end
        time.sleep(tomorrow + 1 - time.time())
    midnight = datetime.now(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    seen("door", None, UNMASKED, midnight - 1)  # yesterday
    for i in range(9):
        seen("door", "queue" if i % 2 else None, MASKED if i < 6 else UNMASKED, midnight + 30 + i)
    seen("till", None, WRONGLY_WORN, midnight + 40)
    for i in range(2):
        seen("till", None, MASKED, midnight + 50 + i, decided=False)
    counts = Subscriber(broker.port, "maskwatch/#")
    try:
        with serving(create_app(detector, site=site)) as base:  # its lifespan starts the site
            yield {"base": base, "site": site, "mqtt": counts, "config": folder / "site.yaml"}
    finally:
        counts.close()
        broker.stop()


def get(figures, path, **params):
    answer = httpx.get(figures["base"] + path, params=params, timeout=20)
    assert answer.status_code == 200, answer.text
    return answer


def day_bucket(figures, day, **where) -> dict:
    (bucket,) = [b for b in get(figures, "/v1/compliance", bucket="day", since=day, **where).json()["buckets"]
                 if b["start"].startswith(day)]
    return bucket


def people_of(bucket) -> dict:
    return {"people": bucket["people"], **{label: bucket[label] for label in PERSON_LABELS}, "infrared": bucket["infrared"]}


def test_a_day_s_people_and_figures_agree_in_events_reports_chart_and_the_scheduled_report(figures):
    until = "2026-10-26"
    events = Counter((e["camera"], e["zone"] or "", e["label"]) for e in
                     get(figures, "/v1/events", since=DAY, until=until, limit=1000).json()["events"])
    exported = Counter((row["camera"], row["zone"], row["label"]) for row in
                       csv.DictReader(io.StringIO(get(figures, "/v1/events.csv", since=DAY, until=until).text)))
    report = get(figures, "/v1/report.csv", **{"from": DAY, "to": DAY}).text
    printed = CliRunner().invoke(app, ["report", "--csv", "--from", DAY, "--to", DAY, "-c", str(figures["config"])])
    assert printed.exit_code == 0 and printed.stdout == report, printed.output
    rows = {(row["camera"], row["zone"]): row for row in csv.DictReader(io.StringIO(report))}
    assert {row["date"] for row in rows.values()} == {DAY}
    # The same people per camera, zone and label in the events, their export and the report: the 25
    # hours from Sunday's first midnight to Monday's, none from the seconds either side.
    assert exported == events and sum(events.values()) == 16
    assert {key: {label: int(row[label]) for label in PERSON_LABELS} for key, row in rows.items()} == {
        key: {label: events[(*key, label)] for label in PERSON_LABELS} for key in rows}
    assert set(rows) == {key[:2] for key in events}
    for (camera, zone), row in rows.items():  # the chart's day of each camera and zone, to the digit
        bucket = day_bucket(figures, DAY, camera=camera, **({"zone": zone} if zone else {}))
        if zone == "":  # outside the zones: the camera's day less its zones' rows
            bucket = {name: bucket[name] - sum(int(r[name]) for (c, z), r in rows.items() if c == camera and z)
                      for name in ("people", *PERSON_LABELS)}
            assert bucket == {name: int(row[name]) for name in ("people", *PERSON_LABELS)}
            continue
        assert {name: str(value) for name, value in people_of(bucket).items()} == {
            name: row[name] for name in ("people", *PERSON_LABELS, "infrared")}
        assert [f"{bucket[name]:.4f}" for name in ("compliance", "compliance_low", "compliance_high",
                                                    "observed_share")] == [
            row[name] for name in ("compliance", "compliance_low", "compliance_high", "observed_share")]
    # The next morning's report of the day: each camera's line is its chart day, in percent.
    site = figures["site"]
    previous = Report(0, "day", Schedule(clock_time(7, 0), None, BERLIN), ("json://127.0.0.1/",), previous_day=True)
    due = previous.schedule.due_on(date(2026, 10, 26))
    message = compose(previous, due, due.at, site.store, NAMES, {"door": ["queue"], "till": []}, BERLIN, due.at)
    assert message.document[1] == report  # its attachment is report.csv's day
    for line, camera in zip(message.body.splitlines(), ("door", "till")):
        bucket = day_bucket(figures, DAY, camera=camera)
        assert line == (f"{NAMES[camera]}: {bucket['people']} {'person' if bucket['people'] == 1 else 'people'}: "
                        f"{bucket['with_mask']} with a mask, {bucket['without_mask']} without, "
                        f"{bucket['mask_weared_incorrect']} wearing it wrongly ({bucket['unassessable']} more not "
                        f"judged); masked {share(bucket['compliance'])} % (95 % interval "
                        f"{share(bucket['compliance_low'])}-{share(bucket['compliance_high'])} %)")


def test_a_compliance_alert_gives_the_figures_of_its_hour_as_the_chart_and_reports_do(figures):
    """A rule over the hour 10:00-11:00 judges that hour's people: its alert (JSON, on MQTT, and the
    message) gave 71.6 % masked (71.4 % counted) where the chart's hour and a report's line said
    71.57 % (71.43 %) of the same 5 of 7."""
    site = figures["site"]
    (hour,) = get(figures, "/v1/compliance", camera="door", zone="queue", bucket="hour",
                  since="2026-10-25T10:00:00+01:00").json()["buckets"][:1]
    assert (hour["start"], hour["people"], hour["with_mask"], hour["unassessable"]) == ("2026-10-25T10:00:00+01:00", 7, 5, 1)
    at = datetime.fromisoformat(hour["start"]).timestamp() + 3599  # the rule's 60 minutes are that hour
    (alert,) = site.compliance.check(at)
    # the one not judged apart, as the chart's hour and the reports say them (the alert did not)
    assert (alert["people"], alert["with_mask"], alert["unassessable"]) == (hour["people"], hour["with_mask"], 1)
    percent = {name: float(share(hour[name])) for name in ("compliance", "compliance_low", "compliance_high")}
    assert {name: alert[name] for name in percent} == percent
    assert alert["observed"] == float(share(hour["observed_share"]))
    published = figures["mqtt"]
    sent = alert_view(alert)  # its `at` in ISO 8601, as the webhook's
    assert wait_until(lambda: {"type": "compliance", "alert": sent} in published.json_on("maskwatch/alerts"), 20)
    title, body = compliance_message(alert, NAMES, BERLIN)
    assert title.startswith(f"Front door, queue: {share(hour['compliance'])} % masked over 60 minutes")
    assert body.splitlines()[:2] == [
        f"Masked: {share(hour['compliance'])} % (95 % interval {share(hour['compliance_low'])}-"
        f"{share(hour['compliance_high'])} %), under 99.9 % beyond doubt",
        f"Counted: 5 of 7 people with a mask ({share(hour['observed_share'])} %) in the last 60 minutes (1 more not judged)"]


def test_today_s_figures_agree_on_the_page_mqtt_metrics_and_the_api(figures, page):  # noqa: F811
    today = datetime.now(BERLIN).date().isoformat()
    cameras = {camera["id"]: camera["today"] for camera in get(figures, "/v1/cameras").json()}
    buckets = {camera: day_bucket(figures, today, camera=camera) for camera in NAMES}
    assert cameras == {camera: people_of(bucket) for camera, bucket in buckets.items()}
    assert cameras["door"] == {"people": 9, "with_mask": 6, "without_mask": 3, "mask_weared_incorrect": 0,
                               "unassessable": 0, "infrared": 0}
    published = figures["mqtt"]
    assert wait_until(lambda: all(published.json_on(f"maskwatch/{camera}/counts") for camera in NAMES), 20)
    assert {camera: published.json_on(f"maskwatch/{camera}/counts")[-1] for camera in NAMES} == cameras
    scraped = get(figures, "/metrics").text.splitlines()
    metrics = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in scraped if line.startswith("maskwatch_camera_")}
    # Its labels hold the unassessable beside the decided: the series' help called them all decided.
    (described,) = [line for line in scraped if line.startswith("# HELP maskwatch_camera_people_today ")]
    assert "unassessable, not decided" in described and "People decided" not in described
    for camera, bucket in buckets.items():
        assert [metrics[f'maskwatch_camera_people_today{{camera="{camera}",label="{label}"}}']
                for label in PERSON_LABELS] == [bucket[label] for label in PERSON_LABELS]
        assert [metrics[f'maskwatch_camera_compliance_today{suffix}{{camera="{camera}"}}']
                for suffix in ("", "_low", "_high")] == [bucket[name] for name in
                                                         ("compliance", "compliance_low", "compliance_high")]
    page.goto(figures["base"] + "/?chart_bucket=day")
    page.wait_for_function("() => document.querySelectorAll('#camera-grid .camera .counts b').length === 8",
                           timeout=20_000)
    for camera, bucket in buckets.items():  # the card's today, and the chart table's today, in whole percents
        card = page.locator(f'#camera-grid .camera:has-text("{NAMES[camera]}") .counts b').all_inner_texts()
        assert card == [str(bucket[label]) for label in PERSON_LABELS]
        page.select_option("#trend-camera", camera)
        page.wait_for_function(f"() => [...document.querySelectorAll('#trend-chart rect.bar')]"
                               f".map((bar) => Number(bar.dataset.compliance)).at(-1) === {bucket['compliance']}", timeout=20_000)
        row = page.eval_on_selector_all("#trend-table tbody tr:last-child td", "cells => cells.map(c => c.textContent)")
        low = math.floor(bucket["compliance_low"] * 100 + 1e-9)
        high = on_its_side(bucket["compliance_high"], math.ceil(bucket["compliance_high"] * 100 - 1e-9))
        assert row[:5] == [today, f"{on_its_side(bucket['compliance'], math.floor(bucket['compliance'] * 100 + 0.5))}%",
                           f"{low}-{high}%" + (", under 80%" if bucket["compliance_high"] < 0.8 else ""), str(bucket["people"]),
                           str(bucket["unassessable"])]
        assert row[5] == f"{on_its_side(bucket['observed_share'], math.floor(bucket['observed_share'] * 100 + 0.5))}%"
    assert sum(bucket[label] for bucket in buckets.values() for label in CLASSES) == 10


def on_its_side(share: float, whole: int) -> str:
    """A share (0-1) as the chart writes it: whole percents, but its 2 decimals where rounding would
    carry it across 80 (dashboard.js's sided)."""
    return str(whole) if (share < 0.8) == (whole < 80) else f"{share * 100:.2f}".rstrip("0").rstrip(".")


def test_the_chart_calls_a_figure_under_80_where_the_alerts_and_prometheus_do(figures, page):  # noqa: F811
    """Till's week of 2026-10-19, 41 masked and 18 not: the interval's top end is 0.7997, under 80 % for
    a compliance rule (ComplianceEstimate.below), the alerts' list and MaskwatchComplianceLow
    (compliance_high < 0.8). The chart judged the top end rounded up to whole percents: "56-80%", no
    red, no "under 80%", beside an alert on the same people."""
    (week,) = [b for b in get(figures, "/v1/compliance", camera="till", bucket="week", since="2026-10-19").json()["buckets"]
               if b["start"].startswith("2026-10-19")]
    assert (week["people"], week["with_mask"], week["without_mask"], week["compliance_high"]) == (59, 41, 18, 0.7997)
    assert compliance_estimate({label: week[label] for label in CLASSES}).below(0.8)  # a rule's verdict
    page.goto(figures["base"] + "/?chart_camera=till&chart_bucket=week")
    row = '#trend-table tbody tr[data-start^="2026-10-19"]'
    page.wait_for_function(f"() => document.querySelector('{row}')?.cells[3].textContent === '59'", timeout=20_000)
    cells = page.eval_on_selector(row, "r => [...r.cells].map((c) => c.textContent)")
    assert cells[1:4] == [f"{math.floor(week['compliance'] * 100 + 0.5)}%",
                          f"{math.floor(week['compliance_low'] * 100)}-79.97%, under 80%", "59"]
    bar = '#trend-chart rect.bar[data-start^="2026-10-19"]'
    assert page.get_attribute(bar, "class") == "bar low"
    assert "(95% interval 56-79.97%)" in page.text_content(bar + " title")


def test_the_hours_of_the_day_the_clocks_skip_sum_to_it_and_a_week_over_a_month_s_end_to_its_days(tmp_path):
    """Berlin's 23-hour Sunday (2026-03-29, no 02:00-03:00) and the week of Monday 03-30 to Sunday
    04-05, over March's end: the chart's hours sum to its day, and its week is report.csv's days
    summed, as the Monday's weekly report gives it, the same interval from the same people."""
    from maskwatch.site.events import EventStore
    from maskwatch.site.report import daily_rows, period_totals, report_csv, report_period
    from maskwatch.site.trend import compliance_series
    from tests.test_events import person

    store = EventStore(str(tmp_path / "site.db"), retention_days=3650)
    spring = {hour: datetime(2026, 3, 29, hour, 10, tzinfo=BERLIN).timestamp() for hour in (0, 1, 3, 23)}
    ids = iter(range(1, 1000))
    for hour, at in spring.items():
        for i in range(3):
            store.record("door", None, person(next(ids), MASKED if i or hour == 3 else UNMASKED, first=at, last=at + i),
                         infrared=hour == 23)  # the night's hour on grey frames
    store.record("door", None, person(next(ids), MASKED, first=spring[1], last=spring[1] + 2999.5))  # 01:59:59.5
    for day, probabilities in ((30, MASKED), (31, MASKED), (32, UNMASKED), (36, UNMASKED)):  # 32: April 1st
        at = datetime(2026, 3, 1, 12, tzinfo=BERLIN).timestamp() + (day - 1) * 86400
        store.record("door", "queue", person(next(ids), probabilities, first=at, last=at))
        store.record("door", "queue", person(next(ids), probabilities, first=at, last=at, evidence=0))
    rows = store.quarter_sums(datetime(2026, 3, 29, tzinfo=BERLIN).timestamp())
    hours = compliance_series(rows, "hour", BERLIN)
    (sunday, *_), weeks = compliance_series(rows, "day", BERLIN), compliance_series(rows, "week", BERLIN)
    on_sunday = [h for h in hours if h["start"].startswith("2026-03-29")]
    assert [h["start"][11:] for h in on_sunday] == ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00",
                                                     "23:00:00+02:00"]
    assert [h["people"] for h in on_sunday] == [3, 4, 3, 3]
    assert {name: sum(h[name] for h in on_sunday) for name in ("people", *PERSON_LABELS, "infrared")} == people_of(sunday)
    assert sunday["infrared"] == 3
    period = report_period("2026-03-29", "2026-04-05", BERLIN)
    report = list(csv.DictReader(io.StringIO(report_csv(store, period, BERLIN))))
    assert [row["date"] for row in report] == ["2026-03-29", "2026-03-30", "2026-03-31", "2026-04-01", "2026-04-05"]
    assert {name: report[0][name] for name in ("people", *PERSON_LABELS, "infrared")} == {
        name: str(value) for name, value in people_of(sunday).items()}
    (week,) = [w for w in weeks if w["start"] == "2026-03-30T00:00:00+02:00"]
    counts = store.counts(since=period.since, until=period.until, every=900)
    days = daily_rows(counts, date(2026, 3, 30), date(2026, 4, 5), BERLIN)
    (summed,) = period_totals(days, by_zone=False).values()  # the Monday's weekly report's line
    shared = [name for name in week if name not in ("start", "infrared_share")]  # the chart's alone: a share of seen
    assert {name: summed[name] for name in shared} == {name: week[name] for name in shared}
    assert (week["people"], week["unassessable"], week["with_mask"]) == (4, 4, 2)
    store.close()
