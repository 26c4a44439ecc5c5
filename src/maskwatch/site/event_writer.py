"""One writer per site: the people its cameras hand out are stored on this thread, so that no
camera's analysis waits on the database.

A camera's thread stored its people itself. A PostgreSQL server that hung (`kill -STOP`) held
every camera in its write for as long as it hung (no frame analysed, no MQTT counts, the live
view frozen); five cameras on an SQLite file another process held took turns at its lock, 2 s
each, and most analysis stopped; people waiting for the database were tried again only at their
camera's frames (an offline camera never). Now a camera hands its people here and goes on; they
are written in the order handed out, tried again every RETRY_WAITING seconds of this writer's
own clock while the database refuses them.

When the database refuses or hangs for long, at most KEEP_WAITING people a camera wait here
(each a few KB, the first UNSTORED_SNAPSHOTS with their snapshot's JPEG, 0.1 to 0.3 MB for a near
face at 1080p). Past that the *oldest* of that camera go, counted and said: the newest are the
ones the dashboard's today, MQTT's counts and the compliance rules (the last minutes) read once
the database is back, and a busy camera does not push a quiet one's people out. Nothing is dropped unsaid: the log says when
a camera's dropping starts, and how many went when storing works again or at the stop.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.site.database import driver_reason
from maskwatch.site.stalls import STUCK_SAID_AFTER

if TYPE_CHECKING:
    from maskwatch.site.events import EventStore
    from maskwatch.video.tracker import Track

# The lines of people waiting and not stored keep the name operators filter on (the sink's, where
# a camera stored its people before this writer took it over).
log = logging.getLogger("maskwatch.site.event_sink")

RETRY_WAITING = 10.0  # seconds between two tries while the database refuses (a write's own wait: events.RECORD_WAIT)
KEEP_WAITING = 1_000  # people a camera may have waiting; past it its oldest are dropped and counted
UNSTORED_SNAPSHOTS = 100  # of a camera's people waiting, this many keep their snapshot
STOP_WAIT = 5.0  # seconds a stop waits for one write: a hung server holds it no longer
STOP_ALL = 15.0  # seconds a stop stores the people waiting in all: its share of the 45 s deployment.md asks of docker, systemd
# What a database refusing raises (OSError: a file or a network away): the person waits for the
# next try. Anything else is the person's own (an image OpenCV cannot encode, where a caller hands
# one, not the JPEG event_sink makes): retrying cannot help.
DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError)


class Person(NamedTuple):
    """One person handed to the writer by a camera's sink, and who to tell once stored."""

    camera: str
    zone: str | None
    track: Track
    snapshot: bytes | np.ndarray | None  # the JPEG to store (event_sink.jpeg), or an image to encode
    infrared: bool
    stored: Callable[[dict], None]  # the event as stored: the sink's recorded list and listeners


class EventWriter:
    """Stores the people of every camera of a site (or of a Ray actor) on one thread, started at
    the first person; close() at the stop. put() never blocks."""

    def __init__(self, store: EventStore, keep_waiting: int = KEEP_WAITING) -> None:
        if keep_waiting < 1:
            raise ValueError(f"keep_waiting must be 1 or more, got {keep_waiting}")
        self.store, self.keep_waiting = store, keep_waiting
        self._waiting: dict[str, deque[tuple[int, Person]]] = {}  # camera: (order handed out, person), oldest first
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._writing: tuple[int, Person] | None = None  # the person being written: never dropped
        self.dropped: Counter = Counter()  # camera: people dropped, since the start
        self._dropped_said: Counter = Counter()  # of those, the ones said already
        self.problem: str | None = None  # why the last write failed, until one succeeds
        self.failing_since: float | None = None  # time.monotonic() of the first failure of this outage
        self.busy_since: float | None = None  # time.monotonic() the write under way began
        self._hung_said: float | None = None  # the busy_since of the write said hung
        self._closing = threading.Event()
        self._answered = 0  # writes the database answered (close() waits on while they go in)
        self._closed = False  # close() done: nobody is stored any more
        self._thread = threading.Thread(target=self._run, name="maskwatch-event-writer", daemon=True)
        self._start_lock = threading.Lock()

    def put(self, person: Person) -> None:
        """Hand one person over; past keep_waiting for their camera its oldest waiting is dropped.
        After close() (a camera's analysis that outlived its stop) they are said lost: they sat
        here unsaid, the writer gone."""
        with self._changed:
            closed = self._closed
            if not closed:
                queue = self._waiting.setdefault(person.camera, deque())
                self._enqueue(queue, person)
        if closed:
            log.error("camera %s: person %s handed out after the stop, not stored", person.camera,
                      person.track.track_id)
            return
        self._start()

    def _enqueue(self, queue: deque, person: Person) -> None:
        """(under the lock)"""
        oldest = 1 if queue and queue[0] is self._writing else 0  # (one being written stays)
        if len(queue) >= self.keep_waiting and oldest < len(queue):
            del queue[oldest]
            self.dropped[person.camera] += 1
            if self.dropped[person.camera] == self._dropped_said[person.camera] + 1:
                log.warning("camera %s: %d people wait to be stored: its oldest are dropped from now on, "
                            "each counted, to keep the newest", person.camera, len(queue) + 1)
        queue.append((next(self._order), person))
        self._changed.notify()

    def waiting(self, camera: str | None = None) -> int:
        """How many people wait to be stored (of `camera`, or of every camera)."""
        with self._changed:
            return sum(len(queue) for name, queue in self._waiting.items() if camera in (None, name))

    def problem_of(self, camera: str, now: float | None = None) -> str | None:
        """Why `camera`'s people wait (its analysis_error), None while they go in: the database's
        error, or a write it has not answered for STUCK_SAID_AFTER seconds (a server that hangs)."""
        waiting = self.waiting(camera)
        if not waiting:
            return None
        since = self.busy_since
        now = time.monotonic() if now is None else now
        if since is not None and now - since >= STUCK_SAID_AFTER:
            return f"{waiting} people wait to be stored: the database has not answered for {now - since:.0f} s"
        return f"{waiting} people wait to be stored: {self.problem}" if self.problem else None

    def look(self, now: float | None = None) -> None:
        """Say a write the database has not answered for STUCK_SAID_AFTER seconds, and its end
        (called once a second with the cameras' own StallWatch)."""
        now = time.monotonic() if now is None else now
        since = self.busy_since
        if self._hung_said is not None and since != self._hung_said:
            log.warning("the database answered again after %.0f s", now - self._hung_said)
            self._hung_said = None
        if since is not None and self._hung_said is None and now - since >= STUCK_SAID_AFTER:
            log.warning("the database has not answered a write for %.0f s (a server that hangs?): %d people wait in "
                        "memory, the cameras analyse on", now - since, self.waiting())
            self._hung_said = since

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until nobody waits, or the database refuses (they wait for the next try); whether
        nobody waits. For a caller that reads back at once what it handed out (the tests)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(self._waiting.values()) and self.problem is None:
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    break
            return not any(self._waiting.values())

    def close(self, timeout: float = STOP_WAIT, total: float = STOP_ALL) -> int:
        """The people waiting written for as long as the database answers, `timeout` seconds at
        most for one write and `total` in all, and one try more for those it refuses; the rest said
        lost, per camera, in one ERROR line each, and let go: none is tried after (the store is
        closed next; the one in its write then goes in if the database answers, said). How many were lost. A stop gave them `timeout` seconds in all: a database
        storing them, only slower (a server across a network, an SD card), lost the rest, said as
        not answering; and the writer went on writing those said lost once a hung server answered."""
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        hung, deadline = False, time.monotonic() + total
        if self._thread.ident is not None:
            while True:
                answered = self._answered
                self._thread.join(max(0.0, min(timeout, deadline - time.monotonic())))
                if not self._thread.is_alive() or time.monotonic() >= deadline:
                    break
                if self._answered == answered:
                    hung = True
                    break
        with self._changed:
            left = {camera: len(queue) for camera, queue in self._waiting.items() if queue}
            for queue in self._waiting.values():
                queue.clear()
            self._closed = True
        if hung:
            why = f"the database did not answer a write for {timeout:g} s at the stop"
        elif self._thread.is_alive():
            why = f"the stop's {total:g} s for them ran out, the database storing them more slowly"
        else:
            why = self.problem or "the stop came first"
        for camera, count in left.items():
            log.error("camera %s: %d people could not be stored: %s", camera, count, why)
        self._say_dropped()
        return sum(left.values())

    def _start(self) -> None:
        with self._start_lock:
            if self._thread.ident is None and not self._closing.is_set():
                self._thread.start()

    def _next(self) -> tuple[int, Person] | None:
        """The person handed out first among every camera's waiting (under the lock)."""
        heads = [queue[0] for queue in self._waiting.values() if queue]
        return min(heads, key=lambda entry: entry[0]) if heads else None

    def _run(self) -> None:
        while True:
            with self._changed:
                while (entry := self._next()) is None and not self._closing.is_set():
                    self._changed.wait()
                if entry is None:
                    return
                self._writing = entry
            stopping = self._closing.is_set()  # a try begun before the stop is not its one more try
            written = self._write(entry)
            with self._changed:
                self._writing = None
                self._answered += written
                self._changed.notify_all()
            if not written:
                if stopping:
                    return  # the stop's one more try: refused, the rest are said lost
                self._closing.wait(RETRY_WAITING)

    def _write(self, entry: tuple[int, Person]) -> bool:
        """One person written and told to listeners (or passed over as bad data); False where the
        database refused. Busy (busy_since, said hung after STUCK_SAID_AFTER) until the listeners
        are told too: MQTT's today's counts are read from the database there, and a server that
        hung during that read held the writer with nothing said, its cameras' people waiting."""
        self.busy_since = time.monotonic()
        try:
            return self._store(entry)
        finally:
            self.busy_since = None

    def _store(self, entry: tuple[int, Person]) -> bool:
        person = entry[1]
        try:
            stored = self.store.record(person.camera, person.zone, person.track, person.snapshot,
                                       infrared=person.infrared)
        except ValueError as err:  # this person's data, not the database: retrying cannot help
            log.error("camera %s: person %s not stored: %s", person.camera, person.track.track_id, err)
            self._remove(entry)
            return True
        except DATABASE_ERRORS as err:  # the database refused: they wait, said once per new reason
            self._failed(f"{type(err).__name__}: {driver_reason(err)}")
            return False
        except Exception as err:  # noqa: BLE001 - not the database (the person's own data): see _set_aside
            self._set_aside(entry, err)
            return True
        if not self._remove(entry):  # in its write when the stop said the people waiting lost
            log.warning("camera %s: person %s stored after all, in their write when the stop counted them as not "
                        "stored", person.camera, person.track.track_id)
        self._stored_again()
        try:
            person.stored(stored)
        except Exception as err:  # noqa: BLE001 - a listener's fault must not end the writer, the site's only one
            log.error("camera %s: person %s stored, but telling listeners failed: %s: %s", person.camera,
                      person.track.track_id, type(err).__name__, err)
        return True

    def _set_aside(self, entry: tuple[int, Person], err: Exception) -> None:
        """A person whose write failed by something not the database: tried again at once without
        their snapshot, or, failing without one, passed over. Such a person was tried again every
        RETRY_WAITING seconds for ever, ahead of every camera's people, and none was stored again."""
        order, person = entry
        why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        with self._changed:
            queue = self._waiting[person.camera]
            if not (queue and queue[0] is entry):
                return
            if person.snapshot is not None:
                queue[0] = (order, person._replace(snapshot=None))
            else:
                queue.popleft()
        log.error("camera %s: person %s %s: %s", person.camera, person.track.track_id,
                  "not stored with their snapshot, tried again without it" if person.snapshot is not None
                  else "not stored, passed over", why)

    def _remove(self, entry: tuple[int, Person]) -> bool:
        """The person written taken off their queue; False where close() had let them go already."""
        with self._changed:
            queue = self._waiting[entry[1].camera]
            if queue and queue[0] is entry:
                queue.popleft()
                return True
            return False

    def _failed(self, problem: str) -> None:
        if problem != self.problem:
            log.warning("people cannot be stored (%s): %d wait in memory, tried again every %g s; the cameras "
                        "analyse on", problem, self.waiting(), RETRY_WAITING)
        with self._changed:
            self.problem = problem
            self.failing_since = self.failing_since or time.monotonic()
            self._changed.notify_all()  # settle(): they wait for the next try

    def _stored_again(self) -> None:
        if self.problem is None:
            return
        log.warning("people stored again after %.0f s; %d still wait to go in", time.monotonic() - self.failing_since,
                    self.waiting())
        self.problem, self.failing_since = None, None
        self._say_dropped()

    def _say_dropped(self) -> None:
        """The people dropped since it was last said, per camera."""
        with self._changed:
            new = {camera: count - self._dropped_said[camera] for camera, count in self.dropped.items()
                   if count > self._dropped_said[camera]}
            self._dropped_said.update(new)
        if new:
            log.error("people dropped unstored while the database was away, past %d waiting at a camera: %s",
                      self.keep_waiting, ", ".join(f"camera {camera}: {count}" for camera, count in new.items()))
