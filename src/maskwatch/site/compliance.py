"""Compliance alerts: "under X % of people masked over the last M minutes" on a camera or zone.

The share comes from the per-minute counts in the events store (so it survives restarts and
sees every camera thread's people), checked every `every` seconds on its own thread. The share
is corrected for the classifier's known confusions and has a 95 % interval (prevalence.py), and
a rule fires only when the whole interval lies under its threshold: 3 masked of 5 is no evidence
of under 80 %, 60 of 100 is. It fires only while its camera is open (opening hours) and only once
per `cooldown` seconds for the same camera and zone. Time comes from an injectable clock, so tests call check(now=...)
directly instead of sleeping. Each alert sent is stored in the same database (GET /v1/alerts reads
the day's back, after a restart too); one the database refuses is kept here and stored at a later check.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from maskwatch.faces import CLASSES, COMPLIANT, PERSON_LABELS, UNASSESSABLE
from maskwatch.runtime import Periodic, ProblemLog
from maskwatch.site.hours import ALWAYS_OPEN, OpeningHours
from maskwatch.site.infrared import INFRARED, infrared_words
from maskwatch.site.prevalence import compliance_estimate, in_percent

log = logging.getLogger(__name__)

# The alerts GET /v1/alerts lists at most: a day's of a busy site.
ALERTS_LISTED = 1000
# An alert as the webhooks, notify, MQTT and GET /v1/alerts have it: `infrared` of the `seen` people
# (decided or not) on grey frames, judged by the night model (site/infrared.py).
ALERT_FIELDS = ("rule", "camera", "zone", "compliance", "compliance_low", "compliance_high", "observed", "below",
                "people", "with_mask", "unassessable", "infrared", "seen", "minutes", "at")


@dataclass(frozen=True)
class ComplianceRule:
    """Alert when, of at least `min_people` decided people over `minutes`, the whole 95 % interval of
    the masked share lies under `below` %."""

    below: float  # percent, 0-100
    minutes: int
    camera: str | None = None  # None: every camera (that has `zone`, when one is named), each on its own
    zone: str | None = None  # None: the whole camera, every zone and outside them
    min_people: int = 5  # fewer people in the window is too few to judge
    cooldown: float = 900.0  # seconds the same camera and zone stay quiet after this rule fired

    def __post_init__(self) -> None:
        if not 0 < self.below <= 100:
            raise ValueError(f"below is a percentage in (0, 100]; got {self.below}")
        if self.minutes < 1:
            raise ValueError(f"minutes must be at least 1; got {self.minutes}")
        if self.min_people < 1:
            raise ValueError(f"min_people must be at least 1; got {self.min_people}")


def window_counts(rows: list[dict], zone: str | None) -> dict[str, int]:
    """People per voted label summed over per-minute count rows, of one zone or of all: the three
    classes decided, and the unassessable, whom the alert says apart and no share counts."""
    counts = dict.fromkeys(PERSON_LABELS, 0)
    for row in rows:
        if zone is None or row["zone"] == zone:
            for label in PERSON_LABELS:
                counts[label] += row.get(label, 0)  # rows from before the unassessable count have none
    return counts


def window_infrared(rows: list[dict], zone: str | None) -> tuple[int, int]:
    """(people seen on grey frames, people seen, decided or not) over per-minute count rows."""
    rows = [row for row in rows if zone is None or row["zone"] == zone]
    return sum(row[INFRARED] for row in rows), sum(row["people"] + row[UNASSESSABLE] for row in rows)


def said_in_log(alert: dict) -> None:
    """A compliance alert with nowhere else to go, as a line of the site's log."""
    where = alert["camera"] + (f", zone {alert['zone']}" if alert["zone"] else "")
    # The counted ratio beside the corrected share, as compliance_message has it: "51.1 % masked; 10 of
    # 19 people" alone read as a wrong sum (10 of 19 is 52.6 %).
    log.warning("compliance alert at %s: %g %% masked, corrected for the classifier's known errors (95 %% interval "
                "%g-%g %%), over the last %d minutes, under %g %%; counted: %d of %d people with a mask (%g %%), "
                "%d more not judged%s (said here only: no alerts.webhooks, alerts.notify or mqtt to send it to)", where,
                alert["compliance"], alert["compliance_low"], alert["compliance_high"], alert["minutes"],
                alert["below"], alert["with_mask"], alert["people"], alert["observed"], alert["unassessable"],
                infrared_said(alert))


def infrared_said(alert: dict) -> str:
    """`; N of M people seen on grey (infrared) frames ...` for an alert with any; else nothing."""
    return f"; {infrared_words(alert['infrared'], alert['seen'])}" if alert.get("infrared") else ""


@dataclass
class ComplianceStats:
    checks: int = 0
    fired: int = 0
    quieted: int = 0  # below the threshold but within the cooldown
    closed: int = 0  # a camera checked outside its opening hours
    last: list[dict] = field(default_factory=list)  # the alerts of the latest check


class ComplianceMonitor:
    """Checks every rule against the store's counts and hands each alert to `send`."""

    def __init__(self, store, rules: list[ComplianceRule], zones_of: dict[str, list[str]],
                 send: Callable[[dict], None] | None, hours: dict[str, OpeningHours] | None = None,
                 clock: Callable[[], float] = time.time, every: float = 30.0,
                 elapsed: Callable[[], float] = time.monotonic) -> None:
        # None: a site with rules and no webhook, notify or MQTT to send to (the demo site): each
        # alert raised a TypeError, logged as "compliance check failed", the alert itself unsaid.
        self.store, self.rules, self.zones_of, self.send = store, rules, zones_of, send or said_in_log
        self.hours = hours or {}
        # The window and opening hours are read on the wall clock; cooldowns run on `elapsed`, which
        # NTP does not step (a clock set back 5 minutes re-sent an alert 60 s after the first).
        self.clock, self.every, self.elapsed = clock, every, elapsed
        self.stats = ComplianceStats()
        self._last_fired: dict[tuple[int, str, str | None], float] = {}  # on the `elapsed` clock
        # The alerts sent that the database refused (a full disk, a lock held too long), oldest first,
        # each with its rule's min_people: GET /v1/alerts lists them with the stored ones, and each
        # check stores them again (at most a day's: after that they are no day's list's).
        self.unstored: deque[dict] = deque(maxlen=ALERTS_LISTED)
        # Per camera, the newest alert `unstored` let go of: no list holds it. A camera's own: a
        # till-only screen's list was cut at the door's, its own stored alert of before hidden.
        self.lost_at: dict[str, float] = {}
        self._storing = threading.Lock()
        self._store_problems = ProblemLog(log, "compliance alerts cannot be stored (they are sent, and listed from "
                                          "memory until they are)", "compliance alerts stored again")
        self._checks = Periodic(self.check, every, "maskwatch-compliance",
                                ProblemLog(log, "compliance check failed", "compliance checks work again"),
                                on_failure=self._failed)

    def targets(self, rule: ComplianceRule) -> list[str]:
        """The cameras a rule watches: its own, or every camera (having its zone, if it names one)."""
        if rule.camera is not None:
            return [rule.camera]
        return [camera for camera, zones in self.zones_of.items() if rule.zone is None or rule.zone in zones]

    def check(self, now: float | None = None) -> list[dict]:
        """Evaluate every rule at `now` (default: the clock); the alerts sent."""
        now = self.clock() if now is None else now
        self.stats.checks += 1
        fired = []
        try:
            self._check(now, fired)
        finally:  # a failure after some fired (the database away mid-check) keeps them too
            with self._storing:  # a full queue lets its oldest go: not one a store is writing
                for alert in fired:
                    if len(self.unstored) == self.unstored.maxlen:
                        gone = self.unstored[0]
                        self.lost_at[gone["camera"]] = max(self.lost_at.get(gone["camera"], float("-inf")), gone["at"])
                    self.unstored.append(alert)
            self.store_unstored()
        self.stats.fired += len(fired)
        self.stats.last = [{name: alert[name] for name in ALERT_FIELDS} for alert in fired]
        return self.stats.last

    def _check(self, now: float, fired: list[dict]) -> None:
        """check()'s rules; each alert sent is added to `fired` with its rule's min_people."""
        for index, rule in enumerate(self.rules):
            for camera in self.targets(rule):
                if not self.hours.get(camera, ALWAYS_OPEN).is_open(now):
                    self.stats.closed += 1
                    continue
                people, counts, estimate, (infrared, seen) = self.window(rule, camera, now)
                if people < rule.min_people:
                    continue
                if not estimate.below(rule.below / 100):
                    continue
                key = (index, camera, rule.zone)
                if self.elapsed() - self._last_fired.get(key, float("-inf")) < rule.cooldown:
                    self.stats.quieted += 1
                    continue
                self._last_fired[key] = self.elapsed()
                # The figures as the API shows them (the interval's ends as below() judged them), in
                # percent: the share was the unrounded one to 1 decimal (71.6 where the chart's hour
                # and a report said 71.57 of the same people).
                shown = {name: in_percent(value) for name, value in estimate.as_dict().items()}
                alert = {"rule": index, "camera": camera, "zone": rule.zone, "compliance": shown["compliance"],
                         "compliance_low": shown["compliance_low"], "compliance_high": shown["compliance_high"],
                         "observed": shown["observed_share"], "below": rule.below, "people": people,
                         "with_mask": counts[COMPLIANT], "unassessable": counts[UNASSESSABLE],
                         "minutes": rule.minutes, "at": now, "infrared": infrared, "seen": seen}
                self.send(alert)
                fired.append({**alert, "min_people": rule.min_people})  # a copy: the senders may hold `alert`

    def store_unstored(self) -> None:
        """The alerts not stored yet written, in one transaction; kept for the next try where the
        database refuses them (said once until they are stored). One caller at a time: stop() after
        a check it gave up waiting for (the database locked) wrote the same alerts again, and took
        from the queue more than was left (an IndexError that ended the site's stop)."""
        with self._storing:
            waiting = list(self.unstored)
            if not waiting:
                return
            try:
                self.store.record_alert(*waiting)
            except SQLAlchemyError as err:
                self._store_problems.failed(f"{len(waiting)} waiting: {err}")
                return
            for _ in waiting:
                self.unstored.popleft()
            self._store_problems.ok()

    def window(self, rule: ComplianceRule, camera: str, now: float):
        """The people decided on `camera` (in the rule's zone) over the rule's window up to `now`:
        how many, per label (the unassessable too, apart), their estimate (None where no one was),
        and (those seen on grey frames, all seen, decided or not)."""
        # The whole minutes inside the window and this one so far: its first minute's row held
        # up to 59 s from before the window (16 minutes' people for a 15-minute rule).
        since = math.ceil((now - rule.minutes * 60) / 60) * 60
        rows = [r for r in self.store.counts(camera=camera, since=since) if r["minute"] <= now]
        counts = window_counts(rows, rule.zone)
        return (sum(counts[label] for label in CLASSES), counts, compliance_estimate(counts),
                window_infrared(rows, rule.zone))

    def standing(self, alert: dict, now: float) -> dict:
        """How an alert's camera and zone stand at `now` over its rule's window: `state` "under" (the
        whole 95 % interval still under the rule's `below`), "recovered" (the whole of it at or over),
        "unclear" (it spans `below`) or "too_few" (fewer than min_people, no figures); the figures in
        percent, as the alert's. Whether compliance came back is what the person told of it asks next."""
        # Its own rule's figures, as stored with it: the config's rule of that index may be another since.
        rule = ComplianceRule(alert["below"], alert["minutes"], alert["camera"], alert["zone"], alert["min_people"])
        people, _, estimate, _ = self.window(rule, alert["camera"], now)
        if people < rule.min_people:
            return {"state": "too_few", "people": people, "compliance": None, "compliance_low": None,
                    "compliance_high": None}
        shown = {name: in_percent(value) for name, value in estimate.as_dict().items()}
        state = ("under" if estimate.below(rule.below / 100)
                 else "recovered" if estimate.as_dict()["compliance_low"] >= round(rule.below / 100, 10) else "unclear")
        return {"state": state, "people": people, "compliance": shown["compliance"],
                "compliance_low": shown["compliance_low"], "compliance_high": shown["compliance_high"]}

    def start(self) -> ComplianceMonitor:
        if self.rules:
            self._checks.start()
        return self

    def stop(self) -> None:
        """The checks ended, and the alerts the database refused tried once more: those it refuses
        again are lost to the list after a restart (they were sent), said in the log."""
        self._checks.stop()
        self.store_unstored()
        if self.unstored:
            log.warning("%d compliance alert%s the database refused %s not stored (first at %s on %s): they were "
                        "sent, but the dashboard's list after a restart lacks them", len(self.unstored),
                        "s" * (len(self.unstored) != 1), "are" if len(self.unstored) != 1 else "is",
                        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.unstored[0]["at"])),
                        self.unstored[0]["camera"])

    def _failed(self, err: Exception) -> None:
        self.stats.last = [{"error": str(err)}]
