"""The site's exports (events.csv, report.csv): how many may run at once, the slot each holds
while its answer streams, the refusal when none is free, and the line that ends a file the
database cut short. Kept apart from the routes (site_api.py) that use them."""

from __future__ import annotations

import logging
import threading

from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import SQLAlchemyError

from maskwatch.site.database import driver_reason

log = logging.getLogger(__name__)

# Exports (events.csv, report.csv) read at once per process; one more is answered 503 at once. Each
# holds a worker thread and a database connection while it reads (a month's events.csv: a minute):
# forty from one read-only token took the whole thread pool (40 threads) and the database, and every
# dashboard's poll waited. Two: an audit's export beside a report, the pool left to everyone else.
# One of them per caller (user or token): a script looping over exports, or a leaked read token,
# held both and shut every other user out of theirs; that caller's next is a 429.
EXPORTS_AT_ONCE = 2
EXPORTS_PER_CALLER = 1
EXPORT_RETRY_AFTER = 10  # seconds: an export of a busy site's month takes about that long
EXPORTS_BUSY = (f"{EXPORTS_AT_ONCE} exports (events.csv, report.csv) are running on this server already; "
                f"try again in {EXPORT_RETRY_AFTER} s")
EXPORT_OF_YOURS = ("an export of yours (events.csv or report.csv) is running on this server already; one at a "
                   f"time: try again when it ends (in about {EXPORT_RETRY_AFTER} s)")


class ExportSlots:
    """At most `size` exports at once in this process and `per_caller` of them for one caller:
    take() answers at once (no waiting in a thread of the pool, which is what the exports ran out
    of); each slot taken is given back once."""

    def __init__(self, size: int, per_caller: int) -> None:
        self.size, self.per_caller = size, per_caller
        self.in_use = 0
        self._callers: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, caller: str | None = None):
        """A function that gives the slot back (a second call does nothing), or the error to answer
        (EXPORT_OF_YOURS: this caller has per_caller running; EXPORTS_BUSY: all taken). caller:
        who asks (None: unknown, an open server; only the process's bound holds)."""
        with self._lock:
            if caller is not None and self._callers.get(caller, 0) >= self.per_caller:
                return EXPORT_OF_YOURS
            if self.in_use >= self.size:
                return EXPORTS_BUSY
            self.in_use += 1
            if caller is not None:
                self._callers[caller] = self._callers.get(caller, 0) + 1
        given_back = threading.Event()

        def give_back() -> None:
            with self._lock:
                if not given_back.is_set():
                    given_back.set()
                    self.in_use -= 1
                    if caller is not None:
                        self._callers[caller] -= 1
                        if not self._callers[caller]:
                            del self._callers[caller]  # no name kept past its export
        return give_back


EXPORTS = ExportSlots(EXPORTS_AT_ONCE, EXPORTS_PER_CALLER)


class SlotStream(StreamingResponse):
    """A streamed answer that gives its export slot back when it stops sending: the file ended, the
    database failed, the client went away (the send failed or the answer was cancelled, a HEAD too)."""

    def __init__(self, *args, give_back, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.give_back = give_back

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.give_back()


EXPORTS_BUSY_RESPONSE = (503, f"The database cannot be read just now, or {EXPORTS_AT_ONCE} exports (events.csv, "
                               "report.csv) are running on this server process already: Retry-After says when to "
                               "try again")
EXPORT_OF_YOURS_RESPONSE = (429, "An export of the caller's (user or token) is running already, one at a time: "
                                 "Retry-After says when to try again")


def exports_busy(error: str) -> JSONResponse:
    """The refusal of an export ExportSlots.take did not give a slot: 429 for the caller's own, 503 for the server's."""
    return JSONResponse({"error": error}, status_code=429 if error == EXPORT_OF_YOURS else 503,
                        headers={"Retry-After": str(EXPORT_RETRY_AFTER)})


def said_if_cut_off(lines, path: str):
    """An export's CSV text, ending in a line that says it is incomplete where the database failed
    after the first page: the answer has begun (200), and an error raised now was dropped by the
    app's middleware, the file ending as if whole."""
    written = 0  # lines sent: the header, then one per event
    try:
        for text in lines:
            written += text.count("\n")
            yield text
    except SQLAlchemyError as err:
        events = max(written - 1, 0)
        log.error("GET %s: the database failed after %d events of the export: %s", path, events, driver_reason(err))
        yield f"# incomplete: the database failed after {events} events; download it again (its end is not this file's)\n"
