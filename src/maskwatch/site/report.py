"""The daily compliance report: per day (the site's, as the chart's), camera and zone, people per
voted label, as CSV.

`people` are the decided people, each with a class; `unassessable` are those seen too briefly or
too small to decide, counted apart and in no share. `compliance` is the share corrected for the
classifier's confusions, between `compliance_low` and `compliance_high` (its 95 % interval);
`observed_share` is the plain with_mask / people. `infrared`: of the people and the unassessable,
those seen on grey (infrared) frames, judged by the night model: read their share with care (site/infrared.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from maskwatch.faces import CLASSES, UNASSESSABLE
from maskwatch.site.infrared import INFRARED, SUMMED_COLUMNS
from maskwatch.site.prevalence import FIELDS, compliance_fields

# day_hours (last, added: a spreadsheet reads the columns before by name or place): the day's length
# on the site's clock, 25 the night the clocks go back, 23 the night they go forward (24.5 and 23.5 on
# Lord Howe Island): that day's people were counted over that many hours, not 24.
REPORT_COLUMNS = ("date", "camera", "zone", "people", *CLASSES, UNASSESSABLE, *FIELDS, INFRARED, "day_hours")


def parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date written YYYY-MM-DD; got {value!r}") from None


def report_range(start: str | None, end: str | None, tz: tzinfo | None, today: date | None = None,
                 names: tuple[str, str] = ("from", "to")) -> tuple[date, date]:
    """The days asked for (both included): by default the last 7 days up to today in `tz` (None:
    local time); a bad one is a ValueError naming it as `names` (the API's, or the command's options).

    Any span is allowed: a report has rows only for days with counts, and counts older than
    the site's retention are gone, so a long span costs no more than the data kept."""
    today = today or datetime.now(tz).date()
    last = parse_day(end, names[1]) if end is not None else today
    if start is not None:
        first = parse_day(start, names[0])
    else:  # the 7 days up to `to`, or as many as the calendar has before it
        first = last - timedelta(days=min(6, (last - date.min).days))
    if first > last:
        raise ValueError(f"{names[0]} ({first}) is after {names[1]} ({last})")
    return first, last


def day_start(day: date, tz: tzinfo | None) -> float:
    """Unix seconds at the midnight that starts `day` in `tz` (None: local time)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return (midnight if tz else midnight.astimezone()).timestamp()


def day_hours(day: date, tz: tzinfo | None) -> float:
    """The hours from `day`'s midnight to the next in `tz` (None: local time): 24, or 23 or 25 where
    the clocks change that day."""
    if day == date.max:
        return 24.0
    return (day_start(day + timedelta(days=1), tz) - day_start(day, tz)) / 3600


@dataclass(frozen=True)
class ReportPeriod:
    """report.csv's days (both included) and the Unix seconds they span in the site's timezone."""

    first: date
    last: date
    since: float
    until: float | None  # None: the last day is the calendar's last


def report_period(start: str | None, end: str | None, tz: tzinfo | None, today: date | None = None,
                  names: tuple[str, str] = ("from", "to")) -> ReportPeriod:
    """report_range's days with their span; ValueError (or OverflowError) naming a bad one."""
    first, last = report_range(start, end, tz, today, names)
    since = day_start(max(first, date(1970, 1, 1)), tz)  # no count is older
    until = day_start(last + timedelta(days=1), tz) if last < date.max else None
    return ReportPeriod(first, last, since, until)


def report_csv(store, period: ReportPeriod, tz: tzinfo | None, cameras: list[str] | None = None) -> str:
    """report.csv's text for `period`, of `cameras` (None: all, running or not): GET /v1/report.csv
    and `maskwatch report --csv` alike."""
    rows = [row for row in store.counts(since=period.since, until=period.until, every=900)  # quarters: any timezone's days
            if cameras is None or row["camera"] in cameras]
    return to_csv(daily_rows(rows, period.first, period.last, tz))


def daily_rows(counts: list[dict], first: date, last: date, tz: tzinfo | None) -> list[dict]:
    """Count rows (EventStore.counts: minutes, or spans that never straddle a day) summed per day
    in `tz` (None: local time), camera and zone, in that order; the interval rounded outwards."""
    days: dict[tuple, dict] = {}
    for row in counts:
        day = datetime.fromtimestamp(row["minute"], tz).date()
        if not first <= day <= last:
            continue
        key = (day.isoformat(), row["camera"], row["zone"] or "")
        total = days.setdefault(key, dict.fromkeys(SUMMED_COLUMNS, 0))
        for field in total:
            total[field] += row.get(field, 0)  # rows from before the unassessable count have none
    rows = []
    for (day, camera, zone), total in sorted(days.items()):
        # The API's digits: at 3 a day the chart showed red (top end 0.7997, under 80 %) read 0.800 here.
        figures = {name: "" if value is None else f"{value:.4f}" for name, value in compliance_fields(total).items()}
        hours = day_hours(date.fromisoformat(day), tz)
        rows.append({"date": day, "camera": camera, "zone": zone, **total, **figures, "day_hours": f"{hours:g}"})
    return rows


def period_totals(rows: list[dict], by_zone: bool) -> dict[tuple[str, str | None], dict]:
    """daily_rows' rows summed over their days per camera (and zone, with `by_zone`; else None),
    with the compliance FIELDS of each sum as numbers (None where no one was decided): a
    scheduled report's lines (reports.py), the same people and figures as its CSV's rows."""
    sums: dict[tuple[str, str | None], dict] = {}
    for row in rows:
        key = (row["camera"], row["zone"] if by_zone else None)
        total = sums.setdefault(key, dict.fromkeys(SUMMED_COLUMNS, 0))
        for field in total:
            total[field] += row[field]
    return {key: {**total, **compliance_fields(total)} for key, total in sorted(sums.items())}


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
