"""Alert rules beyond one person: compliance under X % over M minutes, opening hours, cooldowns.

Counts go through a real SQLite events store, alerts through the real webhook notifier to a real
HTTP receiver on loopback, and to a real mosquitto; time is passed in, never slept.
"""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from maskwatch.site.alerts import WebhookNotifier, WebhookRule, signature_matches
from maskwatch.site.compliance import ComplianceMonitor, ComplianceRule
from maskwatch.site.config import MqttConfig
from maskwatch.site.event_views import iso_utc
from maskwatch.site.events import EventStore
from maskwatch.site.hours import OpeningHours, parse_span
from maskwatch.site.mqtt import MqttPublisher
from maskwatch.site.prevalence import compliance_estimate
from tests.mosquitto import Subscriber, broker  # noqa: F401  (fixture)
from tests.test_alerts import SECRET, Receiver, event
from tests.test_cameras import wait_until
from tests.test_events import person

BERLIN = ZoneInfo("Europe/Berlin")
MASKED, UNMASKED, WRONGLY_WORN = (0.9, 0.05, 0.05), (0.05, 0.9, 0.05), (0.05, 0.05, 0.9)


def berlin(day, hour, minute=0):
    """Unix seconds of 2026-09-<day> hour:minute in Berlin (the 21st is a Monday)."""
    return datetime(2026, 9, day, hour, minute, tzinfo=BERLIN).timestamp()


MONDAY_10 = berlin(21, 10)


@pytest.mark.parametrize("spec, open_at, closed_at", [
    ("mon-fri 08:00-18:00", [(21, 8, 0), (25, 17, 59)], [(21, 7, 59), (21, 18, 0), (26, 12, 0)]),
    ("sat,sun 10:00-14:00", [(26, 10, 0), (27, 13, 0)], [(25, 12, 0), (26, 14, 0)]),
    ("fri 22:00-02:00", [(25, 23, 0), (26, 1, 59)], [(25, 21, 59), (26, 2, 0), (22, 1, 0)]),
    ("sun-tue 00:00-24:00", [(27, 0, 0), (21, 12, 0), (22, 23, 59)], [(23, 0, 0), (26, 12, 0)]),
])
def test_opening_hours_in_the_site_timezone(spec, open_at, closed_at):
    hours = OpeningHours.parse([spec], BERLIN)
    assert all(hours.is_open(berlin(*t)) for t in open_at), spec
    assert not any(hours.is_open(berlin(*t)) for t in closed_at), spec


def test_opening_hours_across_the_nights_the_clocks_change():
    """A span ending in the hour the clocks go back over read open again for its second pass."""
    from datetime import timezone

    def utc(month, day, hour, minute):
        return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc).timestamp()

    late = OpeningHours.parse(["sat 20:00-02:30"], BERLIN)  # Sunday 25 October: 03:00 CEST -> 02:00 CET
    # 02:10 CEST, 02:30 CEST, 02:50 CEST, then 02:10 CET and 02:30 CET: closed since the first 02:30
    assert [late.is_open(utc(10, 25, h, m)) for h, m in ((0, 10), (0, 30), (0, 50), (1, 10), (1, 30))] == [
        True, False, False, False, False]
    early = OpeningHours.parse(["sun 02:30-05:00"], BERLIN)  # Sunday 29 March: 02:00 CET -> 03:00 CEST
    # 01:59 CET, then 03:00 CEST (the wall clock jumps past 02:30), 04:59 CEST, 05:00 CEST
    assert [early.is_open(utc(3, 29, h, m)) for h, m in ((0, 59), (1, 0), (2, 59), (3, 0))] == [
        False, True, True, False]


def test_no_opening_hours_means_always_open():
    assert OpeningHours().is_open(berlin(27, 3))


@pytest.mark.parametrize("spec, message", [
    ("weekdays 08:00-18:00", "days are mon, tue"),
    ("mon 8-18", "written like 'mon-fri 08:00-18:00'"),
    ("mon 08:00-25:00", "times are HH:MM from 00:00 to 24:00"),
    ("mon 09:00-09:00", "opening and closing time are the same"),
])
def test_bad_opening_hours_are_explained(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_span(spec)


@pytest.fixture()
def store(tmp_path):
    s = EventStore(str(tmp_path / "site.db"), privacy=True)
    yield s
    s.close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def crowd(store, masked, unmasked, when, camera="door", zone=None, infrared=False):
    """Record `masked` + `unmasked` decided people last seen at `when` (on grey frames: `infrared`)."""
    for i in range(masked + unmasked):
        store.record(camera, zone, person(i, MASKED if i < masked else UNMASKED, first=when - 5, last=when),
                     infrared=infrared)


def posted(receiver) -> list[dict]:
    for body, signature in receiver.received:
        assert signature_matches(SECRET, body, signature)
    return [json.loads(body) for body, _ in receiver.received]


def test_low_compliance_over_the_window_is_posted_once_per_cooldown(store, receiver):
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET)]).start()
    ticks = [0.0]  # the seconds that passed, as time.monotonic counts them
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door", cooldown=600)],
                                zones_of={"door": []}, send=notifier.alert, elapsed=lambda: ticks[0])
    crowd(store, masked=30, unmasked=0, when=MONDAY_10 - 20 * 60)  # before the window: not counted
    assert monitor.check(MONDAY_10) == []
    crowd(store, masked=70, unmasked=30, when=MONDAY_10 - 60)  # 70 % of 100 over the last 15 minutes
    (alert,) = monitor.check(MONDAY_10)
    estimate = compliance_estimate({"with_mask": 70, "without_mask": 30, "mask_weared_incorrect": 0})
    assert estimate.high < 0.8
    shown = estimate.as_dict()  # the interval rounded outwards, as the API shows it
    assert alert == {"rule": 0, "camera": "door", "zone": None, "compliance": round(100 * shown["compliance"], 2),
                     "compliance_low": round(100 * shown["compliance_low"], 2),
                     "compliance_high": round(100 * shown["compliance_high"], 2),
                     "observed": 70.0, "below": 80, "people": 100, "with_mask": 70, "unassessable": 0, "minutes": 15,
                     "at": MONDAY_10, "infrared": 0, "seen": 100}
    ticks[0] = 300
    assert monitor.check(MONDAY_10 + 300) == [] and monitor.stats.quieted == 1  # within the cooldown
    ticks[0] = 600
    assert len(monitor.check(MONDAY_10 + 600)) == 1  # cooldown over, still low
    # The wall clock stepped back 5 minutes (NTP) 60 s later: the cooldown runs on the seconds that
    # passed (the alert was sent again), and a step back of hours does not quiet it for hours.
    ticks[0] = 660
    assert monitor.check(MONDAY_10 + 360) == []
    ticks[0] = 1200
    crowd(store, masked=7, unmasked=3, when=MONDAY_10 - 3 * 3600 - 60)
    crowd(store, masked=63, unmasked=27, when=MONDAY_10 - 3 * 3600 - 60)
    assert len(monitor.check(MONDAY_10 - 3 * 3600)) == 1  # set back 3 hours, 600 s after the last alert
    notifier.stop()
    assert [p["type"] for p in posted(receiver)] == ["compliance", "compliance", "compliance"]
    # sent as MQTT sends it: `at` in ISO 8601 UTC, as the events' times (it was Unix seconds)
    assert posted(receiver)[0]["alert"] == {**alert, "at": "2026-09-21T08:00:00.000+00:00"}


def test_an_alert_never_shows_its_interval_reaching_the_threshold(store):
    """41 masked and 18 not: the interval's top end is 0.79969, under 80 %: the alert went out
    saying compliance_high 80.0 with below 80."""
    for masked, unmasked in ((41, 18), (40, 18), (42, 18), (57, 25)):
        estimate = compliance_estimate({"with_mask": masked, "without_mask": unmasked, "mask_weared_incorrect": 0})
        shown = estimate.as_dict()
        assert shown["compliance_low"] <= estimate.low and shown["compliance_high"] >= estimate.high
        assert estimate.below(0.8) == (shown["compliance_high"] < 0.8)
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door")],
                                zones_of={"door": []}, send=lambda alert: None)
    crowd(store, masked=41, unmasked=18, when=MONDAY_10 - 60)
    for alert in monitor.check(MONDAY_10):
        assert alert["compliance_high"] < alert["below"]


@pytest.mark.parametrize("masked, unmasked, below", [(36, 2, 99.9), (8, 4, 86.4)])
def test_a_top_end_shown_at_the_threshold_is_not_under_it(store, masked, unmasked, below):
    """36 masked and 2 not: the top end is shown as 99.9 %, and 99.9 / 100 is a little above 0.999:
    a rule `below: 99.9` fired with compliance_high 99.9."""
    shown = compliance_estimate({"with_mask": masked, "without_mask": unmasked, "mask_weared_incorrect": 0}).as_dict()
    assert round(100 * shown["compliance_high"], 2) == below
    monitor = ComplianceMonitor(store, [ComplianceRule(below=below, minutes=15, camera="door")],
                                zones_of={"door": []}, send=lambda alert: None)
    crowd(store, masked=masked, unmasked=unmasked, when=MONDAY_10 - 60)
    assert monitor.check(MONDAY_10) == []


def test_an_alert_with_nowhere_to_go_is_said_in_the_log(store, caplog):
    """The demo site has a compliance rule and no webhook, notify or MQTT: each time it fired, the
    check failed ("compliance check failed: TypeError: 'NoneType' object is not callable"), unsaid.
    The share is the corrected one, so it is named so and the counted ratio stands beside it: the
    demo site's "51.1 % masked ...; 10 of 19 people with a mask" read as a wrong sum."""
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door", zone="queue")],
                                zones_of={"door": ["queue"]}, send=None)
    crowd(store, masked=70, unmasked=30, when=MONDAY_10 - 60, zone="queue")
    with caplog.at_level("WARNING", logger="maskwatch.site.compliance"):
        (alert,) = monitor.check(MONDAY_10)
    assert caplog.messages == [
        "compliance alert at door, zone queue: 70.08 % masked, corrected for the classifier's known errors "
        f"(95 % interval {alert['compliance_low']:g}-{alert['compliance_high']:g} %), over the last 15 minutes, "
        "under 80 %; counted: 70 of 100 people with a mask (70 %), 0 more not judged "
        "(said here only: no alerts.webhooks, alerts.notify or mqtt to send it to)"]


def test_a_window_counts_no_one_from_before_it(store):
    """A 15-minute rule checked 30 s into a minute read the whole minute that began 15 minutes and
    30 s before: 100 unmasked people from outside the window fired it."""
    sent = []
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door")],
                                zones_of={"door": []}, send=sent.append)
    crowd(store, masked=0, unmasked=100, when=MONDAY_10 - 15 * 60)  # the minute 15:30 to 14:30 before the check
    crowd(store, masked=10, unmasked=0, when=MONDAY_10 - 60)
    assert monitor.check(MONDAY_10 + 30) == [] and sent == []


def test_compliance_at_or_above_the_threshold_or_too_few_people_is_quiet(store):
    sent = []
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=5, camera="door", min_people=5)],
                                zones_of={"door": []}, send=sent.append)
    crowd(store, masked=0, unmasked=4, when=MONDAY_10)  # 0 %, but only 4 people
    assert monitor.check(MONDAY_10 + 30) == []
    crowd(store, masked=16, unmasked=0, when=MONDAY_10)  # 16 of 20: exactly 80 %
    assert monitor.check(MONDAY_10 + 30) == [] and sent == []


def test_a_low_share_of_few_people_is_no_evidence_and_stays_quiet(store):
    """70 % of 10 people: the 95 % interval reaches above 80 %, so no alert; 70 % of 100 fires."""
    sent = []
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=5, camera="door", cooldown=0)],
                                zones_of={"door": []}, send=sent.append)
    crowd(store, masked=7, unmasked=3, when=MONDAY_10)
    assert monitor.check(MONDAY_10 + 30) == [] and sent == []
    crowd(store, masked=63, unmasked=27, when=MONDAY_10)
    (alert,) = monitor.check(MONDAY_10 + 30)
    assert alert["observed"] == 70.0 and alert["people"] == 100
    assert alert["compliance_low"] <= alert["compliance"] <= alert["compliance_high"] < 80


def test_wrongly_worn_masks_taken_for_masks_are_corrected_before_judging(store):
    """Every person labelled: 81 with_mask, 19 wrongly worn. About a fifth of wrongly worn masks
    are labelled with_mask, so the corrected share is lower than the plain 81 %."""
    sent = []
    monitor = ComplianceMonitor(store, [ComplianceRule(below=90, minutes=5, camera="door")],
                                zones_of={"door": []}, send=sent.append)
    for i in range(100):
        store.record("door", None, person(i, MASKED if i < 81 else WRONGLY_WORN, first=MONDAY_10 - 5, last=MONDAY_10))
    (alert,) = monitor.check(MONDAY_10 + 30)
    assert alert["observed"] == 81.0 and alert["compliance"] < 80.0


def test_a_zone_rule_counts_only_its_zone_and_a_camera_less_rule_watches_each_camera(store):
    sent = []
    rules = [ComplianceRule(below=50, minutes=10, camera="door", zone="queue", min_people=2),
             ComplianceRule(below=50, minutes=10, min_people=2)]
    monitor = ComplianceMonitor(store, rules, zones_of={"door": ["queue"], "till": []}, send=sent.append)
    crowd(store, masked=0, unmasked=4, when=MONDAY_10, zone="queue")
    crowd(store, masked=6, unmasked=0, when=MONDAY_10)  # the door as a whole is 60 % masked
    crowd(store, masked=1, unmasked=9, when=MONDAY_10, camera="till")
    fired = monitor.check(MONDAY_10 + 30)
    assert [(a["rule"], a["camera"], a["zone"], a["observed"]) for a in fired] == [
        (0, "door", "queue", 0.0), (1, "till", None, 10.0)]


def test_compliance_rules_fire_only_inside_opening_hours(store):
    sent = []
    hours = {"door": OpeningHours.parse(["mon-fri 08:00-18:00"], BERLIN)}
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door", cooldown=0)],
                                zones_of={"door": []}, send=sent.append, hours=hours)
    evening = berlin(21, 18, 30)
    crowd(store, masked=0, unmasked=5, when=evening - 60)
    assert monitor.check(evening) == [] and monitor.stats.closed == 1
    crowd(store, masked=0, unmasked=5, when=MONDAY_10 - 60)
    assert len(monitor.check(MONDAY_10)) == 1


def test_the_injected_clock_drives_the_checks(store):
    now = [MONDAY_10]
    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door", cooldown=60)],
                                zones_of={"door": []}, send=lambda alert: None, clock=lambda: now[0],
                                elapsed=lambda: now[0])
    crowd(store, masked=0, unmasked=5, when=MONDAY_10 - 60)
    assert monitor.check()[0]["at"] == MONDAY_10
    now[0] += 30
    assert monitor.check() == []
    now[0] += 30
    assert monitor.check()[0]["at"] == MONDAY_10 + 60


def test_person_alerts_outside_opening_hours_are_not_sent(receiver):
    hours = {"door": OpeningHours.parse(["mon-fri 08:00-18:00"], BERLIN)}
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET)], hours=hours).start()
    night, day = dict(event(1), last_seen=berlin(21, 23)), dict(event(2), last_seen=MONDAY_10)
    notifier.notify(night)
    notifier.notify(day)
    notifier.notify(dict(event(3, camera="till"), last_seen=berlin(21, 23)))  # no hours: always open
    notifier.stop()
    assert [p["event"]["id"] for p in posted(receiver)] == [2, 3] and notifier.stats.closed == 1


def test_the_person_cooldown_follows_the_injected_clock(receiver):
    now = [1000.0]
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, cooldown=60)], clock=lambda: now[0]).start()
    notifier.notify(event(1))
    now[0] += 59
    notifier.notify(event(2))  # quieted
    now[0] += 1
    notifier.notify(event(3))
    notifier.stop()
    assert [p["event"]["id"] for p in posted(receiver)] == [1, 3] and notifier.stats.quieted == 1


def test_compliance_alerts_go_only_to_webhooks_admitting_their_camera_and_zone(receiver):
    other = Receiver()
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, cameras=("door",)),
                                WebhookRule(other.url, SECRET, zones=("queue",))]).start()
    notifier.alert({"camera": "door", "zone": None, "compliance": 10.0, "at": 0.0})
    notifier.alert({"camera": "till", "zone": "queue", "compliance": 20.0, "at": 0.0})
    notifier.stop()
    other_posts = [json.loads(body) for body, _ in other.received]
    other.close()
    assert [p["alert"]["camera"] for p in posted(receiver)] == ["door"]
    assert [p["alert"]["camera"] for p in other_posts] == ["till"]


def test_compliance_alerts_are_published_on_mqtt(broker, store):  # noqa: F811
    listener = Subscriber(broker.port, "site/alerts", fence=True)
    # Subscribed before the alert goes out: it is not retained, and a listener that subscribed
    # after the publisher's connection (a busy machine) never heard it.
    assert listener.fenced.wait(10), "the listener was not subscribed"
    publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=broker.port, prefix="site")).start()
    try:
        monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door")],
                                    zones_of={"door": []}, send=publisher.compliance_alert)
        crowd(store, masked=1, unmasked=4, when=MONDAY_10 - 60)
        (alert,) = monitor.check(MONDAY_10)
        assert wait_until(lambda: listener.json_on("site/alerts"))
        assert listener.json_on("site/alerts") == [{"type": "compliance", "alert": {**alert, "at": iso_utc(alert["at"])}}]
    finally:
        publisher.stop()
        listener.close()


def test_a_check_that_fails_is_said_once_and_the_checks_go_on(store, caplog):
    calls = []

    def broken_clock():
        calls.append(1)
        raise OSError("database away")

    monitor = ComplianceMonitor(store, [ComplianceRule(below=80, minutes=15, camera="door")], zones_of={"door": []},
                                send=lambda alert: None, clock=broken_clock, every=0.02).start()
    try:
        assert wait_until(lambda: len(calls) >= 5)  # still checking after the failures
    finally:
        monitor.stop()
    assert monitor.stats.last == [{"error": "database away"}]
    said = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.compliance"]
    assert said == ["compliance check failed: OSError: database away"]


def test_the_documented_alert_is_what_webhooks_and_mqtt_send():
    """docs/compliance.md showed the alert's `at` in Unix seconds after it went out in ISO 8601."""
    import re
    from datetime import datetime

    from maskwatch.site.event_views import alert_view
    from tests.conftest import ROOT

    (block,) = [b for b in re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "compliance.md").read_text(), re.S)
                if '"compliance_low"' in b]
    shown = json.loads(block)
    assert isinstance(shown["at"], str), shown["at"]
    assert shown == alert_view({**shown, "at": datetime.fromisoformat(shown["at"]).timestamp()})
