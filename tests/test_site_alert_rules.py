"""The site wires its config's alert rules together: compliance rules and opening hours from the
YAML, in its timezone, to the real webhook receiver. Time is passed to check(), never slept."""

import json

import pytest

from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.site.config import load_site_config
from maskwatch.site.runner import Site
from tests.rtsp import refused_port
from tests.test_alert_rules import berlin, crowd
from tests.test_alerts import SECRET, Receiver, event


@pytest.fixture()
def site(tmp_path):
    receiver = Receiver()
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (tmp_path / "site.yaml").write_text(f"""
defaults: {{hours: ["mon-fri 08:00-18:00"]}}
cameras:
  door: {{source: "{dead}", zones: {{queue: [[0, 0], [1, 0], [1, 1]]}}}}
  office: {{source: "{dead}", hours: []}}
timezone: Europe/Berlin
storage: {{database: site.db, privacy: true, retention_days: 3650}}
alerts:
  webhooks: [{{url: "{receiver.url}", secret: "{SECRET}"}}]
  compliance: [{{camera: door, zone: queue, below: 80, minutes: 15, min_people: 4, cooldown: 600}}]
""")
    config = load_site_config(tmp_path / "site.yaml", environ={})
    running = Site(config, Detector.load(config=WEIGHTS / "centerface.json"))  # cameras never started
    running.alerts.start()
    running.receiver = receiver
    yield running
    running.alerts.stop()
    running.store.close()
    receiver.close()


def posted(site) -> list[dict]:
    site.alerts.stop()  # delivers what is queued
    return [json.loads(body) for body, _ in site.receiver.received]


def test_a_compliance_rule_from_the_config_alerts_inside_opening_hours(site):
    crowd(site.store, masked=2, unmasked=8, when=berlin(21, 9, 55), camera="door", zone="queue")
    crowd(site.store, masked=4, unmasked=0, when=berlin(21, 9, 55), camera="door")  # outside the zone
    assert [a["observed"] for a in site.compliance.check(berlin(21, 10))] == [20.0]
    assert site.compliance.check(berlin(21, 10, 5)) == []  # cooldown
    crowd(site.store, masked=0, unmasked=4, when=berlin(21, 18, 20), camera="door", zone="queue")
    assert site.compliance.check(berlin(21, 18, 30)) == []  # closed at 18:00 Berlin time
    (alert,) = [p["alert"] for p in posted(site)]
    assert (alert["camera"], alert["zone"], alert["people"], alert["below"]) == ("door", "queue", 10, 80)
    assert alert["compliance_high"] < 80  # the whole interval under the rule's threshold


def test_person_alerts_follow_each_camera_s_opening_hours(site):
    site.alerts.notify(dict(event(1, camera="door"), last_seen=berlin(26, 11)))  # Saturday: closed
    site.alerts.notify(dict(event(2, camera="door"), last_seen=berlin(25, 11)))  # Friday: open
    site.alerts.notify(dict(event(3, camera="office"), last_seen=berlin(26, 11)))  # no hours: always open
    assert [p["event"]["id"] for p in posted(site)] == [2, 3]
