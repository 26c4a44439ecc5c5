"""A camera whose analysis is stuck in one step, said in the log while it lasts, and again when it
goes on. A PostgreSQL server that hung (`kill -STOP` of it, 30 s) held every camera's thread in its
write: no frame was analysed, the people who passed were never seen, and the log said nothing at
all. The cameras no longer write (site/event_writer.py, which says a hung database itself); a
step stuck in the analysis (a model, a sink's listener) is still said here."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

STUCK_SAID_AFTER = 10.0  # seconds in one step: a frame takes well under one, a model's first a few


class StallWatch:
    """Looks at each camera worker's step (its busy_since) when asked, once a second."""

    def __init__(self, workers: dict) -> None:
        self.workers = workers
        self._said: dict[str, float] = {}  # camera: the busy_since of the step said stuck

    def look(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for camera_id, worker in self.workers.items():
            since = getattr(worker, "busy_since", None)  # (a Ray actor's camera has none here)
            said = self._said.get(camera_id)
            if said is not None and since != said:
                log.warning("camera %s: analysing again after %.0f s stuck", camera_id, now - said)
                del self._said[camera_id]
            if since is not None and camera_id not in self._said and now - since >= STUCK_SAID_AFTER:
                log.warning("camera %s: stuck for %.0f s in its analysis: no frame is analysed meanwhile, and the "
                            "people who pass are not seen", camera_id, now - since)
                self._said[camera_id] = since
