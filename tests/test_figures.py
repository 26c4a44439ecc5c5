"""One day's figures, read from every place a site gives them, agree: people per label, decided and
unassessable, the corrected share and its interval, the day's bounds, the camera and zone.

A running site (Europe/Berlin, two cameras, a zone, MQTT to a real mosquitto, uvicorn on loopback)
stores its people through its own event path (EventStore.record, as a camera's sink does) at fixed
times: Sunday 2026-10-25, Berlin's 25-hour day, with its edges and its hour that happens twice,
and today's, which the "today" outputs read (the cameras' cards, /v1/cameras, MQTT, /metrics).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.faces import PERSON_LABELS
from maskwatch.serving.app import create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.event_views import alert_view
from maskwatch.site.notify import compliance_message
from maskwatch.site.reports import share
from maskwatch.site.runner import Site
from tests.mosquitto import Broker, Subscriber, mosquitto_available
from tests.rtsp import refused_port
from tests.test_cameras import wait_until
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
        pytest.fail("mosquitto is missing: the Makefile's services target installs Debian's mosquitto")
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
    seen("door", "queue", MASKED, berlin(25, 0, 0, 30))
    seen("door", "queue", UNMASKED, berlin(25, 2, 30))  # 02:30 summer time
    seen("door", "queue", WRONGLY_WORN, berlin(25, 2, 30, fold=1))  # 02:30 again, winter time
    for minute in range(7):  # the compliance rule's hour: 5 of 7
        seen("door", "queue", MASKED if minute < 5 else UNMASKED, berlin(25, 10, minute))
    seen("till", None, UNMASKED, berlin(25, 12, 0))
    for second in range(3):
        seen("till", None, MASKED, berlin(25, 13, 0, second), decided=False)
    seen("door", None, MASKED, berlin(25, 23, 59, 59))  # Sunday's last second
    seen("door", None, MASKED, berlin(26, 0, 0))  # Monday's first
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
    return {"people": bucket["people"], **{label: bucket[label] for label in PERSON_LABELS}}


def test_a_compliance_alert_gives_the_figures_of_its_hour_as_the_chart_and_reports_do(figures):
    """A rule over the hour 10:00-11:00 judges that hour's people: its alert (JSON, on MQTT, and the
    message) gave 71.6 % masked (71.4 % counted) where the chart's hour and a report's line said
    71.57 % (71.43 %) of the same 5 of 7."""
    site = figures["site"]
    (hour,) = get(figures, "/v1/compliance", camera="door", zone="queue", bucket="hour",
                  since="2026-10-25T10:00:00+01:00").json()["buckets"][:1]
    assert (hour["start"], hour["people"], hour["with_mask"]) == ("2026-10-25T10:00:00+01:00", 7, 5)
    at = datetime.fromisoformat(hour["start"]).timestamp() + 3599  # the rule's 60 minutes are that hour
    (alert,) = site.compliance.check(at)
    assert (alert["people"], alert["with_mask"]) == (hour["people"], hour["with_mask"])
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
        f"Counted: 5 of 7 people with a mask ({share(hour['observed_share'])} %) in the last 60 minutes"]
