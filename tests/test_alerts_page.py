"""The day's compliance alerts as a clinic's shift supervisor reads them (a viewer on the dashboard):
which camera and zone, when, the figure and its interval, and whether it came back since; only
their cameras' alerts. A real site (its SQLite store, its users, its app on uvicorn on loopback),
its rules checked by check(now=...) as the site's thread checks them, and Chromium."""

import json
import re
import time
from types import SimpleNamespace
from datetime import datetime, timezone

import httpx
import pytest

from maskwatch.data.grey import NIGHT_WORDS
from maskwatch.detection.detector import WEIGHTS, Detector
from maskwatch.security.auth_settings import AuthSettings
from maskwatch.serving.app import ServeSettings, create_app
from maskwatch.site.config import load_site_config
from maskwatch.site.runner import Site
from tests.conftest import ADMIN, VIEWER, Credentials, log_in, watched
from tests.rtsp import refused_port
from tests.test_alert_rules import crowd
from tests.test_dashboard import page  # noqa: F401  (headless Chromium)
from tests.test_events import person
from tests.test_security import login, session_of
from tests.test_site_trend import serving

WINDOW = 5  # the rule's minutes


def about_noon() -> str:
    """A fixed-offset zone whose clock reads about noon now: the alerts a few minutes back are today's
    wherever and whenever the test runs (midnight would take them to yesterday)."""
    hours = 12 - datetime.now(timezone.utc).hour  # -11 to 12
    return "Etc/GMT" + (f"{-hours:+d}" if hours else "")  # Etc/GMT-3 is UTC+3


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """Three cameras (none ever connects: the figures are the store's), one rule on each: under 80 %
    over 5 minutes. The waiting room fell under 8 minutes ago and is masked again now, the pharmacy
    fell under then and nobody came since, the entrance is under now and was 2 minutes ago (no
    cooldown: two alerts), its people seen on grey (infrared) frames. The viewer sees the entrance
    and the waiting room."""
    folder = tmp_path_factory.mktemp("clinic")
    dead = f"rtsp://127.0.0.1:{refused_port()}/none"
    (folder / "site.yaml").write_text(f"""
cameras:
  entrance: {{name: Entrance, source: "{dead}"}}
  waiting: {{name: Waiting room, source: "{dead}", zones: {{chairs: [[0, 0], [1, 0], [1, 1]]}}}}
  pharmacy: {{name: Pharmacy, source: "{dead}"}}
timezone: {about_noon()}
storage: {{database: site.db, privacy: true, retention_days: 30}}
alerts:
  compliance:
    - {{camera: waiting, zone: chairs, below: 80, minutes: {WINDOW}, min_people: 5}}
    - {{camera: pharmacy, below: 80, minutes: {WINDOW}, min_people: 5}}
    - {{camera: entrance, below: 80, minutes: {WINDOW}, min_people: 5, cooldown: 0}}
""")
    Credentials(folder / "site.db", ["entrance", "waiting"])
    config = load_site_config(folder / "site.yaml", environ={})
    detector = Detector.load(config=WEIGHTS / "centerface.json")  # never called: no camera sends a frame
    site = Site(config, detector)  # its cameras never started
    now = time.time()
    before = now - 8 * 60
    crowd(site.store, masked=2, unmasked=18, when=before - 60, camera="waiting", zone="chairs")
    for i in range(3):  # and 3 too briefly in view to judge
        site.store.record("waiting", "chairs", person(100 + i, (0.9, 0.05, 0.05), first=before - 65, last=before - 60,
                                                      evidence=0))
    crowd(site.store, masked=2, unmasked=18, when=before - 60, camera="pharmacy")
    assert [a["camera"] for a in site.compliance.check(before)] == ["waiting", "pharmacy"]
    crowd(site.store, masked=30, unmasked=0, when=now - 60, camera="waiting", zone="chairs")
    crowd(site.store, masked=1, unmasked=19, when=now - 180, camera="entrance", infrared=True)
    assert [a["camera"] for a in site.compliance.check(now - 120)] == ["entrance"]
    assert [a["camera"] for a in site.compliance.check(now)] == ["entrance"]
    auth = AuthSettings(database=str(folder / "site.db"), open_without_users=False)
    with serving(create_app(detector, ServeSettings(auth=auth), site=site), lifespan="off") as base:
        yield SimpleNamespace(base=base, site=site)
    site.store.close()


def test_a_viewer_reads_today_s_alerts_of_their_cameras_only_and_whether_each_recovered(clinic):
    """The alerts went to webhooks, messages, MQTT or the log only: a supervisor with the dashboard
    alone never learnt that one fired, nor could tell whether the waiting room came back."""
    viewer = httpx.get(clinic.base + "/v1/alerts", headers=session_of(login(clinic.base, VIEWER)), timeout=10)
    assert viewer.status_code == 200, viewer.text
    answer = viewer.json()
    assert [(a["camera"], a["zone"], a["now"]["state"]) for a in answer["alerts"]] == [
        ("entrance", None, "under"), ("entrance", None, "under"), ("waiting", "chairs", "recovered")]  # newest first
    assert "pharmacy" not in viewer.text and answer["rules"] == 2 and answer["since_start"] is False
    waiting = answer["alerts"][2]
    assert (waiting["people"], waiting["with_mask"], waiting["below"], waiting["minutes"]) == (20, 2, 80, WINDOW)
    assert waiting["unassessable"] == 3  # apart, in no share, as the chart's and the reports'
    assert answer["alerts"][0]["unassessable"] == 0
    assert [(a["infrared"], a["seen"]) for a in answer["alerts"]] == [(20, 20), (20, 20), (0, 23)]  # stored with it
    assert waiting["compliance_low"] <= waiting["compliance"] <= waiting["compliance_high"] < 80
    assert waiting["now"]["people"] == 30 and waiting["now"]["compliance_low"] >= 80
    assert datetime.fromisoformat(waiting["at"]).utcoffset() is not None  # the site's offset, as /v1/cameras'
    admin = httpx.get(clinic.base + "/v1/alerts", headers=session_of(login(clinic.base, ADMIN)), timeout=10).json()
    assert [(a["camera"], a["now"]["state"]) for a in admin["alerts"]] == [
        ("entrance", "under"), ("entrance", "under"), ("pharmacy", "too_few"), ("waiting", "recovered")]  # one check: its last first
    assert admin["rules"] == 3


def test_a_site_restarted_over_the_same_database_lists_the_alerts_fired_before(clinic):
    """The alerts were kept in memory: after a restart at 10:00 (an upgrade, a crash) the list was empty,
    and the supervisor never learnt of the 08:30 alert they were to act on. A new Site and app over the
    clinic's database, its rules in another order (the waiting room's is rule 0 no more): the same alerts,
    each standing judged by its own rule, the viewer's cameras only."""
    before = httpx.get(clinic.base + "/v1/alerts", headers=session_of(login(clinic.base, VIEWER)), timeout=10).json()
    config = clinic.site.config.model_copy(deep=True)
    config.alerts.compliance = [config.alerts.compliance[2], *config.alerts.compliance[:2]]
    config.alerts.compliance[2].min_people = 1000  # the pharmacy's, now rule 2: the waiting room's stands as before
    detector = Detector.load(config=WEIGHTS / "centerface.json")
    restarted = Site(config, detector)
    try:
        auth = AuthSettings(database=str(clinic.site.config.storage.database), open_without_users=False)
        with serving(create_app(detector, ServeSettings(auth=auth), site=restarted), lifespan="off") as base:
            after = httpx.get(base + "/v1/alerts", headers=session_of(login(base, VIEWER)), timeout=10).json()
    finally:
        restarted.store.close()
    assert after == before and after["since_start"] is False and after["cut"] is False
    assert [(a["camera"], a["rule"], a["now"]["state"]) for a in after["alerts"]] == [
        ("entrance", 2, "under"), ("entrance", 2, "under"), ("waiting", 0, "recovered")]  # as they fired
    assert [(a["infrared"], a["seen"]) for a in after["alerts"]] == [(20, 20), (20, 20), (0, 23)]  # grey frames said


@pytest.fixture(scope="module")
def supervisor(clinic, page):  # noqa: F811
    """The viewer's dashboard at 1280x800, logged in once through the login page."""
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
    desk = watched(context.new_page())
    log_in(desk, clinic.base, VIEWER)
    desk.wait_for_selector('.camera[data-camera="waiting"] .todo', state="attached", timeout=20_000)
    yield desk
    context.close()


def test_the_page_lists_the_day_s_alerts_in_words_once_a_rule_and_camera(supervisor):
    """The page had no word of an alert: a supervisor with the dashboard alone never knew that
    compliance fell, where, since when, nor whether it came back."""
    supervisor.wait_for_selector("#alert-list li.alert", timeout=20_000)
    items = supervisor.locator("#alert-list li.alert")
    assert items.count() == 2
    entrance, waiting = items.nth(0).inner_text(), items.nth(1).inner_text()
    assert entrance.startswith(tuple(f"{h:02d}:" for h in range(24))) and "Entrance" in entrance
    assert "Now: still under 80 %" in entrance and "Fired 2 times today, first at " in entrance  # one line
    assert "Waiting room, zone chairs" in waiting and "over the 5 min before, under the 80 % set; 2 of 20 people" in waiting
    assert "2 of 20 people counted with a mask (3 more not judged)." in waiting  # the page said nothing of them
    assert "not judged" not in entrance
    assert (f"1 of 20 people counted with a mask. 20 of 20 people seen on grey (infrared) frames, {NIGHT_WORDS}."
            in " ".join(entrance.split()))  # maskwatch.data.grey's words, as the webhook and message say them
    assert "grey" not in waiting  # none of its people were
    assert "Now: back to 80 % or more: " in waiting and "Fired" not in waiting and "over the last 5 min" in waiting
    assert "Pharmacy" not in supervisor.inner_text("#alerts")


def test_a_viewer_is_not_offered_zone_drawing(supervisor):
    """Each card offered a viewer "Draw zones", whose YAML is for a file only whoever runs the site
    can change (an admin's cards keep it: tests/test_dashboard.py's zone tests)."""
    assert supervisor.locator(".camera").count() == 2 and supervisor.locator(".draw-zones").count() == 0


def test_an_offline_time_in_the_hour_the_clocks_go_back_says_its_offset(supervisor):
    """"offline since 02:30" in the night the clocks go back named either of two moments an hour apart;
    the chart's hours and the people's times said their offset there, the cards' minutes did not."""
    said = supervisor.evaluate("""() => { const before = clockFormat; setClock("Europe/Berlin"); const said = [
        clockMinute("2026-10-25T00:30:00Z"), clockMinute("2026-10-25T01:30:00Z"), clockMinute("2026-10-24T12:05:00Z")];
        clockFormat = before; return said; }""")
    assert said == ["02:30 (UTC+02:00)", "02:30 (UTC+01:00)", "14:05"]


def test_the_page_names_the_site_s_clock_as_the_site_and_the_chart_do(supervisor):
    """Chromium resolves some zones to their old names: a Kolkata site's page said "Times:
    Asia/Calcutta (the site's clock)" above a chart "(Asia/Kolkata)"."""
    said = supervisor.evaluate("""() => { const before = clockFormat, shown = byId("clock").textContent;
        setClock("Asia/Kolkata"); const said = byId("clock").textContent;
        clockFormat = before; byId("clock").textContent = shown; return said; }""")
    assert said == "Times: Asia/Kolkata (the site's clock)"

def test_more_alerts_than_the_list_holds_say_since_when_it_holds_them_all(clinic, supervisor, monkeypatch):
    """A rule with no cooldown fires each 30 s: past the 1000 listed, the oldest are left out, and the answer
    still said since midnight, the page "Fired 1000 times today, first at 14:40" of a rule under since 06:00.
    (The list's length made the viewer's 3 alerts here; the alert added stays, as the screen reader's test's.)"""
    from maskwatch.serving import site_api

    monkeypatch.setattr(site_api, "ALERTS_LISTED", 3)
    try:
        now = time.time()
        crowd(clinic.site.store, masked=0, unmasked=10, when=now - 30, camera="entrance")
        assert [a["camera"] for a in clinic.site.compliance.check(now)] == ["entrance"]
        answer = httpx.get(clinic.base + "/v1/alerts", headers=session_of(login(clinic.base, VIEWER)), timeout=10).json()
        assert answer["cut"] is True and answer["since_start"] is False
        waiting_at = clinic.site.store.alerts(0, cameras=["waiting"])[0][0]["at"]  # the one left out
        assert datetime.fromisoformat(answer["since"]).timestamp() == pytest.approx(waiting_at, abs=1)
        assert [a["camera"] for a in answer["alerts"]] == ["entrance"] * 3  # the waiting room's was left out
        supervisor.evaluate("() => loadAlerts()")
        since = supervisor.text_content("#alerts-since")
        assert re.fullmatch(r"Since \d\d:\d\d: more alerts fired today than the list holds \(1000\), or some could "
                            r"not be stored\.", since), since
        assert re.search(r"Fired 3 times since \d\d:\d\d, first at ", supervisor.inner_text("#alert-list"))
    finally:
        monkeypatch.undo()
        supervisor.evaluate("""async () => { alertsSeen = null; lastAlerts = null; await loadAlerts();
            byId("alert-news").textContent = ""; }""")


def test_figures_next_to_the_threshold_are_not_rounded_onto_it(supervisor):
    """The whole interval under 80 % lets its top end be 79.9: rounded outwards to whole percents it
    read "95 % interval 70–80 %, under the 80 % set" (and 79.6 "80 % wearing a mask, under 80 %"), the
    contradiction the server's own rounding was fixed for. Such figures keep their decimals. (The
    server's answer replaced by one with such figures, then the page given back its own.)"""
    at = datetime.now(timezone.utc).isoformat()
    near = {"rule": 2, "camera": "entrance", "zone": None, "at": at, "compliance": 79.6, "compliance_low": 70.1,
            "compliance_high": 79.9, "observed": 79.0, "below": 80, "people": 900, "with_mask": 711,
            "unassessable": 0, "infrared": 0, "seen": 900, "minutes": 5,
            "now": {"state": "under", "people": 900, "compliance": 79.55, "compliance_low": 79.1, "compliance_high": 79.99}}
    # each rule's own threshold: 94.5 and 94.6 round onto a `below: 95`, 49.5 and 49.7 onto a `below: 50`
    strict = near | {"rule": 3, "camera": "waiting", "compliance": 94.5, "compliance_low": 90.2, "compliance_high": 94.6,
                     "below": 95, "now": {"state": "unclear", "people": 900, "compliance": 94.8, "compliance_low": 94.2,
                                          "compliance_high": 95.3}}
    lax = near | {"rule": 4, "camera": "pharmacy", "compliance": 49.5, "compliance_low": 40.3, "compliance_high": 49.7,
                  "below": 50, "now": {"state": "recovered", "people": 900, "compliance": 55.0, "compliance_low": 50.0,
                                       "compliance_high": 60.0}}
    body = {"since": at, "since_start": False, "cut": False, "rules": 3, "alerts": [lax, strict, near]}
    supervisor.route("**/v1/alerts", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                 body=json.dumps(body)))
    try:
        supervisor.evaluate("() => loadAlerts()")
        said = {camera: " ".join(supervisor.inner_text(f'#alert-list li.alert[data-camera="{camera}"]').split())
                for camera in ("waiting", "pharmacy")}
        assert "94.5 % wearing a mask (95 % interval 90–94.6 %) over the 5 min before, under the 95 % set" in said["waiting"]
        assert "Now: not clear yet: 94.8 % wearing a mask (94–96 %)" in said["waiting"], said
        assert "49.5 % wearing a mask (95 % interval 40–49.7 %) over the 5 min before, under the 50 % set" in said["pharmacy"]
        assert "Now: back to 50 % or more: 55 % wearing a mask (50–60 %)" in said["pharmacy"], said
        line = " ".join(supervisor.inner_text('#alert-list li.alert[data-camera="entrance"]').split())
        assert "79.6 % wearing a mask (95 % interval 70–79.9 %)" in line, line
        assert "Now: still under 80 %: 79.55 % wearing a mask (79–79.99 %) over the last 5 min." in line, line
        assert supervisor.text_content("#alert-news").endswith(" Entrance, 79.6 % wearing a mask, under 80 %.")
    finally:
        supervisor.unroute("**/v1/alerts")
        supervisor.evaluate("""async () => { alertsSeen = null; lastAlerts = null; await loadAlerts();
            byId("alert-news").textContent = ""; }""")


def test_a_rule_changed_in_the_file_since_it_fired_is_a_line_of_its_own(supervisor):
    """The alerts outlive a restart, and the file may have changed rule 0 meanwhile (its minutes): the page
    made one line of "rule 0 on the entrance", the 5-minute rule's alert counted as the 15-minute one's
    ("Fired 2 times today"). (The server's answer replaced, then the page given back its own.)"""
    at = datetime.now(timezone.utc).timestamp()
    fired = {"rule": 0, "camera": "entrance", "zone": None, "compliance": 20.0, "compliance_low": 10.0,
             "compliance_high": 30.0, "observed": 20.0, "below": 80, "people": 20, "with_mask": 4,
             "now": {"state": "under", "people": 20, "compliance": 20.0, "compliance_low": 10.0, "compliance_high": 30.0}}
    body = {"since": datetime.fromtimestamp(at - 3600, timezone.utc).isoformat(), "since_start": False, "cut": False,
            "rules": 1, "alerts": [fired | {"minutes": 15, "at": datetime.fromtimestamp(at, timezone.utc).isoformat()},
                                   fired | {"minutes": 5, "at": datetime.fromtimestamp(at - 600, timezone.utc).isoformat()}]}
    supervisor.route("**/v1/alerts", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                 body=json.dumps(body)))
    try:
        supervisor.evaluate("() => loadAlerts()")
        lines = supervisor.locator("#alert-list li.alert").all_inner_texts()
        assert len(lines) == 2 and not any("Fired" in line for line in lines), lines
        assert "over the 15 min before" in lines[0] and "over the 5 min before" in lines[1]
    finally:
        supervisor.unroute("**/v1/alerts")
        supervisor.evaluate("""async () => { alertsSeen = null; lastAlerts = null; await loadAlerts();
            byId("alert-news").textContent = ""; }""")


def answered(supervisor, body: dict) -> None:
    """The page's list loaded from `body` in place of the server's answer (given back by loaded_again)."""
    supervisor.route("**/v1/alerts", lambda route: route.fulfill(status=200, content_type="application/json",
                                                                 body=json.dumps(body)))
    supervisor.evaluate("() => loadAlerts()")


def loaded_again(supervisor) -> None:
    supervisor.unroute("**/v1/alerts")
    supervisor.evaluate("""async () => { alertsSeen = null; lastAlerts = null; await loadAlerts();
        byId("alert-news").textContent = ""; }""")


def stored_alerts(at: float, times: int, rules: int, since_start: bool) -> dict:
    """An answer of `times` alerts of rule 0 on the entrance, 5 minutes apart up to `at`."""
    fired = {"rule": 0, "camera": "entrance", "zone": None, "compliance": 20.0, "compliance_low": 10.0,
             "compliance_high": 30.0, "observed": 20.0, "below": 80, "people": 20, "with_mask": 4, "minutes": 15,
             "now": {"state": "under", "people": 20, "compliance": 20.0, "compliance_low": 10.0, "compliance_high": 30.0}}
    return {"since": datetime.fromtimestamp(at - 3600, timezone.utc).isoformat(), "since_start": since_start,
            "cut": False, "rules": rules,
            "alerts": [fired | {"at": datetime.fromtimestamp(at - 300 * n, timezone.utc).isoformat()} for n in range(times)]}


def test_on_the_upgrade_s_day_a_rule_s_repeats_are_counted_since_the_list_began(supervisor):
    """The list began at the upgrade (since_start): "Fired 2 times today", of a rule whose alerts of the
    morning, before it, went unlisted, read as the whole day's."""
    try:
        answered(supervisor, stored_alerts(datetime.now(timezone.utc).timestamp(), 2, rules=1, since_start=True))
        line = supervisor.inner_text("#alert-list li.alert")
        assert re.search(r"Fired 2 times since \d\d:\d\d, first at ", line), line
    finally:
        loaded_again(supervisor)


def test_alerts_of_today_whose_rules_the_file_no_longer_has_are_not_said_to_be_none(supervisor):
    """The alerts outlive a restart, the rules may not: the file's rules removed at noon, the page said
    "No compliance alerts are set up for your cameras." above the morning's alerts."""
    try:
        answered(supervisor, stored_alerts(datetime.now(timezone.utc).timestamp(), 1, rules=0, since_start=False))
        assert supervisor.locator("#alert-list li.alert").count() == 1
        said = supervisor.text_content("#alerts-since")
        assert said == "No compliance alerts are set up for your cameras now; these fired earlier today.", said
    finally:
        loaded_again(supervisor)


def test_an_alert_fired_while_the_page_is_open_is_said_to_a_screen_reader(clinic, supervisor):
    """The list is no live region (it is rebuilt as its figures move): a screen reader's user learnt
    of a new alert only by reading the list again. (Last here: it adds an alert to the clinic's.)"""
    supervisor.wait_for_selector("#alert-list li.alert")
    supervisor.evaluate("() => loadAlerts()")
    assert supervisor.text_content("#alert-news") == ""  # those listed at the first read are not news
    now = time.time()
    crowd(clinic.site.store, masked=0, unmasked=10, when=now - 30, camera="entrance")
    assert [a["camera"] for a in clinic.site.compliance.check(now)] == ["entrance"]
    supervisor.evaluate("() => loadAlerts()")
    said = supervisor.text_content("#alert-news")
    assert re.fullmatch(r"Compliance alert: \d\d:\d\d Entrance, \d+ % wearing a mask, under 80 %\.", said), said
