"""A test alert sent now to a site's webhooks and notify services (`maskwatch alerts test`): a
site manager who pasted a Slack URL or a webhook secret learns whether it works before the first
person without a mask walks in, not then.

Each service gets one try, as a real alert's first: the payload made by the site's own builders
(a webhook's signed JSON with `"test": true`, a message titled "maskwatch test alert from site
X" over a real alert's lines), past every filter, cooldown and opening hours, counted and stored
nowhere (the site need not run; its database is not opened). The services are tried side by
side, each on a daemon thread waited for its own `timeout` (and a second more, for a webhook's
connect and answer each timed on their own), so a hung one holds the command no longer.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from tempfile import TemporaryDirectory

from maskwatch.site.alerts import AlertQueues, Failure, WebhookNotifier, WebhookRule

GRACE_S = 1.0  # past a service's timeout, before its try is given up as having no answer


@dataclass(frozen=True)
class Tried:
    """One service's answer to the test: `said` is its line's end, "OK (HTTP 200)" or the failure in words."""

    kind: str  # webhook, notify
    number: int  # its place in alerts.webhooks / alerts.notify, as --webhook / --notify take it
    shown: str  # its URL as logs show it, secrets left out
    ok: bool
    said: str

    def line(self) -> str:
        return f"{self.kind} {self.number} {self.shown}: {self.said}"


def sample_event(rule, zones_of: dict[str, list[str]], now: float) -> dict:
    """A person's event as the store gives it (id 0: none stored), on a camera and zone the rule
    watches where it names some, with its first label: the receiver parses what it would."""
    camera, zone = next(iter(zones_of)), None
    for candidate in rule.cameras or zones_of:
        inside = [name for name in zones_of.get(candidate, []) if name in rule.zones]
        if not rule.zones or inside:
            camera, zone = candidate, inside[0] if rule.zones else None
            break
    label = rule.labels[0]
    return {"id": 0, "camera": camera, "zone": zone, "track_id": 0, "label": label,
            "probability": 0.0 if label == "unassessable" else 0.93, "first_seen": now - 2.0, "last_seen": now,
            "frames": 5, "snapshot": None, "infrared": False}


def in_words(reason: str) -> str:
    """A failed try's reason as a person reads it: refused (with the status's name and apprise's
    words), unreachable, a timeout; as it is where none of these."""
    found = re.match(r"HTTP (\d{3})", reason) or re.search(r"error=(\d{3})\b", reason)
    if found:
        code = int(found[1])
        try:
            name = f"HTTP {code} {HTTPStatus(code).phrase}"
        except ValueError:
            name = f"HTTP {code}"
        more = reason[len(found[0]):] if reason.startswith(found[0]) else f" ({reason})"  # a redirect's target
        if code in (401, 403):
            return f"refused, {name}: a wrong secret, token or address?{more}"
        return f"{'the service failed' if code >= 500 else 'refused'}, {name}{more}"
    lowered = reason.lower()
    if "connection refused" in lowered:
        return "unreachable: connection refused (nothing listens at that host and port)"
    if any(mark in lowered for mark in ("host not found", "name or service not known", "name resolution",
                                        "nodename nor servname", "no address associated")):
        return "unreachable: host not found (DNS)"
    if lowered.startswith(("no answer within", "no connection within", "a try of more than")):
        return f"timeout: {reason}"
    return reason


def _picture(folder: Path) -> Path:
    """A small generated picture standing in for a person's snapshot: no one's face is sent."""
    import cv2
    import numpy as np

    image = np.full((96, 96, 3), 200, np.uint8)
    cv2.putText(image, "TEST", (8, 58), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 40, 40), 2)
    path = folder / "maskwatch-test.jpg"
    cv2.imwrite(str(path), image)
    return path


@contextmanager
def _senders(site, snapshots: bool):
    """The site's webhooks and notifications as the site makes its senders (one rule per notify
    URL, in order), one try each; a generated picture for `snapshot: true` where `snapshots`."""
    webhooks = WebhookNotifier([WebhookRule(hook.url, hook.secret, labels=tuple(hook.labels), cameras=tuple(hook.cameras),
                                            zones=tuple(hook.zones), retries=0, timeout=hook.timeout)
                                for hook in site.alerts.webhooks], root=site.server.root_path)
    notify, numbers = None, []
    with TemporaryDirectory(prefix="maskwatch-test-") as folder:
        picture = _picture(Path(folder)) if snapshots and any(t.snapshot for t in site.alerts.notify) else None
        if site.alerts.notify:
            from maskwatch.site.notify import Notifier, NotifyRule

            numbers = [number for number, target in enumerate(site.alerts.notify) for _ in target.urls]
            notify = Notifier([NotifyRule(url, snapshot=target.snapshot, labels=tuple(target.labels),
                                          cameras=tuple(target.cameras), zones=tuple(target.zones), retries=0,
                                          timeout=target.timeout)
                               for target in site.alerts.notify for url in target.urls],
                              names={camera_id: camera.name for camera_id, camera in site.cameras.items()},
                              tz=site.tz())
        yield webhooks, notify, numbers, picture


def try_alerts(site, site_name: str, webhook: int | None = None, notify: int | None = None,
               now: float | None = None) -> list[Tried]:
    """The test alert to every webhook and notify service of `site` (only webhook N and/or
    notify entry N where chosen), side by side; one Tried per service, in config order."""
    now = time.time() if now is None else now
    zones_of = {camera_id: list(camera.zones) for camera_id, camera in site.cameras.items()}
    everything = webhook is None and notify is None
    with _senders(site, snapshots=not site.storage.privacy) as (webhooks, notifier, numbers, picture):
        jobs: list[tuple[str, int, AlertQueues, int]] = [
            ("webhook", number, webhooks, number) for number in range(len(webhooks.rules))
            if everything or number == webhook]
        if notifier is not None:
            jobs += [("notify", number, notifier, index) for index, number in enumerate(numbers)
                     if everything or number == notify]
        answers: list[list] = [[] for _ in jobs]
        threads = []
        for (kind, _, sender, index), answer in zip(jobs, answers):
            rule = sender.rules[index]
            payload = {"type": "event", "event": sample_event(rule, zones_of, now), "test": site_name,
                       "picture": picture}
            thread = threading.Thread(target=lambda s=sender, i=index, p=payload, a=answer: a.append(s.try_now(i, p)),
                                      name=f"maskwatch-test-{kind}-{index}", daemon=True)
            thread.start()
            threads.append(thread)
        started = time.monotonic()
        tried = []
        for (kind, number, sender, index), thread, answer in zip(jobs, threads, answers):
            rule = sender.rules[index]
            thread.join(max(0.0, started + rule.timeout + GRACE_S - time.monotonic()))
            if not answer:  # still trying (a DNS look-up, an answer trickling in: urllib times each read, not
                # the whole): left to end in the background, a daemon holding no exit
                outcome = Failure(f"no answer within {rule.timeout:g} s")
            else:
                outcome = answer[0]
            ok = not isinstance(outcome, Failure)
            tried.append(Tried(kind, number, rule.shown, ok, f"OK ({outcome})" if ok
                               else f"failed, {in_words(outcome.reason)}"))
    return tried
