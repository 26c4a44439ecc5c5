"""Scheduled compliance reports: "every evening, today's compliance per camera", "every Monday,
last week's", by e-mail, Slack, Teams... (apprise, as notify.py), without opening the dashboard.

A report is report.csv's rows (report.py) for its period, cameras and zones: its message gives,
per camera (or per camera and zone, where it names zones), those rows summed (the decided people
per label, the unassessable apart, the corrected share with its 95 % interval), and the rows go
along as a CSV attachment to services that take one.

When: `at` on the wall clock of the site's timezone, every day or on one `day` of the week. A
time the clocks skip (02:30 on the night they go forward) sends at the jump (03:00), a time they
go back over (02:30 on the night they go back) once, at its first passing (hours.first_instant).

Periods: `every: day` is the site's day it is sent on, from its midnight up to `at` (with `covers:
previous`, the whole day before it: sent in the morning); `every: week` the 7 whole days before
the day it is sent (sent on Monday: Monday to Sunday of last week).

Missed reports: the last time each report was due and handed to its services is kept in the
site's database (table reports_sent). A site that was down at that time sends, when it starts
again, the last report it missed, once, saying it is late; earlier ones missed too are counted
in that message and the log, not sent (a week down sends one daily report, not seven). A report
that was never sent before (new in the file, or its schedule, the site's timezone or its filters
changed) owes nothing from before the site's start. The record is written before the report is
queued: a database that cannot be written sends nothing until it can (never the same report
twice, nor by two processes on one database: the database decides which marks it), and a report
queued when the site is stopped goes within the stop's 10 s or is counted as not delivered in the log.

Everything runs on the scheduler's thread and each URL's queue (alerts.AlertQueues): no camera
waits for a report.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta, tzinfo
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from apprise.common import OverflowMode
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from maskwatch.faces import COMPLIANT, UNASSESSABLE
from maskwatch.runtime import Periodic, ProblemLog, boot_clock
from maskwatch.site.database import REPORTS_MIGRATION_LOCK, migrate_schema, open_database, stored_number
from maskwatch.site.event_views import local_offset
from maskwatch.site.hours import DAYS, first_instant
from maskwatch.site.notify import Message, Notifier, NotifyRule, when
from maskwatch.site.infrared import INFRARED, infrared_words
from maskwatch.site.prevalence import in_percent
from maskwatch.site.report import daily_rows, day_hours, day_start, period_totals, to_csv

log = logging.getLogger(__name__)

CHECK_EVERY = 30.0  # seconds between looks at the clock: a report goes within this of its time
CLOCK_SET_AFTER = 60.0  # seconds the clock moved apart from boot_clock() between two checks: it was set
EARLY_KEPT = 3600.0  # a report sent at most this long before its time (a clock ahead, set back since) stays sent
LATE_AFTER = 120.0  # seconds after its time from which a report says it is late
MISSED_LOOKBACK_DAYS = 400  # missed reports are counted this far back (a site off for longer: "over ...")

metadata = MetaData()
reports_schema_version = Table("reports_schema_version", metadata, Column("version", Integer, nullable=False))
reports_sent = Table(
    "reports_sent", metadata,
    Column("report", String(64), primary_key=True),  # Report.key: its schedule and filters, no URL (secrets)
    Column("due", Float, nullable=False),  # Unix seconds: the time it was last due and was queued
)


def _create_v1(connection) -> None:
    metadata.create_all(connection, tables=[reports_sent])


MIGRATIONS = [_create_v1]


class SentReports:
    """When each report was last due and queued, in the site's database (so that a restart neither
    sends it again nor forgets one it missed). Versioned on its own, as the users' schema: the
    events' schema, and older maskwatch opening it, are left as they are."""

    def __init__(self, engine, url: str) -> None:
        self.engine, self.url = engine, url
        open_database(url, self.migrate)

    def migrate(self) -> int:
        return migrate_schema(self.engine, self.url, "reports schema", REPORTS_MIGRATION_LOCK, reports_schema_version,
                              MIGRATIONS)

    def read(self, names: dict[str, str] | None = None) -> dict[str, float]:
        """Each report's last due time. A row whose time is no number (written by hand or a tool:
        SQLite keeps a text there) stopped every report's check, and no report was sent again; it
        is deleted, named in the log by `names` (key: how the log names its report; the key is a
        hash the reader cannot match to the file), and its report counts as new (sent from its next time)."""
        with self.engine.connect() as connection:
            rows = {row.report: row.due for row in connection.execute(select(reports_sent))}
        damaged = {key: due for key, due in rows.items() if not stored_number(due)}
        if damaged:
            with self.engine.begin() as connection:
                connection.execute(delete(reports_sent).where(reports_sent.c.report.in_(sorted(damaged))))
            for key, due in damaged.items():
                report = (names or {}).get(key, f"the report keyed {key} (no longer in the site file)")
                log.warning("reports_sent: the last due time of %s was %r, no time (changed outside maskwatch); "
                            "row deleted: the report is sent from its next time on", report, due)
        return {key: due for key, due in rows.items() if key not in damaged}

    def mark(self, key: str, due: float) -> bool:
        """Record that `key` was due at `due` and is being sent, unless that or a later time is
        recorded already (by another process on this database: a rolling restart, a second `run`);
        True where this call recorded it, and so sends it. The database decides: an update only of an
        earlier time (PostgreSQL re-reads a row another process changed meanwhile), or an insert
        that only one process can make."""
        try:
            with self.engine.begin() as connection:
                if connection.execute(update(reports_sent).where(reports_sent.c.report == key, reports_sent.c.due < due)
                                      .values(due=due)).rowcount:
                    return True
                if connection.execute(select(reports_sent.c.due).where(reports_sent.c.report == key)).first():
                    return False
                connection.execute(insert(reports_sent).values(report=key, due=due))
                return True
        except IntegrityError:  # another process inserted it between the two
            return False

    def replace(self, key: str, marked: float, due: float) -> None:
        """`key`'s record `marked` (made on a clock since set) replaced by `due`, earlier or later;
        left as it is where another process recorded another time since."""
        with self.engine.begin() as connection:
            connection.execute(update(reports_sent).where(reports_sent.c.report == key, reports_sent.c.due == marked)
                               .values(due=due))


@dataclass(frozen=True)
class Due:
    """One time a report is due: the site's day it is sent on, and the instant."""

    day: date
    at: float  # Unix seconds


@dataclass(frozen=True)
class Schedule:
    """`at` on the wall clock of `tz` (None: local time), every day or on `weekday` (0 = Monday)."""

    at: clock_time
    weekday: int | None = None  # None: every day
    tz: tzinfo | None = None

    def runs_on(self, day: date) -> bool:
        return self.weekday is None or day.weekday() == self.weekday

    def due_on(self, day: date) -> Due:
        """The instant of `day`'s report: a skipped wall time at the jump, a repeated one the first time."""
        return Due(day, first_instant(day, self.at, self.tz))

    def last_due(self, now: float) -> Due | None:
        """The latest time due at or before `now`."""
        today = datetime.fromtimestamp(now, self.tz).date()
        for back in range(8):
            day = today - timedelta(days=back)
            if self.runs_on(day) and (due := self.due_on(day)).at <= now:
                return due
        return None

    def dues_between(self, after: float, before: float) -> list[Due]:
        """The times due strictly between `after` and `before` (at most MISSED_LOOKBACK_DAYS' worth)."""
        start = max(datetime.fromtimestamp(after, self.tz).date(),
                    datetime.fromtimestamp(before, self.tz).date() - timedelta(days=MISSED_LOOKBACK_DAYS))
        days = (start + timedelta(days=n) for n in range((datetime.fromtimestamp(before, self.tz).date() - start).days + 1))
        return [due for day in days if self.runs_on(day) and after < (due := self.due_on(day)).at < before]


@dataclass(frozen=True)
class Report:
    """One entry of the file's `reports:`, ready to run."""

    index: int
    every: str  # day | week
    schedule: Schedule
    urls: tuple[str, ...]
    cameras: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    retries: int = 5
    timeout: float = 30.0
    key: str = ""  # its row in reports_sent
    previous_day: bool = False  # every: day, covers: previous: the whole day before the day it is sent

    @property
    def name(self) -> str:
        """How the log names it: `report 0 (every day at 18:00)`."""
        days = DAYS[self.schedule.weekday] if self.every == "week" else "day"
        covers = ", the previous day" if self.previous_day else ""
        return f"report {self.index} (every {days} at {self.schedule.at:%H:%M}{covers})"

    def admits(self, row: dict) -> bool:
        return (not self.cameras or row["camera"] in self.cameras) and (not self.zones or row["zone"] in self.zones)

    def period(self, due: Due, until: float) -> tuple[date, date, float]:
        """Its first and last day for a report sent on `due.day` at `until`, and the instant its counts end."""
        if self.every == "day" and not self.previous_day:
            return due.day, due.day, until
        days = 7 if self.every == "week" else 1
        return due.day - timedelta(days=days), due.day - timedelta(days=1), day_start(due.day, self.schedule.tz)


def reports_of(config) -> list[Report]:
    """The site config's `reports:` as Reports, each keyed by its schedule (the site's timezone too)
    and filters (not its URLs, which hold secrets: the key is stored), two alike told apart by their
    order."""
    reports, seen = [], {}
    for index, entry in enumerate(config.reports):
        weekday = DAYS.index(entry.day or "mon") if entry.every == "week" else None
        hour, minute = map(int, entry.at.split(":"))
        described = "|".join((entry.every, entry.at, str(weekday), ",".join(sorted(entry.cameras)),
                              ",".join(sorted(entry.zones)), *(["previous"] if entry.previous_day else []),
                              config.timezone or "local"))  # another timezone: another instant, another report
        seen[described] = seen.get(described, -1) + 1
        key = f"{hashlib.sha256(described.encode()).hexdigest()[:16]}-{seen[described]}"
        reports.append(Report(index, entry.every, Schedule(clock_time(hour, minute), weekday, config.tz()),
                              tuple(entry.urls), tuple(entry.cameras), tuple(entry.zones), entry.retries,
                              entry.timeout, key, entry.previous_day))
    return reports


def share(value: float) -> str:
    """A share of 0-1 in percent as the compliance alerts write it (0.8123: 81.23)."""
    return f"{in_percent(value):g}"


def figures_line(where: str, total: dict | None) -> str:
    """One camera's (or zone's) line: its people per label and the corrected share with its interval,
    and how many were seen on grey (infrared) frames where any were."""
    if total is None or not total["people"]:  # "no one decided" read as if someone had to decide
        unjudged = total[UNASSESSABLE] if total else 0
        return (f"{where}: no one judged; {unjudged} seen too briefly or too small in view to judge" if unjudged
                else f"{where}: no one seen")
    infrared = (f"; {infrared_words(total[INFRARED], total['people'] + total[UNASSESSABLE])}"
                if total.get(INFRARED) else "")
    return (f"{where}: {total['people']} {'person' if total['people'] == 1 else 'people'}: {total[COMPLIANT]} with a mask, {total['without_mask']} without, "
            f"{total['mask_weared_incorrect']} wearing it wrongly ({total[UNASSESSABLE]} more not judged); "
            f"masked {share(total['compliance'])} % (95 % interval {share(total['compliance_low'])}-"
            f"{share(total['compliance_high'])} %){infrared}")


def clock_minute(seconds: float, tz: tzinfo | None) -> str:
    """HH:MM on the site's clock (`tz`, None: the machine's), with its UTC offset where the clocks
    go back over it, as the dashboard says it: "until 02:30" on that night named either passing."""
    def wall(at: float) -> str:
        return f"{datetime.fromtimestamp(at, tz):%Y-%m-%d %H:%M}"

    text = wall(seconds)
    if not any(wall(seconds + shift) == text for shift in (-3600, -1800, 1800, 3600)):
        return text[11:]
    return f"{text[11:]} ({local_offset(seconds, tz)})"


def odd_day_line(day: date, tz: tzinfo | None) -> str | None:
    """A line for a day of the report not 24 hours long on the site's clock (None for one that is):
    its people are counted over an hour more, or less, than another day's."""
    hours = day_hours(day, tz)
    if hours == 24:
        return None
    more = abs(hours - 24)
    return (f"{day:%a %Y-%m-%d} has {hours:g} hours on the site's clock, not 24 (the clocks went "
            f"{'back' if hours > 24 else 'forward'}): {more:g} hour{'s' * (more != 1)} "
            f"{'more' if hours > 24 else 'less'} to count people in than another day.")


def compose(report: Report, due: Due, until: float, store, names: dict[str, str], zones_of: dict[str, list[str]],
            tz: tzinfo | None, now: float, missed: int = 0) -> Message:
    """The report sent on `due.day`, its counts up to `until`: report.csv's rows for its period,
    cameras and zones (attached), summed per camera (and zone) in the text."""
    first, last, end = report.period(due, until)
    counts = store.counts(since=day_start(first, tz), until=end, every=900)  # quarters: days in any timezone
    rows = [row for row in daily_rows(counts, first, last, tz) if report.admits(row)]
    by_zone = bool(report.zones)
    totals = period_totals(rows, by_zone)
    cameras = [camera for camera in names if not report.cameras or camera in report.cameras]
    expected = [(camera, zone) for camera in cameras for zone in zones_of.get(camera, []) if zone in report.zones] \
        if by_zone else [(camera, None) for camera in cameras]
    keys = expected + [key for key in totals if key not in expected]  # a camera retired but counted, or a zone

    def where(camera: str, zone: str | None) -> str:
        return names.get(camera, camera) + (f", {zone}" if zone else ", outside the zones" if zone == "" else "")

    if report.previous_day:
        title = f"Mask compliance {first:%a %Y-%m-%d}"
    elif report.every == "day":
        title = f"Mask compliance {first:%a %Y-%m-%d}, until {clock_minute(until, tz)}"
    else:
        title = f"Mask compliance {first:%a %Y-%m-%d} to {last:%a %Y-%m-%d}"
    lines = [figures_line(where(*key), totals.get(key)) for key in keys]
    lines += [line for day in (first + timedelta(days=n) for n in range((last - first).days + 1))
              if (line := odd_day_line(day, tz))]
    if now - due.at > LATE_AFTER:
        lines.append(f"Sent late: it was due {when(due.at, tz)}, when the site was not running or could not "
                     "read its database.")
    if missed:
        lines.append(f"{missed} earlier {'daily' if report.every == 'day' else 'weekly'} report{'s' * (missed > 1)} "
                     f"{'were' if missed > 1 else 'was'} not sent: the site was not running at {'their' if missed > 1 else 'its'} time.")
    name = f"maskwatch-{first}-{last}.csv"
    lines.append(f"Per day, camera and zone: {name}" if rows else "No counts in this period.")
    return Message(title, "\n".join(lines), warning=False, document=(name, to_csv(rows)) if rows else None)


class ReportSender(Notifier):
    """The reports' messages, a queue and thread per URL (a mail server's outage delays no other).

    A report has a line per camera (and zone): 27 of them passed Telegram's 4,096 characters, and
    apprise hands a service the whole text by default (its "upstream" overflow), which the service
    refuses. Each URL is sent with apprise's `overflow=split` unless it names its own: pieces
    within the service's limit as apprise knows it, in order, the CSV attached once."""

    kind = "report"
    sends = "report"  # "report …: alert not delivered; each alert gets one try" said of a report

    def __init__(self, reports: list[Report], **notifier) -> None:
        rules = [NotifyRule(url, retries=report.retries, timeout=report.timeout)
                 for report in reports for url in report.urls]
        super().__init__(rules, **notifier)
        for rule, sender in zip(self.rules, self._senders):
            if "overflow" not in parse_qs(urlsplit(rule.url).query):  # a choice in the URL stands
                for service in sender:  # a site's report past a service's limit is cut in pieces it takes
                    service.overflow_mode = OverflowMode.SPLIT
        self._rules_of, start = {}, 0
        for report in reports:
            self._rules_of[report.index] = range(start, start + len(report.urls))
            start += len(report.urls)

    def send(self, report: Report, message: Message) -> None:
        """Queue `message` for each of the report's URLs; never blocks."""
        for index in self._rules_of[report.index]:
            self._enqueue(index, {"type": "report", "message": message})


class ReportScheduler:
    """Sends each report when it is due (checked every CHECK_EVERY seconds on its own thread), and
    at the start the last one missed while the site was down."""

    def __init__(self, reports: list[Report], store, sender: ReportSender, names: dict[str, str],
                 zones_of: dict[str, list[str]], tz: tzinfo | None, clock: Callable[[], float] = time.time,
                 every: float = CHECK_EVERY) -> None:
        self.reports, self.store, self.sender = reports, store, sender
        self.names, self.zones_of, self.tz, self.clock, self.every = names, zones_of, tz, clock, every
        self.sent = SentReports(store.engine, store.url)
        self._sent: dict[str, float] | None = None  # read at the first check
        self._first_check = self._first_steady = 0.0  # its time on the clock, and on boot_clock()
        self._offset = 0.0  # the clock less boot_clock() at the last check
        # What this process recorded, or found another had, since the clock was last set: the record
        # before the first, the last, and boot_clock() then (when it went, on the clock as set since)
        self._marked: dict[str, tuple[float, float, float]] = {}
        self._checks = Periodic(self.check, every, "maskwatch-reports",
                                ProblemLog(log, "scheduled reports cannot be made", "scheduled reports are made again"),
                                at_start=True)

    def check(self, now: float | None = None) -> list[Message]:
        """Send each report due by `now` (default: the clock) and not sent yet; the messages sent."""
        on_the_clock, steady = now is None, boot_clock()
        now = self.clock() if now is None else now
        if self._sent is None:
            self._sent = self.sent.read({report.key: report.name for report in self.reports})
            self._first_check, self._first_steady = now, steady
        elif on_the_clock and abs(now - steady - self._offset) > CLOCK_SET_AFTER:
            self._clock_set(now, steady)
            self._put_back_ahead(now)
        self._offset = now - steady
        made = []
        for report in self.reports:
            due = report.schedule.last_due(now)
            if due is None:
                continue
            sent = self._sent.get(report.key)
            if sent is None:  # new: nothing owed from before the first check (a time just passed is sent)
                before = report.schedule.last_due(self._first_check - 2 * self.every)
                sent = before.at if before is not None else float("-inf")
            if sent >= due.at:
                continue
            missed = len(report.schedule.dues_between(sent, due.at)) if sent > float("-inf") else 0
            message = compose(report, due, due.at, self.store, self.names, self.zones_of, self.tz, now, missed)
            marked = self.sent.mark(report.key, due.at)  # before it is queued: never twice, by any process
            self._sent[report.key] = due.at  # marked here or by another process: sent either way
            self._marked[report.key] = (self._marked.get(report.key, (sent,))[0], due.at, steady)
            if not marked:
                continue
            if missed:
                log.warning("%s: %d earlier %s missed while the site was not running; the last, due %s, "
                            "is sent now", report.name, missed, "report" if missed == 1 else "reports",
                            when(due.at, self.tz))
            self.sender.send(report, message)
            made.append(message)
        return made

    def _clock_set(self, now: float, steady: float) -> None:
        """The clock was set (NTP on a box with no real-time clock, which started at 1970, the last
        shutdown, or an RTC's garbage ahead), or the machine slept: the start, and what this process
        recorded (or found another had) on the old clock, are put on the clock as it reads now. A
        report recorded on a clock set ahead was not sent again until that date (in the database
        too: across restarts); one a clock at 1970 recorded, or a new one, owed every day since 1970
        ("399 earlier reports were not sent"), yesterday's as late. A record made before a sleep
        stays: it was on time; so does one sent up to EARLY_KEPT before its time (a clock minutes
        ahead, set back by NTP: it went a second time at its time). One made further ahead goes back
        to the record before the first since the last step, never earlier than the start: a site
        sent the day before's again, late, once a clock set a week ahead by mistake was set right."""
        self._first_check = now - (steady - self._first_steady)
        log.warning("scheduled reports: the clock was set %+.0f s (or the machine slept); they owe nothing from "
                    "before the site's start, %s on this clock", now - steady - self._offset,
                    when(self._first_check, self.tz))
        for report in self.reports:
            if (record := self._marked.get(report.key)) is None:
                continue
            earlier, marked, made = record
            before = report.schedule.last_due(self._first_check - 2 * self.every)
            started = before.at if before is not None else float("-inf")
            if marked <= now:  # made before a sleep or a step forward: only raised to the start
                since = max(marked, started)
            elif marked - (now - steady + made) <= EARLY_KEPT:  # went minutes early: not again at its time
                since = marked
            else:  # made on a clock set ahead: back to what the site had sent before (on this clock)
                since = max(started, earlier if earlier <= now else float("-inf"))
            if since != marked and since > float("-inf"):
                self.sent.replace(report.key, marked, since)
            self._sent[report.key] = since
            del self._marked[report.key]  # once replaced: a database that failed, the next check does it

    def _put_back_ahead(self, now: float) -> None:
        """After a step, records still over EARLY_KEPT ahead of the clock, which this process has
        not made or met since (a process before a restart, on a clock set ahead), are put back as a
        new report's: only the process that made one put it back, so a
        site restarted before NTP set back a clock a week ahead sent nothing until that date. Not
        at the start: records ahead of a clock at 1970 (before NTP) are right, and the clock is not."""
        for report in self.reports:
            record = self._sent.get(report.key)
            if record is None or record - now <= EARLY_KEPT:  # (_clock_set has put back this process's)
                continue
            before = report.schedule.last_due(self._first_check - 2 * self.every)
            if before is not None:
                self.sent.replace(report.key, record, before.at)
            del self._sent[report.key]  # owes nothing from before the start, as a new one

    def start(self) -> ReportScheduler:
        self.sender.start()
        self._checks.start()
        return self

    def stop(self) -> None:
        """Ends the checks; the sender is stopped with the site's other senders (alerts.stop_together)."""
        self._checks.stop()
