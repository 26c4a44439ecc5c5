"""Alerts by webhook: a JSON POST per matching event, signed with HMAC-SHA256, retried with backoff.

The queues, filters, cooldowns, retries and log lines (AlertQueues) are shared with the messages
people read (notify.py), which differ only in what is sent and how. Delivery runs on a thread per rule from a bounded queue, so a slow or dead receiver never holds
up a camera or another receiver: notify() only enqueues. A rule picks events by voted label,
camera and zone; every event is one decided person, so a person alerts at most once, and `cooldown` seconds quiets a
camera after an alert (a crowd at the door is one alert, not twenty). Outside a camera's opening
hours (judged at the person's last-seen time) its events alert no one. Compliance alerts
(compliance.py: sent only when the whole 95 % interval of the corrected share is under the
rule's threshold; the alert carries the share, the interval and the plain ratio) go by alert(),
to every webhook whose cameras and zones admit them.

The receiver checks the signature over the exact body bytes:
    X-Maskwatch-Signature: sha256=<hex HMAC-SHA256(secret, body)>
and may drop a repeat by X-Maskwatch-Delivery, one id per alert kept across its retries (a receiver
that acted but answered after the timeout is sent the alert again).

A receiver that fails an alert's every try is taken for down: the alerts after it get one try
each until one goes through, so that an outage does not hold each of them for the whole backoff
(a full queue took hours to drain, the newest dropped). A full queue drops its oldest alert. An
answer of 4xx other than 408 and 429 is final (a wrong token or path gets no retries); 429 and
503 are retried after their Retry-After, up to 5 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import re
import threading
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from maskwatch.site.event_views import alert_view, event_view
from maskwatch.site.hours import ALWAYS_OPEN, OpeningHours

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Maskwatch-Signature"
DELIVERY_HEADER = "X-Maskwatch-Delivery"
LONGEST_RETRY_AFTER = 300.0  # seconds: a receiver's Retry-After is honoured up to this
NON_COMPLIANT = ("without_mask", "mask_weared_incorrect")


def shown_url(url: str) -> str:
    """A webhook URL as logs and errors show it: scheme, host and port, then "/…" for any path or
    query. Receivers put their token there (Slack's /services/T../B../XXXX, Home Assistant's
    /api/webhook/<id>, ntfy's /<topic>, a ?token=), in words as often as not. Split by hand, not
    by urlsplit: a [ or ] in a password was its ValueError, quoting part of the password."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        # not a URL (a ${VAR} left unset): as written, up to a query, less a user:password@
        return url.split("?", 1)[0].rpartition("@")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host, colon, port = authority.rpartition("@")[2].rpartition(":")
    if not colon or "]" in port:  # no port, or an IPv6 address's last colon
        host, port = authority.rpartition("@")[2], ""
    port = f":{port}" if port.isdigit() else ""  # not a number: it may be a password's (u:pw/d@h)
    return f"{scheme.lower()}://{host}{port}" + ("/…" if rest[len(authority):].strip("/") else "")


def redirect_target(url: str, location: str) -> str:
    """Where a redirect's Location points, as urljoin joins it; as sent where urljoin cannot."""
    try:
        return urllib.parse.urljoin(url, location)
    except ValueError:  # a [ outside an IPv6 host
        return location


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does `header` sign `body` with `secret` (constant-time compare)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, kw_only=True)
class AlertFilter:
    """Which events a receiver is sent: labels (default: not compliant), cameras and zones (default:
    all); and how hard it is tried. Shared by webhooks and notifications (notify.py)."""

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


@dataclass(frozen=True)
class WebhookRule(AlertFilter):
    """Events to `url`, signed with `secret`."""

    url: str
    secret: str

    @property
    def shown(self) -> str:
        return shown_url(self.url)


@dataclass(frozen=True)
class Failure:
    """A failed try: why (shown in logs, no secret in it), whether trying again can help (`final`:
    the same answer every time), and the least wait before the next try (a Retry-After)."""

    reason: str
    final: bool = False
    wait: float = 0.0


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0  # gave up after every retry
    retried: int = 0
    dropped: int = 0  # the queue was full (its oldest went), or left at the stop
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


class AlertQueues:
    """Matches events against the rules and delivers them in the background, each rule's in order
    on a thread of its own: a dead receiver's retries hold up no other receiver. What is sent, and
    how, is a subclass's (_message, _try); the queues, retries, cooldowns and what the log says
    are the same for webhooks and notifications."""

    kind = "alert"  # how the log names a receiver: "webhook https://h/…"
    sends = "alert"  # what the log says was not delivered: a report's sender says "report"

    def __init__(self, rules: list[AlertFilter], queue_size: int = 1000,
                 hours: dict[str, OpeningHours] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules
        self.hours = hours or {}  # camera -> opening hours; a camera not named is always open
        self.clock = clock  # for cooldowns: injectable so tests need not sleep
        self.stats = DeliveryStats()
        self._queues = [queue.Queue(maxsize=queue_size) for _ in rules]  # one per rule, as its thread
        self._last_alert: dict[tuple[int, str], float] = {}  # (rule index, camera) -> monotonic time
        self._down = [False] * len(rules)  # the rule's receiver failed an alert's every try
        self._full_said = [False] * len(rules)  # "queue full" said, until the queue has room again
        self._queued_lock = threading.Lock()
        self._queued = [0] * len(rules)  # alerts queued or being delivered, per rule
        self._closing = threading.Event()  # stop() was called: deliver what is queued, then end
        self._stop = threading.Event()  # stop()'s time is up: no more waiting, the rest is dropped
        self._threads = [threading.Thread(target=self._run, args=(i, rule, line), name=f"maskwatch-{self.kind}-{i}",
                                          daemon=True) for i, (rule, line) in enumerate(zip(rules, self._queues))]

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within `timeout` (all receivers together), then stop: what is
        still queued then is dropped (counted), a retry's wait ends at once, and at most one try
        per receiver runs out its own timeout in the background. Never blocks longer, a full
        queue or a mute receiver included."""
        stop_together([self], timeout)

    def _close(self) -> None:
        """The stop's first half: no more waiting for alerts, what is queued still goes."""
        self._closing.set()
        for line in self._queues:
            try:
                line.put_nowait(None)  # wakes an idle thread; a full queue ends on its own once drained
            except queue.Full:
                pass

    def _finish(self, deadline: float) -> None:
        """The stop's second half: wait for the threads up to `deadline`, then drop the rest, said."""
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        with self._queued_lock:
            for rule, left, down in zip(self.rules, self._queued, self._down):
                if left:  # gone with the process: said, not lost in silence
                    log.warning("%s %s: %d %s%s not delivered by the stop (%s)", self.kind, rule.shown, left,
                                self.sends, "s" * (left != 1), "the receiver is down" if down else "still queued")

    def notify(self, event: dict) -> None:
        """Queue the event for every rule it matches; never blocks."""
        if not self.hours.get(event["camera"], ALWAYS_OPEN).is_open(event["last_seen"]):
            self.stats.count("closed")
            return
        now = self.clock()
        for index, rule in enumerate(self.rules):
            if not rule.matches(event):
                continue
            key = (index, event["camera"])  # per rule: two rules to one URL each have their own
            if rule.cooldown and now - self._last_alert.get(key, -1e18) < rule.cooldown:
                self.stats.count("quieted")
                continue
            self._last_alert[key] = now
            self._enqueue(index, {"type": "event", "event": event})

    def alert(self, alert: dict) -> None:
        """Queue a compliance alert for every rule admitting its camera and zone (the compliance
        rule has its own cooldown and opening hours check); never blocks."""
        for index, rule in enumerate(self.rules):
            if rule.admits(alert["camera"], alert["zone"]):
                self._enqueue(index, {"type": "compliance", "alert": alert})

    def _enqueue(self, index: int, payload: dict) -> None:
        """Queue for rule `index`; when full, its oldest alert makes room (the newest matter most
        after an outage), said once until the queue has room again."""
        line = self._queues[index]
        with self._queued_lock:
            while True:
                try:
                    line.put_nowait(payload)
                    self._queued[index] += 1
                    break
                except queue.Full:
                    try:
                        if line.get_nowait() is not None:
                            self._queued[index] -= 1
                            self.stats.count("dropped")
                    except queue.Empty:
                        pass
            if line.full() and not self._full_said[index]:
                log.warning("%s %s: %d %ss queued, the receiver far behind: the oldest are dropped",
                            self.kind, self.rules[index].shown, line.maxsize, self.sends)
                self._full_said[index] = True

    def _run(self, index: int, rule: AlertFilter, line: queue.Queue) -> None:
        while True:
            payload = line.get()
            if payload is None:
                return
            if not self._stop.is_set():
                self._deliver(index, rule, payload)
            else:
                self.stats.count("dropped")
            with self._queued_lock:
                self._queued[index] -= 1
                if line.empty():
                    self._full_said[index] = False  # caught up: a full queue is news again
            if self._closing.is_set() and line.empty():
                return

    def _message(self, index: int, rule, payload: dict):
        """What is sent for `payload`, made once: every retry sends the same."""
        raise NotImplementedError

    def _try(self, index: int, rule, message) -> Failure | str:
        """Send `message` once: a Failure, or what the receiver answered when it went through ("HTTP 200")."""
        raise NotImplementedError

    def try_now(self, index: int, payload: dict) -> Failure | str:
        """`payload` to rule `index` once, now, on the caller's thread, as _deliver's first try makes
        and sends it but past every filter, cooldown, opening hours and queue, and counted nowhere
        (`maskwatch alerts test`, try_alerts.py)."""
        rule = self.rules[index]
        try:
            message = self._message(index, rule, payload)
        except Exception as err:  # noqa: BLE001  said as a failure, as _deliver says it
            return Failure(f"cannot make the message ({type(err).__name__}: {err})")
        return self._try(index, rule, message)

    def _deliver(self, index: int, rule: AlertFilter, payload: dict) -> None:
        try:
            message = self._message(index, rule, payload)
        except Exception as err:  # noqa: BLE001  a message that cannot be made ends no thread
            self.stats.count("failed", f"{rule.shown}: cannot make the message ({type(err).__name__}: {err})")
            log.warning("%s %s: %s not made (%s: %s)", self.kind, rule.shown, self.sends, type(err).__name__, err)
            return
        delay = rule.backoff
        tries = 1 if self._down[index] else rule.retries + 1  # down: one try each until one goes through
        unreachable = True  # every try failed without the receiver's own answer (or with 5xx, 408, 429)
        for attempt in range(tries):
            failure = self._try(index, rule, message)
            if not isinstance(failure, Failure):
                self.stats.count("sent")
                if self._down[index]:
                    log.warning("%s %s: delivering again", self.kind, rule.shown)
                self._down[index] = False
                return
            reason = failure.reason
            self.stats.last_error = f"{rule.shown}: {reason}"
            if failure.final:  # it answered: this alert's problem, not a receiver that is down
                unreachable = False
                break
            if attempt == tries - 1:
                break
            if self._stop.wait(max(delay, failure.wait)):  # the stop's time is up: not a sign the receiver is down
                unreachable = False
                break
            self.stats.count("retried")
            delay = min(60.0, delay * 2)
        self.stats.count("failed")
        if self._down[index] or not unreachable:
            if not self._down[index]:
                log.warning("%s %s: %s not delivered after %s (%s)", self.kind, rule.shown, self.sends,
                            _tries(attempt + 1), reason)
            return
        log.warning("%s %s: %s not delivered after %s (%s); until one goes through, "
                    "each %s gets one try", self.kind, rule.shown, self.sends, _tries(attempt + 1), reason, self.sends)
        self._down[index] = True


def _tries(n: int) -> str:
    return f"{n} {'try' if n == 1 else 'tries'}"


def stop_together(senders: list[AlertQueues], timeout: float = 10.0) -> None:
    """Stop every sender within one `timeout` (webhooks and notifications deliver what is queued
    side by side: stopped one after the other, the stop took twice as long)."""
    for sender in senders:
        sender._close()
    deadline = time.monotonic() + timeout
    for sender in senders:
        sender._finish(deadline)


def wire(payload: dict, root: str = "") -> dict:
    """What a webhook receives: the event as /v1/events and MQTT give it, the alert as MQTT does
    (times in ISO 8601 UTC, the snapshot as its URL path; webhooks sent Unix seconds and the bare
    file name, a second shape of one event)."""
    test = {"test": True} if "test" in payload else {}  # `maskwatch alerts test`; a real alert has no `test`
    if payload["type"] == "event":
        return {"type": "event", **test, "event": event_view(payload["event"], root)}
    return {"type": payload["type"], **test, "alert": alert_view(payload["alert"])}


class WebhookNotifier(AlertQueues):
    """Events and compliance alerts as signed JSON POSTs."""

    kind = "webhook"

    def __init__(self, rules: list[WebhookRule], root: str = "", **options) -> None:
        """root: the site's server.root_path, before each snapshot's URL path (a proxy's prefix)."""
        super().__init__(rules, **options)
        self.root = root

    def _message(self, index: int, rule: WebhookRule, payload: dict) -> urllib.request.Request:
        body = json.dumps(wire(payload, self.root), separators=(",", ":")).encode()
        return urllib.request.Request(rule.url, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(rule.secret, body),
            DELIVERY_HEADER: str(uuid.uuid4()), "User-Agent": "maskwatch"})

    def _try(self, index: int, rule: WebhookRule, request: urllib.request.Request) -> Failure | str:
        try:
            # The answer's status is all that counts: its body is not read (a receiver sending
            # it a byte at a time held the webhook's thread, every 5 s read within the timeout).
            with OPENER.open(request, timeout=rule.timeout) as answer:
                return f"HTTP {answer.status}"
        except urllib.error.HTTPError as err:
            moved = err.headers.get("Location") if 300 <= err.code < 400 else None
            reason = f"HTTP {err.code}" + (f", redirected to {shown_url(redirect_target(rule.url, moved))}"
                                           if moved else "")
            if 300 <= err.code < 500 and err.code not in (408, 429):  # the same answer every time: fix it
                return Failure(reason, final=True)
            return Failure(reason, wait=retry_after(err.headers.get("Retry-After")) if err.code in (429, 503) else 0.0)
        except TimeoutError:  # sent, but no answer: it may have acted (X-Maskwatch-Delivery tells)
            return Failure(f"no answer within {rule.timeout:g} s (the receiver may have it)")
        except Exception as err:  # noqa: BLE001  any failed try (refused, a broken answer, a bad URL)
            if isinstance(getattr(err, "reason", None), TimeoutError):
                return Failure(f"no connection within {rule.timeout:g} s")
            return Failure(str(getattr(err, "reason", None) or err) or type(err).__name__)  # ends no thread


def retry_after(header: str | None) -> float:
    """Seconds a 429 or 503 asks to wait (Retry-After as seconds or an HTTP date), at most
    LONGEST_RETRY_AFTER; 0 when it says nothing usable."""
    if not header:
        return 0.0
    try:
        seconds = float(header)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return 0.0
    return min(LONGEST_RETRY_AFTER, max(0.0, seconds)) if seconds == seconds else 0.0
