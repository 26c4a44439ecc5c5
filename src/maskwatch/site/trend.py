"""Compliance over time: the per-minute counts summed into hours, days or weeks for the chart.

Buckets start at the hour, at midnight, or at Monday midnight in the site's timezone (local
time when it names none), so a "day" is the shop's day, not UTC's. Only buckets with people in
them are returned; the chart leaves gaps for the others.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo

from maskwatch.site.hours import first_instant
from maskwatch.site.infrared import SUMMED_COLUMNS, infrared_share
from maskwatch.site.prevalence import compliance_fields

BUCKETS = {"hour": 3600, "day": 86400, "week": 7 * 86400}  # and the default look-back is 24 of each


EARLIEST, LATEST = -62135596800.0, 253402300799.0  # 0001-01-01 and 9999-12-31T23:59:59, UTC
BASIC_DATE = re.compile(r"\d{8}")  # ISO 8601's 20260922
# A date, a time and an offset whose + was decoded to a space, each as ISO 8601 writes it: a looser
# `\d\S*[Tt ]\S*\d` tried every split of a long value (100k characters: minutes of CPU per request).
DECODED_PLUS = re.compile(r"^(\d{4}-?(?:\d\d-?\d\d|[Ww]\d\d-?\d)[Tt ]\d\d(?::?\d\d(?::?\d\d(?:[.,]\d+)?)?)?) "
                          r"(\d\d(?::?\d\d)?)$")
# How the routes taking a time say what a time with no zone is (parse_since).
NO_ZONE = "a time with no zone: UTC; a date alone: midnight in the site's timezone"
# Unix seconds, an ISO 8601 time or a date alone: what parse_since reads, written so clients and
# fuzzers know (without the date, a client generated from the document, or one checking against
# it, could not send the `since=2026-09-22` the docs give for a day). Up to the end of 9999's last
# second, as parse_since takes it (a maximum of LATEST refused the 253402300799.00003 the code
# accepts, which a fuzzer counts as a schema broken).
SINCE_SCHEMA = {"anyOf": [{"type": "number", "minimum": EARLIEST, "exclusiveMaximum": LATEST + 1},
                          {"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}


def parse_since(value: str, name: str = "since", days: tzinfo | None = timezone.utc,
                times: tzinfo | None = timezone.utc) -> float:
    """Unix seconds, or an ISO 8601 time (in `times` when it names no zone: UTC in the API; `t` and
    `z` as RFC 3339 allows, a leap second as :59; a basic date 20260922 as that date, not second
    20,260,922 of 1970); ValueError says which forms work. A date alone is the midnight starting
    that day in `days` (a site's timezone, None: local time): since=2026-10-01&until=2026-11-01 is
    the site's October, as report.csv's from and to are its days (in UTC, Berlin's missed its first
    2 hours). `maskwatch events` gives `times` the site's timezone too: a person asking after
    "Tuesday at 14:10" means the clinic's clock, and UTC's 14:10 is another hour in Berlin."""
    if BASIC_DATE.fullmatch(value):
        try:
            value = datetime.strptime(value, "%Y%m%d").date().isoformat()
        except ValueError:
            if 1900 <= int(value[:4]) <= 2999:  # 20260230: a date mistyped, not a time in 1970
                raise ValueError(f"{name} {value!r} is no date (YYYYMMDD); give a date that exists, or Unix "
                                 "seconds with a decimal point") from None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not EARLIEST <= seconds < LATEST + 1:  # also NaN
            raise ValueError(f"{name} is out of range: Unix seconds from {EARLIEST:.0f} (year 1) to {LATEST:.0f} "
                             f"(year 9999); got {value!r}")
        return seconds
    # A `+02:00` typed into a URL unescaped arrives as ` 02:00` (a query string's `+` is a space):
    # the documented example, pasted into curl or a browser, was refused.
    value = DECODED_PLUS.sub(r"\1+\2", value)
    try:
        moment = datetime.fromisoformat(re.sub(r"(T\d\d:\d\d):60", r"\1:59", value.upper()))
    except ValueError:
        raise ValueError(f"{name} must be Unix seconds or an ISO 8601 time such as 2026-11-26T09:00:00Z; "
                         f"got {value!r}") from None
    try:
        if moment.tzinfo is None:  # on a clock: its first passing, or the jump where the clocks skip it
            clock = days if _date_alone(value.upper()) else times
            seconds = on_the_clock(moment, clock) if clock is not timezone.utc else moment.replace(tzinfo=clock).timestamp()
        else:
            seconds = moment.timestamp()
    except (OverflowError, ValueError, OSError):  # OSError: a platform's fromtimestamp out of its range
        seconds = float("nan")
    if seconds == seconds and _date_alone(value.upper()):  # a day: 0001-01-01 in Berlin starts in year 0 in UTC
        seconds = min(max(seconds, EARLIEST), LATEST)  # (the schema has dates, whose every day is taken)
    if not EARLIEST <= seconds < LATEST + 1:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise ValueError(f"{name} is out of range: from year 1 to 9999 in UTC; got {value!r}")
    return seconds


def on_the_clock(wall: datetime, tz: tzinfo | None) -> float:
    """Unix seconds of the naive `wall` on the clock of `tz` (None: local time): its first passing
    where the clocks go back over it, the jump where they skip it (02:30 on the night they go forward
    is 03:00), as opening hours and the reports' times read a wall time (hours.first_instant). Read
    with the offset from before the jump, a skipped 02:30 was 03:30: `maskwatch events list --since
    '2026-03-29 02:30' --until '2026-03-29 03:15'` in Berlin was refused as a range ending before it
    began, and one until 04:00 left out the people of 03:00-03:30."""
    seconds = wall.replace(tzinfo=tz, fold=0).timestamp()  # a naive one, with None: local time
    try:
        read_back = datetime.fromtimestamp(seconds, tz).replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):  # 0001-01-01 in Berlin is in year 0 in UTC: the caller bounds it
        return seconds
    if abs((read_back - wall.replace(fold=0)).total_seconds()) < 1:  # a time the clock shows
        return seconds
    return first_instant(wall.date(), wall.time().replace(second=0, microsecond=0), tz)


def zone_named(value: str, name: str, days: tzinfo | None) -> float:
    """parse_since for a deletion, which must not guess whose clock a time is on: one with no zone
    refused (ValueError). DELETE /v1/events read 07:55 as UTC's, as GET /v1/events does, where
    `maskwatch events` reads the site's: 09:55 in Berlin, another hour's people erased and the
    asker's kept, answered 200. Unix seconds, an offset or Z, or a date alone (the site's midnight) go."""
    seconds = parse_since(value, name, days)
    if seconds != parse_since(value, name, days, times=timezone(timedelta(hours=1))):  # read as given: no zone
        local = parse_since(value, name, days, times=days)
        on_site = (datetime.fromtimestamp(local, days) if days else datetime.fromtimestamp(local).astimezone())
        raise ValueError(f"{name} {value!r} names no timezone, and a deletion does not guess the clock (UTC's, as "
                         f"GET /v1/events reads it, or the site's, as maskwatch events does): add its offset "
                         f"({on_site.isoformat()} on the site's clock) or Z, or give Unix seconds or a date alone")
    return seconds


def _date_alone(value: str) -> bool:
    """Whether an ISO 8601 text is a date with no time, in any form fromisoformat reads: 2026-10-01,
    and the week dates 2026-W40-4 and 2026-W40 too (a pattern of YYYY-MM-DD alone read them as UTC's)."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def bucket_start(unix_seconds: float, bucket: str, tz: tzinfo | None) -> datetime:
    """The start of the hour, day or (Monday-started) week holding `unix_seconds`, in `tz`."""
    moment = datetime.fromtimestamp(unix_seconds, tz) if tz else datetime.fromtimestamp(unix_seconds).astimezone()
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}")
    # fold=0: the first midnight, where the clocks go back over it (Havana, the Azores); a moment in
    # the repeated 00:00-01:00 kept its fold 1 and started a second day at the second midnight.
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None, fold=0)
    if bucket == "week":
        day -= timedelta(days=day.weekday())
    # Re-attach the zone to the wall-clock midnight: its offset may differ from `moment`'s (DST).
    return day.replace(tzinfo=tz).astimezone(tz) if tz else day.astimezone()


def buckets_back(unix_seconds: float, bucket: str, tz: tzinfo | None, count: int) -> datetime:
    """The start of the bucket `count` buckets before the one holding `unix_seconds`: days and
    weeks by the calendar (23 x 86400 s back from the day after a clock change gave 25 days)."""
    start = bucket_start(unix_seconds, bucket, tz)
    if bucket == "hour":
        return bucket_start(start.timestamp() - count * 3600, bucket, tz)
    earlier = start.replace(tzinfo=None) - timedelta(days=count * (7 if bucket == "week" else 1))
    return earlier.replace(tzinfo=tz).astimezone(tz) if tz else earlier.astimezone()


def compliance_series(rows: list[dict], bucket: str, tz: tzinfo | None, zone: str | None = None,
                      max_buckets: int | None = None) -> list[dict]:
    """Per bucket, oldest first: its start (ISO 8601 with offset), people per voted label, the
    compliant share corrected for the classifier's confusions with its 95 % interval, and the
    plain with_mask / people (prevalence.compliance_fields); `infrared`, its people seen on grey
    frames, and their share of everyone seen (infrared.infrared_share). ValueError past `max_buckets`
    buckets with people, before their intervals are computed."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}; got {bucket!r}")
    # Keyed by the bucket's instant, not its wall-clock time: the hour that happens twice when the
    # clocks go back is two buckets (datetimes of one zone compare and hash ignoring `fold`).
    sums: dict[float, tuple[datetime, dict]] = {}
    for row in rows:
        if zone is not None and row["zone"] != zone:
            continue
        start = bucket_start(row["minute"], bucket, tz)
        _, total = sums.setdefault(start.timestamp(), (start, dict.fromkeys(SUMMED_COLUMNS, 0)))
        for name in SUMMED_COLUMNS:
            total[name] += row.get(name, 0)  # rows from before the unassessable count have none
    if max_buckets is not None and len(sums) > max_buckets:
        raise ValueError(f"{len(sums)} {bucket}s hold people since then, more than {max_buckets} at once; "
                         "ask a larger bucket or a later since")
    return [{"start": start.isoformat(), **total, **compliance_fields(total), "infrared_share": infrared_share(total)}
            for _, (start, total) in sorted(sums.items())]
