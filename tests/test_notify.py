"""alerts.notify: messages a person reads, sent by apprise's json:// to a real HTTP receiver on
loopback (as Slack, Telegram or ntfy would be sent, less the service): the text, the filters, the
cooldown, the snapshot attached, and the URL's secret never in the log, an error or `run --check`."""

import base64
import json
import logging
import re
import threading
import time
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.config import SiteConfigError, load_site_config
from maskwatch.site.events import EventStore
from maskwatch.site.hours import OpeningHours
from maskwatch.site.notify import Notifier, NotifyRule, shown_notify_url
from tests.test_alerts import Receiver, event
from tests.test_cameras import wait_until
from tests.test_events import NOW, person

BERLIN = ZoneInfo("Europe/Berlin")
NAMES = {"door": "Front door", "till": "Till"}
SECRET = "S3CRETpart"
TELEGRAM = f"tgram://123456789:{SECRET}abcdefghijklmnopqrstu/-1001234567"  # a bot's token and a chat


def json_url(receiver: Receiver, path: str = "hook") -> str:
    return receiver.url.replace("http://", "json://").rsplit("/", 1)[0] + f"/{path}"


def messages(receiver: Receiver) -> list[dict]:
    """What apprise's json:// posted: {title, message, type, attachments}."""
    return [json.loads(body) for body, _ in receiver.received]


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def send(rules, *events, alerts=(), **notifier) -> Notifier:
    """Each event and compliance alert through a Notifier, delivered before it returns."""
    notifier = Notifier(rules, names=NAMES, tz=BERLIN, **notifier).start()
    for one in events:
        notifier.notify(one)
    for one in alerts:
        notifier.alert(one)
    notifier.stop()
    return notifier


def test_a_person_without_a_mask_is_a_title_and_lines_a_person_reads(receiver):
    seen = {**event(zone="queue"), "last_seen": NOW, "probability": 0.93}
    notifier = send([NotifyRule(json_url(receiver))], seen)
    assert notifier.stats.sent == 1
    (message,) = messages(receiver)
    assert message["title"] == "Front door: a person without a mask"
    assert message["message"].splitlines() == [  # NOW is 2026-09-21 14:13:00 UTC
        "Camera: Front door (door)", "Zone: queue", "When: 2026-09-21 16:13:00 CEST", "Certainty: 93 % over 5 frames"]
    assert message["type"] == "warning" and message["attachments"] == []


def test_a_compliance_alert_gives_its_figures_and_interval(receiver):
    alert = {"rule": 0, "camera": "door", "zone": "queue", "compliance": 62.0, "compliance_low": 51.2,
             "compliance_high": 72.45, "observed": 63.3, "below": 80.0, "people": 60, "with_mask": 38, "unassessable": 4,
             "minutes": 15,
             "at": NOW}
    send([NotifyRule(json_url(receiver))], alerts=[alert])
    (message,) = messages(receiver)
    assert message["title"] == "Front door, queue: 62 % masked over 15 minutes, under 80 %"
    assert message["message"].splitlines() == [
        "Masked: 62 % (95 % interval 51.2-72.45 %), under 80 % beyond doubt",
        "Counted: 38 of 60 people with a mask (63.3 %) in the last 15 minutes (4 more not judged)",
        "Camera: Front door (door)", "Zone: queue", "When: 2026-09-21 16:13:00 CEST"]


def test_labels_cameras_zones_cooldown_and_opening_hours_pick_what_is_sent(receiver):
    rule = NotifyRule(json_url(receiver), cameras=("door",), zones=("queue",), cooldown=3600)
    closed = {**event(7, zone="queue"), "last_seen": NOW}  # a Monday; event()'s people are seen on a Thursday
    notifier = send([rule], event(1, zone="queue"), event(2, zone="queue"),  # the second within the cooldown
                    event(3, zone="queue", label="with_mask"), event(4, zone=None), event(5, camera="till", zone="queue"),
                    event(6, zone="queue", label="unassessable"), closed,
                    alerts=[{"rule": 0, "camera": "till", "zone": "queue"}],  # a camera the rule does not watch
                    hours={"door": OpeningHours.parse(["thu 00:00-24:00"], BERLIN)})
    assert [m["title"] for m in messages(receiver)] == ["Front door: a person without a mask"]
    assert notifier.stats.quieted == 1 and notifier.stats.closed == 1 and notifier.stats.sent == 1
    wider = NotifyRule(json_url(receiver, "all"), labels=("with_mask", "unassessable"))
    send([wider], event(1, label="with_mask"), {**event(2, camera="till", label="unassessable"), "probability": 0.0})
    assert [(m["title"], m["type"]) for m in messages(receiver)[1:]] == [
        ("Front door: a person with a mask", "info"), ("Till: a person whose mask could not be judged", "warning")]
    # An unassessable person's probability is 0: the message said "Certainty: 0 % over 5 frames".
    assert messages(receiver)[2]["message"].splitlines()[-1] == (
        "Seen in 5 frames, too few of a large enough face to judge")


def test_the_blurred_snapshot_is_attached_where_asked_and_never_in_privacy_mode(tmp_path, receiver):
    store = EventStore(str(tmp_path / "site.db"), tmp_path / "snaps")
    private = EventStore(str(tmp_path / "private.db"), tmp_path / "snaps", privacy=True)
    try:
        face = np.full((24, 24, 3), 120, np.uint8)
        stored = store.record("door", None, person(1, (0.1, 0.8, 0.1)), face)
        unstored = private.record("door", None, person(2, (0.1, 0.8, 0.1)), face)
        assert stored["snapshot"] and unstored["snapshot"] is None
        send([NotifyRule(json_url(receiver, "with"), snapshot=True), NotifyRule(json_url(receiver, "without"))],
             stored, snapshot_of=store.snapshot_path)
        # A privacy site's store gives no file, whatever a snapshot is named: the rule asks in vain.
        send([NotifyRule(json_url(receiver, "private"), snapshot=True)], {**unstored, "snapshot": stored["snapshot"]},
             snapshot_of=private.snapshot_path)
        assert len(messages(receiver)) == 3
        (picture,) = [attachment for message in messages(receiver) for attachment in message["attachments"]]
        assert picture["filename"] == stored["snapshot"] and picture["mimetype"] == "image/jpeg"
        assert base64.b64decode(picture["base64"]) == store.snapshot_path(stored["snapshot"]).read_bytes()
    finally:
        store.close()
        private.close()


class RootLog(logging.Handler):
    """Every record that reaches the root logger, as the site's log handler sees them (caplog also
    hooks loggers that do not propagate, where the site's handler never is)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        root = logging.getLogger()
        self.level_before = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)  # MASKWATCH_LOG_LEVEL=DEBUG: not even then
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        logging.getLogger().setLevel(self.level_before)


def test_a_failing_service_is_said_once_and_its_secret_never(receiver):
    failing = Receiver(failures=100)
    port = failing.url.split(":")[2].split("/")[0]
    url = f"json://maskwatch:{SECRET}@127.0.0.1:{port}/{SECRET}topic"
    try:
        with RootLog() as log:
            notifier = send([NotifyRule(url, retries=2, backoff=0.05)], *(event(i) for i in range(4)))
    finally:
        failing.close()
    assert failing.attempts == 3 + 3  # the first alert's every try, then one try each: taken for down
    assert notifier.stats.failed == 4 and notifier.stats.retried == 2
    said = [r.getMessage() for r in log.records if r.levelno >= logging.WARNING]
    assert said == [f"notify json://127.0.0.1:{port}/…: alert not delivered after 3 tries (Failed to send JSON POST "
                    "notification: Servers are overloaded., error=503.); until one goes through, each alert gets "
                    "one try"]
    everything = " ".join(r.getMessage() for r in log.records) + notifier.stats.last_error
    assert SECRET not in everything and {r.name for r in log.records} == {"maskwatch.site.alerts"}


def test_a_reason_naming_the_urls_secret_is_said_without_it():
    """apprise's reasons may name a token (a chat id, a path): each part of the URL is left out."""
    from maskwatch.site.notify import without_url

    url = f"json://user:{SECRET}pw@127.0.0.1:8000/{SECRET}%2Fpath?-X-Token={SECRET}hdr"
    said = f"POST http://127.0.0.1:8000/{SECRET}/path as user:{SECRET}pw, header {SECRET}hdr refused"
    assert without_url(said, url) == "POST http://127.0.0.1:8000/… as …:…, header … refused"


def test_shown_urls_keep_no_token_topic_or_password():
    assert shown_notify_url(TELEGRAM) == "tgram://1...u/…"
    assert shown_notify_url(f"ntfy://ntfy.sh/{SECRET}") == "ntfy://ntfy.sh/…"
    # ntfy.sh's short form: the topic stands where the host would (apprise does not mask it).
    assert shown_notify_url(f"ntfy://{SECRET}") == shown_notify_url(f"ntfys://{SECRET}") == "ntfys://…"
    assert shown_notify_url(f"ifttt://{SECRET}@event") == "ifttt://event/…"
    assert shown_notify_url("json://127.0.0.1:8000/x") == "json://127.0.0.1:8000/…"
    assert shown_notify_url(f"mailto://me:{SECRET}@example.com") == "mailto://example.com/…"
    assert shown_notify_url(f"slack://T1234/B5678/{SECRET}") == "slack://T...4/…"
    assert shown_notify_url(f"pover://{SECRET}ukey0123456789abcdef@{SECRET}token0123456789abc") == "pover://S...c/…"
    assert shown_notify_url(f"slack://{SECRET}") == "slack://…"  # unreadable: which part is secret is not known


def write(tmp_path, alerts: str, storage: str = "") -> object:
    path = tmp_path / "site.yaml"
    path.write_text(f"cameras:\n  door: {{source: webcam:0, zones: {{queue: [[0, 0], [1, 0], [1, 1]]}}}}\n"
                    f"{storage}alerts: {alerts}\n")
    return path


@pytest.mark.parametrize("urls, expected", [
    ("['foo://x']", "field 'alerts.notify.0.urls.0': apprise has no service foo://"),
    (f"['ntfy://ntfy.sh/ok', 'slack://{SECRET}']",
     "field 'alerts.notify.0.urls.1': not a Slack URL apprise can use (An invalid Slack (second) Token"),
    (f"['tgram://{SECRET}/']", "field 'alerts.notify.0.urls.0': not a Telegram URL apprise can use ("),
    (f"['{SECRET}']", "field 'alerts.notify.0.urls.0': not an apprise URL (service://...)"),
    ("['']", "field 'alerts.notify.0.urls.0': empty;"),
    (f"['https://example.com/{SECRET}']", "field 'alerts.notify.0.urls.0': https://example.com/… is no service's"),
    ("[]", "field 'alerts.notify.0.urls': List should have at least 1 item"),
    (f"{{a: 'ntfy://ntfy.sh/{SECRET}'}}", "field 'alerts.notify.0.urls': Input should be a valid list"),
])
def test_a_wrong_url_stops_the_start_with_one_line_naming_the_field_and_not_the_secret(tmp_path, urls, expected):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, f"{{notify: [{{urls: {urls}}}]}}"), environ={})
    (problem,) = err.value.problems
    assert problem.startswith(expected) and SECRET not in problem, problem


@pytest.mark.parametrize("alerts, storage, expected", [
    ("{notify: [{urls: 'ntfy://ntfy.sh/t', cameras: [nope]}]}", "",
     "field 'alerts.notify.0.cameras': no such cameras ['nope']; cameras: door"),
    ("{notify: [{urls: 'ntfy://ntfy.sh/t', zones: [nozone]}]}", "",
     "field 'alerts.notify.0.zones': no camera has the zones ['nozone']"),
    ("{notify: [{urls: 'ntfy://ntfy.sh/t', labels: [masked]}]}", "", "field 'alerts.notify.0.labels': unknown labels"),
    ("{notify: [{urls: 'ntfy://ntfy.sh/t', snapshot: true}]}", "storage: {privacy: true}\n",
     "field 'alerts.notify.0.snapshot': storage.privacy keeps no snapshot to attach"),
])
def test_what_a_notify_entry_names_is_checked(tmp_path, alerts, storage, expected):
    with pytest.raises(SiteConfigError) as err:
        load_site_config(write(tmp_path, alerts, storage), environ={})
    assert err.value.problems == [expected] or err.value.problems[0].startswith(expected), err.value.problems


def test_one_url_may_be_written_alone_and_secrets_come_from_the_environment(tmp_path):
    config = load_site_config(write(tmp_path, "{notify: [{urls: '${NTFY_URL}', zones: [queue], cooldown: 60}]}"),
                              environ={"NTFY_URL": f"ntfy://ntfy.sh/{SECRET}"})
    (target,) = config.alerts.notify
    assert target.urls == [f"ntfy://ntfy.sh/{SECRET}"] and target.zones == ["queue"] and not target.snapshot


def test_run_check_shows_the_services_and_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEGRAM_URL", TELEGRAM)
    path = write(tmp_path, f"{{notify: [{{urls: ['${{TELEGRAM_URL}}', 'ntfy://ntfy.sh/{SECRET}']}}]}}")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert "  notify: tgram://1...u/…, ntfy://ntfy.sh/…" in result.output.splitlines()
    assert SECRET not in result.output
    monkeypatch.setenv("TELEGRAM_URL", f"tgram://{SECRET}/")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--check"])
    assert result.exit_code == 1 and SECRET not in result.output
    assert "error: " in result.output and "field 'alerts.notify.0.urls.0': not a Telegram URL" in result.output


@pytest.mark.system  # a site's camera, its detector and store
def test_a_site_sends_its_people_with_their_snapshot_and_counts_them(tmp_path, sample_dir, receiver):
    """The whole way: a site's camera decides people, stores them with a snapshot, and each
    reaches the receiver as a message with that snapshot; /metrics counts them."""
    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.metrics import SiteCollector
    from maskwatch.site.runner import Site
    from tests.test_site import still_clip

    still_clip(tmp_path / "till.mp4", sample_dir)
    (tmp_path / "site.yaml").write_text(
        "cameras:\n  till: {name: Till, source: till.mp4, fps: 3, detect_every: 1}\n"
        "alerts:\n  notify: [{urls: '" + json_url(receiver) + "', snapshot: true,\n"
        "            labels: [with_mask, without_mask, mask_weared_incorrect, unassessable]}]\n")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}),
                Detector.load(config=WEIGHTS / "centerface.json")).start()
    try:
        assert wait_until(lambda: site.cameras()[0]["analysed"] >= 6, 60)
    finally:
        site.stop()  # the people in view are decided at the stop, and their messages sent
    events = site.store.events(camera="till")
    assert events and len(messages(receiver)) == len(events)
    for message in messages(receiver):
        assert message["title"].startswith("Till: a person") and "Camera: Till (till)" in message["message"]
        (picture,) = message["attachments"]
        assert base64.b64decode(picture["base64"]) == (tmp_path / "snapshots" / picture["filename"]).read_bytes()
    series = {family.name: family.samples for family in SiteCollector(site).collect()}
    sent = [s.value for s in series["maskwatch_notify_alerts"] if s.labels == {"outcome": "sent"}]
    assert sent == [len(events)]
    assert not [t for t in threading.enumerate() if t.name.startswith("maskwatch-notify") and t.is_alive()]


def test_a_sites_compliance_rule_is_a_message_too(tmp_path, receiver):
    """The site hands a compliance rule's alert to its notify entries as to its webhooks."""
    from maskwatch import Detector
    from maskwatch.detection.detector import WEIGHTS
    from maskwatch.site.runner import Site

    (tmp_path / "site.yaml").write_text(
        "cameras:\n  door: {name: Front door, source: 'rtsp://127.0.0.1:1/none'}\n"
        "timezone: Europe/Berlin\n"
        "alerts:\n  compliance: [{camera: door, below: 80, minutes: 15}]\n"
        f"  notify: [{{urls: '{json_url(receiver)}', cameras: [door]}}]\n")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))
    try:
        for track_id in range(10):  # ten people without a mask in the window: beyond doubt under 80 %
            site.store.record("door", None, person(track_id, (0.1, 0.8, 0.1)))
        site.notifications.start()
        (alert,) = site.compliance.check(now=NOW + 60)
    finally:
        site.stop()
    (message,) = messages(receiver)
    assert message["title"] == f"Front door: {alert['compliance']:g} % masked over 15 minutes, under 80 %"
    assert f"(95 % interval {alert['compliance_low']:g}-{alert['compliance_high']:g} %)" in message["message"]
    assert "Counted: 0 of 10 people with a mask (0 %) in the last 15 minutes (0 more not judged)" in message["message"]
    assert "When: 2026-09-21 16:14:00 CEST" in message["message"]


def test_the_stop_waits_once_for_webhooks_and_notifications_together():
    """Stopped one after the other, a site with a mute webhook and a mute service took twice the
    stop's time; together they end within it."""
    import socket

    from maskwatch.site.alerts import WebhookNotifier, WebhookRule, stop_together

    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # takes connections, never answers
    port = mute.getsockname()[1]
    try:
        hooks = WebhookNotifier([WebhookRule(f"http://127.0.0.1:{port}/hook", "s3cret-key", timeout=30)]).start()
        notes = Notifier([NotifyRule(f"json://127.0.0.1:{port}/note", timeout=30)]).start()
        hooks.notify(event())
        notes.notify(event())
        time.sleep(0.3)  # both threads in their try
        given = []  # (when the wait for each sender's threads began, the deadline it waits to)
        for sender in (hooks, notes):
            sender._finish = lambda deadline, finish=sender._finish: (given.append((time.monotonic(), deadline)),
                                                                      finish(deadline))
        asked = time.monotonic()
        stop_together([hooks, notes], timeout=1.0)
        # One deadline for both, so the stop waits once; one after the other, the second's wait
        # began where the first's ended (timed, 1 s against 2 s, on a busy machine). It is the stop's
        # 1 s from when it was asked, whenever a busy machine ran it.
        (began, deadline), (_, second) = given
        assert deadline == second and asked + 1.0 <= deadline <= began + 1.0, given
    finally:
        mute.close()
    # Their threads, given up on, end at the reset: inside this test, not in whichever runs next (its log).
    stop_together([hooks, notes], timeout=5.0)


def test_the_documented_entries_load(tmp_path):
    """docs/site.md's Slack and ntfy example, and the example site's commented entry uncommented."""
    from tests.conftest import ROOT

    environ = {"SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/T0123/B0456/{SECRET}",
               "NTFY_TOPIC": SECRET, "CAM_PASSWORD": "x", "WEBHOOK_SECRET": "0123456789"}
    docs = (ROOT / "docs" / "site.md").read_text()
    (alerts,) = re.findall(r"\*\*Messages to people\*\*.*?```yaml\n(.*?)```", docs, re.S)
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  entrance: {source: webcam:0, zones: {door: [[0, 0], [1, 0], [1, 1]]}}\n" + alerts)
    slack, ntfy = load_site_config(path, environ=environ).alerts.notify
    assert [shown_notify_url(url) for url in (*slack.urls, *ntfy.urls)] == ["slack://T...3/…", "ntfy://ntfy.sh/…"]
    assert ntfy.snapshot and ntfy.zones == ["door"] and slack.cooldown == 300
    example = (ROOT / "src" / "maskwatch" / "examples" / "site.yaml").read_text()
    assert "  # notify:" in example
    lines = example.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  # notify:"))
    last = next(i for i in range(first, len(lines)) if not lines[i].startswith("  #"))
    path.write_text("\n".join(lines[:first] + [line[:2] + line[4:] for line in lines[first:last]] + lines[last:]))
    (target,) = load_site_config(path, environ=environ).alerts.notify
    assert len(target.urls) == 2 and target.snapshot and target.cameras == ["entrance"]


class Trickle:
    """A service that answers 200 and then sends its body a byte a second, for ever: each read
    is within the socket's timeout, so an HTTP client waits on it without end."""

    def __init__(self):
        import socket

        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port, self.connections, self.closed = self.server.getsockname()[1], [], threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection):
        try:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not self.closed.wait(1.0):
                connection.sendall(b" ")
        except OSError:
            pass

    def close(self):
        self.closed.set()
        self.server.close()
        for connection in self.connections:
            connection.close()


def test_a_service_that_never_finishes_its_answer_holds_up_no_other_service(receiver):
    """apprise's own timeout left each hung call on its process-wide worker pool: a few alerts to
    one such service filled every worker, and every other service's messages failed as 'no answer'."""
    trickle = Trickle()
    try:
        notifier = Notifier([NotifyRule(f"json://127.0.0.1:{trickle.port}/slow", cameras=("door",), timeout=0.2,
                                        retries=0),
                             NotifyRule(json_url(receiver), cameras=("till",), timeout=5, retries=0)]).start()
        for i in range(33):  # more than apprise's pool has workers (at most 32)
            notifier.notify(event(i, camera="door"))
        assert wait_until(lambda: notifier.stats.failed == 33, 30)
        notifier.notify(event(99, camera="till"))
        notifier.stop()
        assert [m["title"] for m in messages(receiver)] == ["till: a person without a mask"]
        assert notifier.stats.sent == 1 and notifier.stats.failed == 33
        hung = [t for t in threading.enumerate() if t.name.startswith("maskwatch-notify-0-try")]
        assert len(hung) == 1 and hung[0].daemon  # one thread for the hung service, not one per alert
    finally:
        trickle.close()


def test_a_hung_service_holds_up_no_exit(tmp_path):
    """`maskwatch run` stopped by SIGTERM ended its site, then never exited: apprise's hung call
    sat on a pool thread that Python joins at its exit (systemd killed it after TimeoutStopSec)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    trickle = Trickle()
    script = tmp_path / "send.py"
    script.write_text(
        "import time\n"
        "from maskwatch.site.notify import Notifier, NotifyRule\n"
        "from tests.test_alerts import event\n"
        f"notifier = Notifier([NotifyRule('json://127.0.0.1:{trickle.port}/slow', timeout=0.5, retries=0)]).start()\n"
        "notifier.notify(event())\n"
        "time.sleep(1)\n"
        "notifier.stop(timeout=1)\n"
        "print('stopped', notifier.stats.failed, flush=True)\n")
    try:
        # It exits at all: the hung call held Python's exit for good (the trickle never ends), so
        # the timeout is a guard against that, not a speed bound.
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**__import__("os").environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
        assert done.returncode == 0 and "stopped 1" in done.stdout, done.stderr
    finally:
        trickle.close()


def test_apprise_says_nothing_to_a_root_logger_at_debug_from_its_first_use():
    """MASKWATCH_LOG_LEVEL=DEBUG: apprise's lines as it loaded ("The C.UTF-8 locale asks for no
    translation", "189 Notification Plugin(s) ... loaded") were in the site's log, said before
    quiet_apprise ran; a fresh interpreter, as a site starts, with the root logger at DEBUG."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = ("import io, logging; log = io.StringIO(); logging.basicConfig(level=logging.DEBUG, stream=log)\n"
              "from maskwatch.site.notify import url_problem\n"
              "assert url_problem('json://user:pw@example.com/hook') is None\n"
              "print(log.getvalue())")
    said = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in said.splitlines() if ":apprise" in line or "urllib3" in line] == []
