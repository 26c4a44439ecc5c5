"""Which time zone names a site's clock can take: the C library's reading of TZ (which falls back
to UTC without a word), Python's, and a browser's, which the dashboard shows every time in."""

from __future__ import annotations

import os
import re
import zoneinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A POSIX TZ rule, which the C library reads with no zone file: a name of 3+ letters (or <+0530>)
# and an offset, then the summer time's name and rule, if any ("JST-9", "EST5EDT,M3.2.0,M11.1.0").
POSIX_RULE = re.compile(r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)[+-]?\d{1,2}(?::\d{2}){0,2}(?:[A-Za-z<].*)?")


# Names of UTC, which a machine with no zone file for them (a container without tzdata) reads as UTC
# all the same: TZ=Etc/UTC is what it says there. /etc/localtime missing is UTC too, as local_zone_name reads it.
# In any case (casefolded): TZ=utc has no zone file, and the C library reads it as the UTC it names.
UTC_NAMES = {*(area + name for area in ("", "etc/") for name in ("utc", "uct", "gmt", "gmt0", "gmt+0", "gmt-0",
                                                                  "universal", "zulu", "greenwich")), "/etc/localtime"}


def no_zone_data() -> str | None:
    """What to install where this machine has no time zone data at all (a slim container: no
    /usr/share/zoneinfo, no Python tzdata package), or None: every zone name was "unknown" there,
    "unknown timezone 'Europe/Berlin'; use an IANA name such as Europe/Berlin"."""
    if zoneinfo.available_timezones():
        return None
    where = ", ".join(zoneinfo.TZPATH) or "no zone folder"
    return (f"this machine has no time zone data (no zone files in {where}, no Python tzdata package): install "
            "it (apt-get install tzdata, or pip install tzdata into maskwatch's environment)")


# What the advice of unread_tz and empty_tz says to write, where there is a site file and where
# there is none (`serve --source`, a one-camera site of the command line's).
SITE_FILE, NO_SITE_FILE = "file", "serve --source"


def unread_tz(environ=os.environ, site: str = SITE_FILE) -> str | None:
    """Why the C library reads TZ as UTC, where it does: a zone name with no zone file on this
    machine (TZ=Mars/Olympus, or a zone newer than its tzdata). It says so nowhere: a site with no
    `timezone` ran its days, opening hours and reports on UTC, and `run --check` said "the local
    time, which has no IANA name". None where TZ is unset, UTC, a POSIX rule or a zone file.
    `site`: SITE_FILE, or NO_SITE_FILE, which has no `timezone` to write: TZ is its only clock."""
    value = environ.get("TZ")
    name = (value or "").removeprefix(":")
    if not name or name.casefold() in UTC_NAMES or POSIX_RULE.fullmatch(name):
        return None
    path = Path(name) if name.startswith("/") else Path(environ.get("TZDIR") or "/usr/share/zoneinfo") / name
    try:
        with path.open("rb") as file:
            if file.read(4) == b"TZif":
                return None
    except OSError:
        pass
    said = f"TZ={value!r} (the environment): no such time zone on this machine (no zone file {path}), so its local time is UTC"
    if site == NO_SITE_FILE:
        return (f"{said}, and the camera's days (the chart's, the events' local times) would be UTC's"
                f"{f'; {missing}' if (missing := no_zone_data()) else ''}; set TZ to a zone this machine has, or run "
                "the camera as a site whose file sets `timezone:` (maskwatch run)")
    try:
        ZoneInfo(name)  # Python's own copy of the zones (the tzdata package) may have it
        known = f"; Python knows it: write `timezone: {name}` in the site's file"
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = (f"; {missing}" if (missing := no_zone_data()) else
                 "; write `timezone:` in the site's file, an IANA name such as Europe/Berlin")
    return f"{said}, and the site's days, opening hours and reports would be UTC's{known}, or set TZ to a zone this machine has"


def empty_tz(environ=os.environ, site: str = SITE_FILE) -> str | None:
    """Why the local time is UTC where TZ is set but empty (TZ=, or TZ=: alone), or None. POSIX and
    the C library read it as UTC on purpose, so it is no error (unread_tz's refusal): it may be
    meant. But it is what a compose file's `TZ: ${TZ}` or a unit's `Environment=TZ=` leaves where
    the zone was to come from elsewhere, and a site with no `timezone` ran on UTC with nothing said."""
    value = environ.get("TZ")
    if value is None or value.removeprefix(":"):
        return None
    said = f"TZ={value!r} (the environment) is set but empty, which the C library reads as UTC"
    if site == NO_SITE_FILE:
        return (f"{said}: the camera's days (the chart's, the events' local times) are UTC's; if that is meant, "
                "set TZ=UTC, else TZ to the zone meant, or unset TZ")
    return (f"{said}: the site's days, opening hours and reports are UTC's; if that is meant, write `timezone: UTC` "
            "in the site's file, else `timezone:` an IANA name such as Europe/Berlin, or unset TZ")


def unnamed_zone(name: str) -> str | None:
    """Why a zone file Python reads is no IANA name the dashboard can show times in (a browser's
    Intl refuses it, and the page fell back to the browser's own clock beside a chart in the
    site's), or None: the system's copies under posix/ and right/ (right/'s count leap seconds,
    and Python's zoneinfo kept right/Europe/Berlin in summer time from 2026-10-25 on, its
    clocks never going back), and its links localtime and posixrules."""
    first, _, rest = name.partition("/")
    if first == "posix" and rest:
        return f"the system's copy of {rest} under posix/, which browsers do not know; write {rest}"
    if first == "right" and rest:
        return (f"the system's copy of {rest} counting leap seconds, which Python misreads (Europe/Berlin's "
                f"November 2026 in summer time, UTC+02:00) and browsers do not know; write {rest}")
    if name in ("localtime", "posixrules"):
        return ("a link of this machine's zone files, no zone's name, which browsers do not know; write the "
                "IANA name of the site's zone, such as Europe/Berlin (or leave timezone out: the machine's local time)")
    return None
