"""A file beside a site's SQLite database while the site runs (`site.db.running`: its process id,
start and boot), removed by a clean stop: the next start that finds one its process left says
the run before ended unclean. After a `kill -9`, a crash or a power cut the next start said
nothing, and the people lost then (in view, or waiting to be stored) went unnoticed.

A database server has no folder of the site's beside it: no marker there (nor any other
place every run of a site shares for sure: the snapshots folder may be another site's too)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux: another after each boot (a process id is reused)


def _boot() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process
        return True
    return True


def _start_ticks(pid: int) -> str:
    """When process `pid` started, in clock ticks since the boot (Linux's /proc/PID/stat), "" where
    it cannot be read: with the boot id, one process for sure (its id is taken again by others)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _same_run(pid: int, boot: str, ticks: str) -> bool:
    """Whether the process that left a marker (`pid`, in `boot`, started at `ticks`) still runs."""
    if boot != _boot() or not _running(pid):
        return False
    return not ticks or not (now := _start_ticks(pid)) or now == ticks


class RunMarker:
    """The marker of one run on the SQLite database at `url` (none for a server's URL)."""

    def __init__(self, url: str) -> None:
        self.path = Path(url.removeprefix("sqlite:///") + ".running") if url.startswith("sqlite:///") else None
        self.owned = False

    def start(self) -> None:
        """Say a marker an ended run left, then leave ours. One of another run going on now (two
        sites on one file) is said and left alone: its run's clean stop takes it away."""
        if self.path is None:
            return
        before = self._read()
        if before is not None:
            pid, started, boot, ticks = before
            if pid != os.getpid() and _same_run(pid, boot, ticks):
                # Said: a second `run` on another port and the same file went unnoticed, each
                # storing its cameras' people and sweeping the other's by its own retention.
                log.warning("another run stores on %s now (process %d, started %s): two sites on one database "
                            "file; this run leaves no marker of its own, and an unclean end of it goes unsaid",
                            self.path.with_suffix(""), pid, _utc(started))
                return
            log.warning("the run before on %s (process %d, started %s) did not stop cleanly (killed, crashed, or the "
                        "machine lost power): the people in view then and any waiting to be stored were lost; those "
                        "stored before are kept", self.path.with_suffix(""), pid, _utc(started))
        try:
            self.path.write_text(f"{os.getpid()} {time.time():.0f} {_boot() or '-'} {_start_ticks(os.getpid())}\n")
        except OSError:  # a folder this run cannot write: SQLite says so itself at the first person
            return
        self.owned = True

    def end(self) -> None:
        """The clean stop's end: our marker gone."""
        if self.owned:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.owned = False

    def _read(self) -> tuple[int, float, str, str] | None:
        """(process id, start, boot id, start in ticks since the boot); those a marker lacks ""."""
        try:
            words = self.path.read_text().split()
            boot, ticks = (words[2:] + ["", ""])[:2]
            return int(words[0]), float(words[1]), "" if boot == "-" else boot, ticks
        except (OSError, ValueError, IndexError):
            return None


def _utc(started: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
