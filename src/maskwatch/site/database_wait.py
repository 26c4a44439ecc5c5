"""A request's read of a database, waited for a few seconds at most.

A PostgreSQL server that hangs (its process stopped, a host that keeps the connection open and
answers nothing) holds whoever asks it for as long as it hangs: no timeout of the driver's fires,
the kernel acknowledging every packet. Each request that read it held a server thread with it,
until the threadpool was full and the static files, the live view and the login page waited too.

DatabaseWait runs each read on a daemon thread of its own and waits READ_WAIT for it: past that
the request is answered (DatabaseNotAnswering: a 503 naming the database and for how long) and the
read is left to end whenever the server answers. While such a read is still stuck, the next
requests are answered at once, asking nothing; at most READS_AT_ONCE reads wait on the database
per DatabaseWait (the users' and the events' each have one), so stuck ones never pile up. Once
the stuck ones end (the server continued), reads go through again by themselves.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

# Seconds a request waits for its read (a login's, a session check's, /v1/events'...).
READ_WAIT = 3.0
# Reads of one database under way at once per process; the next waits for one to end.
READS_AT_ONCE = 4


class DatabaseNotAnswering(Exception):
    """The database `what` names has not answered a read for `seconds`: a 503, try again later."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        super().__init__(f"{what} has not answered for {max(1, round(seconds))} s (a server that hangs?)")


class DatabaseWait:
    """Reads of one database (`what`: "the users database"), each waited for `wait` s at most."""

    def __init__(self, what: str, wait: float = READ_WAIT, at_once: int = READS_AT_ONCE) -> None:
        self.what, self.wait = what, wait
        self._slots = threading.BoundedSemaphore(at_once)
        self._lock = threading.Lock()
        self._running: dict[int, float] = {}  # a read under way -> when it began (monotonic)
        self._stuck: set[int] = set()  # those of them a caller stopped waiting for
        self._said_at: float | None = None  # when the log said this database does not answer
        self._inside = threading.local()  # .read: this thread is one of this wait's reads

    def call(self, read, *args, **kwargs):
        """`read(*args, **kwargs)`'s answer (or its exception); DatabaseNotAnswering when a read
        before it is stuck past the wait, or this one outlasts it."""
        if getattr(self._inside, "read", False):  # a read within one (an expired token's log row): its wait holds
            return read(*args, **kwargs)
        asked = time.monotonic()
        self._check(asked)
        if not self._slots.acquire(timeout=self.wait):
            self._refuse(time.monotonic(), asked)
        answer: list = []
        failed: list[BaseException] = []

        def run() -> None:
            key = threading.get_ident()
            self._inside.read = True
            with self._lock:
                self._running[key] = time.monotonic()
            try:
                answer.append(read(*args, **kwargs))
            except BaseException as err:  # noqa: BLE001  (raised again on the request's thread)
                failed.append(err)
            finally:
                with self._lock:
                    del self._running[key]
                    self._stuck.discard(key)
                self._slots.release()
                self._answered_again()

        thread = threading.Thread(target=run, name="maskwatch-database-read", daemon=True)
        thread.start()
        thread.join(max(0.0, asked + self.wait - time.monotonic()))
        if thread.is_alive():
            with self._lock:
                stuck = thread.ident in self._running  # False: it ended meanwhile, its answer is there
                if stuck:
                    self._stuck.add(thread.ident)
            if stuck:
                self._refuse(time.monotonic(), asked)
        if failed:
            raise failed[0]
        return answer[0]

    def check(self) -> None:
        """DatabaseNotAnswering at once while a read is stuck past the wait (a request that reads
        on the database at length, a CSV export, asks first)."""
        self._check(time.monotonic())

    def _check(self, now: float) -> None:
        with self._lock:
            oldest = min(self._running.values(), default=None)
            stuck = bool(self._stuck)
        if oldest is not None and (stuck or now - oldest > self.wait):
            self._refuse(now, oldest)

    def _refuse(self, now: float, asked: float) -> None:
        with self._lock:
            oldest = min(self._running.values(), default=asked)
            first = self._said_at is None
            if first:
                self._said_at = now
        seconds = now - min(oldest, asked)
        if first:
            log.warning("%s has not answered a read for %d s (a server that hangs?): requests that read it are "
                        "answered 503 until it does", self.what, round(seconds))
        raise DatabaseNotAnswering(self.what, seconds)

    def _answered_again(self) -> None:
        with self._lock:
            if self._said_at is None or self._running:
                return
            said_at, self._said_at = self._said_at, None
        log.warning("%s answered again after %d s", self.what, round(time.monotonic() - said_at + self.wait))
