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


class RunMarker:
    """The marker of one run on the SQLite database at `url` (none for a server's URL)."""

    def __init__(self, url: str) -> None:
        self.path = Path(url.removeprefix("sqlite:///") + ".running") if url.startswith("sqlite:///") else None
        self.owned = False

    def start(self) -> None:
        """Say a marker an ended run left, then leave ours; one of another process running here
        now (two sites on one file) is left alone, and it says what becomes of it."""
        if self.path is None:
            return
        before = self._read()
        if before is not None:
            pid, started, boot = before
            if _running(pid) and boot == _boot() and pid != os.getpid():
                return
            log.warning("the run before on %s (process %d, started %s) did not stop cleanly (killed, crashed, or the "
                        "machine lost power): the people in view then and any waiting to be stored were lost; those "
                        "stored before are kept", self.path.with_suffix(""), pid,
                        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)))
        try:
            self.path.write_text(f"{os.getpid()} {time.time():.0f} {_boot()}\n")
        except OSError:  # a folder this run cannot write: SQLite says so itself at the first person
            return
        self.owned = True

    def end(self) -> None:
        """The clean stop's end: our marker gone."""
        if self.owned:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.owned = False

    def _read(self) -> tuple[int, float, str] | None:
        try:
            words = self.path.read_text().split()
            return int(words[0]), float(words[1]), words[2] if len(words) > 2 else ""
        except (OSError, ValueError, IndexError):
            return None
