"""Progress that suits where it goes: a live bar on a terminal, plain lines in a log or a pipe.

tqdm redraws its bar with a carriage return on every update; written to a file that is one
line fragment per batch (a `study` log held thousands). Off a terminal, progress_bar writes one
plain line every few seconds instead, and one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_S = 5.0


def progress_bar(iterable: Iterable, desc: str = "", total: int | None = None, unit: str = "it",
                 disable: bool = False, leave: bool = True, stream: TextIO | None = None,
                 every: float = LOG_EVERY_S):
    """Iterate `iterable` showing progress on `stream` (stderr); a drop-in for the tqdm calls here.

    On a terminal: a tqdm bar. Elsewhere: "desc: n/total unit (p%), s" at most every `every`
    seconds and, when the loop ends (or close() is called) and leave is true, a last line.
    """
    stream = sys.stderr if stream is None else stream
    if disable:
        return _Quiet(iterable)
    if _is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, file=stream)
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return LogProgress(iterable, desc=desc, total=total, unit=unit, leave=leave, stream=stream, every=every)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _Quiet:
    """No progress at all (--quiet); keeps close() so callers need not care which they got."""

    def __init__(self, iterable: Iterable) -> None:
        self.iterable = iterable

    def __iter__(self) -> Iterator:
        return iter(self.iterable)

    def close(self) -> None:
        pass


class LogProgress:
    """Plain progress lines, rate-limited: for logs, pipes and CI output."""

    def __init__(self, iterable: Iterable, desc: str, total: int | None, unit: str, leave: bool,
                 stream: TextIO, every: float, clock=time.monotonic) -> None:
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.leave, self.stream, self.every, self.clock = leave, stream, every, clock
        self.n = 0
        self.started = self.last = clock()
        self.closed = self.exhausted = False

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            now = self.clock()
            if now - self.last >= self.every:
                self.last = now
                self._line(now)
            self.n += 1  # counted when handed out: a loop that breaks still counts its last item
            yield item
        self.exhausted = True
        self.close()

    def close(self) -> None:
        """The last line: "done in" once the loop went through (or reached its total), else "stopped
        after" (Ctrl-C or an error broke it: "done in" read as if the run had finished)."""
        if not self.closed:
            self.closed = True
            if self.leave:
                done = self.exhausted or (self.total is not None and self.n >= self.total)
                self._line(self.clock(), status="done in" if done else "stopped after")

    def _line(self, now: float, status: str = "after") -> None:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        elapsed = now - self.started
        rate = f", {self.n / elapsed:.1f} {self.unit}/s" if elapsed > 0 and self.n else ""
        # What a long run's log is read for: when it will end (tqdm's bar says it on a terminal).
        left = (f", about {_duration((self.total - self.n) * elapsed / self.n)} left"
                if status == "after" and rate and self.total and self.total > self.n else "")
        prefix = f"{self.desc}: " if self.desc else ""
        self.stream.write(f"{prefix}{count} {self.unit}{share} {status} {elapsed:.1f} s{rate}{left}\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    """A time left as one reads it: 40 s, 12 min, 3 h 05 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"
