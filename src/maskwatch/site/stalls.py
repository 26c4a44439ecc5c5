"""A camera whose analysis is stuck in one step, said in the log while it lasts, with where it
waits, and again when it goes on. A PostgreSQL server that hung (`kill -STOP` of it, 30 s) held
every camera's thread in its write: no frame was analysed, the people who passed were never seen,
and the log said nothing at all."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)

STUCK_SAID_AFTER = 10.0  # seconds in one step: a frame takes well under one, a model's first a few


def waiting_on(thread_id: int | None) -> str:
    """Where the thread `thread_id` waits, in words: the database, or its analysis."""
    frame = sys._current_frames().get(thread_id) if thread_id is not None else None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "record" and code.co_filename.replace("\\", "/").endswith("site/events.py"):
            return "waiting for the database (storing a person)"
        frame = frame.f_back
    return "in its analysis"


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
                log.warning("camera %s: stuck for %.0f s %s: no frame is analysed meanwhile, and the people "
                            "who pass are not seen", camera_id, now - since, waiting_on(worker.thread_id))
                self._said[camera_id] = since
