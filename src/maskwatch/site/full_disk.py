"""Retention at once on a full disk: a site whose writes the disk refused waited for its hourly
sweep to free what was due, its people waiting (past 1,000, dropped) up to an hour."""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Callable

from maskwatch.site.database import driver_reason

log = logging.getLogger(__name__)

FULL_SWEEP_EVERY = 300.0  # seconds: at most one sweep this often while the disk stays full (not one a frame)


def disk_is_full(err: BaseException) -> bool:
    """Whether `err` says the disk is full: ENOSPC, SQLite's `database or disk is full`, or
    PostgreSQL's `could not extend file ...: No space left on device`."""
    if isinstance(err, OSError):
        return err.errno == errno.ENOSPC
    reason = str(getattr(err, "orig", None) or err)
    return "database or disk is full" in reason or "No space left on device" in reason


class FullDiskSweep:
    """Runs `sweep` (the store's retention, which deletes only what is past retention_days) when a
    write was refused for a full disk, at most once every `every` seconds, in a thread of its own:
    run on the camera's thread, it stopped the camera's analysis for the seconds that thousands of
    old snapshots take to delete."""

    def __init__(self, sweep: Callable[[], int], every: float = FULL_SWEEP_EVERY) -> None:
        self.sweep, self.every = sweep, every
        self._lock = threading.Lock()
        self._last: float | None = None  # time.monotonic() of the last sweep's start
        self._thread: threading.Thread | None = None
        self._closed = False

    def refused(self) -> None:
        """A write the full disk refused: the sweep started now, unless one runs or started within
        `every` seconds; returns at once."""
        now = time.monotonic()
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            if self._closed or running or (self._last is not None and now - self._last < self.every):
                return
            self._last = now
            # A daemon: a sweep still deleting when the site stops does not keep the process.
            self._thread = threading.Thread(target=self._run, name="maskwatch-full-disk-sweep", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds for the sweep running, if any; whether none runs now."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close(self, timeout: float = 10.0) -> None:
        """No sweep started after this; the one running waited for up to `timeout` seconds (the
        site's stop bounded: what it has not deleted then is the hourly retention's next time)."""
        with self._lock:
            self._closed = True
        self.wait(timeout)

    def _run(self) -> None:
        minutes = round(self.every / 60)
        try:
            deleted = self.sweep()
        except Exception as err:  # noqa: BLE001 - the write's own error is what the caller reports
            log.warning("the disk is full: retention could not run at once (%s: %s); tried again in %d minutes "
                        "if it stays full", type(err).__name__, driver_reason(err), minutes)
            return
        log.warning("the disk is full: retention ran at once and deleted %d events past retention_days with their "
                    "snapshots; again in %d minutes at the soonest while it stays full", deleted, minutes)
