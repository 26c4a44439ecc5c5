"""Alerts by webhook: a JSON POST per matching event, signed with HMAC-SHA256, retried with backoff.

Delivery runs on a thread per rule from a bounded queue, so a slow or dead receiver never holds
up a camera or another receiver: notify() only enqueues. A rule picks events by voted label,
camera and zone; every event is one decided person, so a person alerts at most once, and `cooldown` seconds quiets a
camera after an alert (a crowd at the door is one alert, not twenty). Outside a camera's opening
hours (judged at the person's last-seen time) its events alert no one. Compliance alerts
(compliance.py: sent only when the whole 95 % interval of the corrected share is under the
rule's threshold; the alert carries the share, the interval and the plain ratio) go by alert(),
to every webhook whose cameras and zones admit them.

The receiver checks the signature over the exact body bytes:
    X-Maskwatch-Signature: sha256=<hex HMAC-SHA256(secret, body)>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from maskwatch.site.hours import ALWAYS_OPEN, OpeningHours

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Maskwatch-Signature"
NON_COMPLIANT = ("without_mask", "mask_weared_incorrect")


def shown_url(url: str) -> str:
    """A webhook URL as logs and errors show it: scheme, host and port, then "/…" for any path or
    query. Receivers put their token there (Slack's /services/T../B../XXXX, Home Assistant's
    /api/webhook/<id>, ntfy's /<topic>, a ?token=), in words as often as not."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme:  # not a URL (a ${VAR} left unset): as written, up to a query
        return url.split("?", 1)[0]
    host = parts.netloc.rpartition("@")[2]  # host and port as written (a bad port must not raise here)
    return f"{parts.scheme}://{host}" + ("/…" if parts.path.strip("/") or parts.query else "")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does `header` sign `body` with `secret` (constant-time compare)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True)
class WebhookRule:
    """Which events go to `url`: labels (default: not compliant), cameras and zones (default: all)."""

    url: str
    secret: str
    labels: tuple[str, ...] = NON_COMPLIANT
    cameras: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    cooldown: float = 0.0  # seconds after an alert during which the same camera does not alert again
    retries: int = 5  # further tries after a failed one
    backoff: float = 1.0  # seconds before the first retry; doubles each time, up to 60 s
    timeout: float = 5.0  # seconds per try

    def matches(self, event: dict) -> bool:
        return event["label"] in self.labels and self.admits(event["camera"], event["zone"])

    def admits(self, camera: str, zone: str | None) -> bool:
        """Does the rule's camera and zone filter let this camera and zone through."""
        return (not self.cameras or camera in self.cameras) and (not self.zones or zone in self.zones)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0  # gave up after every retry
    retried: int = 0
    dropped: int = 0  # the queue was full: the receiver is far behind
    quieted: int = 0  # within a cooldown
    closed: int = 0  # outside the camera's opening hours
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, what: str, error: str | None = None) -> None:
        """One more of `what` (camera threads and every receiver's thread count at once)."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if error is not None:
                self.last_error = error


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed try that names where it points: urllib would follow it with a GET
    without the body (an http:// receiver moved to https:// got empty GETs, counted as sent)."""

    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(_NoRedirects)


class WebhookNotifier:
    """Matches events against the rules and delivers them in the background, each rule's in order
    on a thread of its own: a dead receiver's retries hold up no other receiver."""

    def __init__(self, rules: list[WebhookRule], queue_size: int = 1000,
                 hours: dict[str, OpeningHours] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.hours = hours or {}  # camera -> opening hours; a camera not named is always open
        self.clock = clock  # for cooldowns: injectable so tests need not sleep
        self.stats = DeliveryStats()
        self._queues = [queue.Queue(maxsize=queue_size) for _ in rules]  # one per rule, as its thread
        self._last_alert: dict[tuple[str, str], float] = {}  # (url, camera) -> monotonic time
        self._closing = threading.Event()  # stop() was called: deliver what is queued, then end
        self._stop = threading.Event()  # stop()'s time is up: no more waiting, the rest is dropped
        self._threads = [threading.Thread(target=self._run, args=(rule, line), name=f"maskwatch-webhook-{i}",
                                          daemon=True) for i, (rule, line) in enumerate(zip(rules, self._queues))]

    def start(self) -> WebhookNotifier:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within `timeout` (all receivers together), then stop: what is
        still queued then is dropped (counted), a retry's wait ends at once, and at most one try
        per receiver runs out its own timeout in the background. Never blocks longer, a full
        queue or a mute receiver included."""
        self._closing.set()
        for line in self._queues:
            try:
                line.put_nowait(None)  # wakes an idle thread; a full queue ends on its own once drained
            except queue.Full:
                pass
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()

    def notify(self, event: dict) -> None:
        """Queue the event for every rule it matches; never blocks."""
        if not self.hours.get(event["camera"], ALWAYS_OPEN).is_open(event["last_seen"]):
            self.stats.count("closed")
            return
        now = self.clock()
        for rule, line in zip(self.rules, self._queues):
            if not rule.matches(event):
                continue
            key = (rule.url, event["camera"])
            if rule.cooldown and now - self._last_alert.get(key, -1e18) < rule.cooldown:
                self.stats.count("quieted")
                continue
            self._last_alert[key] = now
            self._enqueue(line, {"type": "event", "event": event})

    def alert(self, alert: dict) -> None:
        """Queue a compliance alert for every rule admitting its camera and zone (the compliance
        rule has its own cooldown and opening hours check); never blocks."""
        for rule, line in zip(self.rules, self._queues):
            if rule.admits(alert["camera"], alert["zone"]):
                self._enqueue(line, {"type": "compliance", "alert": alert})

    def _enqueue(self, line: queue.Queue, payload: dict) -> None:
        try:
            line.put_nowait(payload)
        except queue.Full:
            self.stats.count("dropped")

    def _run(self, rule: WebhookRule, line: queue.Queue) -> None:
        while True:
            payload = line.get()
            if payload is None:
                return
            if self._stop.is_set():
                self.stats.count("dropped")
            else:
                self._deliver(rule, payload)
            if self._closing.is_set() and line.empty():
                return

    def _deliver(self, rule: WebhookRule, payload: dict) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        request = urllib.request.Request(rule.url, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(rule.secret, body),
            "User-Agent": "maskwatch"})
        delay = rule.backoff
        for attempt in range(rule.retries + 1):
            try:
                with OPENER.open(request, timeout=rule.timeout) as response:
                    response.read()
                self.stats.count("sent")
                return
            except urllib.error.HTTPError as err:
                moved = err.headers.get("Location") if 300 <= err.code < 400 else None
                reason = f"HTTP {err.code}" + (f", redirected to {shown_url(urllib.parse.urljoin(rule.url, moved))}"
                                               if moved else "")
                if 300 <= err.code < 400:  # the same answer every time: fix the URL
                    self.stats.last_error = f"{shown_url(rule.url)}: {reason}"
                    break
            except Exception as err:  # noqa: BLE001  any failed try (refused, a broken answer, a bad URL)
                reason = str(getattr(err, "reason", None) or err) or type(err).__name__  # ends no thread
            self.stats.last_error = f"{shown_url(rule.url)}: {reason}"
            if attempt == rule.retries or self._stop.wait(delay):
                break
            self.stats.count("retried")
            delay = min(60.0, delay * 2)
        self.stats.count("failed")
        log.warning("webhook %s: alert not delivered after %d tries (%s)", shown_url(rule.url), attempt + 1, reason)
