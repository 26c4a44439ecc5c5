"""Webhook alerts against a real HTTP receiver on loopback: signatures checked, retries forced."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from maskwatch.site.alerts import SIGNATURE_HEADER, WebhookNotifier, WebhookRule, shown_url, sign, signature_matches
from tests.rtsp import free_port
from tests.test_cameras import wait_until

SECRET = "s3cret-key"


class Receiver:
    """An HTTP server that answers the first `failures` POSTs with 503, then 200, and keeps the rest."""

    def __init__(self, failures: int = 0, delay: float = 0.0):
        self.failures, self.delay, self.received, self.attempts = failures, delay, [], 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                time.sleep(receiver.delay)
                if receiver.attempts <= receiver.failures:
                    self.send_response(503)
                else:
                    receiver.received.append((body, self.headers.get(SIGNATURE_HEADER)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
    assert json.loads(body) == {"type": "event", "event": event()}
    assert receiver.attempts == 3 and notifier.stats.retried == 2 and notifier.stats.sent == 1


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
    port = free_port()
    notifier = WebhookNotifier([WebhookRule(f"http://127.0.0.1:{port}/hook?token=s3cret", SECRET, retries=2,
                                            backoff=0.05)]).start()
    for track_id in range(5):
        notifier.notify(event(track_id))  # returns at once: delivery is queued
    assert wait_until(lambda: notifier.stats.failed == 5), notifier.stats
    assert notifier.stats.retried == 10 and "Connection refused" in notifier.stats.last_error
    notifier.stop()
    # Each alert given up is said in the log, the URL without its query (it may hold a token).
    given_up = [r.getMessage() for r in caplog.records if r.name == "maskwatch.site.alerts"]
    assert len(given_up) == 5 and "s3cret" not in " ".join(given_up) + notifier.stats.last_error
    assert given_up[0].startswith(f"webhook http://127.0.0.1:{port}/…: alert not delivered after 3 tries (")


def test_a_full_queue_drops_instead_of_blocking():
    slow = Receiver(delay=0.5)
    notifier = WebhookNotifier([WebhookRule(slow.url, SECRET)], queue_size=2).start()
    for track_id in range(10):
        notifier.notify(event(track_id))
    assert notifier.stats.dropped >= 6
    notifier.stop(timeout=30)
    slow.close()


def test_stop_ends_in_its_time_with_a_full_queue_and_a_receiver_that_never_answers():
    import socket

    mute = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    rule = WebhookRule(f"http://127.0.0.1:{mute.getsockname()[1]}/hook", SECRET, retries=5, timeout=0.5)
    notifier = WebhookNotifier([rule], queue_size=3).start()
    for track_id in range(6):
        notifier.notify(event(track_id))
    started = time.monotonic()
    notifier.stop(timeout=1.0)
    assert time.monotonic() - started < 1.5  # not 6 alerts x 6 tries x 0.5 s
    assert wait_until(lambda: not any(t.is_alive() for t in notifier._threads), limit=5.0)  # its try times out
    assert notifier.stats.sent == 0 and notifier.stats.dropped + notifier.stats.failed == 6
    mute.close()


def test_a_dead_receiver_holds_up_no_other_receiver():
    import socket

    dead = socket.socket()  # a port nobody listens on: every try is refused at once
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    healthy = Receiver()
    notifier = WebhookNotifier([WebhookRule(f"http://127.0.0.1:{port}/hook", SECRET, retries=5, backoff=1.0),
                                WebhookRule(healthy.url, SECRET)]).start()
    started = time.monotonic()
    for track_id in range(2):
        notifier.notify(event(track_id))
    assert wait_until(lambda: len(healthy.received) == 2, limit=5.0)  # not after the dead one's 31 s of retries
    assert time.monotonic() - started < 5.0
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


def test_a_broken_answer_or_a_redirect_is_a_failed_try_and_delivery_goes_on():
    from http.server import HTTPServer

    odd = HTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=odd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{odd.server_address[1]}"
    notifier = WebhookNotifier([WebhookRule(base + "/short", SECRET, retries=0),
                                WebhookRule(base + "/moved", SECRET, retries=3, backoff=30.0)]).start()
    notifier.notify(event(1))
    assert wait_until(lambda: notifier.stats.failed == 2, limit=10.0)  # the redirect is not tried 3 times more
    assert notifier.stats.sent == 0  # a redirect was followed by an empty GET and counted as sent
    notifier.notify(event(2))  # the threads live on (a cut answer ended the only one)
    assert wait_until(lambda: notifier.stats.failed == 4, limit=10.0)
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
