"""`maskwatch alerts test`: a test alert sent now to a site's webhooks and notify services, against
real HTTP receivers on loopback (apprise's json:// for the notify services): the body and its
signature checked, filters and opening hours bypassed, one line per service (OK, refused,
unreachable, a timeout), the secrets never shown, and nothing written beside the config."""

import base64
import json
import os
import signal
import socket
import threading
import time

import cv2
import numpy as np
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.site.alerts import signature_matches
from maskwatch.site.events import EventStore
from tests.rtsp import mute_server, overlapped, refused_port
from tests.test_alerts import Receiver
from tests.test_events import person
from tests.test_notify import SECRET, json_url, receiver  # noqa: F401  (fixture)

HOOK_SECRET = "s3cret-key"


def site_file(tmp_path, alerts: str):
    """A site whose one camera is closed but for a minute a week, with `alerts`."""
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n"
                    "  door: {name: Front door, source: webcam:0, hours: ['mon 00:00-00:01'],"
                    " zones: {queue: [[0, 0], [1, 0], [1, 1]]}}\n"
                    "  till: {name: Till, source: webcam:1}\n"
                    f"timezone: Europe/Berlin\nalerts: {alerts}\n")
    return path


def alerts_test(path, *options):
    """`maskwatch alerts test --config PATH OPTIONS`, its output and exit code."""
    return CliRunner().invoke(app, ["alerts", "test", "--config", str(path), *options])


def port_of(url: str) -> str:
    return url.split(":")[2].split("/")[0]


def test_each_service_gets_a_signed_test_alert_past_its_filters_and_nothing_is_stored(tmp_path, receiver):  # noqa: F811
    port = port_of(receiver.url)
    # A webhook and a notify service whose filters, cooldown and the camera's opening hours would
    # each keep a real alert from them; the secrets in their URLs never shown.
    path = site_file(tmp_path, "{webhooks: [{url: '" + receiver.url + f"?token={SECRET}', secret: {HOOK_SECRET}, "
                               "labels: [with_mask], cameras: [door], zones: [queue], cooldown: 3600}], "
                               f"notify: [{{urls: 'json://maskwatch:{SECRET}@127.0.0.1:{port}/{SECRET}path', "
                               "cameras: [till], cooldown: 3600, snapshot: true}]}")
    result = alerts_test(path)
    assert result.exit_code == 0, result.output
    site = f"site.yaml on {socket.gethostname()}"
    assert result.output.splitlines() == [
        f"test alert from site {site}, one try each; filters, cooldowns and opening hours bypassed, nothing stored",
        f"webhook 0 http://127.0.0.1:{port}/…: OK (HTTP 200)",
        f"notify 0 json://127.0.0.1:{port}/…: OK (apprise accepted)"]
    assert SECRET not in result.output
    (hook_body, signature), (notify_body, _) = sorted(receiver.received, key=lambda r: b'"version"' in r[0])
    assert signature_matches(HOOK_SECRET, hook_body, signature)  # signed as a real alert is
    sent = json.loads(hook_body)
    # A real event's shape, the rule's first label, camera and zone; marked as a test
    store = EventStore(str(tmp_path / "other" / "real.db"), None)
    try:
        real = store.record("door", None, person(1, (0.1, 0.8, 0.1)))
    finally:
        store.close()
    assert sent["type"] == "event" and sent["test"] is True and set(sent["event"]) == set(real)
    assert (sent["event"]["label"], sent["event"]["camera"], sent["event"]["zone"]) == ("with_mask", "door", "queue")
    assert sent["event"]["last_seen"].endswith("+00:00") and sent["event"]["snapshot"] is None
    message = json.loads(notify_body)
    assert message["title"] == f"maskwatch test alert from site {site}"
    lines = message["message"].splitlines()
    assert lines[:2] == ["Till: a person without a mask", "Camera: Till (till)"] and lines[3:4] == [
        "Certainty: 93 % over 5 frames"]
    assert lines[-1].startswith("A test (maskwatch alerts test): no one was seen")
    # snapshot: true: a small generated picture, no one's face
    (picture,) = message["attachments"]
    image = cv2.imdecode(np.frombuffer(base64.b64decode(picture["base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert picture["filename"] == "maskwatch-test.jpg" and image.shape == (96, 96, 3)
    # Neither the database nor the snapshots folder was made: the site need not run.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "site.yaml"]


class Trickler:
    """An HTTP receiver that answers a status line, then a header a byte every 0.1 s: each read
    is within any timeout urllib has, and the answer never ends (for `seconds`: then `ended`)."""

    def __init__(self, seconds: float = 4.0):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.seconds, self.ended = seconds, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self.server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            end = time.monotonic() + self.seconds
            while time.monotonic() < end:
                connection.sendall(b"X")
                time.sleep(0.1)
        self.ended.set()

    def close(self):
        self.server.close()


def test_each_failure_is_one_line_in_words_and_none_holds_the_others(tmp_path):
    refusing, trickling = Receiver(failures=100, status=401), Trickler(seconds=10)
    dead, dialled = refused_port(), []  # dialled: the mute receiver's connections as they come and go
    try:
        with mute_server(dialled, "mute") as mute_port:  # reads the request, never answers
            path = site_file(tmp_path, "{webhooks: ["
                                       f"{{url: '{refusing.url}?token={SECRET}', secret: {HOOK_SECRET}}}, "
                                       f"{{url: 'http://127.0.0.1:{dead}/{SECRET}', secret: {HOOK_SECRET}}}, "
                                       f"{{url: 'http://127.0.0.1:{mute_port}/hook', secret: {HOOK_SECRET}, timeout: 1}}, "
                                       f"{{url: 'http://no-such-host.invalid/{SECRET}', secret: {HOOK_SECRET}}}, "
                                       f"{{url: '{trickling.url}', secret: {HOOK_SECRET}, timeout: 1}}], "
                                       f"notify: [{{urls: ['json://maskwatch:{SECRET}@127.0.0.1:{port_of(refusing.url)}/x', "
                                       f"'json://127.0.0.1:{dead}/{SECRET}', 'json://127.0.0.1:{mute_port}/hook'], "
                                       "timeout: 1}]}")
            result = alerts_test(path)
            trickled_to_its_end = trickling.ended.is_set()
    finally:
        refusing.close()
        trickling.close()
    assert result.exit_code == 1, result.output
    refused = port_of(refusing.url)
    assert result.output.splitlines()[1:] == [
        f"webhook 0 http://127.0.0.1:{refused}/…: failed, refused, HTTP 401 Unauthorized: a wrong secret, token or address?",
        f"webhook 1 http://127.0.0.1:{dead}/…: failed, unreachable: connection refused "
        "(nothing listens at that host and port)",
        f"webhook 2 http://127.0.0.1:{mute_port}/…: failed, timeout: no answer within 1 s (the receiver may have it)",
        "webhook 3 http://no-such-host.invalid/…: failed, unreachable: host not found (DNS)",
        # an answer that never ends, each of its bytes in time: given up past its timeout all the same
        f"webhook 4 http://127.0.0.1:{port_of(trickling.url)}/…: failed, timeout: no answer within 1 s",
        f"notify 0 json://127.0.0.1:{refused}/…: failed, refused, HTTP 401 Unauthorized: a wrong secret, token or "
        "address? (Failed to send JSON POST notification: Verification Failed., error=401.)",
        f"notify 0 json://127.0.0.1:{dead}/…: failed, unreachable: connection refused "
        "(nothing listens at that host and port)",
        f"notify 0 json://127.0.0.1:{mute_port}/…: failed, timeout: no answer within 1 s (the service may have it)",
        "error: 8 of 8 services did not take the test alert"]
    assert refusing.attempts == 2 and SECRET not in result.output  # one try each, no retry
    # Side by side, shown by the order of events at the receivers, not by a clock that a busy
    # neighbour (the other xdist worker) could stretch: the mute receiver's two requests (webhook 2,
    # then notify's last) were open at once, where one after another the first gives up (1 s)
    # before the next is sent; and the command did not wait out the trickling answer's 10 s.
    assert overlapped(dialled, "mute", "mute"), dialled
    assert not trickled_to_its_end


def test_a_chosen_service_alone_is_sent_and_a_wrong_choice_is_one_line(tmp_path, receiver):  # noqa: F811
    other = Receiver()
    try:
        path = site_file(tmp_path, "{webhooks: [" + f"{{url: '{other.url}', secret: {HOOK_SECRET}}}, "
                                   f"{{url: '{receiver.url}', secret: {HOOK_SECRET}}}], "
                                   f"notify: [{{urls: '{json_url(other)}'}}, {{urls: ['{json_url(receiver)}']}}]}}")
        webhook = alerts_test(path, "--webhook", "1")
        notify = alerts_test(path, "--notify", "1")
    finally:
        other.close()
    assert webhook.exit_code == 0 and webhook.output.splitlines()[1:] == [
        f"webhook 1 http://127.0.0.1:{port_of(receiver.url)}/…: OK (HTTP 200)"]
    assert notify.exit_code == 0 and notify.output.splitlines()[1:] == [
        f"notify 1 json://127.0.0.1:{port_of(receiver.url)}/…: OK (apprise accepted)"]
    assert len(receiver.received) == 2 and other.received == []
    for option, expected in (("--webhook", "error: --webhook is the number of an entry in `alerts.webhooks`, 0 to 1; got 2"),
                             ("--notify", "error: --notify is the number of an entry in `alerts.notify`, 0 to 1; got -1")):
        wrong = alerts_test(path, option, "2" if option == "--webhook" else "-1")
        assert wrong.exit_code == 1 and wrong.output.splitlines() == [expected]
    assert len(receiver.received) == 2


def test_a_site_without_alerts_or_without_the_chosen_kind_is_one_line(tmp_path, receiver):  # noqa: F811
    bare = site_file(tmp_path, "{}")
    result = alerts_test(bare)
    assert result.exit_code == 1 and result.output.splitlines() == [
        f"error: {bare} has no `alerts.webhooks` or `alerts.notify` to test (see docs/site.md, Alerts)"]
    hooks_only = site_file(tmp_path, "{webhooks: [" + f"{{url: '{receiver.url}', secret: {HOOK_SECRET}}}]}}")
    result = alerts_test(hooks_only, "--notify", "0")
    assert result.exit_code == 1 and result.output.splitlines() == [f"error: --notify: {hooks_only} has no `alerts.notify`"]
    assert receiver.received == []


def test_ctrl_c_while_a_service_is_silent_is_one_line_and_exit_130(tmp_path):
    """Typer ended a Ctrl-C'd test with exit 130 and no word of what had been sent."""
    silent = socket.create_server(("127.0.0.1", 0))
    connected = []

    def ctrl_c_once_connected() -> None:
        connection, _ = silent.accept()  # the webhook's POST on its way: a Ctrl-C as it waits
        connected.append(connection)
        os.kill(os.getpid(), signal.SIGINT)

    def still_open(connection: socket.socket) -> bool:
        """Whether the webhook's try still waits for its answer (its POST read, its end not come)."""
        connection.setblocking(False)
        try:
            while connection.recv(65536):
                pass
        except BlockingIOError:
            return True
        return False

    threading.Thread(target=ctrl_c_once_connected, daemon=True).start()
    try:
        path = site_file(tmp_path, "{webhooks: [{url: 'http://127.0.0.1:" f"{silent.getsockname()[1]}/hook', "
                                   f"secret: {HOOK_SECRET}, timeout: 20}}]}}")
        result = alerts_test(path)
        # Ended while the try still waited for its answer (timeout 20 s), not after it.
        assert still_open(connected[0])
    finally:
        for connection in connected:
            connection.close()
        silent.close()
    assert result.exit_code == 130 and result.output.splitlines()[1:] == [
        "error: stopped by Ctrl-C or SIGTERM before every service answered; those already sent to may have the "
        "test alert; nothing was stored"]
