"""Webhook alerts against a real HTTP receiver on loopback: signatures checked, retries forced."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from maskwatch.site.alerts import DELIVERY_HEADER, SIGNATURE_HEADER, WebhookNotifier, WebhookRule, shown_url, sign, signature_matches
from tests.rtsp import held_port, refused_port
from tests.test_cameras import wait_until

SECRET = "s3cret-key"


class Receiver:
    """An HTTP server that answers the first `failures` POSTs with `status` (503) and `headers`,
    then 200, and keeps the rest; `tries` has every POST's (time, delivery id)."""

    def __init__(self, failures: int = 0, delay: float = 0.0, port: int = 0, status: int = 503,
                 headers: dict | None = None):
        self.failures, self.delay, self.received, self.attempts, self.tries = failures, delay, [], 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                receiver.tries.append((time.monotonic(), self.headers.get(DELIVERY_HEADER)))
                time.sleep(receiver.delay)
                if receiver.attempts <= receiver.failures:
                    self.send_response(status[receiver.attempts - 1] if isinstance(status, list) else status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                else:
                    receiver.received.append((body, self.headers.get(SIGNATURE_HEADER)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def event(track_id=1, label="without_mask", camera="door", zone=None):
    return {"id": track_id, "camera": camera, "zone": zone, "track_id": track_id, "label": label,
            "probability": 0.9, "first_seen": 1.0, "last_seen": 2.0, "frames": 5, "snapshot": None}


@pytest.fixture()
def receiver():
    r = Receiver(failures=2)
    yield r
    r.close()


def test_a_non_compliant_person_is_posted_signed_after_retries(receiver):
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, backoff=0.05)]).start()
    notifier.notify(event())
    assert wait_until(lambda: receiver.received)
    notifier.stop()
    (body, signature), = receiver.received
    assert signature_matches(SECRET, body, signature) and not signature_matches("other", body, signature)
    # the event as /v1/events and MQTT give it: ISO 8601 UTC times (it was Unix seconds here)
    assert json.loads(body) == {"type": "event", "event": {**event(), "first_seen": "1970-01-01T00:00:01.000+00:00",
                                                           "last_seen": "1970-01-01T00:00:02.000+00:00"}}
    assert receiver.attempts == 3 and notifier.stats.retried == 2 and notifier.stats.sent == 1



def test_a_site_behind_a_path_prefix_posts_its_snapshots_url_under_it(tmp_path):
    """server.root_path: a receiver fetching the event's snapshot at /v1/snapshots/door-1.jpg hit
    the host's root, not maskwatch's /maskwatch/ (/v1/events gave the prefix, webhooks did not)."""
    from maskwatch.detection.detector import WEIGHTS, Detector
    from maskwatch.site.config import load_site_config
    from maskwatch.site.runner import Site

    receiver = Receiver()
    (tmp_path / "site.yaml").write_text(f"""
cameras: {{door: {{source: "rtsp://127.0.0.1:{refused_port()}/none"}}}}
server: {{root_path: /maskwatch}}
alerts: {{webhooks: [{{url: "{receiver.url}", secret: {SECRET}}}]}}
""")
    site = Site(load_site_config(tmp_path / "site.yaml", environ={}), Detector.load(config=WEIGHTS / "centerface.json"))
    site.alerts.start()
    try:
        site.alerts.notify({**event(), "snapshot": "door-1.jpg"})
        assert wait_until(lambda: receiver.received)
    finally:
        site.alerts.stop()
        site.store.close()
        receiver.close()
    (body, _), = receiver.received
    assert json.loads(body)["event"]["snapshot"] == "/maskwatch/v1/snapshots/door-1.jpg"

def test_rules_pick_labels_cameras_and_zones():
    rule = WebhookRule("http://x", SECRET, cameras=("door",), zones=("queue",))
    assert rule.matches(event(zone="queue"))
    assert not rule.matches(event(zone="queue", label="with_mask"))
    assert not rule.matches(event(zone="queue", camera="till"))
    assert not rule.matches(event(zone=None))


def test_cooldown_quiets_a_camera_after_an_alert():
    receiver = Receiver()
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, cooldown=3600)]).start()
    for track_id in (1, 2, 3):
        notifier.notify(event(track_id))
    notifier.notify(event(4, camera="till"))
    notifier.stop()
    receiver.close()
    assert sorted(json.loads(b)["event"]["camera"] for b, _ in receiver.received) == ["door", "till"]
    assert notifier.stats.quieted == 2


def test_a_dead_receiver_is_retried_then_given_up_without_blocking(caplog):
    """Every alert went through the whole backoff against a dead receiver (31 s each, hours for a
    full queue, the newest dropped meanwhile): once one has failed every try, each gets one."""
    held, port = held_port()  # refuses connections until the receiver comes up there
    notifier = WebhookNotifier([WebhookRule(f"http://127.0.0.1:{port}/hook?token=s3cret", SECRET, retries=2,
                                            backoff=0.05)]).start()
    for track_id in range(5):
        notifier.notify(event(track_id))  # returns at once: delivery is queued
    assert wait_until(lambda: notifier.stats.failed == 5), notifier.stats
    assert notifier.stats.retried == 2 and "Connection refused" in notifier.stats.last_error
    # Said once in the log, the URL without its query (it may hold a token).
    given_up = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.alerts"]
    assert len(given_up) == 1 and "s3cret" not in " ".join(given_up) + notifier.stats.last_error
    assert given_up[0].startswith(f"webhook http://127.0.0.1:{port}/…: alert not delivered after 3 tries (")
    held.close()
    back = Receiver(failures=1, port=port)  # up again; its first answer a 503
    try:
        notifier.notify(event(5))  # one try while down: lost to the 503
        assert wait_until(lambda: notifier.stats.failed == 6)
        notifier.notify(event(6))
        assert wait_until(lambda: notifier.stats.sent == 1)  # its answer read, not only its POST received
        assert any(r.getMessage().endswith("delivering again") for r in caplog.records)
        notifier.notify(event(7))  # up: retried again as before
        assert wait_until(lambda: len(back.received) == 2)
    finally:
        notifier.stop()
        back.close()
    assert notifier.stats.retried == 2 and notifier.stats.sent == 2


def test_a_full_queue_drops_its_oldest_instead_of_blocking_and_says_so(caplog):
    """The newest alerts were dropped, in silence, while the oldest kept their place."""
    slow = Receiver(delay=0.5)
    notifier = WebhookNotifier([WebhookRule(slow.url, SECRET)], queue_size=2).start()
    for track_id in range(10):
        notifier.notify(event(track_id))
    assert notifier.stats.dropped >= 6
    notifier.stop(timeout=30)
    slow.close()
    delivered = [json.loads(body)["event"]["id"] for body, _ in slow.received]
    assert delivered[-2:] == [8, 9]  # the newest two
    said = [r.getMessage() for r in caplog.records if "the oldest are dropped" in r.getMessage()]
    assert said == [f"webhook {slow.url.rsplit('/', 1)[0]}/…: 2 alerts queued, the receiver far behind: "
                    "the oldest are dropped"]


def test_a_rate_limit_is_waited_for_a_wrong_token_is_not_retried_and_a_delivery_keeps_its_id(caplog):
    limited = Receiver(failures=1, status=429, headers={"Retry-After": "2"})
    refused = Receiver(failures=99, status=401)
    notifier = WebhookNotifier([WebhookRule(limited.url, SECRET, backoff=0.05),
                                WebhookRule(refused.url, SECRET, backoff=0.05)]).start()
    notifier.notify(event(1))
    assert wait_until(lambda: len(limited.received) == 1 and notifier.stats.failed == 1, limit=10.0)
    notifier.stop()
    limited.close()
    refused.close()
    (first, first_id), (second, second_id) = limited.tries
    assert second - first >= 1.9  # Retry-After: 2, not the 0.05 s backoff
    assert first_id == second_id and len(first_id) == 36  # one id across retries: a repeat can be told
    assert refused.attempts == 1  # not 6 tries over 31 s
    assert any("alert not delivered after 1 try (HTTP 401)" in r.getMessage() for r in caplog.records)


def test_one_alert_refused_does_not_take_the_receiver_for_down():
    """A 400 for one payload marked a working receiver down: the next alert's 503 got no retry."""
    receiver = Receiver(failures=2, status=[400, 503])
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, backoff=0.05)]).start()
    notifier.notify(event(1))
    notifier.notify(event(2))
    assert wait_until(lambda: notifier.stats.sent == 1 and notifier.stats.failed == 1)
    notifier.stop()
    receiver.close()
    assert [json.loads(body)["event"]["id"] for body, _ in receiver.received] == [2] and notifier.stats.retried == 1


def test_two_rules_to_one_receiver_each_keep_their_cooldown():
    receiver = Receiver()
    notifier = WebhookNotifier([WebhookRule(receiver.url, SECRET, labels=("without_mask",), cooldown=600),
                                WebhookRule(receiver.url, SECRET, labels=("mask_weared_incorrect",),
                                            cooldown=600)]).start()
    notifier.notify(event(1))
    notifier.notify(event(2, label="mask_weared_incorrect"))  # was quieted by the first rule's alert
    notifier.stop()
    receiver.close()
    assert len(receiver.received) == 2 and notifier.stats.quieted == 0


def test_alerts_left_at_the_stop_are_said_in_the_log(caplog):
    slow = Receiver(delay=0.5)
    notifier = WebhookNotifier([WebhookRule(slow.url, SECRET)]).start()
    for track_id in range(10):
        notifier.notify(event(track_id))
    notifier.stop(timeout=1.2)
    slow.close()
    said = [r.getMessage() for r in caplog.records if "alerts not delivered by the stop" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"webhook {slow.url.rsplit('/', 1)[0]}/…: "), said
    left = int(said[0].split(": ")[1].split()[0])  # the queued and the one whose try was running
    assert 10 - len(slow.received) in (left, left - 1) and left > 1


def test_stop_ends_in_its_time_with_a_full_queue_and_a_receiver_that_never_answers():
    """The stop blocked putting its sentinel into a full queue, and waited for every queued alert's
    tries: here it returns while a try still waits for its answer (10 minutes), the queue full."""
    import socket

    mute = socket.socket()  # takes the connection and never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    mute.settimeout(30)
    rule = WebhookRule(f"http://127.0.0.1:{mute.getsockname()[1]}/hook", SECRET, retries=5, timeout=600)
    notifier = WebhookNotifier([rule], queue_size=3).start()
    notifier.notify(event(0))
    trying, _ = mute.accept()  # the first alert's try under way
    for track_id in range(1, 6):
        notifier.notify(event(track_id))
    assert notifier._queues[0].full()
    given = []  # (when the stop's wait for the threads began, the deadline it waits to)
    notifier._finish = lambda deadline, finish=notifier._finish: (given.append((time.monotonic(), deadline)),
                                                                  finish(deadline))
    stopping = threading.Thread(target=notifier.stop, kwargs={"timeout": 1.0}, daemon=True)
    asked = time.monotonic()
    stopping.start()
    stopping.join(60)  # a guard against a hang, not a speed bound: the stop's 1 s against the try's 10 minutes
    assert not stopping.is_alive(), "the stop waited for the try, or for room in the queue"
    ((began, deadline),) = given
    # Its own 1 s from when it was asked, not another wait (its default 10 s): read off the deadline,
    # which a busy machine moves with the stop, not off how long the stop took
    assert asked + 1.0 <= deadline <= began + 1.0, (asked, began, deadline)
    assert notifier._threads[0].is_alive()  # its try still waiting for an answer: not waited for
    trying.close()  # no answer: that try fails, the rest is dropped
    assert wait_until(lambda: not any(t.is_alive() for t in notifier._threads), limit=30.0)
    assert notifier.stats.sent == 0 and notifier.stats.dropped + notifier.stats.failed == 6
    mute.close()


def test_a_dead_receiver_holds_up_no_other_receiver():
    import socket

    dead = socket.socket()  # a port nobody listens on: every try is refused at once
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    healthy = Receiver()
    notifier = WebhookNotifier([WebhookRule(f"http://127.0.0.1:{port}/hook", SECRET, retries=5, backoff=600.0),
                                WebhookRule(healthy.url, SECRET)]).start()
    for track_id in range(2):
        notifier.notify(event(track_id))
    # Delivered while the dead one's first alert waits for its first retry (10 minutes), not after
    # its tries; the limit is a guard against that wait, not a speed bound.
    assert wait_until(lambda: len(healthy.received) == 2, limit=60.0)
    assert notifier.stats.retried == 0 and notifier.stats.failed == 0 and notifier.stats.sent == 2
    notifier.stop(timeout=0.5)
    healthy.close()


class Odd(BaseHTTPRequestHandler):
    """A receiver whose answers are not what urllib expects: cut short, or a redirect."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"cut")  # 3 of the 100 bytes promised, then the connection closes
        else:
            self.send_response(301)
            self.send_header("Location", "/moved/here")  # relative, as servers often say
            self.end_headers()

    def do_GET(self):  # what urllib would send after a redirect: no body
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_cut_answer_counts_as_sent_and_a_redirect_is_a_failed_try_and_delivery_goes_on():
    from http.server import HTTPServer

    odd = HTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=odd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{odd.server_address[1]}"
    notifier = WebhookNotifier([WebhookRule(base + "/short", SECRET, retries=0),
                                WebhookRule(base + "/moved", SECRET, retries=3, backoff=30.0)]).start()
    notifier.notify(event(1))
    # The cut answer's status was 200: sent (its body is not read: a receiver trickling it held
    # the thread); the redirect is not tried 3 times more, nor followed by an empty GET.
    assert wait_until(lambda: notifier.stats.failed == 1 and notifier.stats.sent == 1, limit=10.0)
    notifier.notify(event(2))  # the threads live on (a cut answer ended the only one)
    assert wait_until(lambda: notifier.stats.failed == 2 and notifier.stats.sent == 2, limit=10.0)
    assert notifier.stats.retried == 0
    notifier.stop(timeout=1.0)
    moved = WebhookNotifier([WebhookRule(base + "/moved", SECRET)]).start()
    moved.notify(event(3))
    assert wait_until(lambda: moved.stats.failed == 1, limit=10.0)
    assert moved.stats.last_error == f"{base}/…: HTTP 301, redirected to {base}/…"  # where to: its scheme and host
    moved.stop(timeout=1.0)
    odd.shutdown()
    odd.server_close()


@pytest.mark.parametrize("url, shown", [
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/…"),
    ("https://hooks.slack.com/services/T0001/B0002/XXXXYYYY", "https://hooks.slack.com/…"),
    ("http://ha.local:8123/api/webhook/maskwatch_door_alert", "http://ha.local:8123/…"),
    ("https://ntfy.sh/mysecrettopicname", "https://ntfy.sh/…"),
    ("http://me:pw@h:1/?token=1", "http://h:1/…"),
    ("http://h:1/", "http://h:1"),
])
def test_logs_show_no_token_a_webhook_url_holds(url, shown):
    # Receivers put their token in the path (Slack, Home Assistant, ntfy), the query or the user.
    assert shown_url(url) == shown


def test_signature_is_hmac_sha256_of_the_body():
    # RFC 4231-style check against a value computed independently (python -c "import hmac; ...").
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == \
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
