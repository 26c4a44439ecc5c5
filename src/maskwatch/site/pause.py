"""A site's process paused (a virtual machine suspended, `kill -STOP`, a machine asleep or
swapping), said in the log when the pause outlasted a camera's offline_after. Such a pause left
its marks with no word of why: a 40 s `kill -STOP` put every camera's MQTT `available` at
`offline` as it ended, and the people then in view were counted as gone (and again as they
were seen after it); the log said nothing at all."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from maskwatch.runtime import boot_clock

log = logging.getLogger(__name__)

LOOK_EVERY = 1.0  # seconds between looks at the clock
SHORTEST_SAID = 5.0  # seconds: shorter stalls are a busy machine's, not worth a line


class PauseWatch:
    """A thread that wakes every LOOK_EVERY seconds and says a wake that came late by
    `offline_after` (the cameras' shortest) or more, and SHORTEST_SAID at least. Its clock runs
    while the machine sleeps (boot_clock), so a suspended machine's sleep counts as a pause too."""

    def __init__(self, offline_after: float, each_look: Callable[[], None] = lambda: None) -> None:
        self.offline_after, self.each_look = offline_after, each_look  # each_look: once a second, unless late
        self.said_after = max(SHORTEST_SAID, offline_after)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maskwatch-pause-watch", daemon=True)

    def start(self) -> PauseWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(LOOK_EVERY * 2)

    def _run(self) -> None:
        last = boot_clock()
        while not self._stop.wait(LOOK_EVERY):
            now = boot_clock()
            late = now - last - LOOK_EVERY
            self.woke(late)
            if late < LOOK_EVERY:  # (after a pause, a step it held is not yet stuck: it goes on now)
                self.each_look()
            last = now

    def woke(self, late: float) -> None:
        """Says a wake `late` seconds late, if that is a pause worth a line."""
        if late < self.said_after:
            return
        log.warning("the site was paused for %.0f s (no CPU time: a virtual machine suspended, kill -STOP, the "
                    "machine asleep or swapping): no frame was analysed meanwhile, and the cameras whose "
                    "offline_after (%g s at the shortest) it outlasted counted as offline and their people in view "
                    "as gone; their people still there are counted again as new", late, self.offline_after)
