"""Compliance alerts: "under X % of people masked over the last M minutes" on a camera or zone.

The share comes from the per-minute counts in the events store (so it survives restarts and
sees every camera thread's people), checked every `every` seconds on its own thread. The share
is corrected for the classifier's known confusions and has a 95 % interval (prevalence.py), and
a rule fires only when the whole interval lies under its threshold: 3 masked of 5 is no evidence
of under 80 %, 60 of 100 is. It fires only while its camera is open (opening hours) and only once
per `cooldown` seconds for the same camera and zone. Time comes from an injectable clock, so tests call check(now=...)
directly instead of sleeping.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from maskwatch.faces import CLASSES, COMPLIANT, UNASSESSABLE
from maskwatch.runtime import Periodic, ProblemLog
from maskwatch.site.hours import ALWAYS_OPEN, OpeningHours
from maskwatch.site.infrared import INFRARED, infrared_words
from maskwatch.site.prevalence import compliance_estimate, in_percent

log = logging.getLogger(__name__)

# The alerts kept for the dashboard (GET /v1/alerts): a day's of a busy site, in memory only.
ALERTS_KEPT = 1000


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
    """Decided people per voted label summed over per-minute count rows, of one zone or of all."""
    counts = dict.fromkeys(CLASSES, 0)
    for row in rows:
        if zone is None or row["zone"] == zone:
            for label in CLASSES:
                counts[label] += row[label]
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
                "%g-%g %%), over the last %d minutes, under %g %%; counted: %d of %d people with a mask (%g %%)%s "
                "(said here only: no alerts.webhooks, alerts.notify or mqtt to send it to)", where,
                alert["compliance"], alert["compliance_low"], alert["compliance_high"], alert["minutes"],
                alert["below"], alert["with_mask"], alert["people"], alert["observed"], infrared_said(alert))


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
        # Every alert sent, oldest first, and since when: the dashboard lists the day's (they went to
        # webhooks, notify, MQTT or the log only, and a viewer without those never saw one).
        self.sent: deque[dict] = deque(maxlen=ALERTS_KEPT)
        self.since = time.time()  # the wall clock's, not `clock`'s: a failing clock is a check's problem
        # The newest alert's time that `sent` let go of: the list holds every alert after it only (a
        # rule with no cooldown fires each 30 s, 1000 in 8 hours, and the page counted the kept as the day's).
        self.dropped_at = float("-inf")
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
                         "with_mask": counts[COMPLIANT], "minutes": rule.minutes, "at": now,
                         "infrared": infrared, "seen": seen}
                self.send(alert)
                if len(self.sent) == self.sent.maxlen:
                    self.dropped_at = max(self.dropped_at, self.sent[0]["at"])
                self.sent.append(alert)
                fired.append(alert)
        self.stats.fired += len(fired)
        self.stats.last = fired
        return fired

    def window(self, rule: ComplianceRule, camera: str, now: float):
        """The people decided on `camera` (in the rule's zone) over the rule's window up to `now`:
        how many, per label, their estimate (None where no one was), and (those seen on grey
        frames, all seen, decided or not)."""
        # The whole minutes inside the window and this one so far: its first minute's row held
        # up to 59 s from before the window (16 minutes' people for a 15-minute rule).
        since = math.ceil((now - rule.minutes * 60) / 60) * 60
        rows = [r for r in self.store.counts(camera=camera, since=since) if r["minute"] <= now]
        counts = window_counts(rows, rule.zone)
        return sum(counts.values()), counts, compliance_estimate(counts), window_infrared(rows, rule.zone)

    def standing(self, alert: dict, now: float) -> dict:
        """How an alert's camera and zone stand at `now` over its rule's window: `state` "under" (the
        whole 95 % interval still under the rule's `below`), "recovered" (the whole of it at or over),
        "unclear" (it spans `below`) or "too_few" (fewer than min_people, no figures); the figures in
        percent, as the alert's. Whether compliance came back is what the person told of it asks next."""
        rule = self.rules[alert["rule"]]
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
        self.since = time.time()
        if self.rules:
            self._checks.start()
        return self

    def stop(self) -> None:
        self._checks.stop()

    def _failed(self, err: Exception) -> None:
        self.stats.last = [{"error": str(err)}]
