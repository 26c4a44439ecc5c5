"""Opening hours: when a camera's alerts may fire (a closed shop needs no "no mask" alert).

Written as a list of "DAYS HH:MM-HH:MM" strings, DAYS a day (mon), a range (mon-fri) or a
comma list (sat,sun), in the site's timezone:

    hours: ["mon-fri 08:00-18:00", "sat 09:00-13:00", "fri 22:00-02:00"]

An end before the start runs past midnight into the next day (the day named is where it
starts). No hours at all means always open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time as clock_time, timedelta, tzinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEC = re.compile(r"^\s*([a-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class OpeningSpan:
    """Open on `days` (0 = Monday) from `start` to `end`; end <= start runs past midnight."""

    days: frozenset[int]
    start: clock_time
    end: clock_time

    def holds(self, moment: datetime) -> bool:
        """Whether `moment` (aware, or naive local time) falls in a span that opened on its day
        or the day before. Compared as instants: on the night the clocks go back, a span ending
        at 02:30 closed at the first 02:30 and read open again through the repeated hour."""
        at = moment.timestamp()
        for back in (0, 1):
            day = moment.date() - timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            end_day = day if self.start < self.end else day + timedelta(days=1)
            if first_instant(day, self.start, moment.tzinfo) <= at < first_instant(end_day, self.end, moment.tzinfo):
                return True
        return False


def first_instant(day: date, wall: clock_time, tz: tzinfo | None) -> float:
    """The first moment the wall clock of `tz` (None: local time) reads `wall` on `day`: the first
    of a time the clocks go back over, the jump itself for a time they skip (an opening at 02:30
    on the night they go forward opens at 03:00, as the wall clock passes it)."""
    wanted = datetime.combine(day, wall)
    earlier, later = sorted(wanted.replace(tzinfo=tz, fold=fold).timestamp() for fold in (0, 1))
    if datetime.fromtimestamp(earlier, tz).replace(tzinfo=None) == wanted:
        return earlier  # a time that happens (twice: the first)
    while earlier < later and datetime.fromtimestamp(earlier, tz).replace(tzinfo=None) < wanted:
        earlier += 60.0  # skipped: the jump is on a whole minute, within the gap
    return earlier


def parse_span(text: str) -> OpeningSpan:
    """One "DAYS HH:MM-HH:MM"; ValueError says what is wrong and what is expected."""
    match = SPEC.match(text.lower()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"opening hours are written like 'mon-fri 08:00-18:00'; got {text!r}")
    days: set[int] = set()
    for part in match.group(1).split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(end not in DAYS for end in ends):
            raise ValueError(f"days are {', '.join(DAYS)}, a range such as mon-fri or a list such as "
                             f"sat,sun; got {part!r} in {text!r}")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    hours = [int(match.group(i)) for i in (2, 3, 4, 5)]
    if hours[0] > 24 or hours[2] > 24 or hours[1] > 59 or hours[3] > 59:
        raise ValueError(f"times are HH:MM from 00:00 to 24:00; got {text!r}")
    if hours[0] == 24:  # 24:00 ends a day; opening then is 00:00 of the next, which says what it means
        raise ValueError(f"an opening time is 00:00 to 23:59 (24:00 only ends a span); got {text!r}")
    start = clock_time(hours[0], hours[1])
    if (hours[2], hours[3]) == (24, 0):
        end = clock_time(0)  # until midnight: runs "past" midnight by nothing
    elif hours[2] == 24:
        raise ValueError(f"times are HH:MM from 00:00 to 24:00; got {text!r}")
    else:
        end = clock_time(hours[2], hours[3])
    if start == end and (hours[2], hours[3]) != (24, 0):
        raise ValueError(f"opening and closing time are the same in {text!r}; use 00:00-24:00 for all day")
    return OpeningSpan(frozenset(days), start, end)


@dataclass(frozen=True)
class OpeningHours:
    """A camera's opening hours in a timezone (None: the machine's local time)."""

    spans: tuple[OpeningSpan, ...] = ()
    timezone: tzinfo | None = None

    @classmethod
    def parse(cls, specs: list[str], timezone: tzinfo | None = None) -> OpeningHours:
        return cls(tuple(parse_span(s) for s in specs), timezone)

    def is_open(self, unix_seconds: float) -> bool:
        if not self.spans:
            return True
        moment = datetime.fromtimestamp(unix_seconds, self.timezone)
        return any(span.holds(moment) for span in self.spans)


ALWAYS_OPEN = OpeningHours()
