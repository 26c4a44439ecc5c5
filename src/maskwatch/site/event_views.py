"""Stored events as the API, MQTT, webhooks and events.csv show them: ISO times, page cursors, safe CSV cells."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime, timezone, tzinfo
from typing import Iterator

import numpy as np


def iso_utc(seconds: float | None) -> str | None:
    """Unix seconds as the API and MQTT write a time: ISO 8601 in UTC, to the millisecond."""
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def minute_utc(seconds: float) -> str:
    """Unix seconds as a person reads them in a command's output or a log line: `2026-12-06 09:14 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def event_view(row: dict, root: str = "") -> dict:
    """A stored event as /v1/events, MQTT and webhooks give it: times in ISO 8601 UTC, the snapshot
    as its URL path under `root`, a proxy's path prefix (MQTT sent Unix seconds and the bare file
    name, a second shape of one event)."""
    return {**row, "first_seen": iso_utc(row["first_seen"]), "last_seen": iso_utc(row["last_seen"]),
            "snapshot": f"{root}/v1/snapshots/{row['snapshot']}" if row["snapshot"] else None}


# A page's cursor, the (last_seen, id) of its last event: "1764153600.25_1042". The time is
# written exactly (the shortest digits that read back as the same float), so that events tied on
# it are neither skipped nor repeated.
CURSOR = re.compile(r"^(-?[0-9]{1,20}(?:\.[0-9]{1,30})?)_([0-9]{1,19})$")
MAX_ID = 2**63 - 1  # the largest id a database's integer holds


def cursor_of(event: dict, time: str = "last_seen") -> str:
    """The cursor of a stored event (a row, or as event_view gives it with its id and Unix times),
    or of an access-log row (`time` "at")."""
    return f"{np.format_float_positional(event[time], trim='-')}_{event['id']}"


def parse_cursor(value: str, name: str = "before") -> tuple[float, int]:
    """(last_seen, id) of a cursor cursor_of wrote; ValueError naming the form for anything else."""
    found = CURSOR.fullmatch(value)
    if found is None:
        raise ValueError(f"{name} must be a cursor as a page's `next` gives it (such as 1764153600.25_1042); "
                         f"got {value!r}")
    # An id past the largest a database holds reads as that one: the same events follow either.
    return float(found[1]), min(int(found[2]), MAX_ID)


# What a spreadsheet runs as a formula when a cell starts with it (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
EVENT_COLUMNS = ("id", "camera", "zone", "track_id", "label", "probability", "first_seen", "last_seen", "frames",
                 "snapshot")
# events.csv's columns: those of /v1/events as they were (integrators read them by position too),
# then the times on the site's clock, which a spreadsheet reads as dates, then `infrared` (schema
# version 8: seen on grey frames, true or false, as /v1/events says it), then the local times'
# offsets: in the hour the clocks go back, 02:30:00 is read twice, UTC+02:00 then UTC+01:00.
CSV_COLUMNS = (*EVENT_COLUMNS, "first_seen_local", "last_seen_local", "infrared",
               "first_seen_local_offset", "last_seen_local_offset")


def csv_cell(value):
    """A value as a CSV cell a spreadsheet shows, never runs: text starting like a formula gets a
    leading ' (numbers are written as numbers)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def local_time(seconds: float | None, tz: tzinfo | None) -> str | None:
    """Unix seconds as the site's wall clock shows them (`tz`, None: the machine's), YYYY-MM-DD
    HH:MM:SS: what Excel and LibreOffice read as a date and time (the ISO offset and milliseconds
    they take for text). Cut to the second, not rounded: 23:59:59.7 stays on its day, as the
    chart's and report.csv's days count it."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz).replace(tzinfo=None).isoformat(" ", "seconds")


def local_offset(seconds: float | None, tz: tzinfo | None) -> str | None:
    """The UTC offset of the site's clock (`tz`, None: the machine's) at Unix seconds, as the
    page says it, "UTC+02:00": which of the two readings of local_time's text in the hour the
    clocks go back it is. Not a bare "+02:00", which Excel reads as a formula (2 a.m., and
    "-05:00" a negative time)."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz) if tz else datetime.fromtimestamp(seconds).astimezone()
    return "UTC" + moment.isoformat(timespec="seconds")[19:]  # after YYYY-MM-DDTHH:MM:SS


def wall_clock(seconds: float, tz: tzinfo | None) -> str:
    """Unix seconds as ISO 8601 on the site's clock with its offset (`tz`, None: the machine's):
    the range an erasure was asked for, as a person named it and as the access log keeps it."""
    moment = datetime.fromtimestamp(seconds, tz) if tz else datetime.fromtimestamp(seconds).astimezone()
    return moment.isoformat(timespec="seconds")


def iso_on_site(seconds: float | None, tz: tzinfo | None) -> str | None:
    """Unix seconds as ISO 8601 on the site's clock with its offset, to the millisecond (None:
    None): a camera's times in /v1/cameras, read as the page and a person read the site's clock."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz) if tz else datetime.fromtimestamp(seconds).astimezone()
    return moment.isoformat(timespec="milliseconds")


def asked_range(camera: str | None, since: float, until: float, tz: tzinfo | None) -> str:
    """The access log's target of a listing or an erasure of the people in view in a range
    (`maskwatch events`, DELETE /v1/events): what was asked, never what was found."""
    return (f"events?{'camera=' + camera + '&' if camera else ''}"
            f"since={wall_clock(since, tz)}&until={wall_clock(until, tz)}")


def events_csv(rows, tz: tzinfo | None, root: str = "") -> Iterator[str]:
    """Stored events (Unix seconds) as CSV text, a header line and then a line per event, as they
    come: an export is written while it is read. The columns of /v1/events (event_view's), then
    first and last seen on the clock of `tz` (the site's timezone), then whether they were seen on
    grey (infrared) frames, then the UTC offsets of the two local times; the snapshot's URL under
    `root`, a proxy's path prefix, as /v1/events gives it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        view = event_view(row, root)
        writer.writerow([*(csv_cell(view[column]) for column in EVENT_COLUMNS),
                         local_time(row["first_seen"], tz), local_time(row["last_seen"], tz),
                         "true" if row["infrared"] else "false",
                         local_offset(row["first_seen"], tz), local_offset(row["last_seen"], tz)])
        if buffer.tell() >= 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def alert_view(alert: dict) -> dict:
    """A compliance alert as the webhooks and MQTT send it: its `at` in ISO 8601 UTC, as every
    time of the events beside it (it went out in Unix seconds)."""
    return {**alert, "at": iso_utc(alert["at"])}
