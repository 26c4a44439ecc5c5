"""A request's read of a database, waited for a few seconds at most.

A PostgreSQL server that hangs (its process stopped, a host that keeps the connection open and
answers nothing) holds whoever asks it for as long as it hangs: no timeout of the driver's fires,
the kernel acknowledging every packet. Each request that read it held a server thread with it,
until the threadpool was full and the static files, the live view and the login page waited too.

DatabaseWait makes each read on a daemon thread of its own and waits READ_WAIT for it: past that
the request is answered (DatabaseNotAnswering: a 503 naming the database and for how long) and the
read is left to end whenever the server answers. While such a read is still stuck and no read has
returned since it began, one next read is let through to tell a slow read from a server that hangs:
once it (or any) returns, the database answers, and reads go through, each with its wait (a
/v1/compliance over a year on a Raspberry Pi's SQLite made every request a 503 while it ran); one
that ends in an error tells nothing (identify refuses a request without a credential asking nothing);
while it is stuck too, the next requests are answered at once, asking nothing; at most READS_AT_ONCE reads wait on the database
per DatabaseWait (the users' and the events' each have one), so stuck ones never pile up. Once
the stuck ones end (the server continued), reads go through again by themselves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger(__name__)

# Seconds a request waits for its read (a login's, a session check's, /v1/events'...).
READ_WAIT = 3.0
# Reads of one database under way at once per process; the next waits for one to end.
READS_AT_ONCE = 4
# Seconds a thread making reads waits for the next before it ends (one is started when none waits).
THREAD_IDLE_END = 30.0


class DatabaseNotAnswering(Exception):
    """The database `what` names has not answered a read for `seconds`: a 503, try again later."""

    def __init__(self, what: str, seconds: float, slow: bool = False) -> None:
        self.what, self.seconds = what, seconds
        why = "it answers others: a read too long for the wait?" if slow else "a server that hangs?"
        super().__init__(f"{what} has not answered {'this read ' if slow else ''}for {max(1, round(seconds))} s ({why})")


class _Read:
    """One read handed to a DatabaseWait's threads: what to call, and how it went."""

    def __init__(self, read, args: tuple, kwargs: dict) -> None:
        self.read, self.args, self.kwargs = read, args, kwargs
        self.state = "queued"  # running, done, or dropped (its caller stopped waiting before it began)
        self.began = 0.0  # monotonic, once running
        self.stuck = False  # running, and its caller stopped waiting for it
        self.answer, self.error = None, None
        self.done = threading.Event()


class DatabaseWait:
    """Reads of one database (`what`: "the users database"), each waited for `wait` s at most, made
    by up to `at_once` daemon threads of its own, each kept while reads come (a thread started per
    read cost each request 0.3 ms more)."""

    def __init__(self, what: str, wait: float = READ_WAIT, at_once: int = READS_AT_ONCE) -> None:
        self.what, self.wait, self.at_once = what, wait, at_once
        self._slots = threading.BoundedSemaphore(at_once)  # reads queued or running: never more than threads
        self._reads: queue.SimpleQueue[_Read] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for a read, less the reads handed out to them
        self._lock = threading.Lock()
        self._running: set[_Read] = set()
        self._stuck = 0  # running reads a caller stopped waiting for
        self._answered = float("-inf")  # monotonic: when a read last returned (the database answers)
        self._probe: _Read | None = None  # the read let through while one is stuck, until it ends
        self._said_at: float | None = None  # when the log said this database does not answer
        self._inside = threading.local()  # .read: this thread is one of this wait's

    def call(self, read, *args, **kwargs):
        """`read(*args, **kwargs)`'s answer (or its exception); DatabaseNotAnswering when a read
        before it is stuck past the wait, or this one outlasts it."""
        if getattr(self._inside, "read", False):  # a read within one (an expired token's log row): its wait holds
            return read(*args, **kwargs)
        asked = time.monotonic()
        job = _Read(read, args, kwargs)
        self._check(asked, job)
        if not self._slots.acquire(timeout=self.wait):
            with self._lock:
                if self._probe is job:
                    self._probe = None
            self._refuse(time.monotonic(), asked)
        self._hand_out(job)
        if not job.done.wait(max(0.0, asked + self.wait - time.monotonic())):
            with self._lock:
                answered = job.state == "done"  # (just now)
                if job.state == "queued":
                    job.state = "dropped"  # never made: its thread lets its slot go
                elif job.state == "running":
                    job.stuck = True
                    self._stuck += 1
            if not answered:
                with self._lock:
                    slow = self._answered > asked  # others were answered meanwhile: slow, not hung
                if slow:
                    raise DatabaseNotAnswering(self.what, time.monotonic() - asked, slow=True)
                self._refuse(time.monotonic(), asked)
        if job.error is not None:
            raise job.error
        return job.answer

    def _hand_out(self, job: _Read) -> None:
        """`job` to an idle thread, or to one started for it (at most at_once: one per slot)."""
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # one of them is its
                start = False
            else:
                start = True
        self._reads.put(job)
        if start:
            threading.Thread(target=self._make_reads, name="maskwatch-database-read", daemon=True).start()

    def _make_reads(self) -> None:
        """Makes the reads handed out until none came for THREAD_IDLE_END s."""
        self._inside.read = True
        while True:
            try:
                job = self._reads.get(timeout=THREAD_IDLE_END)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # more idle threads than reads handed out: this one goes
                        self._idle -= 1
                        return
                continue
            with self._lock:
                dropped = job.state == "dropped"
                if not dropped:
                    job.state, job.began = "running", time.monotonic()
                    self._running.add(job)
            if not dropped:
                try:
                    job.answer = job.read(*job.args, **job.kwargs)
                except BaseException as err:  # noqa: BLE001  (raised again on the caller's thread)
                    job.error = err
            with self._lock:
                job.state = "dropped" if dropped else "done"
                if not dropped and job.error is None:  # an error may be raised before it asks (no credential)
                    self._answered = time.monotonic()
                if self._probe is job:
                    self._probe = None
                self._running.discard(job)
                self._stuck -= job.stuck
                self._idle += 1
            job.read = job.args = job.kwargs = None  # a request held by a stuck read is let go with it
            self._slots.release()
            job.done.set()
            self._answered_again()

    def stuck(self) -> int:
        """Reads still running that their callers stopped waiting for."""
        with self._lock:
            return self._stuck

    def check(self) -> None:
        """DatabaseNotAnswering at once while a read is stuck past the wait (a request that reads
        on the database at length, a CSV export, asks first)."""
        self._check(time.monotonic())

    def _check(self, now: float, job: _Read | None = None) -> None:
        """Refuses at once while a read is past the wait and none has returned since it began; `job`
        (a read about to be made) may go as the one that tells whether the database answers."""
        with self._lock:
            late = [r.began for r in self._running if r.stuck or now - r.began > self.wait]
            if not late or self._answered > max(late):
                return  # none late, or the database answered since the latest late one began: slow
            if job is not None and self._probe is None and len(self._running) < self.at_once:  # a slot to tell
                self._probe = job
                return
        self._refuse(now, min(late))

    def _refuse(self, now: float, asked: float) -> None:
        with self._lock:
            oldest = min((job.began for job in self._running), default=asked)
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
